//! What a run would change: a rendered tree compared with the files that
//! already exist where it goes, and whether that may be carried out.
//!
//! Enters: a [`RenderedTree`] and what exists at its destination (file
//! name → [`Existing`], read by a sink). Leaves: a [`Plan`] of
//! [`Change`]s, or a [`PlanError`] (a file not ours in the way; with
//! [`guard::check`], too many removals). Pure, so the same plan drives a
//! directory write, a git commit and a `diff`, and every refusal happens
//! before anything is touched.

pub mod change;
pub mod guard;

use std::collections::BTreeMap;

use crate::pipeline::render::RenderedTree;
pub use crate::plan::change::{Change, ChangeKind, Existing, OldFile, Plan};

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
/// no longer has are removed. What an updated or removed file held is
/// read back only when asked for ([`OldFile::object`]).
pub fn plan(
    tree: RenderedTree,
    mut existing: BTreeMap<String, Existing>,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    for (path, new) in tree.files {
        match existing.remove(&path) {
            None => plan.changes.push(Change::Add { path, new }),
            Some(e) if !e.is_ours() => return Err(PlanError::NotOurs { path }),
            Some(Existing::File(old)) if old == new.bytes => {
                if new.object.is_some() {
                    plan.unchanged += 1;
                }
            }
            Some(Existing::File(bytes)) => plan.changes.push(Change::Update {
                old: OldFile::new(&path, bytes),
                path,
                new,
            }),
            Some(Existing::Other) => unreachable!("Other is never ours"),
        }
    }
    for (path, e) in existing {
        if !e.is_ours() {
            plan.foreign.push(path);
        } else if let Existing::File(bytes) = e {
            plan.changes.push(Change::Remove {
                old: OldFile::new(&path, bytes),
                path,
            });
        }
    }
    plan.changes.sort_by(|a, b| a.path().cmp(b.path()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(input: &str) -> RenderedTree {
        crate::pipeline::render_response(input.as_bytes())
            .unwrap()
            .0
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
            .map(|c| (c.path(), c.kind(), c.identity().map(|i| i.name.to_string())))
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
        assert!(p.changes.iter().all(|c| c.path() != "README.md"));

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

/// The guard's tests, here because they plan between two responses, and
/// the guard itself does not depend on the planner.
#[cfg(test)]
mod guard_tests {
    use super::guard::*;
    use super::{plan, Existing, Plan};
    use crate::pipeline::render_response;

    fn policies(names: &[&str]) -> String {
        names
            .iter()
            .map(|n| format!("---\napiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {{name: {n}}}\n"))
            .collect()
    }

    fn plan_between(before: &[&str], after: &[&str]) -> Plan {
        let (old, _) = render_response(policies(before).as_bytes()).unwrap();
        let (new, _) = render_response(policies(after).as_bytes()).unwrap();
        let existing = old
            .files
            .into_iter()
            .map(|(p, f)| (p, Existing::File(f.bytes)))
            .collect();
        plan(new, existing).unwrap()
    }

    #[test]
    fn an_empty_response_never_empties_a_directory_silently() {
        let p = plan_between(&["a", "b"], &[]);
        assert_eq!(
            check(&p, &Limits::default()),
            Err(GuardError::Empty { existing: 2 })
        );
        let allow = Limits {
            allow_empty: true,
            ..Limits::default()
        };
        assert_eq!(check(&p, &allow), Ok(()));
        // Even a generous removal limit does not allow emptying.
        let generous = Limits {
            max_removals: MaxRemovals::Percent(100.0),
            allow_empty: false,
        };
        assert!(check(&p, &generous).is_err());
    }

    #[test]
    fn removals_beyond_the_limit_are_refused() {
        let p = plan_between(&["a", "b", "c", "d"], &["a"]);
        assert!(matches!(
            check(&p, &Limits::default()),
            Err(GuardError::TooMany {
                removed: 3,
                existing: 4,
                ..
            })
        ));
        let p = plan_between(&["a", "b", "c", "d"], &["a", "b"]);
        assert_eq!(check(&p, &Limits::default()), Ok(()));
        let counted = Limits {
            max_removals: MaxRemovals::Count(1),
            allow_empty: false,
        };
        assert!(check(&p, &counted).is_err());
        assert_eq!(check(&plan_between(&[], &["a"]), &counted), Ok(()));
    }

    #[test]
    fn limits_parse() {
        assert_eq!("10".parse(), Ok(MaxRemovals::Count(10)));
        assert_eq!("25%".parse(), Ok(MaxRemovals::Percent(25.0)));
        assert!("150%".parse::<MaxRemovals>().is_err());
        assert!("many".parse::<MaxRemovals>().is_err());
    }
}

#[cfg(test)]
mod old_file_tests {
    use super::OldFile;

    #[test]
    fn reading_an_old_file_back_does_not_change_what_it_equals() {
        let bytes = crate::pipeline::render_response(
            b"apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: a}\n",
        )
        .unwrap()
        .0
        .files["clusterpolicy_a.yaml"]
            .bytes
            .clone();
        let (read, unread) = (
            OldFile::new("clusterpolicy_a.yaml", bytes.clone()),
            OldFile::new("clusterpolicy_a.yaml", bytes),
        );
        assert_eq!(
            read.object().unwrap().identity.to_string(),
            "ClusterPolicy.kyverno.io/a"
        );
        assert_eq!(read, unread);
    }
}
