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
    for (dir, _) in plans {
        if let Some(staging) = staging_path(dir) {
            remove_stale_staging(&staging)?;
        }
    }
    let changed: Vec<_> = plans.iter().filter(|(_, p)| !p.is_empty()).collect();
    in_parallel(&changed, |(dir, plan)| apply(dir, plan))
}

/// Applies `plan` to `dir`, creating it (and its parents) when missing.
pub fn apply(dir: &Path, plan: &Plan) -> Result<(), OutputError> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return create_whole(dir, plan),
        Err(e) => return Err(err("inspect", dir)(e)),
    };
    clear_temporaries(dir)?;
    let why = match (meta.is_dir(), staging_path(dir)) {
        (true, Some(staging)) => {
            remove_stale_staging(&staging)?;
            match replace_whole(dir, &staging, &meta, plan)? {
                Replaced::Yes => return Ok(()),
                Replaced::NotPossible(why) => why,
            }
        }
        (false, _) => "it is a symlink".to_owned(),
        (true, None) => "it has no name of its own to build a sibling from".to_owned(),
    };
    tracing::info!(
        dir = %dir.display(),
        "updating in place, without the old-or-new guarantee: {why}"
    );
    apply_in_place(dir, plan)
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

enum Replaced {
    Yes,
    /// Nothing was changed; the reason goes to the log.
    NotPossible(String),
}

/// Builds the new directory at `staging` and exchanges it with `dir`.
fn replace_whole(
    dir: &Path,
    staging: &Path,
    meta: &fs::Metadata,
    plan: &Plan,
) -> Result<Replaced, OutputError> {
    if !cfg!(target_os = "linux") {
        return Ok(Replaced::NotPossible(
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
            return Ok(Replaced::NotPossible(format!(
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
        let writes: Vec<(&str, &[u8])> = plan.writes().collect();
        in_parallel(&writes, |(name, bytes)| {
            let path = staging.join(name);
            fs::write(&path, bytes).map_err(err("write", &path))
        })?;
        fs::set_permissions(staging, meta.permissions()).map_err(err("set the mode of", staging))
    })();
    if let Err(e) = built {
        let _ = fs::remove_dir_all(staging);
        return Err(e);
    }
    match exchange(staging, dir) {
        Ok(()) => {}
        Err(e) if cannot_exchange(&e) => {
            // The file system cannot exchange; nothing was changed yet.
            fs::remove_dir_all(staging).map_err(err("remove", staging))?;
            return Ok(Replaced::NotPossible(format!(
                "the file system does not support RENAME_EXCHANGE ({e})"
            )));
        }
        Err(e) => {
            let _ = fs::remove_dir_all(staging);
            return Err(err("exchange the new directory with", dir)(e));
        }
    }
    // The old tree, now at the staging path.
    fs::remove_dir_all(staging).map_err(err("remove the previous version at", staging))?;
    Ok(Replaced::Yes)
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

fn create_whole(dir: &Path, plan: &Plan) -> Result<(), OutputError> {
    let staging = staging_path(dir).ok_or_else(|| OutputError {
        action: "use",
        path: dir.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory name"),
    })?;
    let parent = staging.parent().expect("a staging path has a parent");
    fs::create_dir_all(parent).map_err(err("create directory", parent))?;
    remove_stale_staging(&staging)?;
    fs::create_dir(&staging).map_err(err("create directory", &staging))?;
    // A new directory: every change is an addition.
    let writes: Vec<(&str, &[u8])> = plan.writes().collect();
    in_parallel(&writes, |(name, bytes)| {
        let path = staging.join(name);
        fs::write(&path, bytes).map_err(err("write", &path))
    })?;
    fs::rename(&staging, dir).map_err(err("create directory", dir))
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
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(WRITERS)
            .thread_name(|i| format!("writer-{i}"))
            .build()
            .ok()
    });
    match pool {
        Some(pool) => pool.install(|| items.par_iter().try_for_each(f)),
        // No threads to be had: write one file after another.
        None => items.iter().try_for_each(f),
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
