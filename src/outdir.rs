//! The file-system edge: read what a directory holds, then apply a plan to it.
//!
//! Ordering is what keeps an interrupted run safe. Object files are replaced
//! first (each by write-to-temporary and rename, so no file is ever half
//! written), then `kustomization.yaml`, then files of removed objects are
//! deleted. At every instant the kustomization lists only files that exist
//! and are whole, so `kubectl kustomize` can build the directory whenever the
//! process dies. A directory that does not exist yet is built beside its
//! final place and renamed into it, so it appears complete or not at all.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::plan::{Change, ChangeKind, Existing, Plan};
use crate::render::KUSTOMIZATION;

/// Suffix of the temporary files and directories a run writes; left-overs of
/// a killed run are recognised by it and cleared by the next one.
const TEMP_SUFFIX: &str = ".ipr-tmp";

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
pub fn apply_all(plans: &[(PathBuf, Plan)]) -> Result<(), OutputError> {
    let changed: Vec<_> = plans.iter().filter(|(_, p)| !p.is_empty()).collect();
    in_parallel(&changed, |(dir, plan)| apply(dir, plan))
}

/// Applies `plan` to `dir`, creating it (and its parents) when missing.
pub fn apply(dir: &Path, plan: &Plan) -> Result<(), OutputError> {
    match fs::symlink_metadata(dir) {
        Ok(_) => {
            clear_temporaries(dir)?;
            apply_in_place(dir, plan)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_whole(dir, plan),
        Err(e) => Err(err("inspect", dir)(e)),
    }
}

fn apply_in_place(dir: &Path, plan: &Plan) -> Result<(), OutputError> {
    let writes = |kustomization: bool| {
        plan.changes.iter().filter(move |c| {
            c.kind != ChangeKind::Remove && (c.path == KUSTOMIZATION) == kustomization
        })
    };
    let write = |change: &&Change| {
        let bytes = change
            .new
            .as_deref()
            .expect("adds and updates carry content");
        write_atomically(&dir.join(&change.path), bytes)
    };
    // The kustomization strictly after every file it lists.
    in_parallel(&writes(false).collect::<Vec<_>>(), write)?;
    writes(true).try_for_each(|c| write(&c))?;
    for change in plan.changes.iter().filter(|c| c.kind == ChangeKind::Remove) {
        let path = dir.join(&change.path);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err("remove", &path)(e)),
            _ => {}
        }
    }
    Ok(())
}

fn create_whole(dir: &Path, plan: &Plan) -> Result<(), OutputError> {
    let name = dir
        .file_name()
        .ok_or_else(|| OutputError {
            action: "use",
            path: dir.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory name"),
        })?
        .to_string_lossy();
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(err("create directory", parent))?;
    let staging = parent.join(format!(".{name}{TEMP_SUFFIX}"));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(err("remove stale", &staging))?;
    }
    fs::create_dir(&staging).map_err(err("create directory", &staging))?;
    in_parallel(&plan.changes, |change| {
        let bytes = change
            .new
            .as_deref()
            .expect("a new directory only has additions");
        let path = staging.join(&change.path);
        fs::write(&path, bytes).map_err(err("write", &path))
    })?;
    fs::rename(&staging, dir).map_err(err("create directory", dir))
}

/// Creating thousands of files is bound by file-system latency, not CPU;
/// a few threads overlap it (measured in BENCHMARKS.md).
const WRITERS: usize = 4;

pub(crate) fn in_parallel<T: Sync, E: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    if items.len() < 2 {
        return items.iter().try_for_each(f);
    }
    let chunk = items.len().div_ceil(WRITERS);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().try_for_each(&f)))
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("a writer thread panicked"))
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let name = path
        .file_name()
        .expect("plan paths are file names")
        .to_string_lossy();
    let temp = path.with_file_name(format!(".{name}{TEMP_SUFFIX}"));
    fs::write(&temp, bytes).map_err(err("write", &temp))?;
    fs::rename(&temp, path).map_err(err("replace", path))
}

fn clear_temporaries(dir: &Path) -> Result<(), OutputError> {
    for entry in fs::read_dir(dir).map_err(err("read directory", dir))? {
        let entry = entry.map_err(err("read directory", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
            let path = entry.path();
            if entry.file_type().map_err(err("inspect", &path))?.is_file() {
                fs::remove_file(&path).map_err(err("remove stale", &path))?;
            }
        }
    }
    Ok(())
}
