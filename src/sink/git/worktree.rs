//! The checked-out branch's working tree and index, brought along with a
//! commit by git itself, in a way a killed run cannot leave half done.
//!
//! The files are written by `git read-tree -m -u OLD NEW`, the two-tree
//! merge `git checkout` uses: it applies `.gitattributes` filters and line
//! endings, keeps sparse checkout's skip-worktree bits, reads and writes
//! split and sparse indexes, never writes through a symlink, handles a path
//! that became a directory (or back), and refuses, before it writes
//! anything, when a path that changes has local edits or an untracked file
//! is in the way. Then the branch moves, compared and swapped.
//!
//! Before the first of these steps a journal (branch, old commit, new
//! commit) is written to the git directory; a run that finds one rolls the
//! move forward (both steps are idempotent) before anything else. Every git
//! process a run starts inherits the run's `flock`, so a git process left
//! running by a killed run still holds it: the next run waits for it to end
//! instead of racing it for `index.lock`.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use git2::{Oid, Repository};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

use crate::sink::git::cli::Git;
use crate::sink::git::error::GitError;

/// The tree git uses for "nothing": the old side of a branch's first commit.
pub const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// The tool's own directory inside the git directory (per worktree).
pub fn state_dir(repo: &Repository) -> PathBuf {
    repo.path().join("insights-policy-render")
}

/// The namespace of the temporary refs a fetch goes through. Only this tool
/// writes there, and only while it holds the [`RepoLock`].
pub const TEMP_REFS: &str = "refs/insights-policy-render";

/// Held for a whole `commit`. The kernel drops it when the last process
/// holding it ends, so it is never stale.
pub struct RepoLock(File);

impl RepoLock {
    /// The descriptor the run's git processes inherit.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// How long a run waits for another run (or the git processes of one that
/// was killed) on the same checkout.
const LOCK_WAIT: Duration = Duration::from_secs(600);

pub fn lock(repo: &Repository) -> Result<RepoLock, GitError> {
    let dir = state_dir(repo);
    fs::create_dir_all(&dir).map_err(GitError::io(format!("create {}", dir.display())))?;
    let path = dir.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(GitError::io(format!("open {}", path.display())))?;
    let started = Instant::now();
    let mut said = false;
    loop {
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(RepoLock(file)),
            Err(Errno::WOULDBLOCK) => {}
            Err(e) => return Err(GitError::io(format!("lock {}", path.display()))(e.into())),
        }
        if started.elapsed() >= LOCK_WAIT {
            return Err(GitError::Busy(path));
        }
        if !said {
            tracing::warn!(
                lock = %path.display(),
                "another insights-policy-render run (or a git process it started) is working in this repository; waiting for it"
            );
            said = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A move of the checked-out branch from `old` to `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    pub branch: String,
    /// `None`: the branch's first commit.
    pub old: Option<Oid>,
    pub new: Oid,
}

const JOURNAL_HEADER: &str = "insights-policy-render journal 2\n";

fn journal_path(repo: &Repository) -> PathBuf {
    state_dir(repo).join("journal")
}

fn write_journal(repo: &Repository, j: &Journal) -> Result<(), GitError> {
    let path = journal_path(repo);
    let old = j.old.map_or_else(|| "-".to_owned(), |o| o.to_string());
    let text = format!("{JOURNAL_HEADER}{}\n{old}\n{}\n", j.branch, j.new);
    crate::sink::fsutil::write_atomic(&path, text.as_bytes())
        .map_err(GitError::io(format!("write {}", path.display())))
}

fn remove_journal(repo: &Repository) -> Result<(), GitError> {
    let path = journal_path(repo);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(GitError::io(format!("remove {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

fn read_journal(repo: &Repository) -> Result<Option<Journal>, GitError> {
    let path = journal_path(repo);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(GitError::io(format!("read {}", path.display()))(e)),
    };
    let bad = || GitError::Journal(path.clone());
    let rest = text.strip_prefix(JOURNAL_HEADER).ok_or_else(bad)?;
    let lines: Vec<&str> = rest.lines().collect();
    let [branch, old, new] = lines[..] else {
        return Err(bad());
    };
    let old = match old {
        "-" => None,
        o => Some(Oid::from_str(o).map_err(|_| bad())?),
    };
    Ok(Some(Journal {
        branch: branch.to_owned(),
        old,
        new: Oid::from_str(new).map_err(|_| bad())?,
    }))
}

/// Would moving the checked-out branch from `old` to `new` succeed? Asks
/// git's own merge, without writing anything: used before a push, so that a
/// local edit refuses the run before the remote has the commit.
pub fn check(git: &Git, old: Option<Oid>, new: Oid) -> Result<(), GitError> {
    let old = old.map_or_else(|| EMPTY_TREE.to_owned(), |o| o.to_string());
    merge(
        git,
        &["read-tree", "-m", "-u", "-n", &old, &new.to_string()],
    )
}

/// Moves the checked-out branch `j.branch` from `j.old` to `j.new`, working
/// tree and index first, then the branch (compare and swap). The merge
/// checks every path before it writes any, so a refusal (local edits, an
/// untracked file in the way) leaves everything as it was.
pub fn move_checked_out(repo: &Repository, git: &Git, j: &Journal) -> Result<(), GitError> {
    write_journal(repo, j)?;
    if let Err(e) = merge(git, &merge_args(j, false)) {
        remove_journal(repo)?;
        return Err(e);
    }
    move_ref(repo, git, j).map_err(|source| GitError::Incomplete {
        commit: j.new,
        source: Box::new(source),
    })?;
    remove_journal(repo)
}

/// Both steps of a move; either may already have been done by a run that
/// was killed, and doing it again is harmless: the two-tree merge keeps an
/// index entry that already matches the new side, and the branch update
/// accepts the new commit as the current value.
fn apply(repo: &Repository, git: &Git, j: &Journal) -> Result<(), GitError> {
    merge(git, &merge_args(j, false))?;
    move_ref(repo, git, j)
}

fn merge_args(j: &Journal, dry_run: bool) -> Vec<String> {
    let old = j
        .old
        .map_or_else(|| EMPTY_TREE.to_owned(), |o| o.to_string());
    let mut args: Vec<String> = vec!["read-tree".into(), "-m".into(), "-u".into()];
    if dry_run {
        args.push("-n".into());
    }
    args.extend([old, j.new.to_string()]);
    args
}

/// Runs a two-tree merge. When git finds a path "not uptodate", the index's
/// stat information may only be stale (a copied or touched tree), so it is
/// refreshed, as `git checkout` and `git status` do, and the merge asked
/// again. A refresh changes no content, only what git knows of the files;
/// it is skipped when not needed because it stats every file of the
/// repository.
fn merge<S: AsRef<std::ffi::OsStr>>(git: &Git, args: &[S]) -> Result<(), GitError> {
    match git.run(args) {
        Ok(_) => Ok(()),
        Err(f) if f.stderr.contains("not uptodate") => {
            let _ = git.run(["update-index", "-q", "--ignore-submodules", "--refresh"]);
            git.run(args)
                .map(drop)
                .map_err(|f| conflict_error(&f.stderr))
        }
        Err(f) => Err(conflict_error(&f.stderr)),
    }
}

/// The branch's step of a move: to the new commit, from the old one.
fn move_ref(repo: &Repository, git: &Git, j: &Journal) -> Result<(), GitError> {
    if repo.refname_to_id(&j.branch).ok() == Some(j.new) {
        return Ok(());
    }
    let expected = j.old.map_or_else(String::new, |o| o.to_string());
    git.run([
        "update-ref",
        "-m",
        "insights-policy-render: update Kyverno policies",
        &j.branch,
        &j.new.to_string(),
        &expected,
    ])
    .map(drop)
    .map_err(|f| GitError::Command {
        context: format!("update {}", j.branch),
        message: f.stderr,
    })
}

/// git's refusal of a two-tree merge, as the tool's error.
fn conflict_error(stderr: &str) -> GitError {
    // git names each path in quotes: "error: Entry 'x' not uptodate.",
    // "error: Untracked working tree file 'x' would be overwritten".
    let paths: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("error: ")?.split('\'').nth(1))
        .collect();
    if stderr.contains("index.lock") {
        let path = stderr
            .split('\'')
            .find(|s| s.ends_with("index.lock"))
            .unwrap_or("index.lock");
        return GitError::IndexLocked(PathBuf::from(path));
    }
    if stderr.contains("not uptodate")
        || stderr.contains("would be overwritten")
        || stderr.contains("would be removed")
        || stderr.contains("would be lost")
    {
        return GitError::Conflict(if paths.is_empty() {
            stderr.to_owned()
        } else {
            paths.join(", ")
        });
    }
    GitError::Command {
        context: "bring the working tree and index to the new commit".into(),
        message: stderr.to_owned(),
    }
}

/// Removes the temporary refs a killed run may have left (a fetch goes
/// through one).
fn clear_temp_refs(git: &Git) {
    if let Ok(refs) = git.run(["for-each-ref", "--format=%(refname)", TEMP_REFS]) {
        for r in refs.lines().filter(|r| !r.is_empty()) {
            let _ = git.run(["update-ref", "-d", r]);
        }
    }
}

/// What a killed run left, put right before anything else happens; called
/// with the [`RepoLock`] held, so the run that left it, and every git
/// process it started, is certainly gone.
///
/// With a journal: if the branch is at the journal's old or new commit, the
/// move is completed; if it points elsewhere, someone moved it since, and
/// their state is theirs.
pub fn recover(repo: &Repository, git: &Git) -> Result<(), GitError> {
    clear_temp_refs(git);
    let Some(journal) = read_journal(repo)? else {
        return Ok(());
    };
    let tip = repo.refname_to_id(&journal.branch).ok();
    if tip == Some(journal.new) || tip == journal.old {
        tracing::warn!(
            commit = %journal.new,
            "an earlier run was interrupted while moving {}; completing it",
            journal.branch
        );
        apply(repo, git, &journal).map_err(|source| GitError::Recover {
            journal: journal_path(repo),
            commit: journal.new,
            source: Box::new(source),
        })?;
    } else {
        tracing::warn!(
            journal = %journal_path(repo).display(),
            "an earlier run was interrupted, but {} has moved since; leaving the working tree as it is",
            journal.branch
        );
    }
    remove_journal(repo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sh(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A repository with `a` committed on `main`, and a second commit that
    /// changes `a` and adds `b`, not yet checked out.
    fn setup() -> (tempfile::TempDir, Repository, Git, Oid, Oid) {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        sh(d, &["init", "-q", "-b", "main"]);
        sh(d, &["config", "user.name", "T"]);
        sh(d, &["config", "user.email", "t@example.com"]);
        fs::write(d.join("a"), "a1\n").unwrap();
        sh(d, &["add", "a"]);
        sh(d, &["commit", "-q", "-m", "old"]);
        let old = sh(d, &["rev-parse", "HEAD"]);
        let repo = Repository::open(d).unwrap();
        let new = {
            let sig = git2::Signature::now("T", "t@example.com").unwrap();
            let parent = repo.find_commit(Oid::from_str(&old).unwrap()).unwrap();
            let mut b = repo.treebuilder(Some(&parent.tree().unwrap())).unwrap();
            b.insert("a", repo.blob(b"a2\n").unwrap(), 0o100644)
                .unwrap();
            b.insert("b", repo.blob(b"b2\n").unwrap(), 0o100644)
                .unwrap();
            let tree = repo.find_tree(b.write().unwrap()).unwrap();
            repo.commit(None, &sig, &sig, "new", &tree, &[&parent])
                .unwrap()
        };
        let state = state_dir(&repo);
        fs::create_dir_all(&state).unwrap();
        let git = Git::new(d, &state, &Default::default()).unwrap();
        (tmp, repo, git, Oid::from_str(&old).unwrap(), new)
    }

    fn journal(old: Oid, new: Oid) -> Journal {
        Journal {
            branch: "refs/heads/main".into(),
            old: Some(old),
            new,
        }
    }

    /// Killed after the working tree moved but before the branch did: the
    /// next run moves the branch, and `git status` is clean.
    #[test]
    fn a_journal_with_the_files_written_is_rolled_forward() {
        let (tmp, repo, git, old, new) = setup();
        let j = journal(old, new);
        write_journal(&repo, &j).unwrap();
        sh(
            tmp.path(),
            &["read-tree", "-m", "-u", &old.to_string(), &new.to_string()],
        );

        recover(&repo, &git).unwrap();
        assert_eq!(sh(tmp.path(), &["rev-parse", "HEAD"]), new.to_string());
        assert_eq!(fs::read_to_string(tmp.path().join("b")).unwrap(), "b2\n");
        assert_eq!(sh(tmp.path(), &["status", "--porcelain"]), "");
        assert!(!journal_path(&repo).exists());
    }

    /// Killed after the journal, before anything else: the move is done.
    #[test]
    fn a_journal_with_nothing_done_is_completed() {
        let (tmp, repo, git, old, new) = setup();
        write_journal(&repo, &journal(old, new)).unwrap();
        recover(&repo, &git).unwrap();
        assert_eq!(sh(tmp.path(), &["rev-parse", "HEAD"]), new.to_string());
        assert_eq!(sh(tmp.path(), &["status", "--porcelain"]), "");
    }

    /// A user's edit made after the kill is never overwritten: the roll
    /// forward stops with an error naming the path, and keeps its journal.
    #[test]
    fn a_roll_forward_never_overwrites_a_users_edit() {
        let (tmp, repo, git, old, new) = setup();
        write_journal(&repo, &journal(old, new)).unwrap();
        fs::write(tmp.path().join("a"), "my own edit\n").unwrap();

        let e = recover(&repo, &git).unwrap_err();
        assert!(e.to_string().contains("local changes"), "{e}");
        assert!(e.to_string().contains("(a)"), "{e}");
        assert_eq!(
            fs::read_to_string(tmp.path().join("a")).unwrap(),
            "my own edit\n"
        );
        assert!(journal_path(&repo).exists());
    }

    /// Someone moved the branch since: their state is left alone.
    #[test]
    fn a_journal_for_a_branch_moved_since_is_dropped() {
        let (tmp, repo, git, old, new) = setup();
        write_journal(&repo, &journal(old, new)).unwrap();
        fs::write(tmp.path().join("c"), "c\n").unwrap();
        sh(tmp.path(), &["add", "c"]);
        sh(tmp.path(), &["commit", "-q", "-m", "theirs"]);
        recover(&repo, &git).unwrap();
        assert!(!journal_path(&repo).exists());
        assert!(!tmp.path().join("b").exists());
    }

    #[test]
    fn the_journal_reads_back_as_written() {
        let (_tmp, repo, _git, old, new) = setup();
        for j in [
            journal(old, new),
            Journal {
                old: None,
                ..journal(old, new)
            },
        ] {
            write_journal(&repo, &j).unwrap();
            assert_eq!(read_journal(&repo).unwrap(), Some(j));
        }
        fs::write(journal_path(&repo), "something else\n").unwrap();
        assert!(matches!(read_journal(&repo), Err(GitError::Journal(_))));
    }

    /// A second run waits for the first; it gets the lock once the first
    /// (and any process that inherited its lock) is gone.
    #[test]
    fn a_second_run_waits_for_the_lock() {
        let (_tmp, repo, _git, _, _) = setup();
        let held = lock(&repo).unwrap();
        let again = Repository::open(repo.path()).unwrap();
        let waiter = std::thread::spawn(move || lock(&again).map(drop));
        std::thread::sleep(Duration::from_millis(200));
        assert!(!waiter.is_finished(), "the second run waits");
        drop(held);
        waiter.join().unwrap().unwrap();
    }
}
