//! The file-system edge: read what a directory holds, then apply a plan to it.
//!
//! A directory that already exists is replaced in whole: the complete new
//! directory is built beside it (unchanged files and every file the tool did
//! not write carried over by hard link), then the two are swapped with one
//! `renameat2(RENAME_EXCHANGE)` and the old tree, now at the staging path,
//! is deleted. Whenever the process dies, the directory is exactly the old
//! one or exactly the new one; a left-over staging directory is cleared by
//! the next run. A directory that does not exist yet is built beside its
//! final place and renamed into it, so it appears complete or not at all.
//! Building ([`stage`]) and putting in place ([`Staged::put_in_place`]) are
//! separate steps, so `render --out` builds each cluster's directory while
//! the other responses are still being fetched, and puts them all in place
//! only once every cluster is in.
//!
//! Where the swap is not possible (not Linux, a file system without
//! `RENAME_EXCHANGE`, a directory holding subdirectories, which cannot be
//! hard-linked, or a symlink as the directory itself), the plan is applied
//! in place, in an order that keeps the directory buildable but can leave a
//! mix of old and new files: object files are replaced first (each by
//! write-to-temporary and rename, so no file is ever half written), then
//! `kustomization.yaml`, then files of removed objects are deleted. At every
//! instant the kustomization lists only files that exist and are whole.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::pipeline::render::KUSTOMIZATION;
use crate::plan::{Change, Existing, Plan};

/// Suffix of the temporary files and directories a run writes; left-overs of
/// a killed run are recognised by it and cleared by the next one.
use crate::sink::fsutil::TEMP_SUFFIX;
use rayon::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct OutputError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> OutputError + 'a {
    move |source| OutputError {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The `.yaml` files directly in `dir` (every file the tool writes is one).
/// A missing directory holds nothing.
pub fn read_existing(dir: &Path) -> Result<BTreeMap<String, Existing>, OutputError> {
    let mut existing = BTreeMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(existing),
        Err(e) => return Err(err("read directory", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(err("read directory", dir))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // not UTF-8: cannot be one of ours, cannot collide with one
        };
        if !name.ends_with(".yaml") {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(err("inspect", &path))?;
        let found = if file_type.is_file() {
            Existing::File(fs::read(&path).map_err(err("read", &path))?)
        } else {
            Existing::Other
        };
        existing.insert(name, found);
    }
    Ok(existing)
}

/// Applies each plan to its directory, several directories at a time.
/// A directory whose plan is empty is not touched, though a staging
/// directory a killed run left beside it is removed.
pub fn apply_all(plans: &[(PathBuf, Plan)]) -> Result<(), OutputError> {
    let staged = plans
        .iter()
        .map(|(dir, plan)| Ok((stage(dir, plan)?, plan)))
        .collect::<Result<Vec<_>, OutputError>>()?;
    put_all_in_place(StagedDirs(staged))
}

/// Applies `plan` to `dir`, creating it (and its parents) when missing.
pub fn apply(dir: &Path, plan: &Plan) -> Result<(), OutputError> {
    stage(dir, plan)?.put_in_place(plan)
}

/// A directory's next state, built beside it but not yet in place: the
/// slow part of a write (creating every file) done while nothing visible
/// has changed, so `render --out` can do it for each cluster as its
/// response arrives and still write nothing when a later one fails.
/// Dropped without [`Staged::put_in_place`], it removes what it built.
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
    step: Step,
    /// Parent directories created for a new directory's staging,
    /// outermost first: removed again (when still empty) if the stage is
    /// abandoned.
    created: Vec<PathBuf>,
}

#[derive(Debug)]
enum Step {
    /// Nothing to change.
    Nothing,
    /// A new directory, complete at `staging`, to be renamed into place.
    Create { staging: PathBuf },
    /// The complete next state at `staging`, to be exchanged with `dir`.
    Exchange { staging: PathBuf },
    /// The swap is not possible here; the plan is applied in place.
    InPlace,
}

/// Builds `dir`'s next state beside it (see the module documentation):
/// nothing visible changes until [`Staged::put_in_place`].
pub fn stage(dir: &Path, plan: &Plan) -> Result<Staged, OutputError> {
    let mut staged = Staged {
        dir: dir.to_owned(),
        step: Step::Nothing,
        created: Vec::new(),
    };
    let staging = staging_path(dir);
    if let Some(staging) = &staging {
        remove_stale_staging(staging)?;
    }
    if plan.is_empty() {
        return Ok(staged);
    }
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let staging = staging.ok_or_else(|| OutputError {
                action: "use",
                path: dir.to_owned(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory name"),
            })?;
            staged.created = create_parents(&staging)?;
            build_new(&staging, plan)?;
            staged.step = Step::Create { staging };
            return Ok(staged);
        }
        Err(e) => return Err(err("inspect", dir)(e)),
    };
    clear_temporaries(dir)?;
    let why = match (meta.is_dir(), staging) {
        (true, Some(staging)) => match build_replacement(dir, &staging, &meta, plan)? {
            Built::Yes => {
                staged.step = Step::Exchange { staging };
                return Ok(staged);
            }
            Built::NotPossible(why) => why,
        },
        (false, _) => "it is a symlink".to_owned(),
        (true, None) => "it has no name of its own to build a sibling from".to_owned(),
    };
    in_place_because(dir, &why);
    staged.step = Step::InPlace;
    Ok(staged)
}

fn in_place_because(dir: &Path, why: &str) {
    tracing::info!(
        dir = %dir.display(),
        "updating in place, without the old-or-new guarantee: {why}"
    );
}

impl Staged {
    /// Puts the staged state in place: one rename or exchange (then the old
    /// tree is deleted), or the in-place update when no swap is possible.
    pub fn put_in_place(mut self, plan: &Plan) -> Result<(), OutputError> {
        let step = std::mem::replace(&mut self.step, Step::Nothing);
        self.created.clear();
        match step {
            Step::Nothing => Ok(()),
            Step::InPlace => apply_in_place(&self.dir, plan),
            Step::Create { staging } => fs::rename(&staging, &self.dir).map_err(|e| {
                let _ = fs::remove_dir_all(&staging);
                err("create directory", &self.dir)(e)
            }),
            Step::Exchange { staging } => match exchange(&staging, &self.dir) {
                // The old tree, now at the staging path.
                Ok(()) => fs::remove_dir_all(&staging)
                    .map_err(err("remove the previous version at", &staging)),
                Err(e) if cannot_exchange(&e) => {
                    // The file system cannot exchange; nothing was changed yet.
                    fs::remove_dir_all(&staging).map_err(err("remove", &staging))?;
                    in_place_because(
                        &self.dir,
                        &format!("the file system does not support RENAME_EXCHANGE ({e})"),
                    );
                    apply_in_place(&self.dir, plan)
                }
                Err(e) => {
                    let _ = fs::remove_dir_all(&staging);
                    Err(err("exchange the new directory with", &self.dir)(e))
                }
            },
        }
    }
}

impl Staged {
    /// Removes what was built beside the directory, and hands back the
    /// parent directories this stage created, to be removed once every
    /// other stage in them is gone too.
    fn abandon(&mut self) -> Vec<PathBuf> {
        if let Step::Create { staging } | Step::Exchange { staging } =
            std::mem::replace(&mut self.step, Step::Nothing)
        {
            let _ = fs::remove_dir_all(staging);
        }
        std::mem::take(&mut self.created)
    }
}

impl Drop for Staged {
    /// Abandoned: what was built beside the directory goes.
    fn drop(&mut self) {
        remove_if_empty(self.abandon());
    }
}

/// Abandons several stages: every staging directory first, then the
/// parents any of them created, deepest first. A parent one stage created
/// may hold the staging directory of a stage made later (responses arrive
/// in any order), so no order of dropping them one by one would do.
pub fn abandon_all(stages: impl IntoIterator<Item = Staged>) {
    let created: Vec<PathBuf> = stages.into_iter().flat_map(|mut s| s.abandon()).collect();
    remove_if_empty(created);
}

fn remove_if_empty(mut dirs: Vec<PathBuf>) {
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in dirs {
        // Only while empty: it may hold what someone else put there since.
        let _ = fs::remove_dir(dir);
    }
}

/// Stages to put in place together; abandoned together when dropped (see
/// [`abandon_all`]).
pub struct StagedDirs<'p>(pub Vec<(Staged, &'p Plan)>);

impl Drop for StagedDirs<'_> {
    fn drop(&mut self) {
        abandon_all(self.0.drain(..).map(|(stage, _)| stage));
    }
}

/// Puts every staged directory in place, several at a time (deleting the
/// old trees is most of the work).
pub fn put_all_in_place(mut staged: StagedDirs) -> Result<(), OutputError> {
    let all = std::mem::take(&mut staged.0);
    in_parallel_owned(all, |(stage, plan)| stage.put_in_place(plan))
}

/// The parents of `path` that do not exist yet, created, outermost first.
fn create_parents(path: &Path) -> Result<Vec<PathBuf>, OutputError> {
    let mut missing = Vec::new();
    let mut at = path.parent();
    while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(dir.to_owned());
        at = dir.parent();
    }
    missing.reverse();
    for dir in &missing {
        match fs::create_dir(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(err("create directory", dir)(e))
            }
            _ => {}
        }
    }
    Ok(missing)
}

/// Where the next state of `dir` is built: a hidden sibling, on the same
/// file system so that it can be renamed or exchanged into place.
fn staging_path(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_string_lossy();
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(parent.join(format!(".{name}{TEMP_SUFFIX}")))
}

/// A staging directory exists only while a run is writing; finding one
/// means a run was killed (before or after its exchange: either way the
/// directory itself is whole, and this is disposable).
fn remove_stale_staging(staging: &Path) -> Result<(), OutputError> {
    match fs::symlink_metadata(staging) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(staging).map_err(err("remove stale", staging)),
        Ok(_) => fs::remove_file(staging).map_err(err("remove stale", staging)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(err("inspect", staging)(e)),
    }
}

enum Built {
    Yes,
    /// Nothing was changed; the reason goes to the log.
    NotPossible(String),
}

/// Builds the new directory at `staging`: the files the plan leaves alone
/// carried over by hard link, and the plan's writes.
fn build_replacement(
    dir: &Path,
    staging: &Path,
    meta: &fs::Metadata,
    plan: &Plan,
) -> Result<Built, OutputError> {
    if !cfg!(target_os = "linux") {
        return Ok(Built::NotPossible(
            "exchanging directories needs Linux".into(),
        ));
    }
    let replaced: BTreeMap<&str, &Change> = plan.changes.iter().map(|c| (c.path(), c)).collect();
    // Everything that stays: what the plan does not touch, ours or not.
    let mut carried = Vec::new();
    for entry in fs::read_dir(dir).map_err(err("read directory", dir))? {
        let entry = entry.map_err(err("read directory", dir))?;
        let name = entry.file_name();
        // Our stale temporary files were cleared before; what is left of
        // that name is someone's directory and stops the exchange below.
        if name.to_str().is_some_and(|n| replaced.contains_key(n)) {
            continue;
        }
        let path = entry.path();
        if entry.file_type().map_err(err("inspect", &path))?.is_dir() {
            return Ok(Built::NotPossible(format!(
                "{} is a directory, which cannot be carried over by hard link",
                path.display()
            )));
        }
        carried.push(name);
    }

    fs::create_dir(staging).map_err(err("create directory", staging))?;
    let built = (|| {
        in_parallel(&carried, |name| {
            carry_over(&dir.join(name), &staging.join(name))
        })?;
        write_files(staging, plan)?;
        fs::set_permissions(staging, meta.permissions()).map_err(err("set the mode of", staging))
    })();
    if let Err(e) = built {
        let _ = fs::remove_dir_all(staging);
        return Err(e);
    }
    Ok(Built::Yes)
}

/// The plan's writes, as new files in `dir` (a staging directory nobody
/// else reads, so no temporary-then-rename is needed).
fn write_files(dir: &Path, plan: &Plan) -> Result<(), OutputError> {
    let writes: Vec<(&str, &[u8])> = plan.writes().collect();
    in_parallel(&writes, |(name, bytes)| {
        let path = dir.join(name);
        fs::write(&path, bytes).map_err(err("write", &path))
    })
}

/// A hard link keeps the file as it is (mode, owner, times) at no cost; a
/// copy (which keeps the mode) where linking is refused, say by
/// `fs.protected_hardlinks` for another user's file.
fn carry_over(from: &Path, to: &Path) -> Result<(), OutputError> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    let meta = fs::symlink_metadata(from).map_err(err("inspect", from))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(from).map_err(err("read link", from))?;
        return std::os::unix::fs::symlink(target, to).map_err(err("copy link", to));
    }
    fs::copy(from, to).map(|_| ()).map_err(err("copy", from))
}

/// Swaps two paths in one step (`renameat2(RENAME_EXCHANGE)`; rustix
/// makes the system call itself, so no particular C library is needed).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::from(rustix::io::Errno::NOSYS))
}

/// The errors of a file system (or kernel) that cannot exchange.
fn cannot_exchange(e: &io::Error) -> bool {
    use rustix::io::Errno;
    let code = e.raw_os_error();
    code == Some(Errno::INVAL.raw_os_error()) || code == Some(Errno::NOSYS.raw_os_error())
}

fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

fn apply_in_place(dir: &Path, plan: &Plan) -> Result<(), OutputError> {
    let (kustomization, files): (Vec<_>, Vec<_>) =
        plan.writes().partition(|(name, _)| *name == KUSTOMIZATION);
    let write = |(name, bytes): &(&str, &[u8])| write_atomically(&dir.join(name), bytes);
    // The kustomization strictly after every file it lists.
    in_parallel(&files, write)?;
    kustomization.iter().try_for_each(write)?;
    for name in plan.removals() {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err("remove", &path)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// A new directory at `staging`: every change is an addition.
fn build_new(staging: &Path, plan: &Plan) -> Result<(), OutputError> {
    fs::create_dir(staging).map_err(err("create directory", staging))?;
    write_files(staging, plan).inspect_err(|_| {
        let _ = fs::remove_dir_all(staging);
    })
}

/// Creating thousands of files is bound by file-system latency, not CPU;
/// a few threads overlap it (measured in BENCHMARKS.md).
const WRITERS: usize = 4;

pub(crate) fn in_parallel<T: Sync, E: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<(), E> + Sync + Send,
) -> Result<(), E> {
    if items.len() < 2 {
        return items.iter().try_for_each(f);
    }
    match writers() {
        Some(pool) => pool.install(|| items.par_iter().try_for_each(f)),
        // No threads to be had: write one file after another.
        None => items.iter().try_for_each(f),
    }
}

/// The writers' pool, apart from rayon's global one (sized for the CPU).
fn writers() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(WRITERS)
            .thread_name(|i| format!("writer-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Like [`in_parallel`], for work that consumes its items.
fn in_parallel_owned<T: Send, E: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> Result<(), E> + Sync + Send,
) -> Result<(), E> {
    match writers() {
        Some(pool) if items.len() > 1 => pool.install(|| items.into_par_iter().try_for_each(f)),
        _ => items.into_iter().try_for_each(f),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    crate::sink::fsutil::write_atomic(path, bytes).map_err(err("write", path))
}

fn clear_temporaries(dir: &Path) -> Result<(), OutputError> {
    for entry in fs::read_dir(dir).map_err(err("read directory", dir))? {
        let entry = entry.map_err(err("read directory", dir))?;
        let name = entry.file_name();
        if is_temporary(&name.to_string_lossy()) {
            let path = entry.path();
            if entry.file_type().map_err(err("inspect", &path))?.is_file() {
                fs::remove_file(&path).map_err(err("remove stale", &path))?;
            }
        }
    }
    Ok(())
}
