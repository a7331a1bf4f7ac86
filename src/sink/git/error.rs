//! What can go wrong in the repository, each with what the user can do.

use std::fmt;
use std::path::PathBuf;

use git2::Oid;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot open the git repository at {}: {message}", path.display())]
    Open { path: PathBuf, message: String },
    /// libgit2 failed.
    #[error("{context}: {source}")]
    Library {
        context: String,
        #[source]
        source: Libgit2Error,
    },
    /// A git command failed; `message` is what it printed.
    #[error("{context}: {message}")]
    Command { context: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The plan for a directory was refused (a file not ours in the way,
    /// or the mass-removal guard).
    #[error(transparent)]
    Refused(#[from] crate::plan::Refused),
    #[error("{0} exists in the repository as a file, not a directory")]
    NotADirectory(String),
    #[error("{} is not inside a git working tree: --flux and --argo write paths relative to the repository root, so --out must be a directory of a repository", .0.display())]
    NotInWorktree(PathBuf),
    #[error("HEAD is detached: name the branch to commit on with --base, or commit to a bot branch with --branch and --base")]
    DetachedHead,
    #[error("base branch {0:?} not found, locally or as a remote-tracking branch")]
    BaseNotFound(String),
    #[error("--branch {0:?} is the checked-out branch; the bot branch is rewritten on every run, so it must not be the one you work on")]
    BranchCheckedOut(String),
    #[error(
        "no author: pass --author \"Name <email>\" or set git config user.name and user.email"
    )]
    NoAuthor,
    #[error("--author {0:?} is not of the form \"Name <email>\"")]
    BadAuthor(String),
    #[error("--branch {branch:?} is checked out in the worktree at {}; git does not move a branch that is checked out, and neither does this tool", worktree.display())]
    BranchInWorktree { branch: String, worktree: PathBuf },
    #[error("the working tree has local changes to the rendered files; commit or discard them first ({0})")]
    Conflict(String),
    #[error("git refuses the repository at {path}: it is owned by another user. If you trust it, run: git config --global --add safe.directory {path}", path = .0.display())]
    Ownership(PathBuf),
    #[error("authentication to {remote} failed: {message}\nwhere git looked for credentials: {looked}.\nSet GIT_TOKEN to a token that may push (user name from --git-username, default x-access-token), or give git credentials: http.<url>.extraheader (what actions/checkout leaves), a credential.helper, or an SSH remote with --ssh-key")]
    Auth {
        remote: String,
        looked: String,
        message: String,
    },
    #[error("the TLS certificate of {remote} is not trusted: {message}\npass --ca-file with the CA that signed it, or set GIT_SSL_CAINFO or http.sslCAInfo")]
    Certificate { remote: String, message: String },
    #[error("SSH to {remote} failed: {message}\ncheck --ssh-key (and --ssh-key-passphrase-file for a key with a passphrase, or an ssh-agent), known_hosts, and GIT_SSH_COMMAND or core.sshCommand")]
    Ssh { remote: String, message: String },
    #[error("git could not sign the commit (--sign or commit.gpgsign is set, so an unsigned commit is not made): {0}\ncheck user.signingkey and gpg.format, and that the key is usable without a prompt")]
    Sign(String),
    #[error("{path} is under the git filter {filter:?} (.gitattributes): git would store it in another form than the tool writes, and Flux reads it unfiltered. Exempt the policy directory by adding this line at the end of .gitattributes: {line}")]
    Filtered {
        path: String,
        filter: String,
        line: String,
    },
    #[error("another insights-policy-render is committing in this repository (it holds a lock on {}); wait for it to finish", .0.display())]
    Busy(PathBuf),
    #[error("{} exists: another git process is using the index, or one was killed while it did. If no git process is running, remove the file and run again", .0.display())]
    IndexLocked(PathBuf),
    #[error("{} is not a journal this version of insights-policy-render wrote; move it away and check the working tree with git status", .0.display())]
    Journal(PathBuf),
    #[error("an earlier run was interrupted while bringing the working tree to its commit {commit}, and completing that failed: {source} (its journal is {})", journal.display())]
    Recover {
        journal: PathBuf,
        commit: Oid,
        #[source]
        source: Box<GitError>,
    },
    #[error("committed {commit}, but bringing the working tree and index along failed: {source}; the next run completes it")]
    Incomplete {
        commit: Oid,
        #[source]
        source: Box<GitError>,
    },
    #[error("{remote} refused the push: {reason}: {message}")]
    PushRefused {
        remote: String,
        reason: String,
        message: String,
    },
    #[error("the push to {remote} was still refused after {attempts} attempts: {reason}")]
    PushRejected {
        remote: String,
        attempts: u32,
        reason: String,
    },
}

impl GitError {
    /// A libgit2 error, with what we were doing, with any credentials in a
    /// URL removed (libgit2 messages can quote the remote URL).
    pub(crate) fn git(context: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
        let context = context.into();
        move |e| GitError::Library {
            context,
            source: Libgit2Error(e),
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> GitError {
        let context = context.into();
        move |source| GitError::Io { context, source }
    }
}

/// Removes `user:password@` from URLs and the value of `GIT_TOKEN`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(userinfo_end) => {
                out.push_str("<redacted>@");
                rest = &tail[userinfo_end + 1..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    match std::env::var("GIT_TOKEN") {
        Ok(token) if token.len() >= 4 => out.replace(&token, "<redacted>"),
        _ => out,
    }
}

/// A libgit2 error that prints redacted: libgit2 messages can quote the
/// remote URL, credentials included.
pub struct Libgit2Error(pub git2::Error);

impl fmt::Display for Libgit2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(self.0.message()))
    }
}

impl fmt::Debug for Libgit2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Libgit2Error({:?}, {:?}, {:?})",
            self.0.code(),
            self.0.class(),
            redact(self.0.message())
        )
    }
}

impl std::error::Error for Libgit2Error {}
