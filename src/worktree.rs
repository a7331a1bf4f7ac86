//! The working tree and index of the checked-out branch, brought along with
//! a commit, in a way a killed process cannot leave half done.
//!
//! A move of the checked-out branch is a [`Transition`]: for each path that
//! differs, the blob it had and the blob it gets. Before the branch moves,
//! the transition is written to a journal in the git directory; then the
//! branch moves (the atomic step: from here the commit is made), then the
//! files are written, each by temporary file and rename, then the index,
//! and the journal is removed. A run that finds a journal knows the partial
//! state is its own and completes it (see [`recover`]): a path that holds
//! either the old or the new blob is one it may write, and anything else is
//! a user's edit, which is refused, never overwritten.
//!
//! The index is written under git's own `index.lock`, taken by hard-linking
//! a file of ours to that name. The shared inode is the proof that a stale
//! `index.lock` was ours, so it is removed only then; any other is reported.
//! A `flock` on a file in the git directory keeps two runs apart.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use git2::{Index, IndexEntry, IndexTime, ObjectType, Oid, Repository};

use crate::plan::{ChangeKind, Plan};
use crate::repo::{GitError, Target};

const SUFFIX: &str = ".ipr-tmp";
const MODE_FILE: u32 = 0o100644;
const MODE_EXEC: u32 = 0o100755;
const MODE_LINK: u32 = 0o120000;
const MODE_GITLINK: u32 = 0o160000;

fn git_err(context: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    let context = context.into();
    move |e| GitError::Git {
        context,
        message: e.message().to_owned(),
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> GitError {
    let context = context.into();
    move |e| GitError::Git {
        context,
        message: e.to_string(),
    }
}

/// One side of a path in a transition: a blob (or link, or submodule) and
/// its git mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    pub id: Oid,
    pub mode: u32,
}

#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Repository-relative, `/`-separated, as git stores it.
    pub path: Vec<u8>,
    pub old: Option<Side>,
    pub new: Option<Side>,
    /// The new content when it is at hand (otherwise read from the
    /// object database).
    pub bytes: Option<&'a [u8]>,
}

impl Entry<'_> {
    fn display(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// What the working tree and index go through when HEAD's branch moves
/// from `old` to `new`.
#[derive(Debug, Clone)]
pub struct Transition<'a> {
    pub branch: String,
    pub old: Option<Oid>,
    pub new: Oid,
    pub entries: Vec<Entry<'a>>,
}

impl<'a> Transition<'a> {
    /// The fast path: the plans are the whole difference (the commit was
    /// built on HEAD). `blobs` are the ids of additions and updates, in plan
    /// order.
    pub fn planned(
        branch: &str,
        old: Option<Oid>,
        new: Oid,
        targets: &[Target],
        plans: &'a [Plan],
        blobs: &[Oid],
    ) -> Result<Transition<'a>, GitError> {
        let mut blobs = blobs.iter();
        let mut entries = Vec::new();
        for (target, plan) in targets.iter().zip(plans) {
            for change in &plan.changes {
                let old = match &change.old {
                    Some(bytes) => Some(Side {
                        id: Oid::hash_object(ObjectType::Blob, bytes)
                            .map_err(git_err("hash a blob"))?,
                        mode: MODE_FILE,
                    }),
                    None => None,
                };
                let new = match change.kind {
                    ChangeKind::Remove => None,
                    _ => Some(Side {
                        id: *blobs.next().expect("a blob per write"),
                        mode: MODE_FILE,
                    }),
                };
                entries.push(Entry {
                    path: format!("{}/{}", target.path, change.path).into_bytes(),
                    old,
                    new,
                    bytes: change.new.as_deref(),
                });
            }
        }
        Ok(Transition {
            branch: branch.to_owned(),
            old,
            new,
            entries,
        })
    }

    /// Every path that differs between two commits (after a rebuild on a
    /// remote tip, other pipelines' files change too).
    pub fn between(
        repo: &Repository,
        branch: &str,
        old: Option<Oid>,
        new: Oid,
    ) -> Result<Transition<'a>, GitError> {
        let tree = |id: Oid| {
            repo.find_commit(id)
                .and_then(|c| c.tree())
                .map_err(git_err(format!("read commit {id}")))
        };
        let old_tree = old.map(tree).transpose()?;
        let new_tree = tree(new)?;
        let diff = repo
            .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), None)
            .map_err(git_err("compare the old and new commits"))?;
        // A type change can come as a deletion and an addition of one path.
        let mut by_path: BTreeMap<Vec<u8>, (Option<Side>, Option<Side>)> = BTreeMap::new();
        for delta in diff.deltas() {
            let side = |f: git2::DiffFile| {
                (!f.id().is_zero()).then(|| Side {
                    id: f.id(),
                    mode: u32::from(f.mode()),
                })
            };
            let (o, n) = (side(delta.old_file()), side(delta.new_file()));
            let path = delta
                .new_file()
                .path_bytes()
                .or(delta.old_file().path_bytes())
                .expect("a delta has a path")
                .to_vec();
            let slot = by_path.entry(path).or_default();
            slot.0 = slot.0.or(o);
            slot.1 = slot.1.or(n);
        }
        Ok(Transition {
            branch: branch.to_owned(),
            old,
            new,
            entries: by_path
                .into_iter()
                .map(|(path, (old, new))| Entry {
                    path,
                    old,
                    new,
                    bytes: None,
                })
                .collect(),
        })
    }

    /// Refuses if a path has local edits, on disk or staged: it must hold
    /// the old or the new blob (or be missing). Returns, per entry, whether
    /// the disk already holds the new one.
    pub fn check(&self, repo: &Repository) -> Result<Vec<bool>, GitError> {
        let Some(workdir) = repo.workdir() else {
            return Ok(vec![false; self.entries.len()]);
        };
        let index = repo.index().map_err(git_err("read the index"))?;
        let mut done = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let path = workdir.join(OsStr::from_bytes(&e.path));
            let on_disk = disk_blob(&path).map_err(io_err(format!("read {}", e.display())))?;
            let is = |side: Option<Side>, found: Option<Oid>| side.map(|s| s.id) == found;
            let gitlink = [e.old, e.new]
                .iter()
                .flatten()
                .any(|s| s.mode == MODE_GITLINK);
            let disk_ok = gitlink
                || match on_disk {
                    DiskBlob::Missing => true,
                    DiskBlob::Blob(id) => is(e.old, Some(id)) || is(e.new, Some(id)),
                    DiskBlob::Directory => false,
                };
            let path_in_index = Path::new(OsStr::from_bytes(&e.path));
            let staged = index.get_path(path_in_index, 0).map(|x| x.id);
            let conflicted = (1..=3).any(|stage| index.get_path(path_in_index, stage).is_some());
            let index_ok = !conflicted && (is(e.old, staged) || is(e.new, staged));
            if !disk_ok || !index_ok {
                return Err(GitError::Conflict(e.display()));
            }
            done.push(!gitlink && matches!(on_disk, DiskBlob::Blob(id) if is(e.new, Some(id))));
        }
        Ok(done)
    }

    /// Writes the working tree and the index. Safe to run again after an
    /// interruption: what is already new is left as it is.
    pub fn apply(&self, repo: &Repository) -> Result<(), GitError> {
        let Some(workdir) = repo.workdir() else {
            return Ok(()); // a bare repository has no working tree to follow
        };
        let done = self.check(repo)?;
        // Blobs not at hand are read first: a repository handle is not
        // shared between threads.
        let mut writes: Vec<(&Entry, std::borrow::Cow<[u8]>)> = Vec::new();
        for (e, done) in self.entries.iter().zip(done) {
            let Some(new) = e.new.filter(|s| s.mode != MODE_GITLINK && !done) else {
                continue;
            };
            let bytes = match e.bytes {
                Some(b) => std::borrow::Cow::Borrowed(b),
                None => std::borrow::Cow::Owned(
                    repo_blob(repo, new.id).map_err(io_err(format!("read {}", e.display())))?,
                ),
            };
            writes.push((e, bytes));
        }
        crate::outdir::in_parallel(&writes, |(e, bytes)| {
            let mode = e.new.expect("writes have a new side").mode;
            write_file(&workdir.join(OsStr::from_bytes(&e.path)), bytes, mode)
                .map_err(io_err(format!("write {}", e.display())))
        })?;
        for e in self.entries.iter().filter(|e| e.new.is_none()) {
            let path = workdir.join(OsStr::from_bytes(&e.path));
            match fs::symlink_metadata(&path) {
                Ok(m) if !m.is_dir() => {
                    fs::remove_file(&path).map_err(io_err(format!("remove {}", e.display())))?
                }
                _ => {}
            }
        }
        write_index(repo, |index| {
            for e in &self.entries {
                let path = Path::new(OsStr::from_bytes(&e.path));
                match e.new {
                    None => index
                        .remove_path(path)
                        .map_err(git_err(format!("unstage {}", e.display())))?,
                    Some(side) => {
                        let entry = index_entry(workdir, e, side)?;
                        index
                            .add(&entry)
                            .map_err(git_err(format!("stage {}", e.display())))?;
                    }
                }
            }
            Ok(())
        })
    }
}

enum DiskBlob {
    Missing,
    Blob(Oid),
    Directory,
}

/// What the working tree holds at `path`, as git would hash it.
fn disk_blob(path: &Path) -> io::Result<DiskBlob> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DiskBlob::Missing),
        // A file where a directory is expected in the path.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(DiskBlob::Directory),
        Err(e) => return Err(e),
    };
    let bytes = if meta.is_symlink() {
        fs::read_link(path)?.into_os_string().into_vec()
    } else if meta.is_file() {
        fs::read(path)?
    } else {
        return Ok(DiskBlob::Directory);
    };
    Oid::hash_object(ObjectType::Blob, &bytes)
        .map(DiskBlob::Blob)
        .map_err(io::Error::other)
}

fn repo_blob(repo: &Repository, id: Oid) -> io::Result<Vec<u8>> {
    repo.find_blob(id)
        .map(|b| b.content().to_vec())
        .map_err(io::Error::other)
}

/// Whole or not at all: a temporary file beside it, renamed over it.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let temp = temp_path(path);
    let _ = fs::remove_file(&temp);
    if mode == MODE_LINK {
        std::os::unix::fs::symlink(OsStr::from_bytes(bytes), &temp)?;
    } else {
        fs::write(&temp, bytes)?;
        if mode == MODE_EXEC {
            fs::set_permissions(&temp, fs::Permissions::from_mode(0o755))?;
        }
    }
    fs::rename(&temp, path)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().expect("a file path").as_bytes();
    let mut temp = b".".to_vec();
    temp.extend_from_slice(name);
    temp.extend_from_slice(SUFFIX.as_bytes());
    path.with_file_name(OsStr::from_bytes(&temp))
}

fn index_entry(workdir: &Path, e: &Entry, side: Side) -> Result<IndexEntry, GitError> {
    let mut entry = IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: side.mode,
        uid: 0,
        gid: 0,
        file_size: 0,
        id: side.id,
        flags: 0,
        flags_extended: 0,
        path: e.path.clone(),
    };
    if side.mode != MODE_GITLINK {
        let meta = fs::symlink_metadata(workdir.join(OsStr::from_bytes(&e.path)))
            .map_err(io_err(format!("inspect {}", e.display())))?;
        entry.ctime = IndexTime::new(meta.ctime() as i32, meta.ctime_nsec() as u32);
        entry.mtime = IndexTime::new(meta.mtime() as i32, meta.mtime_nsec() as u32);
        entry.dev = meta.dev() as u32;
        entry.ino = meta.ino() as u32;
        entry.uid = meta.uid();
        entry.gid = meta.gid();
        entry.file_size = meta.size() as u32;
    }
    Ok(entry)
}

/// The directory in the git directory that holds the lock, the journal and
/// the index being written.
pub fn state_dir(repo: &Repository) -> PathBuf {
    repo.path().join("insights-policy-render")
}

fn index_paths(repo: &Repository) -> (PathBuf, PathBuf, PathBuf) {
    let index = repo.path().join("index");
    let lock = repo.path().join("index.lock");
    let ours = state_dir(repo).join("index.lock");
    (index, lock, ours)
}

/// Reads, changes and writes the index while holding git's `index.lock`,
/// which is a hard link of a file of ours (the proof, after a kill, that
/// the lock was ours).
fn write_index(
    repo: &Repository,
    change: impl FnOnce(&mut Index) -> Result<(), GitError>,
) -> Result<(), GitError> {
    let (index_path, lock, ours) = index_paths(repo);
    let dir = state_dir(repo);
    fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
    let _ = fs::remove_file(&ours);
    let mut file = File::create_new(&ours).map_err(io_err(format!("create {}", ours.display())))?;
    if let Err(e) = fs::hard_link(&ours, &lock) {
        let _ = fs::remove_file(&ours);
        return Err(if e.kind() == io::ErrorKind::AlreadyExists {
            GitError::IndexLocked(lock)
        } else {
            io_err(format!("create {}", lock.display()))(e)
        });
    }
    let result = (|| {
        // libgit2 writes an index only to its own path (through its own
        // lock): so a copy, changed and written, then its bytes.
        let scratch = dir.join("index.scratch");
        let _ = fs::remove_file(&scratch);
        match fs::copy(&index_path, &scratch) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("copy the index")(e)),
        }
        let mut index = Index::open(&scratch).map_err(git_err("read the index"))?;
        change(&mut index)?;
        index.write().map_err(git_err("write the index"))?;
        let bytes = fs::read(&scratch).map_err(io_err("read the new index"))?;
        let _ = fs::remove_file(&scratch);
        file.write_all(&bytes)
            .map_err(io_err(format!("write {}", lock.display())))?;
        fs::rename(&lock, &index_path).map_err(io_err(format!("replace {}", index_path.display())))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&lock);
    }
    let _ = fs::remove_file(&ours);
    result
}

/// Removes an `index.lock` that a killed run of ours left; reports any
/// other one.
fn clear_own_index_lock(repo: &Repository) -> Result<(), GitError> {
    let (_, lock, ours) = index_paths(repo);
    let id = |p: &Path| fs::symlink_metadata(p).ok().map(|m| (m.dev(), m.ino()));
    match (id(&lock), id(&ours)) {
        (Some(l), Some(o)) if l == o => {
            fs::remove_file(&lock).map_err(io_err(format!("remove {}", lock.display())))?;
        }
        (Some(_), _) => return Err(GitError::IndexLocked(lock)),
        _ => {}
    }
    match fs::remove_file(&ours) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(io_err(format!("remove {}", ours.display()))(e))
        }
        _ => Ok(()),
    }
}

/// The namespace of the temporary ref a push goes through. Only this tool
/// writes there, and only while it holds the [`RepoLock`]: whatever is
/// there when the lock is taken, lock files included, a killed run left.
pub const PUSH_REFS: &str = "refs/insights-policy-render";

fn clear_push_refs(repo: &Repository) -> Result<(), GitError> {
    let dir = repo.path().join(PUSH_REFS);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(format!("read {}", dir.display()))(e)),
    };
    for entry in entries {
        let path = entry
            .map_err(io_err(format!("read {}", dir.display())))?
            .path();
        if path.extension().is_some_and(|x| x == "lock") {
            fs::remove_file(&path).map_err(io_err(format!("remove {}", path.display())))?;
        }
    }
    let refs = repo
        .references_glob(&format!("{PUSH_REFS}/*"))
        .map_err(git_err("list the temporary push refs"))?;
    for mut r in refs.flatten() {
        r.delete().map_err(git_err("delete a temporary push ref"))?;
    }
    Ok(())
}

/// Held for a whole `commit`: a second run on the same checkout waits for
/// nobody and fails at once, naming the file. The kernel drops the lock
/// when the process dies, so it is never stale.
pub struct RepoLock(#[allow(dead_code)] File);

pub fn lock(repo: &Repository) -> Result<RepoLock, GitError> {
    let dir = state_dir(repo);
    fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
    let path = dir.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("open {}", path.display())))?;
    // SAFETY: a valid open descriptor, owned by `file` for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            GitError::Busy(path)
        } else {
            io_err(format!("lock {}", path.display()))(e)
        });
    }
    Ok(RepoLock(file))
}

fn journal_path(repo: &Repository) -> PathBuf {
    state_dir(repo).join("journal")
}

const JOURNAL_HEADER: &str = "insights-policy-render journal 1\n";

/// Records the transition before the branch moves. Written whole (a
/// temporary file renamed into place), so it is there complete or not at all.
pub fn write_journal(repo: &Repository, t: &Transition) -> Result<(), GitError> {
    let path = journal_path(repo);
    let mut text = JOURNAL_HEADER.as_bytes().to_vec();
    let oid = |o: Option<Oid>| o.map_or_else(|| "-".to_owned(), |o| o.to_string());
    let side =
        |s: Option<Side>| s.map_or_else(|| "0 -".to_owned(), |s| format!("{:o} {}", s.mode, s.id));
    text.extend_from_slice(format!("{}\n{}\n{}\n", t.branch, oid(t.old), t.new).as_bytes());
    for e in &t.entries {
        // Git paths never hold NUL, so it ends each record.
        text.extend_from_slice(format!("{} {} ", side(e.old), side(e.new)).as_bytes());
        text.extend_from_slice(&e.path);
        text.push(0);
    }
    let dir = state_dir(repo);
    fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
    let temp = dir.join(format!("journal{SUFFIX}"));
    fs::write(&temp, &text)
        .and_then(|_| fs::rename(&temp, &path))
        .map_err(io_err(format!("write {}", path.display())))
}

pub fn remove_journal(repo: &Repository) -> Result<(), GitError> {
    let path = journal_path(repo);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(io_err(format!("remove {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

fn read_journal(repo: &Repository) -> Result<Option<Transition<'static>>, GitError> {
    let path = journal_path(repo);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(format!("read {}", path.display()))(e)),
    };
    let bad = || GitError::Journal(path.clone());
    let rest = bytes
        .strip_prefix(JOURNAL_HEADER.as_bytes())
        .ok_or_else(bad)?;
    let mut lines = rest.splitn(4, |b| *b == b'\n');
    let mut line = || {
        lines
            .next()
            .and_then(|l| std::str::from_utf8(l).ok())
            .map(str::to_owned)
            .ok_or_else(bad)
    };
    let branch = line()?;
    let oid = |s: &str| (s != "-").then(|| Oid::from_str(s)).transpose();
    let old = oid(&line()?).map_err(|_| bad())?;
    let new = Oid::from_str(&line()?).map_err(|_| bad())?;
    let records = lines.next().ok_or_else(bad)?;
    let mut entries = Vec::new();
    for record in records.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let mut fields = record.splitn(5, |b| *b == b' ');
        let mut side = || -> Option<Option<Side>> {
            let mode = u32::from_str_radix(std::str::from_utf8(fields.next()?).ok()?, 8).ok()?;
            let id = std::str::from_utf8(fields.next()?).ok()?;
            Some(if id == "-" {
                None
            } else {
                Some(Side {
                    id: Oid::from_str(id).ok()?,
                    mode,
                })
            })
        };
        let old = side().ok_or_else(bad)?;
        let new = side().ok_or_else(bad)?;
        let path = fields.next().ok_or_else(bad)?.to_vec();
        entries.push(Entry {
            path,
            old,
            new,
            bytes: None,
        });
    }
    Ok(Some(Transition {
        branch,
        old,
        new,
        entries,
    }))
}

/// libgit2 holds `refs/heads/B.lock` while it moves the branch: created
/// empty, then the new id written and renamed into place. One is ours if it
/// holds nothing or the journal's new commit (a commit no one else knew of)
/// and was made within moments after the journal, which is written just
/// before the move.
fn clear_own_branch_lock(repo: &Repository, journal: &Transition) -> Result<(), GitError> {
    let lock = repo.path().join(format!("{}.lock", journal.branch));
    let Ok(meta) = fs::symlink_metadata(&lock) else {
        return Ok(());
    };
    let content = fs::read(&lock).unwrap_or_default();
    let ours_content = content.is_empty() || content == format!("{}\n", journal.new).as_bytes();
    let written = fs::metadata(journal_path(repo)).and_then(|m| m.modified());
    let made = meta.modified();
    let in_window = match (written, made) {
        (Ok(w), Ok(m)) => {
            let margin = std::time::Duration::from_secs(2);
            m + margin >= w && m <= w + margin
        }
        _ => false,
    };
    if ours_content && in_window {
        fs::remove_file(&lock).map_err(io_err(format!("remove {}", lock.display())))
    } else {
        Err(GitError::RefLocked(lock))
    }
}

/// What a killed run left, put right before anything else happens; called
/// with the [`RepoLock`] held, so the run that left it is certainly gone.
///
/// With a journal: if the branch points at the journal's new commit, the
/// working tree and index are brought forward to it; if it still points at
/// the old one, nothing was touched (the branch moves before any file);
/// if it points elsewhere, someone moved it since, and their state is theirs.
pub fn recover(repo: &Repository) -> Result<(), GitError> {
    clear_own_index_lock(repo)?;
    clear_push_refs(repo)?;
    let Some(journal) = read_journal(repo)? else {
        return Ok(());
    };
    clear_own_branch_lock(repo, &journal)?;
    let tip = repo.refname_to_id(&journal.branch).ok();
    if tip == Some(journal.new) {
        tracing::warn!(
            commit = %journal.new,
            "an earlier run was interrupted while updating the working tree; completing it"
        );
        if let Some(workdir) = repo.workdir() {
            for e in &journal.entries {
                let _ = fs::remove_file(temp_path(&workdir.join(OsStr::from_bytes(&e.path))));
            }
        }
        journal.apply(repo).map_err(|source| GitError::Recover {
            journal: journal_path(repo),
            commit: journal.new,
            source: Box::new(source),
        })?;
    } else if tip != journal.old {
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

    /// A repository with `a` committed on `main`, and a second commit that
    /// changes `a` and adds `b`, not yet checked out.
    fn setup() -> (tempfile::TempDir, Repository, Oid, Oid) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        let (old, new) = commits(&repo, tmp.path());
        (tmp, repo, old, new)
    }

    fn commits(repo: &Repository, dir: &Path) -> (Oid, Oid) {
        let sig = git2::Signature::now("T", "t@example.com").unwrap();
        std::fs::write(dir.join("a"), "a1\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("a")).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let old = repo
            .commit(Some("HEAD"), &sig, &sig, "old", &tree, &[])
            .unwrap();
        let mut b = repo.treebuilder(Some(&tree)).unwrap();
        b.insert("a", repo.blob(b"a2\n").unwrap(), 0o100644)
            .unwrap();
        b.insert("b", repo.blob(b"b2\n").unwrap(), 0o100644)
            .unwrap();
        let tree = repo.find_tree(b.write().unwrap()).unwrap();
        let parent = repo.find_commit(old).unwrap();
        let new = repo
            .commit(None, &sig, &sig, "new", &tree, &[&parent])
            .unwrap();
        (old, new)
    }

    fn branch(repo: &Repository) -> String {
        repo.head().unwrap().name().unwrap().to_owned()
    }

    /// Killed after the branch moved, with `a` written and `b` not: the
    /// next run writes `b` and the index, and removes the journal.
    #[test]
    fn a_journal_with_the_branch_moved_is_rolled_forward() {
        let (tmp, repo, old, new) = setup();
        let t = Transition::between(&repo, &branch(&repo), Some(old), new).unwrap();
        write_journal(&repo, &t).unwrap();
        repo.reference(&branch(&repo), new, true, "test").unwrap();
        std::fs::write(tmp.path().join("a"), "a2\n").unwrap();

        recover(&repo).unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("b")).unwrap(),
            "b2\n"
        );
        let statuses = repo.statuses(None).unwrap();
        assert!(statuses.is_empty(), "working tree and index follow HEAD");
        assert!(!journal_path(&repo).exists());
    }

    /// A user's edit made after the kill is never overwritten: the roll
    /// forward stops with an error naming the path, and keeps its journal.
    #[test]
    fn a_roll_forward_never_overwrites_a_users_edit() {
        let (tmp, repo, old, new) = setup();
        let t = Transition::between(&repo, &branch(&repo), Some(old), new).unwrap();
        write_journal(&repo, &t).unwrap();
        repo.reference(&branch(&repo), new, true, "test").unwrap();
        std::fs::write(tmp.path().join("a"), "my own edit\n").unwrap();

        let e = recover(&repo).unwrap_err();
        assert!(e.to_string().contains("local changes"), "{e}");
        assert!(e.to_string().contains("a)"), "{e}");
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("a")).unwrap(),
            "my own edit\n"
        );
        assert!(journal_path(&repo).exists());
    }

    /// The branch never moved: nothing was touched, the journal goes.
    #[test]
    fn a_journal_with_the_branch_unmoved_is_dropped() {
        let (tmp, repo, old, new) = setup();
        let t = Transition::between(&repo, &branch(&repo), Some(old), new).unwrap();
        write_journal(&repo, &t).unwrap();
        recover(&repo).unwrap();
        assert!(!journal_path(&repo).exists());
        assert!(!tmp.path().join("b").exists());
    }

    #[test]
    fn only_an_index_lock_proven_ours_is_removed() {
        let (_tmp, repo, _, _) = setup();
        let (_, lock, ours) = index_paths(&repo);
        std::fs::create_dir_all(state_dir(&repo)).unwrap();
        std::fs::write(&ours, "").unwrap();
        std::fs::hard_link(&ours, &lock).unwrap();
        recover(&repo).unwrap();
        assert!(!lock.exists() && !ours.exists());

        std::fs::write(&lock, "someone else's").unwrap();
        let e = recover(&repo).unwrap_err();
        assert!(
            matches!(e, GitError::IndexLocked(ref p) if *p == lock),
            "{e}"
        );
        assert!(e.to_string().contains("index.lock"), "{e}");
        assert!(lock.exists(), "left for its owner");
    }

    #[test]
    fn a_branch_lock_is_removed_only_when_it_holds_our_commit_or_nothing() {
        let (_tmp, repo, old, new) = setup();
        let t = Transition::between(&repo, &branch(&repo), Some(old), new).unwrap();
        write_journal(&repo, &t).unwrap();
        let lock = repo.path().join(format!("{}.lock", branch(&repo)));
        std::fs::write(&lock, format!("{new}\n")).unwrap();
        recover(&repo).unwrap();
        assert!(!lock.exists());

        write_journal(&repo, &t).unwrap();
        std::fs::write(&lock, format!("{old}\n")).unwrap();
        let e = recover(&repo).unwrap_err();
        assert!(matches!(e, GitError::RefLocked(_)), "{e}");
        assert!(lock.exists());
    }

    #[test]
    fn a_second_run_on_the_same_repository_is_refused() {
        let (_tmp, repo, _, _) = setup();
        let _held = lock(&repo).unwrap();
        let again = Repository::open(repo.path()).unwrap();
        assert!(matches!(lock(&again), Err(GitError::Busy(_))));
    }

    #[test]
    fn the_journal_reads_back_as_written() {
        let (_tmp, repo, old, new) = setup();
        let mut t = Transition::between(&repo, &branch(&repo), Some(old), new).unwrap();
        t.entries[0].path = b"dir/with space/\xff odd".to_vec();
        write_journal(&repo, &t).unwrap();
        let back = read_journal(&repo).unwrap().unwrap();
        assert_eq!(
            (back.branch.as_str(), back.old, back.new),
            (t.branch.as_str(), t.old, t.new)
        );
        let sides = |t: &Transition| -> Vec<_> {
            t.entries
                .iter()
                .map(|e| (e.path.clone(), e.old, e.new))
                .collect()
        };
        assert_eq!(sides(&back), sides(&t));
    }
}
