//! The git edge: plan rendered trees against a commit, write the new tree
//! straight into the object database, commit, update the branch, push, and
//! when another pipeline pushed first, rebuild on the new tip and try again.
//!
//! Blobs and trees go into the object database directly through libgit2
//! (no index, no working-tree round trip), which is what makes a
//! 10,000-policy commit cheap. Everything that must follow the user's git
//! configuration goes through the git command line ([`crate::sink::git::cli`]): the
//! commit itself (signing), the remote (credentials, trust, proxies, push
//! URLs), and the working tree of the checked-out branch
//! ([`crate::sink::git::worktree`]), which git brings along by its own checkout rules.

pub mod cli;
pub mod error;
pub mod pack;
mod remote;
pub mod tree;
pub mod worktree;

use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::{ErrorCode, Oid, Repository, Signature};

use crate::plan::{Plan, Refused};
use crate::sink::git::cli::Git;
pub use crate::sink::git::error::{redact, GitError};
use crate::sink::git::remote::{Pushed, Remote};
use crate::sink::git::tree::build_tree;
pub use crate::sink::git::tree::{plan_targets, Role, Target};

/// The repository that holds `path`, found as git finds it (so `--repo`
/// may name a subdirectory of the working tree).
pub fn open(path: &Path) -> Result<Repository, GitError> {
    Repository::discover(path).map_err(|e| {
        if e.code() == ErrorCode::Owner {
            let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
            GitError::Ownership(shown)
        } else {
            GitError::Open {
                path: path.to_owned(),
                message: redact(e.message()),
            }
        }
    })
}

/// The root of the git working tree that holds `path` (which need not
/// exist yet), and `path` relative to it, `/`-separated.
pub fn locate_in_worktree(path: &Path) -> Result<(PathBuf, String), GitError> {
    let not_in = || GitError::NotInWorktree(path.to_owned());
    let absolute = std::path::absolute(path).map_err(|_| not_in())?;
    // Canonicalise the part that exists (symlinks, `..`), keep the rest.
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        rest.push(existing.file_name().ok_or_else(not_in)?.to_owned());
        existing = existing.parent().ok_or_else(not_in)?;
    }
    let mut full = existing.canonicalize().map_err(|_| not_in())?;
    full.extend(rest.iter().rev());
    let repo = Repository::discover(existing).map_err(|_| not_in())?;
    let root = repo
        .workdir()
        .ok_or_else(not_in)?
        .canonicalize()
        .map_err(|_| not_in())?;
    let relative = full.strip_prefix(&root).map_err(|_| not_in())?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| match c {
            std::path::Component::Normal(p) => p.to_str(),
            _ => None,
        })
        .collect();
    match parts {
        Some(parts) if !parts.is_empty() => Ok((root, parts.join("/"))),
        _ => Err(not_in()),
    }
}

/// `Name <email>`, or the repository's `user.name` and `user.email`.
pub fn signature(repo: &Repository, author: Option<&str>) -> Result<Signature<'static>, GitError> {
    match author {
        Some(text) => {
            let (name, rest) = text
                .split_once('<')
                .ok_or_else(|| GitError::BadAuthor(text.into()))?;
            let email = rest
                .strip_suffix('>')
                .ok_or_else(|| GitError::BadAuthor(text.into()))?;
            let (name, email) = (name.trim(), email.trim());
            if name.is_empty() || email.is_empty() {
                return Err(GitError::BadAuthor(text.into()));
            }
            Signature::now(name, email).map_err(|_| GitError::BadAuthor(text.into()))
        }
        None => repo.signature().map_err(|_| GitError::NoAuthor),
    }
}

/// Where HEAD points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A branch (`refs/heads/...`), with its tip (`None` before its first
    /// commit).
    Branch { name: String, tip: Option<Oid> },
    /// A commit, as GitLab CI and most CI checkouts of a tag or a pull
    /// request leave it.
    Detached(Oid),
}

impl Head {
    pub fn tip(&self) -> Option<Oid> {
        match self {
            Head::Branch { tip, .. } => *tip,
            Head::Detached(id) => Some(*id),
        }
    }
}

pub fn head(repo: &Repository) -> Result<Head, GitError> {
    let head = repo
        .find_reference("HEAD")
        .map_err(GitError::git("read HEAD"))?;
    match head.symbolic_target() {
        Some(name) => Ok(Head::Branch {
            name: name.to_owned(),
            tip: repo.refname_to_id(name).ok(),
        }),
        None => head
            .target()
            .map(Head::Detached)
            .ok_or_else(|| GitError::Command {
                context: "read HEAD".into(),
                message: "it points at neither a branch nor a commit".into(),
            }),
    }
}

/// A base branch by name, from local refs: the local branch first, then
/// `REMOTE/NAME`. (With `--push` the tool reads the base from the remote
/// instead; see `Remote::tip`.)
pub fn resolve_base(repo: &Repository, base: &str, remote: &str) -> Result<Oid, GitError> {
    repo.refname_to_id(&format!("refs/heads/{base}"))
        .or_else(|_| repo.refname_to_id(&format!("refs/remotes/{remote}/{base}")))
        .map_err(|_| GitError::BaseNotFound(base.to_owned()))
}

/// What happened to the bot branch (`--branch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotBranch {
    /// A new commit: the pull request shows a new change.
    Updated,
    /// It already held exactly this change on this base, or there was
    /// nothing to propose and no branch: nothing was written.
    Unchanged,
    /// Insights matches the base again: the branch was deleted, which
    /// withdraws its pull request.
    Deleted,
}

impl BotBranch {
    pub fn as_str(self) -> &'static str {
        match self {
            BotBranch::Updated => "updated",
            BotBranch::Unchanged => "unchanged",
            BotBranch::Deleted => "deleted",
        }
    }
}

/// What `commit` did.
pub struct Committed {
    /// The new commit (or the bot branch's, when it already held the
    /// change), or `None` when nothing changed.
    pub commit: Option<Oid>,
    /// The plans the commit was built from (the last attempt's).
    pub plans: Vec<Plan>,
    /// The branch that moved (or would have), `refs/heads/...`.
    pub branch: String,
    pub push_attempts: u32,
    /// The bot branch already held this change: its commit was kept.
    pub reused: bool,
    /// With `--branch`: what happened to it.
    pub bot: Option<BotBranch>,
}

pub struct CommitOptions<'a> {
    pub branch: Option<&'a str>,
    pub base: Option<&'a str>,
    pub remote: &'a str,
    pub push: bool,
    pub max_push_attempts: u32,
    /// Sign the commit (`--sign`, or `commit.gpgsign`).
    pub sign: bool,
    pub limits: crate::plan::guard::Limits,
    /// The commit message for a set of plans.
    pub message: &'a dyn Fn(&[Plan]) -> String,
}

/// Commits the targets, on a branch or a bot branch, and pushes if asked.
/// A commit is made only when the tree changes.
///
/// Direct mode (no `--branch`) commits on `--base`, or on the checked-out
/// branch; only when that branch is the checked-out one does the working
/// tree follow (a detached CI checkout is left as it is). Bot-branch mode
/// keeps `--branch` equal to "base plus exactly the current difference":
/// created or replaced when that changes, left alone when it does not, and
/// deleted when the difference is gone.
pub fn commit(
    repo: &Repository,
    git: &Git,
    sig: &Signature,
    targets: &[Target],
    opts: &CommitOptions,
) -> Result<Committed, GitError> {
    check_filters(repo, git, targets)?;
    let head = head(repo)?;
    let remote = Remote::new(repo, git, opts.remote);
    match opts.branch {
        Some(b) => bot_commit(repo, git, &remote, sig, targets, opts, &head, b),
        None => direct_commit(repo, git, &remote, sig, targets, opts, &head),
    }
}

/// The checked-out branch is refused as a bot branch, here or in another
/// worktree of the repository, as git refuses to move a branch that is
/// checked out anywhere.
fn check_bot_branch(git: &Git, head: &Head, branch: &str) -> Result<(), GitError> {
    let refname = format!("refs/heads/{branch}");
    if matches!(head, Head::Branch { name, .. } if *name == refname) {
        return Err(GitError::BranchCheckedOut(branch.to_owned()));
    }
    let list = git
        .run(["worktree", "list", "--porcelain"])
        .map_err(|f| GitError::Command {
            context: "list the repository's worktrees".into(),
            message: f.stderr,
        })?;
    let mut path = "";
    for line in list.lines() {
        if let Some(p) = line.strip_prefix("worktree ") {
            path = p;
        } else if line.strip_prefix("branch ") == Some(refname.as_str()) {
            return Err(GitError::BranchInWorktree {
                branch: branch.to_owned(),
                worktree: PathBuf::from(path),
            });
        }
    }
    Ok(())
}

/// Plans every target against `base`, applies the guard, and writes the
/// new tree (`None`: no difference from the base).
fn prepare(
    repo: &Repository,
    targets: &[Target],
    opts: &CommitOptions,
    base: Option<Oid>,
) -> Result<(Vec<Plan>, Option<Oid>), GitError> {
    let base_commit = base
        .map(|id| repo.find_commit(id))
        .transpose()
        .map_err(GitError::git("read the base commit"))?;
    let plans = plan_targets(repo, base_commit.as_ref(), targets)?;
    for (target, plan) in targets.iter().zip(&plans) {
        crate::plan::guard::check(plan, &opts.limits)
            .map_err(|e| Refused::committing(target.path.as_str(), e))?;
    }
    let (tree, _) = build_tree(repo, base_commit.as_ref(), targets, &plans)?;
    Ok((plans, tree))
}

#[allow(clippy::too_many_arguments)]
fn bot_commit(
    repo: &Repository,
    git: &Git,
    remote: &Remote,
    sig: &Signature,
    targets: &[Target],
    opts: &CommitOptions,
    head: &Head,
    name: &str,
) -> Result<Committed, GitError> {
    check_bot_branch(git, head, name)?;
    let branch = format!("refs/heads/{name}");
    let base = match opts.base {
        Some(b) if opts.push => Some(
            remote
                .fetch_tip(b)?
                .ok_or_else(|| GitError::BaseNotFound(b.to_owned()))?,
        ),
        Some(b) => Some(resolve_base(repo, b, opts.remote)?),
        None => head.tip(),
    };
    let mut attempt = 1;
    loop {
        // The bot branch as it is where it matters: on the remote when
        // pushing (a single-branch CI clone has no remote-tracking ref for
        // it), else the local branch.
        let current = if opts.push {
            remote.tip(name)?
        } else {
            repo.refname_to_id(&branch).ok()
        };
        let (plans, tree) = prepare(repo, targets, opts, base)?;
        let done = |commit, reused, bot, attempts| Committed {
            commit,
            plans: plans.clone(),
            branch: branch.clone(),
            push_attempts: attempts,
            reused,
            bot: Some(bot),
        };
        let Some(tree) = tree else {
            // Nothing to propose: a branch still proposing an old change is
            // withdrawn, so no one merges it.
            let Some(tip) = current else {
                delete_local_branch(repo, &branch)?;
                return Ok(done(None, false, BotBranch::Unchanged, 0));
            };
            if opts.push {
                match remote.push(&format!(":{branch}"), Some((&branch, Some(tip))))? {
                    Pushed::Yes => {}
                    Pushed::Rejected(reason) if attempt < opts.max_push_attempts => {
                        retry(attempt, &reason);
                        attempt += 1;
                        continue;
                    }
                    Pushed::Rejected(reason) => return Err(remote.rejected(attempt, reason)),
                }
            }
            delete_local_branch(repo, &branch)?;
            return Ok(done(None, false, BotBranch::Deleted, attempt));
        };
        if let Some(tip) = current {
            if opts.push {
                remote.fetch_into_odb(name, tip)?;
            }
            if holds(repo, tip, tree, base) {
                set_local_branch(repo, &branch, tip)?;
                tracing::info!("the bot branch already holds these changes: {tip}");
                return Ok(done(Some(tip), true, BotBranch::Unchanged, 0));
            }
        }
        let message = (opts.message)(&plans);
        let id = commit_tree(git, tree, base, &message, sig, opts.sign)?;
        if opts.push {
            match remote.push(&format!("{id}:{branch}"), Some((&branch, current)))? {
                Pushed::Yes => {}
                Pushed::Rejected(reason) if attempt < opts.max_push_attempts => {
                    // Another run replaced the bot branch meanwhile: look again.
                    retry(attempt, &reason);
                    attempt += 1;
                    continue;
                }
                Pushed::Rejected(reason) => return Err(remote.rejected(attempt, reason)),
            }
        }
        set_local_branch(repo, &branch, id)?;
        return Ok(done(
            Some(id),
            false,
            BotBranch::Updated,
            if opts.push { attempt } else { 0 },
        ));
    }
}

fn direct_commit(
    repo: &Repository,
    git: &Git,
    remote: &Remote,
    sig: &Signature,
    targets: &[Target],
    opts: &CommitOptions,
    head: &Head,
) -> Result<Committed, GitError> {
    // The branch to commit on: --base, else the checked-out one.
    let (branch, on_head) = match (opts.base, head) {
        (Some(b), Head::Branch { name, .. }) => {
            let refname = format!("refs/heads/{b}");
            let on_head = *name == refname;
            (refname, on_head)
        }
        (Some(b), Head::Detached(_)) => (format!("refs/heads/{b}"), false),
        (None, Head::Branch { name, .. }) => (name.clone(), true),
        (None, Head::Detached(_)) => return Err(GitError::DetachedHead),
    };
    let short = branch.trim_start_matches("refs/heads/").to_owned();
    let head_tip = head.tip().filter(|_| on_head);
    let local_tip = repo.refname_to_id(&branch).ok();
    let mut base = if on_head {
        head_tip
    } else if opts.push {
        Some(
            remote
                .fetch_tip(&short)?
                .ok_or_else(|| GitError::BaseNotFound(short.clone()))?,
        )
    } else {
        Some(resolve_base(repo, &short, opts.remote)?)
    };
    let mut attempt = 1;
    loop {
        let (plans, tree) = prepare(repo, targets, opts, base)?;
        let committed = |commit, attempts| Committed {
            commit,
            plans: plans.clone(),
            branch: branch.clone(),
            push_attempts: attempts,
            reused: false,
            bot: None,
        };
        let Some(tree) = tree else {
            // Nothing to add; if a race brought us here, the remote already
            // has our policies: catch the local branch up with it.
            if base != local_tip {
                follow(
                    repo,
                    git,
                    &branch,
                    on_head,
                    local_tip,
                    base.expect("a remote tip"),
                )?;
            }
            return Ok(committed(None, attempt - 1));
        };
        let message = (opts.message)(&plans);
        let id = commit_tree(git, tree, base, &message, sig, opts.sign)?;
        if !opts.push {
            follow(repo, git, &branch, on_head, local_tip, id)?;
            return Ok(committed(Some(id), 0));
        }
        // The local branch moves only once the push succeeded, so a remote
        // that refuses or drops the push leaves the repository as it was;
        // local edits that would block that move refuse the run first.
        if on_head {
            crate::sink::git::worktree::check(git, local_tip, id)?;
        }
        match remote.push(&format!("{id}:{branch}"), None)? {
            Pushed::Yes => {
                follow(repo, git, &branch, on_head, local_tip, id)?;
                return Ok(committed(Some(id), attempt));
            }
            Pushed::Rejected(reason) if attempt < opts.max_push_attempts => {
                retry(attempt, &reason);
                tracing::warn!(
                    attempt,
                    "push refused ({reason}); rebuilding on the remote's new tip"
                );
                base = Some(
                    remote
                        .fetch_tip(&short)?
                        .ok_or_else(|| GitError::BaseNotFound(short.clone()))?,
                );
                attempt += 1;
            }
            Pushed::Rejected(reason) => return Err(remote.rejected(attempt, reason)),
        }
    }
}

/// Brings the local branch to `new`: the checked-out one with its working
/// tree and index; another only when that is a fast-forward (a local branch
/// with commits of its own is the user's, and is left alone).
fn follow(
    repo: &Repository,
    git: &Git,
    branch: &str,
    on_head: bool,
    old: Option<Oid>,
    new: Oid,
) -> Result<(), GitError> {
    if on_head {
        let journal = crate::sink::git::worktree::Journal {
            branch: branch.to_owned(),
            old,
            new,
        };
        return crate::sink::git::worktree::move_checked_out(repo, git, &journal);
    }
    match old {
        None => Ok(()),
        Some(old) if old == new => Ok(()),
        Some(old) if repo.graph_descendant_of(new, old).unwrap_or(false) => git
            .run([
                "update-ref",
                "-m",
                "insights-policy-render: update Kyverno policies",
                branch,
                &new.to_string(),
                &old.to_string(),
            ])
            .map(drop)
            .map_err(|f| GitError::Command {
                context: format!("update {branch}"),
                message: f.stderr,
            }),
        Some(_) => {
            tracing::warn!("the local {branch} has commits the remote does not; left as it is");
            Ok(())
        }
    }
}

/// Does `commit` hold exactly `tree` on top of `base`?
fn holds(repo: &Repository, commit: Oid, tree: Oid, base: Option<Oid>) -> bool {
    repo.find_commit(commit).is_ok_and(|c| {
        c.tree_id() == tree
            && c.parent_ids().collect::<Vec<_>>() == base.into_iter().collect::<Vec<_>>()
    })
}

fn set_local_branch(repo: &Repository, branch: &str, id: Oid) -> Result<(), GitError> {
    if repo.refname_to_id(branch).ok() == Some(id) {
        return Ok(());
    }
    repo.reference(branch, id, true, "insights-policy-render: bot branch")
        .map(drop)
        .map_err(GitError::git(format!("update {branch}")))
}

fn delete_local_branch(repo: &Repository, branch: &str) -> Result<(), GitError> {
    match repo.find_reference(branch) {
        Ok(mut r) => r
            .delete()
            .map_err(GitError::git(format!("delete {branch}"))),
        Err(_) => Ok(()),
    }
}

/// Waits before another attempt: exponential, with jitter, so that
/// pipelines that collided once do not collide again in lockstep.
fn retry(attempt: u32, reason: &str) {
    use std::hash::BuildHasher;
    let ceiling = Duration::from_millis(200).saturating_mul(1 << attempt.min(5));
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let wait = ceiling / 2 + ceiling.mul_f64((random % 1000) as f64 / 2000.0);
    tracing::debug!(
        attempt,
        ?wait,
        "push refused ({reason}); waiting before the next attempt"
    );
    std::thread::sleep(wait);
}

/// Creates the commit with `git commit-tree`, so that signing follows the
/// user's configuration (`gpg.format`, `user.signingkey`) exactly as
/// `git commit` would.
fn commit_tree(
    git: &Git,
    tree: Oid,
    parent: Option<Oid>,
    message: &str,
    sig: &Signature,
    sign: bool,
) -> Result<Oid, GitError> {
    let tree = tree.to_string();
    let parent = parent.map(|p| p.to_string());
    let mut args = vec!["commit-tree", tree.as_str()];
    if let Some(p) = &parent {
        args.extend(["-p", p.as_str()]);
    }
    if sign {
        args.push("-S");
    }
    args.extend(["-F", "-"]);
    let name = sig.name().unwrap_or_default();
    let email = sig.email().unwrap_or_default();
    let env = [
        ("GIT_AUTHOR_NAME", name),
        ("GIT_AUTHOR_EMAIL", email),
        ("GIT_COMMITTER_NAME", name),
        ("GIT_COMMITTER_EMAIL", email),
    ];
    let out = git
        .run_env(args, &env, Some(message.as_bytes()))
        .map_err(|f| {
            if sign {
                GitError::Sign(f.stderr)
            } else {
                GitError::Command {
                    context: "create the commit".into(),
                    message: f.stderr,
                }
            }
        })?;
    Oid::from_str(out.trim()).map_err(|_| GitError::Command {
        context: "create the commit".into(),
        message: format!("git commit-tree printed {out:?}"),
    })
}

/// Should commits be signed? `--sign`, or git's own `commit.gpgsign`.
pub fn wants_signing(git: &Git, flag: bool) -> bool {
    flag || git
        .run(["config", "--type=bool", "--get", "commit.gpgsign"])
        .is_ok_and(|v| v.trim() == "true")
}

/// A rendered file under a clean/smudge filter (git-lfs tracking `*.yaml`,
/// say) would be committed as its content while git expects the filtered
/// form: `git status` would show it modified after every run, and Flux,
/// which does not run filters, would read pointer files. Refused, naming
/// the line that exempts the policy directory.
fn check_filters(repo: &Repository, git: &Git, targets: &[Target]) -> Result<(), GitError> {
    if repo.workdir().is_none() {
        return Ok(());
    }
    // One `git check-attr` for every path: git's own reading of every
    // .gitattributes (and of the index, split or sparse as it may be).
    let mut input = Vec::new();
    for target in targets {
        for name in target.tree.files.keys() {
            input.extend_from_slice(target.path.join(name).as_bytes());
            input.push(0);
        }
    }
    let out = git
        .run_with_input(["check-attr", "-z", "--stdin", "filter"], Some(&input))
        .map_err(|f| GitError::Command {
            context: "read .gitattributes".into(),
            message: f.stderr,
        })?;
    // -z: path NUL attribute NUL value NUL, for each path.
    let fields: Vec<&str> = out.split('\0').collect();
    for record in fields.chunks_exact(3) {
        let [path, _, value] = record else { continue };
        if matches!(*value, "unspecified" | "unset") {
            continue;
        }
        let dir = targets
            .iter()
            .find(|t| t.path.holds(path))
            .map_or("", |t| t.path.as_str());
        return Err(GitError::Filtered {
            path: (*path).to_owned(),
            filter: (*value).to_owned(),
            line: format!("/{dir}/** -filter -diff -merge"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact("failed to push to https://bot:ghp_abc@github.com/acme/policies.git: refused"),
            "failed to push to https://<redacted>@github.com/acme/policies.git: refused"
        );
        assert_eq!(
            redact("ssh://git@host/x and more"),
            "ssh://<redacted>@host/x and more"
        );
        assert_eq!(redact("no url here"), "no url here");
    }
}
