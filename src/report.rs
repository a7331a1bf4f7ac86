//! What a commit says about itself: the commit message, and the Markdown a
//! reviewer approves a pull request from. Pure text from plans.

use std::fmt::Write;

use crate::plan::{Change, ChangeKind, Plan};
use crate::yaml::parse_stream;

/// One cluster's part of a commit.
pub struct ClusterChanges<'a> {
    pub cluster: Option<&'a str>,
    /// Where its directory is in the repository.
    pub path: &'a str,
    pub plan: &'a Plan,
}

/// Everything a commit changes: the clusters' policies, and the consumer
/// manifests (Flux, Argo CD) by repository path.
pub struct Changes<'a> {
    pub clusters: Vec<ClusterChanges<'a>>,
    pub manifests: Vec<(String, ChangeKind)>,
}

fn sign(kind: ChangeKind) -> char {
    match kind {
        ChangeKind::Add => '+',
        ChangeKind::Update => '~',
        ChangeKind::Remove => '-',
    }
}

fn label(c: &ClusterChanges) -> String {
    c.cluster.unwrap_or(c.path).to_owned()
}

fn object_name(change: &Change) -> String {
    match &change.identity {
        Some(id) => id.to_string(),
        None => change.path.clone(),
    }
}

/// `Update Kyverno policies for prod, staging`, then per cluster what was
/// added, updated and removed, then where the policies came from.
pub fn commit_message(changes: &Changes, source: &str) -> String {
    let changed: Vec<_> = changes
        .clusters
        .iter()
        .filter(|c| !c.plan.is_empty())
        .collect();
    let names: Vec<String> = changed.iter().map(|c| label(c)).collect();
    let mut msg = if names.is_empty() {
        "Update the Flux and Argo CD manifests of the Kyverno policies\n".to_owned()
    } else {
        format!("Update Kyverno policies for {}\n", names.join(", "))
    };
    for c in changed {
        let _ = write!(
            msg,
            "\n{} ({}): {} added, {} updated, {} removed\n",
            label(c),
            c.path,
            c.plan.objects(ChangeKind::Add).count(),
            c.plan.objects(ChangeKind::Update).count(),
            c.plan.objects(ChangeKind::Remove).count()
        );
        for kind in [ChangeKind::Add, ChangeKind::Update, ChangeKind::Remove] {
            for change in c.plan.objects(kind) {
                let _ = writeln!(msg, "  {} {}", sign(kind), object_name(change));
            }
        }
    }
    if !changes.manifests.is_empty() {
        msg.push_str("\nConsumer manifests:\n");
        for (path, kind) in &changes.manifests {
            let _ = writeln!(msg, "  {} {path}", sign(*kind));
        }
    }
    let _ = write!(
        msg,
        "\nSource: {source}\nRendered by insights-policy-render.\n"
    );
    msg
}

const ANNOTATIONS: [&str; 3] = [
    "policies.kyverno.io/title",
    "policies.kyverno.io/category",
    "policies.kyverno.io/severity",
];

/// The Kyverno annotations a reviewer looks for, read from a rendered file.
fn policy_annotations(bytes: &[u8]) -> [String; 3] {
    let annotations = parse_stream(bytes).ok().and_then(|docs| {
        let root = docs.into_iter().find_map(|d| d.root)?;
        root.get("metadata")?.get("annotations").cloned()
    });
    ANNOTATIONS.map(|key| {
        annotations
            .as_ref()
            .and_then(|a| a.get(key)?.as_str())
            .unwrap_or_default()
            .to_owned()
    })
}

/// [`policy_annotations`] of every change, in order. A first commit reads
/// back thousands of files, so they are parsed on every core.
fn annotations_of(changes: &[&Change]) -> Vec<[String; 3]> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = changes.len().div_ceil(threads).max(64);
    std::thread::scope(|scope| {
        let workers: Vec<_> = changes
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|change| {
                            let bytes = change.new.as_deref().or(change.old.as_deref());
                            policy_annotations(bytes.unwrap_or_default())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("an annotation reader panicked"))
            .collect()
    })
}

/// Markdown table cells must not break the table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A pull request description: per cluster, a table of what changes, with
/// each policy's title, category and severity when it declares them.
pub fn pr_body(changes: &Changes, source: &str) -> String {
    let mut md = String::from("## Kyverno policies from Fairwinds Insights\n\n");
    let _ = writeln!(md, "Source: {source}\n");
    for c in &changes.clusters {
        let _ = writeln!(md, "### {} (`{}`)\n", label(c), c.path);
        if c.plan.is_empty() {
            let _ = writeln!(
                md,
                "No changes ({} policies unchanged).\n",
                c.plan.unchanged
            );
            continue;
        }
        let _ = writeln!(
            md,
            "{} added, {} updated, {} removed, {} unchanged.\n",
            c.plan.objects(ChangeKind::Add).count(),
            c.plan.objects(ChangeKind::Update).count(),
            c.plan.objects(ChangeKind::Remove).count(),
            c.plan.unchanged
        );
        md.push_str("| change | kind | namespace | name | title | category | severity |\n");
        md.push_str("|---|---|---|---|---|---|---|\n");
        let rows: Vec<(&str, &Change)> = [
            (ChangeKind::Add, "added"),
            (ChangeKind::Update, "updated"),
            (ChangeKind::Remove, "**removed**"),
        ]
        .into_iter()
        .flat_map(|(kind, word)| c.plan.objects(kind).map(move |change| (word, change)))
        .collect();
        let changes: Vec<&Change> = rows.iter().map(|(_, change)| *change).collect();
        for ((word, change), [title, category, severity]) in
            rows.iter().zip(annotations_of(&changes))
        {
            let (k, ns, name) = match &change.identity {
                Some(id) => (
                    id.kind.kind().to_owned(),
                    id.namespace
                        .as_ref()
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    id.name.to_string(),
                ),
                None => (String::new(), String::new(), change.path.clone()),
            };
            let _ = writeln!(
                md,
                "| {word} | {} | {} | `{}` | {} | {} | {} |",
                cell(&k),
                cell(&ns),
                cell(&name),
                cell(&title),
                cell(&category),
                cell(&severity)
            );
        }
        md.push('\n');
    }
    if !changes.manifests.is_empty() {
        md.push_str("### Flux and Argo CD manifests\n\n");
        for (path, kind) in &changes.manifests {
            let word = match kind {
                ChangeKind::Add => "added",
                ChangeKind::Update => "updated",
                ChangeKind::Remove => "removed",
            };
            let _ = writeln!(md, "- {word} `{path}`");
        }
        md.push('\n');
    }
    md.push_str(
        "Removed policies are deleted from the cluster by Flux (`prune: true`) once this merges.\n",
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::render_response;
    use crate::plan::plan;

    #[test]
    fn message_and_pr_body_list_changes_with_annotations() {
        let (before, _) = render_response(b"apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: old\n  annotations:\n    policies.kyverno.io/title: Old One\n").unwrap();
        let (after, _) = render_response(b"apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: new\n  annotations:\n    policies.kyverno.io/title: New | One\n    policies.kyverno.io/severity: high\n").unwrap();
        let existing = before
            .files
            .into_iter()
            .map(|(p, f)| (p, crate::plan::Existing::File(f.bytes)))
            .collect();
        let p = plan(after, existing).unwrap();
        let changes = Changes {
            clusters: vec![ClusterChanges {
                cluster: Some("prod"),
                path: "kyverno-policies/prod",
                plan: &p,
            }],
            manifests: vec![(
                "clusters/prod/kyverno-policies.yaml".into(),
                ChangeKind::Add,
            )],
        };
        let msg = commit_message(&changes, "https://insights.example, organization acme");
        assert!(
            msg.contains("\nConsumer manifests:\n  + clusters/prod/kyverno-policies.yaml\n"),
            "{msg}"
        );
        assert!(msg.starts_with("Update Kyverno policies for prod\n\nprod (kyverno-policies/prod): 1 added, 0 updated, 1 removed\n  + ClusterPolicy.kyverno.io/new\n  - ClusterPolicy.kyverno.io/old\n"), "{msg}");
        let md = pr_body(&changes, "x");
        assert!(
            md.contains("| added | ClusterPolicy |  | `new` | New \\| One |  | high |"),
            "{md}"
        );
        assert!(
            md.contains("| **removed** | ClusterPolicy |  | `old` | Old One |  |  |"),
            "{md}"
        );
    }
}
