//! `diff`: what `commit` would change, as a patch a reviewer can apply.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::DiffArgs;
use crate::commands::steps::finish;
use crate::commands::targets::{append, render_targets, summarise};
use crate::error::{exit, Error};
use crate::model::path::RepoPath;
use crate::plan::ChangeKind;
use crate::report::summary::ClusterSummary;
use crate::sink;
use crate::sink::git::Role;

pub fn diff_command(args: DiffArgs) -> Result<u8, Error> {
    let consumers = args.consumers.consumers().map_err(Error::Usage)?;
    let repository = sink::git::open(&args.repo.repo)?;
    let (targets, failures, _) = render_targets(&args.source, &args.repo, &consumers)?;
    let base = match &args.repo.base {
        Some(b) => Some(sink::git::resolve_base(&repository, b, &args.repo.remote)?),
        None => sink::git::head(&repository)?.tip(),
    };
    let base = base
        .map(|id| repository.find_commit(id))
        .transpose()
        .map_err(|e| {
            Error::Git(sink::git::GitError::Command {
                context: "read the base commit".into(),
                message: e.message().to_owned(),
            })
        })?;
    let plans = sink::git::plan_targets(&repository, base.as_ref(), &targets)?;

    let mut out = String::new();
    for (target, plan) in targets.iter().zip(&plans) {
        match target.role {
            Role::Policies => {
                let summary = ClusterSummary::from_plan(target.cluster.clone(), plan);
                out.push_str(&format!(
                    "# {} ({}): {}\n",
                    target.cluster.as_deref().unwrap_or(&target.path),
                    target.path,
                    summary.counts_line()
                ));
            }
            Role::Consumer if plan.is_empty() => continue,
            Role::Consumer => out.push_str(&format!(
                "# consumer manifests ({}): {} changed\n",
                target.path,
                plan.changes.len()
            )),
        }
        for change in &plan.changes {
            out.push_str(&unified_diff(&target.path, change));
        }
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|source| {
            Error::Output(crate::sink::dir::OutputError {
                action: "write to",
                path: PathBuf::from("stdout"),
                source,
            })
        })?;
    let changed = plans.iter().any(|p| !p.is_empty());
    // As `commit` does, for a workflow step that runs `diff` on a pull
    // request; there is no commit to name.
    if let Some(path) = std::env::var_os("GITHUB_OUTPUT").map(PathBuf::from) {
        append(&path, &format!("changed={changed}\n"))?;
    }
    let code = finish(
        args.summary_file.as_deref(),
        summarise(&targets, &plans),
        failures,
    )?;
    Ok(if code != exit::OK {
        code
    } else if changed {
        exit::CHANGES
    } else {
        exit::OK
    })
}

/// `git diff`-style text for one file, which `git apply` takes: a new file
/// is `new file mode 100644` from `/dev/null`, a removed one `deleted file
/// mode 100644` to `/dev/null` (the tool writes regular files, never
/// executable ones). git2 makes the hunks; the headers are written here,
/// because a patch between two buffers knows nothing of files that do not
/// exist.
fn unified_diff(dir: &RepoPath, change: &crate::plan::Change) -> String {
    let path = dir.join(change.path());
    let old = change.old_bytes().unwrap_or_default();
    let new = change.new_bytes().unwrap_or_default();
    let as_path = PathBuf::from(&path);
    let hunks = match git2::Patch::from_buffers(old, Some(&as_path), new, Some(&as_path), None)
        .and_then(|mut p| p.to_buf())
    {
        Ok(buf) => {
            let text = String::from_utf8_lossy(&buf).into_owned();
            match text.find("\n@@ ") {
                Some(at) => text[at + 1..].to_owned(),
                None if text.starts_with("@@ ") => text,
                // No textual change (an empty file added or removed).
                None => String::new(),
            }
        }
        Err(_) => return format!("# {path}: (no textual diff)\n"),
    };
    let (mode, from, to) = match change.kind() {
        ChangeKind::Add => (
            "new file mode 100644\n",
            "/dev/null".to_owned(),
            format!("b/{path}"),
        ),
        ChangeKind::Remove => (
            "deleted file mode 100644\n",
            format!("a/{path}"),
            "/dev/null".to_owned(),
        ),
        ChangeKind::Update => ("", format!("a/{path}"), format!("b/{path}")),
    };
    let mut out = format!("diff --git a/{path} b/{path}\n{mode}");
    if !hunks.is_empty() {
        out.push_str(&format!("--- {from}\n+++ {to}\n{hunks}"));
    }
    out
}
