//! The targets of a commit, planned against the tree of a base commit, and
//! the new tree written: libgit2's pure repository work, with no index and
//! no working tree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use git2::build::TreeUpdateBuilder;
use git2::{Commit, ErrorCode, FileMode, ObjectType, Oid, Repository, Tree};

use crate::model::path::RepoPath;
use crate::pipeline::render::RenderedTree;
use crate::plan::{plan, plan_without_removals, Existing, Plan, Refused};
use crate::sink::git::error::GitError;

/// One cluster's rendered directory and where it goes in the repository.
#[derive(Debug, Clone)]
pub struct Target {
    pub cluster: Option<String>,
    /// Where its directory is in the repository.
    pub path: RepoPath,
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
            .zip(crate::sink::git::pack::blob_ids(&contents))
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
                .map_err(GitError::git(format!("read {}", target.path.join(&e.name))))?;
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
        .filter(|(name, file)| file.object.is_some() && same.contains(name.as_str()))
        .count();
    let planned = match target.role {
        Role::Policies => plan(rendered, existing),
        Role::Consumer => plan_without_removals(rendered, existing),
    };
    let mut plan = planned.map_err(|e| Refused::committing(target.path.as_str(), e))?;
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
pub(crate) fn build_tree(
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
            plan.writes()
                .map(move |(name, bytes)| (target.path.join(name), bytes))
        })
        .collect();
    let blobs = crate::sink::git::pack::write_blobs(repo, &writes)?;
    let mut update = TreeUpdateBuilder::new();
    for ((path, _), blob) in writes.iter().zip(&blobs) {
        update.upsert(path.as_str(), *blob, FileMode::Blob);
    }
    for (target, plan) in targets.iter().zip(plans) {
        for name in plan.removals() {
            update.remove(target.path.join(name).as_str());
        }
    }
    let tree = update
        .create_updated(repo, &baseline)
        .map_err(GitError::git("write the new tree"))?;
    Ok(((tree != baseline.id()).then_some(tree), blobs))
}
