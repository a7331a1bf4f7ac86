//! The report of a run: a JSON file for pipelines (`--summary-file`) and a
//! one-line count for people on stderr.

use serde::Serialize;

use crate::model::identity::Identity;
use crate::plan::{ChangeKind, Plan};

/// The whole run. The shape is documented in docs/commands.md; add fields, never
/// rename or remove them.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub clusters: Vec<ClusterSummary>,
    /// `commit`: the commit the run made or kept on the branch, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `commit`: the branch that commit is on, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// `commit --branch`: what the run did to the bot branch (`updated`,
    /// `unchanged`, `deleted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_branch: Option<String>,
    /// `commit --pull-request`: the pull or merge request and what the run
    /// did to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestSummary>,
}

/// The pull request (GitHub) or merge request (GitLab) of the bot branch.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PullRequestSummary {
    /// `opened`, `updated`, `unchanged`, `closed`, `none` (nothing open
    /// and nothing to propose), or `failed` with `error` set.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterSummary {
    /// `None` when the source names no cluster (`--from-file`).
    pub cluster: Option<String>,
    /// `ok`, or `failed` with `error` set (only under `--keep-going`).
    pub status: Status,
    pub added: Vec<ObjectFile>,
    pub updated: Vec<ObjectFile>,
    pub removed: Vec<ObjectFile>,
    pub unchanged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
}

/// An object and the file that holds it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ObjectFile {
    #[serde(flatten)]
    pub identity: Option<Identity>,
    pub file: String,
}

impl ClusterSummary {
    pub fn from_plan(cluster: Option<String>, plan: &Plan) -> Self {
        let refs = |kind| {
            plan.objects(kind)
                .map(|c| ObjectFile {
                    identity: c.identity().cloned(),
                    file: c.path().to_owned(),
                })
                .collect()
        };
        ClusterSummary {
            cluster,
            status: Status::Ok,
            added: refs(ChangeKind::Add),
            updated: refs(ChangeKind::Update),
            removed: refs(ChangeKind::Remove),
            unchanged: plan.unchanged,
            error: None,
        }
    }

    pub fn failed(cluster: Option<String>, error: String) -> Self {
        ClusterSummary {
            cluster,
            status: Status::Failed,
            added: Vec::new(),
            updated: Vec::new(),
            removed: Vec::new(),
            unchanged: 0,
            error: Some(error),
        }
    }

    /// `prod: 2 added, ...`, or `prod: failed: ...`.
    pub fn human_line(&self) -> String {
        let mut out = String::new();
        if let Some(name) = &self.cluster {
            out.push_str(name);
            out.push_str(": ");
        }
        match &self.error {
            Some(e) => out.push_str(&format!("failed: {e}")),
            None => out.push_str(&self.counts_line()),
        }
        out
    }

    /// The counts as fields of a JSON log line.
    pub fn log_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("cluster".into(), self.cluster.clone().into());
        fields.insert(
            "status".into(),
            serde_json::to_value(self.status).expect("a status serialises"),
        );
        fields.insert("added".into(), self.added.len().into());
        fields.insert("updated".into(), self.updated.len().into());
        fields.insert("removed".into(), self.removed.len().into());
        fields.insert("unchanged".into(), self.unchanged.into());
        fields
    }

    /// `2 added, 1 updated, 0 removed, 40 unchanged`.
    pub fn counts_line(&self) -> String {
        format!(
            "{} added, {} updated, {} removed, {} unchanged",
            self.added.len(),
            self.updated.len(),
            self.removed.len(),
            self.unchanged
        )
    }
}

impl Summary {
    /// The human summary: one line per cluster, prefixed with its name when
    /// there is one.
    pub fn human(&self) -> String {
        let mut out = String::new();
        for c in &self.clusters {
            out.push_str(&c.human_line());
            out.push('\n');
        }
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the summary is always serialisable") + "\n"
    }
}
