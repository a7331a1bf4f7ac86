//! The git edge: plan rendered trees against a commit, write the new tree
//! straight into the object database, commit, update the branch, push, and
//! when another pipeline pushed first, rebuild on the new tip and try again.
//!
//! Blobs and trees go into the object database directly (no index, no
//! working-tree round trip), which is what makes a 10,000-policy commit
//! cheap. Only when the commit lands on the checked-out branch is the working
//! tree brought along, with a "safe" checkout of the changed paths: files
//! that did not change, and local edits elsewhere, are left alone.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use git2::build::TreeUpdateBuilder;
use git2::{
    Commit, Cred, CredentialType, ErrorCode, FetchOptions, FileMode, ObjectType, Oid, PushOptions,
    RemoteCallbacks, Repository, Signature, Tree,
};

use crate::plan::{plan, plan_without_removals, ChangeKind, Existing, Plan, PlanError};
use crate::render::RenderedTree;
use crate::worktree::Transition;

/// One cluster's rendered directory and where it goes in the repository.
#[derive(Debug, Clone)]
pub struct Target {
    pub cluster: Option<String>,
    /// Repository-relative directory, `/`-separated.
    pub path: String,
    pub tree: RenderedTree,
    pub role: Role,
}

/// What a target's directory holds, which decides what a plan may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A cluster's rendered directory: it is the tool's alone, so policies
    /// that left the response are removed.
    Policies,
    /// Consumer manifests, in a directory shared with other files and other
    /// clusters' manifests: written, never removed.
    Consumer,
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot open the git repository at {}: {message}", path.display())]
    Open { path: PathBuf, message: String },
    #[error("{context}: {message}")]
    Git { context: String, message: String },
    #[error("{path}: {source}")]
    Plan {
        path: String,
        #[source]
        source: PlanError,
    },
    #[error("{path}: {source}; nothing was committed")]
    Guard {
        path: String,
        #[source]
        source: crate::guard::GuardError,
    },
    #[error("{0} exists in the repository as a file, not a directory")]
    NotADirectory(String),
    #[error("{} is not inside a git working tree: --flux and --argo write paths relative to the repository root, so --out must be a directory of a repository", .0.display())]
    NotInWorktree(PathBuf),
    #[error("HEAD is detached: check out a branch, or commit to a bot branch with --branch")]
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
    #[error("the working tree has local changes to the rendered files; commit or discard them first ({0})")]
    Conflict(String),
    #[error("another insights-policy-render is committing in this repository (it holds a lock on {}); wait for it to finish", .0.display())]
    Busy(PathBuf),
    #[error("{} exists: another git process is using the index, or one was killed while it did. If no git process is running, remove the file and run again", .0.display())]
    IndexLocked(PathBuf),
    #[error("{} exists: another git process is updating that branch, or one was killed while it did. If no git process is running, remove the file and run again", .0.display())]
    RefLocked(PathBuf),
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
    fn git(context: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
        let context = context.into();
        move |e| GitError::Git {
            context,
            message: redact(e.message()),
        }
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

pub fn open(path: &Path) -> Result<Repository, GitError> {
    Repository::open(path).map_err(|e| GitError::Open {
        path: path.to_owned(),
        message: redact(e.message()),
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

/// The checked-out branch (`refs/heads/...`) and its tip, `None` while the
/// branch has no commit yet.
pub fn head_branch(repo: &Repository) -> Result<(String, Option<Oid>), GitError> {
    let head = repo
        .find_reference("HEAD")
        .map_err(GitError::git("read HEAD"))?;
    let name = head
        .symbolic_target()
        .ok_or(GitError::DetachedHead)?
        .to_owned();
    let tip = repo.refname_to_id(&name).ok();
    Ok((name, tip))
}

/// A base branch by name: local first, then `REMOTE/NAME`.
pub fn resolve_base(repo: &Repository, base: &str, remote: &str) -> Result<Oid, GitError> {
    repo.refname_to_id(&format!("refs/heads/{base}"))
        .or_else(|_| repo.refname_to_id(&format!("refs/remotes/{remote}/{base}")))
        .map_err(|_| GitError::BaseNotFound(base.to_owned()))
}

/// A `.yaml` entry directly under a target's directory.
struct Entry {
    name: String,
    id: Oid,
    /// A regular (or executable) file; anything else is never ours.
    is_file: bool,
}

/// What lies under `dir` in `tree`: the `.yaml` entries directly in it.
fn entries_in(repo: &Repository, tree: Option<&Tree>, dir: &str) -> Result<Vec<Entry>, GitError> {
    let Some(tree) = tree else {
        return Ok(Vec::new());
    };
    let entry = match tree.get_path(Path::new(dir)) {
        Ok(e) => e,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(GitError::git(format!("read {dir}"))(e)),
    };
    if entry.kind() != Some(ObjectType::Tree) {
        return Err(GitError::NotADirectory(dir.to_owned()));
    }
    let subtree = repo
        .find_tree(entry.id())
        .map_err(GitError::git(format!("read {dir}")))?;
    Ok(subtree
        .iter()
        .filter_map(|e| {
            let name = e.name()?;
            let is_file = e.kind() == Some(ObjectType::Blob)
                && (e.filemode() == i32::from(FileMode::Blob)
                    || e.filemode() == i32::from(FileMode::BlobExecutable));
            name.ends_with(".yaml").then(|| Entry {
                name: name.to_owned(),
                id: e.id(),
                is_file,
            })
        })
        .collect())
}

/// Plans one target against the tree of the base commit.
///
/// A file whose blob id equals the rendered content's is unchanged: it is
/// neither read from the object database nor compared, which is most of a
/// run that changes nothing. (Equal ids mean equal bytes, so the plan is
/// the one that comparing them would give: such a file starts with the
/// header, so it is ours, and it counts as unchanged.)
fn plan_target(repo: &Repository, tree: Option<&Tree>, target: &Target) -> Result<Plan, GitError> {
    let entries = entries_in(repo, tree, &target.path)?;
    let files = &target.tree.files;
    let same: HashSet<&str> = if entries.is_empty() {
        HashSet::new()
    } else {
        let contents: Vec<&[u8]> = files.values().map(|f| f.bytes.as_slice()).collect();
        let ids: HashMap<&str, Oid> = files
            .keys()
            .map(String::as_str)
            .zip(crate::pack::blob_ids(&contents))
            .collect();
        entries
            .iter()
            .filter(|e| e.is_file && ids.get(e.name.as_str()) == Some(&e.id))
            .map(|e| e.name.as_str())
            .collect()
    };
    let mut existing = BTreeMap::new();
    for e in entries.iter().filter(|e| !same.contains(e.name.as_str())) {
        let found = if e.is_file {
            let blob = repo
                .find_blob(e.id)
                .map_err(GitError::git(format!("read {}/{}", target.path, e.name)))?;
            Existing::File(blob.content().to_vec())
        } else {
            Existing::Other
        };
        existing.insert(e.name.clone(), found);
    }
    let rendered = RenderedTree {
        files: files
            .iter()
            .filter(|(name, _)| !same.contains(name.as_str()))
            .map(|(name, file)| (name.clone(), file.clone()))
            .collect(),
    };
    let unchanged = files
        .iter()
        .filter(|(name, file)| file.identity.is_some() && same.contains(name.as_str()))
        .count();
    let planned = match target.role {
        Role::Policies => plan(rendered, existing),
        Role::Consumer => plan_without_removals(rendered, existing),
    };
    let mut plan = planned.map_err(|source| GitError::Plan {
        path: target.path.clone(),
        source,
    })?;
    plan.unchanged += unchanged;
    Ok(plan)
}

/// Plans every target against the tree of `base` (`None`: an empty repository).
pub fn plan_targets(
    repo: &Repository,
    base: Option<&Commit>,
    targets: &[Target],
) -> Result<Vec<Plan>, GitError> {
    let tree = base
        .map(|c| c.tree())
        .transpose()
        .map_err(GitError::git("read the base commit"))?;
    targets
        .iter()
        .map(|t| plan_target(repo, tree.as_ref(), t))
        .collect()
}

/// The tree of `base` with every plan applied, written to the object
/// database, or `None` when it equals the base tree; and the ids of the
/// blobs written, in plan order (every addition and update of every target).
fn build_tree(
    repo: &Repository,
    base: Option<&Commit>,
    targets: &[Target],
    plans: &[Plan],
) -> Result<(Option<Oid>, Vec<Oid>), GitError> {
    let baseline = match base {
        Some(c) => c.tree().map_err(GitError::git("read the base commit"))?,
        None => {
            let empty = repo
                .treebuilder(None)
                .and_then(|b| b.write())
                .map_err(GitError::git("create an empty tree"))?;
            repo.find_tree(empty)
                .map_err(GitError::git("create an empty tree"))?
        }
    };
    let writes: Vec<(String, &[u8])> = targets
        .iter()
        .zip(plans)
        .flat_map(|(target, plan)| {
            plan.changes.iter().filter_map(move |change| {
                let bytes = change.new.as_deref()?;
                Some((format!("{}/{}", target.path, change.path), bytes))
            })
        })
        .collect();
    let blobs = crate::pack::write_blobs(repo, &writes)?;
    let mut update = TreeUpdateBuilder::new();
    for ((path, _), blob) in writes.iter().zip(&blobs) {
        update.upsert(path.as_str(), *blob, FileMode::Blob);
    }
    for (target, plan) in targets.iter().zip(plans) {
        for change in plan.changes.iter().filter(|c| c.kind == ChangeKind::Remove) {
            update.remove(format!("{}/{}", target.path, change.path).as_str());
        }
    }
    let tree = update
        .create_updated(repo, &baseline)
        .map_err(GitError::git("write the new tree"))?;
    Ok(((tree != baseline.id()).then_some(tree), blobs))
}

/// What `commit` did.
pub struct Committed {
    /// The new commit, or `None` when nothing changed.
    pub commit: Option<Oid>,
    /// The plans the commit was built from (the last attempt's).
    pub plans: Vec<Plan>,
    /// The branch that moved (or would have), `refs/heads/...`.
    pub branch: String,
    pub push_attempts: u32,
    /// The bot branch already held this change: its commit was kept.
    pub reused: bool,
}

pub struct CommitOptions<'a> {
    pub branch: Option<&'a str>,
    pub base: Option<&'a str>,
    pub remote: &'a str,
    pub push: bool,
    pub max_push_attempts: u32,
    pub ssh_key: Option<&'a Path>,
    pub limits: crate::guard::Limits,
    /// The commit message for a set of plans.
    pub message: &'a dyn Fn(&[Plan]) -> String,
}

/// Commits the targets, on the current branch or a bot branch, and pushes
/// if asked. A commit is made only when the tree changes.
pub fn commit(
    repo: &Repository,
    sig: &Signature,
    targets: &[Target],
    opts: &CommitOptions,
) -> Result<Committed, GitError> {
    let (head_ref, head_tip) = head_branch(repo)?;
    let (branch, base_tip, on_head) = match opts.branch {
        Some(b) => {
            let refname = format!("refs/heads/{b}");
            if refname == head_ref {
                return Err(GitError::BranchCheckedOut(b.to_owned()));
            }
            let base = match opts.base {
                Some(base) => Some(resolve_base(repo, base, opts.remote)?),
                None => head_tip,
            };
            (refname, base, false)
        }
        None => (head_ref, head_tip, true),
    };

    let mut base = base_tip;
    let mut attempt = 1;
    loop {
        let base_commit = base
            .map(|id| repo.find_commit(id))
            .transpose()
            .map_err(GitError::git("read the base commit"))?;
        let plans = plan_targets(repo, base_commit.as_ref(), targets)?;
        for (target, plan) in targets.iter().zip(&plans) {
            crate::guard::check(plan, &opts.limits).map_err(|source| GitError::Guard {
                path: target.path.clone(),
                source,
            })?;
        }
        let (tree, blobs) = build_tree(repo, base_commit.as_ref(), targets, &plans)?;
        let Some(tree) = tree else {
            // Nothing to add; if a race brought us here, the remote already
            // has our policies: catch the local branch up with it.
            if on_head && base != head_tip {
                move_branch(
                    repo,
                    &branch,
                    head_tip,
                    base.expect("a remote tip"),
                    Worktree::Checkout,
                )?;
            }
            return Ok(Committed {
                commit: None,
                plans,
                branch,
                push_attempts: attempt - 1,
                reused: false,
            });
        };
        if !on_head {
            if let Some(pending) = pending_bot_commit(repo, &branch, opts.remote, tree, base) {
                return reuse_bot_commit(repo, opts, &branch, pending, plans);
            }
        }
        let tree = repo
            .find_tree(tree)
            .map_err(GitError::git("read the new tree"))?;
        let parents: Vec<&Commit> = base_commit.iter().collect();
        let message = (opts.message)(&plans);
        let id = repo
            .commit(None, sig, sig, &message, &tree, &parents)
            .map_err(GitError::git("create the commit"))?;
        let worktree = || match (on_head, base == head_tip) {
            (false, _) => Worktree::Untouched,
            // The plans are the whole difference from HEAD.
            (true, true) => Worktree::Planned(targets, &plans, &blobs),
            // Rebuilt on a remote tip: other pipelines' files change too.
            (true, false) => Worktree::Checkout,
        };
        if !opts.push {
            move_branch(repo, &branch, head_tip.filter(|_| on_head), id, worktree())?;
            return Ok(Committed {
                commit: Some(id),
                plans,
                branch,
                push_attempts: 0,
                reused: false,
            });
        }
        // The local branch moves only once the push succeeded, so a remote
        // that refuses or drops the push leaves the repository as it was.
        // Local edits that would block that move are refused before pushing.
        if let Worktree::Planned(t, p, b) = worktree() {
            Transition::planned(&branch, head_tip, id, t, p, b)?.check(repo)?;
        }
        let short = branch.trim_start_matches("refs/heads/");
        let mut pushed = push_commit(repo, opts, id, &branch, on_head)?;
        if pushed.is_none() && on_head {
            // A push is only as good as the remote's ref update. Some
            // transports (the local one among them) do not compare and swap,
            // so two racing pushes can both "succeed" and one commit is lost.
            // Whoever finds their commit missing from the tip goes again.
            let tip = fetch(repo, opts.remote, short, opts.ssh_key)?;
            let landed = tip == id || repo.graph_descendant_of(tip, id).unwrap_or(false);
            if !landed {
                pushed = Some("another push replaced it on the remote".to_owned());
            }
        }
        match pushed {
            None => {
                move_branch(repo, &branch, head_tip.filter(|_| on_head), id, worktree())?;
                return Ok(Committed {
                    commit: Some(id),
                    plans,
                    branch,
                    push_attempts: attempt,
                    reused: false,
                });
            }
            Some(reason) if !on_head || attempt >= opts.max_push_attempts => {
                return Err(GitError::PushRejected {
                    remote: opts.remote.to_owned(),
                    attempts: attempt,
                    reason,
                })
            }
            Some(reason) => {
                tracing::warn!(
                    attempt,
                    "push refused ({reason}); rebuilding on the remote's new tip"
                );
                base = Some(fetch(repo, opts.remote, short, opts.ssh_key)?);
                attempt += 1;
            }
        }
    }
}

/// The bot branch's commit, local or on the remote, when it already holds
/// exactly this tree on top of this base: a pull request that is waiting
/// for review. Committing again would only change the timestamp, and the
/// force-push would notify every reviewer every run.
fn pending_bot_commit(
    repo: &Repository,
    branch: &str,
    remote: &str,
    tree: Oid,
    base: Option<Oid>,
) -> Option<Oid> {
    let short = branch.trim_start_matches("refs/heads/");
    [format!("refs/remotes/{remote}/{short}"), branch.to_owned()]
        .iter()
        .filter_map(|name| repo.refname_to_id(name).ok())
        .find(|id| {
            repo.find_commit(*id).is_ok_and(|c| {
                c.tree_id() == tree
                    && c.parent_ids().collect::<Vec<_>>() == base.into_iter().collect::<Vec<_>>()
            })
        })
}

/// Points the bot branch at its pending commit again and pushes it unless
/// the remote-tracking branch shows the remote has it: pushing the commit
/// a ref already points at leaves the ref, and the pull request, as they are.
fn reuse_bot_commit(
    repo: &Repository,
    opts: &CommitOptions,
    branch: &str,
    id: Oid,
    plans: Vec<Plan>,
) -> Result<Committed, GitError> {
    let short = branch.trim_start_matches("refs/heads/");
    let tracking = format!("refs/remotes/{}/{short}", opts.remote);
    let mut attempts = 0;
    if opts.push && repo.refname_to_id(&tracking).ok() != Some(id) {
        attempts = 1;
        if let Some(reason) = push_commit(repo, opts, id, branch, false)? {
            return Err(GitError::PushRejected {
                remote: opts.remote.to_owned(),
                attempts,
                reason,
            });
        }
    }
    move_branch(repo, branch, None, id, Worktree::Untouched)?;
    tracing::info!("the bot branch already holds these changes: {id}");
    Ok(Committed {
        commit: Some(id),
        plans,
        branch: branch.to_owned(),
        push_attempts: attempts,
        reused: true,
    })
}

/// Pushes commit `id` to `branch` on the remote through a temporary ref
/// (libgit2 pushes refs, not bare commits), removed again whatever happens.
/// A bot branch is ours to overwrite; a base branch never is.
fn push_commit(
    repo: &Repository,
    opts: &CommitOptions,
    id: Oid,
    branch: &str,
    on_head: bool,
) -> Result<Option<String>, GitError> {
    let pending = format!("{}/pending", crate::worktree::PUSH_REFS);
    repo.reference(&pending, id, true, "insights-policy-render: push")
        .map_err(GitError::git("prepare the push"))?;
    let refspec = format!("{}{pending}:{branch}", if on_head { "" } else { "+" });
    let result = push(repo, opts.remote, &refspec, opts.ssh_key);
    if let Ok(mut pending) = repo.find_reference(&pending) {
        let _ = pending.delete();
    }
    result
}

/// How the working tree follows a moved branch.
enum Worktree<'a> {
    /// A bot branch: the checked-out tree is not its business.
    Untouched,
    /// Everything that differs between the old and new commits (after a
    /// rebuild on a remote tip, other pipelines' files change too).
    Checkout,
    /// Exactly the planned files, written in parallel, and their index
    /// entries: the fast path for a first attempt, where the plans are the
    /// whole difference between HEAD and the new commit.
    Planned(&'a [Target], &'a [Plan], &'a [Oid]),
}

/// Points `branch` at `new`, only if it still points at `old` (another
/// process moving it meanwhile makes this fail rather than lose its commit).
/// For the checked-out branch, the working tree and index follow, through
/// a journal that lets the next run finish the job if this one is killed.
fn move_branch(
    repo: &Repository,
    branch: &str,
    old: Option<Oid>,
    new: Oid,
    worktree: Worktree,
) -> Result<(), GitError> {
    let transition = match worktree {
        Worktree::Untouched => None,
        Worktree::Checkout => Some(Transition::between(repo, branch, old, new)?),
        Worktree::Planned(targets, plans, blobs) => Some(Transition::planned(
            branch, old, new, targets, plans, blobs,
        )?),
    };
    if let Some(t) = &transition {
        // Local edits refuse the move before anything changes.
        t.check(repo)?;
        crate::worktree::write_journal(repo, t)?;
    }
    let log = "insights-policy-render: update Kyverno policies";
    let result = match (transition.is_some(), old) {
        (true, Some(old)) => repo.reference_matching(branch, new, true, old, log),
        (true, None) => repo.reference(branch, new, false, log),
        // The bot branch is recreated from the base on every run.
        (false, _) => repo.reference(branch, new, true, log),
    };
    if let Err(e) = result {
        if transition.is_some() {
            crate::worktree::remove_journal(repo)?;
        }
        return Err(GitError::git(format!("update {branch}"))(e));
    }
    if let Some(t) = transition {
        t.apply(repo).map_err(|source| GitError::Incomplete {
            commit: new,
            source: Box::new(source),
        })?;
        crate::worktree::remove_journal(repo)?;
    }
    Ok(())
}

fn callbacks<'a>(ssh_key: Option<&'a Path>) -> RemoteCallbacks<'a> {
    let mut cbs = RemoteCallbacks::new();
    let tries = RefCell::new(0);
    cbs.credentials(move |_url, username, allowed| {
        *tries.borrow_mut() += 1;
        if *tries.borrow() > 3 {
            return Err(git2::Error::from_str(
                "authentication failed (check GIT_TOKEN, --ssh-key or the SSH agent)",
            ));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if let Ok(token) = std::env::var("GIT_TOKEN") {
                return Cred::userpass_plaintext("x-access-token", &token);
            }
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            let user = username.unwrap_or("git");
            return match ssh_key {
                Some(key) => Cred::ssh_key(user, None, key, None),
                None => Cred::ssh_key_from_agent(user),
            };
        }
        Cred::default()
    });
    cbs
}

/// The named remote's URL as an anonymous remote: one without fetch
/// refspecs, so that neither a push nor a fetch writes the user's
/// remote-tracking refs (or FETCH_HEAD, tags). Every ref a run writes is
/// then one whose lock file a killed run can be proven to have left.
fn anonymous<'r>(
    repo: &'r Repository,
    remote: &str,
    for_push: bool,
) -> Result<git2::Remote<'r>, GitError> {
    let named = repo
        .find_remote(remote)
        .map_err(GitError::git(format!("find remote {remote:?}")))?;
    let url = if for_push {
        named.pushurl().or(named.url())
    } else {
        named.url()
    };
    let url = url.ok_or_else(|| GitError::Git {
        context: format!("find remote {remote:?}"),
        message: "it has no URL (or one that is not UTF-8)".into(),
    })?;
    repo.remote_anonymous(url)
        .map_err(GitError::git(format!("find remote {remote:?}")))
}

/// Pushes; `Ok(Some(reason))` when the remote refused because it moved.
fn push(
    repo: &Repository,
    remote: &str,
    refspec: &str,
    ssh_key: Option<&Path>,
) -> Result<Option<String>, GitError> {
    let mut remote_handle = anonymous(repo, remote, true)?;
    let rejected: RefCell<Option<String>> = RefCell::new(None);
    let mut cbs = callbacks(ssh_key);
    cbs.push_update_reference(|_refname, status| {
        if let Some(status) = status {
            *rejected.borrow_mut() = Some(status.to_owned());
        }
        Ok(())
    });
    let mut options = PushOptions::new();
    options.remote_callbacks(cbs);
    let result = remote_handle.push(&[refspec], Some(&mut options));
    drop(options);
    match result {
        Ok(()) => Ok(rejected.into_inner().map(|r| redact(&r))),
        Err(e) if e.code() == ErrorCode::NotFastForward => Ok(Some(redact(e.message()))),
        Err(e) => Err(GitError::git(format!("push to {remote}"))(e)),
    }
}

/// Fetches one branch of `remote`; returns its tip. The objects stay; the
/// temporary ref that brought them is removed again.
fn fetch(
    repo: &Repository,
    remote: &str,
    branch: &str,
    ssh_key: Option<&Path>,
) -> Result<Oid, GitError> {
    let mut remote_handle = anonymous(repo, remote, false)?;
    let fetched = format!("{}/fetched", crate::worktree::PUSH_REFS);
    let refspec = format!("+refs/heads/{branch}:{fetched}");
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks(ssh_key))
        .update_fetchhead(false)
        .download_tags(git2::AutotagOption::None);
    remote_handle
        .fetch(&[refspec.as_str()], Some(&mut options), None)
        .map_err(GitError::git(format!("fetch {branch} from {remote}")))?;
    let tip = repo
        .refname_to_id(&fetched)
        .map_err(GitError::git(format!("fetch {branch} from {remote}")))?;
    if let Ok(mut r) = repo.find_reference(&fetched) {
        let _ = r.delete();
    }
    Ok(tip)
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
