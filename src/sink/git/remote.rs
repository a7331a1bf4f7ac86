//! The remote, through the git command line: its tip, a fetch into a
//! temporary ref, a push with a lease, and what a failure means (refused
//! because another pipeline pushed first, credentials, trust, SSH).

use std::path::PathBuf;

use git2::{Oid, Repository};

use crate::sink::git::cli::{Failure, Git};
use crate::sink::git::error::{redact, GitError};

/// The result of a push that reached the remote.
pub(crate) enum Pushed {
    Yes,
    /// Refused because the remote branch is not what we expected (another
    /// pipeline pushed first): worth rebuilding and trying again.
    Rejected(String),
}

/// The remote, through git: the URL pushes go to (after `pushurl` and
/// `pushInsteadOf`) is also the one read, since it is the repository
/// the tool writes to.
pub(crate) struct Remote<'a> {
    repo: &'a Repository,
    git: &'a Git,
    name: &'a str,
    url: std::cell::OnceCell<String>,
}

impl<'a> Remote<'a> {
    pub(crate) fn new(repo: &'a Repository, git: &'a Git, name: &'a str) -> Self {
        Remote {
            repo,
            git,
            name,
            url: std::cell::OnceCell::new(),
        }
    }

    /// The push URL, as git resolves it (asked once a run).
    pub(crate) fn url(&self) -> Result<String, GitError> {
        if let Some(url) = self.url.get() {
            return Ok(url.clone());
        }
        let url = self
            .git
            .run(["remote", "get-url", "--push", self.name])
            .map(|u| u.trim().to_owned())
            .map_err(|f| GitError::Command {
                context: format!("find remote {:?}", self.name),
                message: f.stderr,
            })?;
        Ok(self.url.get_or_init(|| url).clone())
    }

    pub(crate) fn error(&self, context: String, f: Failure) -> GitError {
        let url = self
            .url()
            .map(|u| redact(&u))
            .unwrap_or_else(|_| self.name.to_owned());
        classify(self.git, &url, context, f)
    }

    pub(crate) fn rejected(&self, attempts: u32, reason: String) -> GitError {
        GitError::PushRejected {
            remote: self.name.to_owned(),
            attempts,
            reason,
        }
    }

    /// The remote's tip of `branch`, `None` when it has no such branch.
    pub(crate) fn tip(&self, branch: &str) -> Result<Option<Oid>, GitError> {
        let url = self.url()?;
        let refname = format!("refs/heads/{branch}");
        let out = self
            .git
            .run(["ls-remote", "--refs", url.as_str(), refname.as_str()])
            .map_err(|f| self.error(format!("read {branch} from {}", self.name), f))?;
        Ok(out.lines().find_map(|l| {
            let (id, name) = l.split_once('\t')?;
            (name == refname).then(|| Oid::from_str(id).ok()).flatten()
        }))
    }

    /// Fetches `branch` and returns its tip (`None`: no such branch).
    pub(crate) fn fetch_tip(&self, branch: &str) -> Result<Option<Oid>, GitError> {
        let Some(tip) = self.tip(branch)? else {
            return Ok(None);
        };
        self.fetch_into_odb(branch, tip)?;
        Ok(Some(tip))
    }

    /// Makes sure the object database has `tip`, the remote's tip of
    /// `branch`, fetching that one ref if not. The objects stay; the
    /// temporary ref that brought them goes. In a shallow clone only the
    /// tip is fetched, not the history behind it.
    pub(crate) fn fetch_into_odb(&self, branch: &str, tip: Oid) -> Result<(), GitError> {
        if self.repo.find_commit(tip).is_ok() {
            return Ok(());
        }
        let url = self.url()?;
        let temp = format!("{}/fetch", crate::sink::git::worktree::TEMP_REFS);
        let refspec = format!("+refs/heads/{branch}:{temp}");
        let mut args = vec!["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"];
        if self.repo.is_shallow() {
            args.push("--depth=1");
        }
        args.extend([url.as_str(), refspec.as_str()]);
        let result = self.git.run(args);
        let _ = self.git.run(["update-ref", "-d", temp.as_str()]);
        result.map_err(|f| self.error(format!("fetch {branch} from {}", self.name), f))?;
        Ok(())
    }

    /// Pushes one refspec to the named remote, so that every setting of
    /// that remote applies. With a lease, the remote branch must still be
    /// at the given commit (or absent) for the push to land.
    pub(crate) fn push(
        &self,
        refspec: &str,
        lease: Option<(&str, Option<Oid>)>,
    ) -> Result<Pushed, GitError> {
        let lease = lease.map(|(branch, expected)| {
            format!(
                "--force-with-lease={branch}:{}",
                expected.map(|e| e.to_string()).unwrap_or_default()
            )
        });
        let mut args = vec!["push", "--porcelain", "--quiet"];
        if let Some(l) = &lease {
            args.push(l);
        }
        args.extend([self.name, refspec]);
        match self.git.run(args) {
            Ok(_) => Ok(Pushed::Yes),
            Err(f) => {
                // --porcelain reports each ref on stdout: "!<TAB>from:to<TAB>[rejected] (why)".
                let refused = f.stdout.lines().find_map(|l| {
                    let mut parts = l.split('\t');
                    (parts.next() == Some("!"))
                        .then(|| parts.nth(1).unwrap_or("rejected").to_owned())
                });
                match refused {
                    Some(reason) if retryable(&reason) => Ok(Pushed::Rejected(reason)),
                    Some(reason) => Err(GitError::PushRefused {
                        remote: self.name.to_owned(),
                        reason,
                        message: f.stderr,
                    }),
                    None => Err(self.error(format!("push to {}", self.name), f)),
                }
            }
        }
    }
}

/// A refusal that means "the branch moved": another pipeline was first.
pub(crate) fn retryable(reason: &str) -> bool {
    [
        "fetch first",
        "non-fast-forward",
        "stale info",
        "cannot lock ref",
        "failed to update ref",
    ]
    .iter()
    .any(|r| reason.contains(r))
}

/// A failed remote operation, as an error that says what to set.
fn classify(git: &Git, url: &str, context: String, f: Failure) -> GitError {
    let s = f.stderr.as_str();
    let any = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
    if any(&["dubious ownership"]) {
        let path = s
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("git config --global --add safe.directory ")
            })
            .unwrap_or(".");
        return GitError::Ownership(PathBuf::from(path));
    }
    if any(&[
        "SSL certificate problem",
        "server certificate verification failed",
        "certificate verify failed",
        "self-signed certificate",
        "self signed certificate",
        "unable to get local issuer certificate",
    ]) {
        return GitError::Certificate {
            remote: url.to_owned(),
            message: s.to_owned(),
        };
    }
    if any(&[
        "passphrase",
        "Load key",
        "Permission denied (publickey",
        "Host key verification failed",
    ]) {
        return GitError::Ssh {
            remote: url.to_owned(),
            message: s.to_owned(),
        };
    }
    if any(&[
        "Authentication failed",
        "could not read Username",
        "could not read Password",
        "terminal prompts disabled",
        "HTTP Basic: Access denied",
        "returned error: 401",
        "returned error: 403",
        "Invalid username or password",
    ]) {
        return GitError::Auth {
            remote: url.to_owned(),
            looked: credential_sources(git, url),
            message: s.to_owned(),
        };
    }
    GitError::Command {
        context,
        message: s.to_owned(),
    }
}

/// Where git could have found credentials, without any of their values.
fn credential_sources(git: &Git, url: &str) -> String {
    let token = match std::env::var_os("GIT_TOKEN") {
        Some(t) if !t.is_empty() => "GIT_TOKEN is set",
        _ => "GIT_TOKEN is not set",
    };
    let headers = git.config_regexp(r"^http\..*extraheader$").len();
    let helpers = git.config_regexp(r"^credential\..*helper$").len();
    let userinfo = if url.contains("<redacted>@") {
        "has"
    } else {
        "has no"
    };
    format!(
        "{token}; {headers} http.<url>.extraheader setting(s); {helpers} credential.helper setting(s); the URL {userinfo} user info"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_refused_because_the_branch_moved_is_retried() {
        assert!(retryable("[rejected] (fetch first)"));
        assert!(retryable("[rejected] (stale info)"));
        assert!(!retryable("[remote rejected] (pre-receive hook declined)"));
    }
}
