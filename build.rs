//! Records the git commit the binary is built from, for `--version`.
//!
//! In order: the `INSIGHTS_POLICY_RENDER_COMMIT` variable (the container
//! build passes it, since `.git` is not in the build context), else
//! `git rev-parse HEAD` when git and a repository are there, else `unknown`
//! (a source tarball, a machine without git). Nothing here can fail the
//! build.

use std::path::{Path, PathBuf};
use std::process::Command;

const OVERRIDE: &str = "INSIGHTS_POLICY_RENDER_COMMIT";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={OVERRIDE}");
    let commit = std::env::var(OVERRIDE)
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| is_commit(c))
        .or_else(from_git)
        .map(|c| c[..c.len().min(12)].to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=INSIGHTS_POLICY_RENDER_COMMIT={commit}");
}

fn is_commit(text: &str) -> bool {
    (7..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `git rev-parse HEAD` in the package's directory, and the files whose
/// change means HEAD moved (so a new commit rebuilds, and a build outside
/// git does not rerun this script every time).
fn from_git() -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    // Only this package's own repository: a tarball unpacked inside some
    // other repository must not take that one's commit.
    let top = git(&dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    let commit = git(&dir, &["rev-parse", "HEAD"]).filter(|c| is_commit(c))?;
    let mut watch = Vec::new();
    if let Some(git_dir) = git(&dir, &["rev-parse", "--absolute-git-dir"]) {
        watch.push(Path::new(&git_dir).join("HEAD"));
    }
    // Branches live in the common directory (they differ in a linked worktree).
    let common = git(
        &dir,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    );
    if let Some(common) = common {
        let common = Path::new(&common);
        watch.push(common.join("packed-refs"));
        if let Some(head_ref) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
            let file = common.join(head_ref);
            // A branch only in packed-refs gets a loose file on its next
            // commit: watch the directory it will appear in.
            match (file.exists(), file.parent()) {
                (false, Some(parent)) => watch.push(parent.to_owned()),
                _ => watch.push(file),
            }
        }
    }
    for path in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    Some(commit)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}
