//! The working tree and index of the checked-out branch, brought along with
//! a commit that changed only the rendered paths.
//!
//! libgit2's checkout compares whole trees and writes one file at a time;
//! here the plans already say exactly which files change, so only those are
//! checked, written (in parallel) and re-indexed. Like a safe checkout, a
//! local change to one of those files is never overwritten.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use git2::{IndexEntry, IndexTime, ObjectType, Oid, Repository};

use crate::plan::{Change, ChangeKind, Plan};
use crate::repo::{GitError, Target};

fn git_err(context: String) -> impl FnOnce(git2::Error) -> GitError {
    move |e| GitError::Git {
        context,
        message: e.message().to_owned(),
    }
}

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> GitError {
    move |e| GitError::Git {
        context,
        message: e.to_string(),
    }
}

fn planned_changes<'a>(targets: &[Target], plans: &'a [Plan]) -> Vec<(String, &'a Change)> {
    targets
        .iter()
        .zip(plans)
        .flat_map(|(t, p)| {
            p.changes
                .iter()
                .map(move |c| (format!("{}/{}", t.path, c.path), c))
        })
        .collect()
}

/// Refuses if a file the plans change has local edits, on disk or staged:
/// it must hold what the base commit had (or, for an addition, nothing or
/// already the new content).
pub fn check(repo: &Repository, targets: &[Target], plans: &[Plan]) -> Result<(), GitError> {
    let Some(workdir) = repo.workdir() else {
        return Ok(());
    };
    let index = repo.index().map_err(git_err("read the index".into()))?;
    for (path, change) in planned_changes(targets, plans) {
        let on_disk = std::fs::read(workdir.join(&path)).ok();
        let expected = change.old.as_deref();
        let disk_ok = match (&on_disk, expected) {
            (None, _) => true,
            (Some(d), Some(old)) => d == old,
            (Some(d), None) => Some(d.as_slice()) == change.new.as_deref(),
        };
        let staged = index.get_path(Path::new(&path), 0).map(|e| e.id);
        let index_ok = match (staged, expected) {
            (None, None) => true,
            (Some(id), Some(old)) => Oid::hash_object(ObjectType::Blob, old).is_ok_and(|o| o == id),
            _ => false,
        };
        if !disk_ok || !index_ok {
            return Err(GitError::Conflict(path));
        }
    }
    Ok(())
}

/// Applies the plans to the working tree and index. `blobs` are the ids of
/// the additions and updates, in plan order.
pub fn apply(
    repo: &Repository,
    targets: &[Target],
    plans: &[Plan],
    blobs: &[Oid],
) -> Result<(), GitError> {
    let Some(workdir) = repo.workdir() else {
        return Ok(()); // a bare repository has no working tree to follow
    };
    check(repo, targets, plans)?;
    let changes = planned_changes(targets, plans);
    let mut index = repo.index().map_err(git_err("read the index".into()))?;

    let writes: Vec<&(String, &Change)> = changes
        .iter()
        .filter(|(_, c)| c.kind != ChangeKind::Remove)
        .collect();
    crate::outdir::in_parallel(&writes, |(path, change)| {
        let full = workdir.join(path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(full, change.new.as_deref().expect("writes carry content"))
    })
    .map_err(io_err("write the working tree".into()))?;

    for ((path, _), id) in writes.iter().zip(blobs) {
        let meta =
            std::fs::metadata(workdir.join(path)).map_err(io_err(format!("inspect {path}")))?;
        let entry = IndexEntry {
            ctime: IndexTime::new(meta.ctime() as i32, meta.ctime_nsec() as u32),
            mtime: IndexTime::new(meta.mtime() as i32, meta.mtime_nsec() as u32),
            dev: meta.dev() as u32,
            ino: meta.ino() as u32,
            mode: 0o100644,
            uid: meta.uid(),
            gid: meta.gid(),
            file_size: meta.size() as u32,
            id: *id,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index
            .add(&entry)
            .map_err(git_err(format!("stage {path}")))?;
    }
    for (path, change) in &changes {
        if change.kind == ChangeKind::Remove {
            match std::fs::remove_file(workdir.join(path)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err(format!("remove {path}"))(e))
                }
                _ => {}
            }
            index
                .remove_path(Path::new(path))
                .map_err(git_err(format!("unstage {path}")))?;
        }
    }
    index.write().map_err(git_err("write the index".into()))
}
