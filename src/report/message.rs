//! What a commit says about itself: the commit message, and the Markdown a
//! reviewer approves a pull request from. Pure text from plans.

use std::fmt::Write;

use rayon::prelude::*;

use crate::plan::{Change, ChangeKind, Plan};
use crate::report::admission::{code, describe, Admission, Note};

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
    /// What applies the rendered directories, as far as this run knows.
    pub appliers: Appliers,
}

/// The consumers whose manifests the run writes (`--flux`, `--argo`): the
/// text names only those, and stays neutral when there are none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appliers {
    pub flux: bool,
    pub argo: bool,
}

impl Appliers {
    fn names(self) -> Option<&'static str> {
        match (self.flux, self.argo) {
            (true, true) => Some("Flux and Argo CD"),
            (true, false) => Some("Flux"),
            (false, true) => Some("Argo CD"),
            (false, false) => None,
        }
    }

    fn manifests_heading(self) -> String {
        match self.names() {
            Some(n) => format!("{n} manifests"),
            None => "Consumer manifests".into(),
        }
    }

    /// What happens to a removed policy once the change merges.
    fn prune_sentence(self) -> &'static str {
        match (self.flux, self.argo) {
            (true, true) => "Removed policies are deleted from the cluster by Flux (`prune: true`) and by Argo CD (automated sync with prune) once this merges.\n",
            (true, false) => "Removed policies are deleted from the cluster by Flux (`prune: true`) once this merges.\n",
            (false, true) => "Removed policies are deleted from the cluster by Argo CD (automated sync with prune) once this merges.\n",
            (false, false) => "Removed policies leave the cluster once this merges only if whatever applies this directory prunes what leaves it.\n",
        }
    }
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
    match change.identity() {
        Some(id) => id.to_string(),
        None => change.path().to_owned(),
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
        match changes.appliers.names() {
            Some(n) => format!("Update the {n} manifests of the Kyverno policies\n"),
            None => "Update the manifests of the Kyverno policies\n".to_owned(),
        }
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

/// Text from a policy (a title, a message) made inert in Markdown on both
/// forges: no table break, no HTML, no `@mention` that notifies someone, no
/// emphasis or link syntax.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' | '\t' => out.push(' '),
            // A zero-width space between `@` and the name: it reads the
            // same and notifies nobody.
            '@' => out.push_str("@&#8203;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// `old → new` when they differ, the value alone when they do not.
fn transition(old: &str, new: &str, kind: ChangeKind) -> String {
    match kind {
        ChangeKind::Add => escape(new),
        ChangeKind::Remove => escape(old),
        ChangeKind::Update if old == new => escape(new),
        ChangeKind::Update => format!(
            "{} → **{}**",
            if old.is_empty() {
                "(none)".into()
            } else {
                escape(old)
            },
            if new.is_empty() {
                "(none)".into()
            } else {
                escape(new)
            }
        ),
    }
}

/// GitHub refuses a pull request body over 65,536 characters; GitLab's
/// limit is higher. Bytes are counted, which is never fewer.
pub const BODY_LIMIT: usize = 65_000;

/// A piece of the body. Essential pieces (headings, counts) are always
/// kept; the others (table rows, details) only while the body fits.
struct Piece {
    text: String,
    essential: bool,
}

#[derive(Default)]
struct Body {
    pieces: Vec<Piece>,
}

impl Body {
    fn must(&mut self, text: impl Into<String>) {
        self.pieces.push(Piece {
            text: text.into(),
            essential: true,
        });
    }
    fn may(&mut self, text: impl Into<String>) {
        self.pieces.push(Piece {
            text: text.into(),
            essential: false,
        });
    }

    /// The whole body, or, past `limit`, the essential pieces and as many
    /// others as fit, in order, with a notice of what was left out placed
    /// after the first piece.
    fn finish(self, limit: usize) -> String {
        let total: usize = self.pieces.iter().map(|p| p.text.len()).sum();
        if total <= limit {
            return self.pieces.into_iter().map(|p| p.text).collect();
        }
        let omitted_all = self.pieces.iter().filter(|p| !p.essential).count();
        let notice = |n: usize| {
            format!(
                "> **This description is summarised**: {n} of {omitted_all} lines of detail are left out to stay within the forges' limit of {limit} characters. The commit message lists every change, and `insights-policy-render diff` shows them in full.\n\n"
            )
        };
        let essential: usize = self
            .pieces
            .iter()
            .filter(|p| p.essential)
            .map(|p| p.text.len())
            .sum();
        let mut room = limit.saturating_sub(essential + notice(omitted_all).len());
        let mut keep = Vec::with_capacity(self.pieces.len());
        let mut omitted = 0;
        let mut full = false;
        for p in &self.pieces {
            if p.essential {
                keep.push(true);
            } else if !full && p.text.len() <= room {
                room -= p.text.len();
                keep.push(true);
            } else {
                // Once one is left out, later ones are too: no gaps in a
                // table that a reader would not notice.
                full = true;
                omitted += 1;
                keep.push(false);
            }
        }
        let mut out = String::with_capacity(limit);
        for (i, (p, k)) in self.pieces.into_iter().zip(keep).enumerate() {
            if k {
                out.push_str(&p.text);
            }
            if i == 0 {
                out.push_str(&notice(omitted));
            }
        }
        out
    }
}

/// A pull request description: first every change that starts blocking
/// requests, then per cluster a table of what changes (title, category,
/// severity and failure action, old → new for updates) and, for each
/// updated policy, what changed for admission.
pub fn pr_body(changes: &Changes, source: &str) -> String {
    pr_body_within(changes, source, BODY_LIMIT)
}

/// [`pr_body`] with another size limit (for tests).
pub fn pr_body_within(changes: &Changes, source: &str, limit: usize) -> String {
    struct Row<'a> {
        word: &'static str,
        change: &'a Change,
        old: &'a [String; 3],
        new: &'a [String; 3],
        admission: Admission,
    }
    const NONE: &[String; 3] = &[String::new(), String::new(), String::new()];
    // What the updated and removed files held, read back on every core
    // first (each is read once, then kept by the plan).
    changes
        .clusters
        .par_iter()
        .flat_map(|c| c.plan.changes.par_iter())
        .for_each(|change| {
            change.old_object();
        });
    let mut per_cluster: Vec<Vec<Row>> = Vec::new();
    for c in &changes.clusters {
        let rows: Vec<(&'static str, &Change)> = [
            (ChangeKind::Add, "added"),
            (ChangeKind::Update, "updated"),
            (ChangeKind::Remove, "**removed**"),
        ]
        .into_iter()
        .flat_map(|(kind, word)| c.plan.objects(kind).map(move |change| (word, change)))
        .collect();
        per_cluster.push(
            rows.into_iter()
                .map(|(word, change)| {
                    let (old, new) = (change.old_object(), change.new_object());
                    Row {
                        word,
                        change,
                        old: old.map_or(NONE, |o| &o.annotations),
                        new: new.map_or(NONE, |n| &n.annotations),
                        admission: describe(old.map(|o| &o.admission), new.map(|n| &n.admission)),
                    }
                })
                .collect(),
        );
    }

    let mut body = Body::default();
    body.must(format!(
        "## Kyverno policies from Fairwinds Insights\n\nSource: {}\n\n",
        escape(source)
    ));

    let blocking: Vec<(&ClusterChanges, &Row, &Note)> = changes
        .clusters
        .iter()
        .zip(&per_cluster)
        .flat_map(|(c, rows)| {
            rows.iter()
                .flat_map(move |r| r.admission.blocking().map(move |n| (c, r, n)))
        })
        .collect();
    if !blocking.is_empty() {
        body.must(format!(
            "### ⛔ Starts blocking requests ({})\n\nOnce this merges, these changes make the admission controller deny requests it lets through today:\n\n",
            blocking.len()
        ));
        for (c, r, note) in blocking {
            body.may(format!(
                "- ⛔ **{}** {} {}: {}\n",
                escape(&label(c)),
                r.word.trim_matches('*'),
                code(&object_name(r.change)),
                note.text
            ));
        }
        body.must("\n");
    }

    for (c, rows) in changes.clusters.iter().zip(&per_cluster) {
        body.must(format!("### {} ({})\n\n", escape(&label(c)), code(c.path)));
        if c.plan.is_empty() {
            body.must(format!(
                "No changes ({} policies unchanged).\n\n",
                c.plan.unchanged
            ));
            continue;
        }
        body.must(format!(
            "{} added, {} updated, {} removed, {} unchanged.\n\n",
            c.plan.objects(ChangeKind::Add).count(),
            c.plan.objects(ChangeKind::Update).count(),
            c.plan.objects(ChangeKind::Remove).count(),
            c.plan.unchanged
        ));
        body.must(
            "| change | kind | namespace | name | title | category | severity | failure action |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for r in rows {
            let (k, ns, name) = match r.change.identity() {
                Some(id) => (
                    id.kind.kind().to_owned(),
                    id.namespace
                        .as_ref()
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    id.name.to_string(),
                ),
                None => (String::new(), String::new(), r.change.path().to_owned()),
            };
            let kind = r.change.kind();
            let action = {
                let (old, new) = &r.admission.action;
                let old = old.as_deref().unwrap_or_default();
                let new = new.as_deref().unwrap_or_default();
                let text = transition(old, new, kind);
                if r.admission.blocking().next().is_some() {
                    format!("⛔ {text}")
                } else {
                    text
                }
            };
            body.may(format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.word,
                escape(&k),
                escape(&ns),
                code(&name),
                transition(&r.old[0], &r.new[0], kind),
                transition(&r.old[1], &r.new[1], kind),
                transition(&r.old[2], &r.new[2], kind),
                action
            ));
        }
        body.must("\n");
        let detailed: Vec<&Row> = rows
            .iter()
            .filter(|r| !r.admission.notes.is_empty())
            .collect();
        if !detailed.is_empty() {
            // Details go only while the body fits, their heading with them.
            body.may("What changes for admission:\n\n");
            for r in detailed {
                let mut item = format!(
                    "- {} {}\n",
                    r.word.trim_matches('*'),
                    code(&object_name(r.change))
                );
                for note in &r.admission.notes {
                    let mark = if note.blocking { "⛔ " } else { "" };
                    let _ = writeln!(item, "  - {mark}{}", note.text);
                }
                body.may(item);
            }
            body.may("\n");
        }
    }
    if !changes.manifests.is_empty() {
        body.must(format!("### {}\n\n", changes.appliers.manifests_heading()));
        for (path, kind) in &changes.manifests {
            let word = match kind {
                ChangeKind::Add => "added",
                ChangeKind::Update => "updated",
                ChangeKind::Remove => "removed",
            };
            body.may(format!("- {word} {}\n", code(path)));
        }
        body.must("\n");
    }
    body.must(changes.appliers.prune_sentence());
    body.finish(limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::render_response;
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
            appliers: Appliers {
                flux: true,
                argo: false,
            },
        };
        let msg = commit_message(&changes, "https://insights.example, organization acme");
        assert!(
            msg.contains("\nConsumer manifests:\n  + clusters/prod/kyverno-policies.yaml\n"),
            "{msg}"
        );
        assert!(msg.starts_with("Update Kyverno policies for prod\n\nprod (kyverno-policies/prod): 1 added, 0 updated, 1 removed\n  + ClusterPolicy.kyverno.io/new\n  - ClusterPolicy.kyverno.io/old\n"), "{msg}");
        let md = pr_body(&changes, "x");
        assert!(
            md.contains("| added | ClusterPolicy |  | `new` | New \\| One |  | high | Audit |"),
            "{md}"
        );
        assert!(
            md.contains("| **removed** | ClusterPolicy |  | `old` | Old One |  |  | Audit |"),
            "{md}"
        );
    }
}
