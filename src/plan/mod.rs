//! What a run would change: a rendered tree compared with the files that
//! already exist where it goes.
//!
//! Pure, so the same plan drives a directory write, a git commit and a
//! `diff`, and every refusal happens before anything is touched.

pub mod guard;

use std::collections::BTreeMap;

use crate::model::identity::Identity;
use crate::pipeline::render::{RenderedTree, HEADER};
use crate::pipeline::validate::validate;
use crate::yaml::parse_stream;

/// A file found where a rendered file would go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// A regular file and its content.
    File(Vec<u8>),
    /// A directory, a symlink or anything else that is not a plain file.
    /// Never ours: writing through a symlink could leave the directory.
    Other,
}

impl Existing {
    /// Files the tool wrote start with its header; only those may be
    /// overwritten or deleted.
    pub fn is_ours(&self) -> bool {
        matches!(self, Existing::File(bytes) if bytes.starts_with(HEADER.as_bytes()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Add,
    Update,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
    /// The object the file holds (for a removal, the one it held). `None` for
    /// `kustomization.yaml`, or for a removed file that no longer parses.
    pub identity: Option<Identity>,
    /// The content before the change (`None` for an addition).
    pub old: Option<Vec<u8>>,
    /// The content after the change (`None` for a removal).
    pub new: Option<Vec<u8>>,
}

/// The changes that turn what exists into the rendered tree, sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Objects whose file already has the rendered bytes.
    pub unchanged: usize,
    /// `.yaml` files in the directory that the tool did not write (they lack
    /// its header): left alone, and not in `kustomization.yaml`, so
    /// kustomize does not build them and Flux or Argo CD never applies
    /// them. Sorted.
    pub foreign: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The changes of one kind that concern objects (not the kustomization).
    pub fn objects(&self, kind: ChangeKind) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(move |c| c.kind == kind && c.path != crate::pipeline::render::KUSTOMIZATION)
    }
}

/// Why a plan may not be carried out. Either ends the run before anything
/// is written or committed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("{path} exists and was not written by insights-policy-render (it lacks the generated-file header); refusing to overwrite it. Move it away or choose another output directory")]
    NotOurs { path: String },
    /// The mass-removal guard ([`guard::check`]).
    #[error(transparent)]
    TooManyRemovals(#[from] guard::GuardError),
}

/// A refused plan, and whose: the one error class every sink reports a
/// refusal with.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {source}; nothing was {done}")]
pub struct Refused {
    /// The directory, or the cluster.
    pub place: String,
    /// "written" or "committed".
    done: &'static str,
    #[source]
    pub source: PlanError,
}

impl Refused {
    /// A refusal before writing a directory.
    pub fn writing(place: impl Into<String>, source: impl Into<PlanError>) -> Refused {
        Refused {
            place: place.into(),
            done: "written",
            source: source.into(),
        }
    }

    /// A refusal before making a commit.
    pub fn committing(place: impl Into<String>, source: impl Into<PlanError>) -> Refused {
        Refused {
            place: place.into(),
            done: "committed",
            source: source.into(),
        }
    }
}

/// Compares `tree` with `existing` (file name → what is there now). Both
/// are consumed: the plan moves their bytes instead of copying them.
///
/// Files in `existing` that are not ours are left alone unless the tree
/// would write to the same name, which is an error. Our files that the tree
/// no longer has are removed.
pub fn plan(
    tree: RenderedTree,
    mut existing: BTreeMap<String, Existing>,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    for (path, file) in tree.files {
        let kind = match existing.remove(&path) {
            None => ChangeKind::Add,
            Some(e) if !e.is_ours() => return Err(PlanError::NotOurs { path }),
            Some(Existing::File(old)) if old == file.bytes => {
                if file.identity.is_some() {
                    plan.unchanged += 1;
                }
                continue;
            }
            Some(Existing::File(old)) => {
                plan.changes.push(Change {
                    path,
                    kind: ChangeKind::Update,
                    identity: file.identity,
                    old: Some(old),
                    new: Some(file.bytes),
                });
                continue;
            }
            Some(Existing::Other) => unreachable!("Other is never ours"),
        };
        plan.changes.push(Change {
            path,
            kind,
            identity: file.identity,
            old: None,
            new: Some(file.bytes),
        });
    }
    for (path, e) in existing {
        if !e.is_ours() {
            plan.foreign.push(path);
            continue;
        }
        if let Existing::File(old) = e {
            plan.changes.push(Change {
                path,
                kind: ChangeKind::Remove,
                identity: identity_of(&old),
                old: Some(old),
                new: None,
            });
        }
    }
    plan.changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(plan)
}

/// Warns of the files in `dir` that the tool did not write (see
/// [`Plan::foreign`]): someone may expect them applied, and nothing will.
pub fn warn_foreign(dir: &str, plan: &Plan) {
    for file in &plan.foreign {
        tracing::warn!(
            "{dir}/{file} was not written by insights-policy-render and is not listed in {dir}/{}: kustomize will not build it and Flux or Argo CD will not apply it. Move it out of the rendered directory",
            crate::pipeline::render::KUSTOMIZATION
        );
    }
}

/// Like [`plan`], for files that share a directory with files of other
/// runs (the consumer manifests of other clusters): only the files of the
/// tree are considered, and nothing is ever removed.
pub fn plan_without_removals(
    tree: RenderedTree,
    mut existing: BTreeMap<String, Existing>,
) -> Result<Plan, PlanError> {
    existing.retain(|path, _| tree.files.contains_key(path));
    plan(tree, existing)
}

/// The identity of a file the tool wrote earlier, read back from its content.
fn identity_of(bytes: &[u8]) -> Option<Identity> {
    let set = validate(parse_stream(bytes).ok()?).ok()?;
    match set.policies() {
        [one] => Some(one.identity.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::render::render;

    fn tree(input: &str) -> RenderedTree {
        render(&validate(parse_stream(input.as_bytes()).unwrap()).unwrap())
    }

    fn existing_from(tree: &RenderedTree) -> BTreeMap<String, Existing> {
        tree.files
            .iter()
            .map(|(p, f)| (p.clone(), Existing::File(f.bytes.clone())))
            .collect()
    }

    const A: &str =
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: a}\nspec: {x: 1}\n";
    const A2: &str =
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: a}\nspec: {x: 2}\n";
    const B: &str = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: b}\n";

    #[test]
    fn same_input_plans_nothing() {
        let t = tree(&format!("{A}---\n{B}"));
        let p = plan(t.clone(), existing_from(&t)).unwrap();
        assert!(p.is_empty());
        assert_eq!(p.unchanged, 2);
    }

    #[test]
    fn adds_updates_and_removes_with_identities() {
        let before = tree(&format!("{A}---\n{B}"));
        let after = tree(A2);
        let p = plan(after, existing_from(&before)).unwrap();
        let summary: Vec<_> = p
            .changes
            .iter()
            .map(|c| {
                (
                    c.path.as_str(),
                    c.kind,
                    c.identity.as_ref().map(|i| i.name.to_string()),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("clusterpolicy_a.yaml", ChangeKind::Update, Some("a".into())),
                ("clusterpolicy_b.yaml", ChangeKind::Remove, Some("b".into())),
                ("kustomization.yaml", ChangeKind::Update, None),
            ]
        );
        assert_eq!(p.objects(ChangeKind::Update).count(), 1);
    }

    #[test]
    fn foreign_files_are_never_planned_over_or_removed() {
        let t = tree(A);
        let mut existing = BTreeMap::new();
        existing.insert(
            "README.md".to_string(),
            Existing::File(b"hand written".to_vec()),
        );
        let p = plan(t.clone(), existing.clone()).unwrap();
        assert!(p.changes.iter().all(|c| c.path != "README.md"));

        existing.insert(
            "clusterpolicy_a.yaml".to_string(),
            Existing::File(b"mine".to_vec()),
        );
        assert_eq!(
            plan(t.clone(), existing.clone()),
            Err(PlanError::NotOurs {
                path: "clusterpolicy_a.yaml".into()
            })
        );
        existing.insert("clusterpolicy_a.yaml".to_string(), Existing::Other);
        assert!(plan(t, existing).is_err());
    }
}
