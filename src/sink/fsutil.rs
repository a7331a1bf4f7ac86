//! Small filesystem primitives shared by the edges.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The suffix of every temporary file the tool writes; a file named
/// `.NAME.ipr-tmp` is one a killed run left, and is the tool's to remove.
pub const TEMP_SUFFIX: &str = ".ipr-tmp";

/// The temporary name `path` is written under before it is renamed.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TEMP_SUFFIX}"))
}

/// Writes `bytes` to a temporary file beside `path` and renames it into
/// place: a reader (or a run killed half way) sees the old file or the new
/// one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = temp_path(path);
    fs::write(&temp, bytes)?;
    fs::rename(&temp, path)
}
