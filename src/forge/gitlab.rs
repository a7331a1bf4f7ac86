//! GitLab's REST API (gitlab.com and self-managed `/api/v4`): list, create
//! and update merge requests, and look up reviewers' user ids. Deleting the
//! source branch does not close a merge request: closing is explicit.

use reqwest::Method;
use serde_json::{json, Value};

use super::config::{ForgeConfig, ForgeError};
use super::http::Client;
use super::proposal::{same_text, Action, BranchState, Proposal, Synced};

fn hint(config: &ForgeConfig) -> impl Fn(u16, &str) -> String + '_ {
    move |status, _message| {
        match status {
        401 => format!(
            " (the token from {} was refused: expired, revoked, or without the `api` scope?)",
            config.token_source
        ),
        403 => format!(
            " (the token from {} lacks the permission: it needs the `api` scope and at least the Developer role in {}; CI_JOB_TOKEN cannot open merge requests)",
            config.token_source, config.repo
        ),
        404 => format!(
            " (project {} not found, or the token from {} cannot see it: check --forge-repo)",
            config.repo, config.token_source
        ),
        409 => " (another open merge request already exists for this branch)".to_owned(),
        _ => String::new(),
    }
    }
}

const DRAFT: &str = "Draft: ";

fn strip_draft(title: &str) -> &str {
    title.strip_prefix(DRAFT).unwrap_or(title)
}

fn bad(operation: &str, message: &str) -> ForgeError {
    ForgeError::Response {
        forge: "GitLab",
        operation: operation.to_owned(),
        message: message.to_owned(),
    }
}

pub async fn sync(
    client: &Client,
    config: &ForgeConfig,
    p: &Proposal<'_>,
) -> Result<Synced, ForgeError> {
    let project = config.repo.as_str();
    let op = format!("list the open merge requests of {}", p.head);
    let list = client
        .send(
            Method::GET,
            client.url(
                &["projects", project, "merge_requests"],
                &[
                    ("source_branch", p.head),
                    ("target_branch", p.base),
                    ("state", "opened"),
                ],
            ),
            None,
            &op,
            &[],
            &hint(config),
        )
        .await?;
    let mrs = list.json.as_array().ok_or_else(|| bad(&op, "not a list"))?;
    let open = mrs.iter().find(|mr| {
        mr.get("source_branch").and_then(Value::as_str) == Some(p.head)
            && mr.get("target_branch").and_then(Value::as_str) == Some(p.base)
    });
    let iid_of = |mr: &Value| {
        mr.get("iid")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad(&op, "a merge request without an iid"))
    };
    let url = |mr: &Value| mr.get("web_url").and_then(Value::as_str).map(str::to_owned);
    let mr_url = |iid: u64| {
        client.url(
            &["projects", project, "merge_requests", &iid.to_string()],
            &[],
        )
    };

    match (p.state, open) {
        (BranchState::Deleted, None) => Ok(Synced {
            action: Action::None,
            number: None,
            url: None,
        }),
        (BranchState::Deleted, Some(mr)) => {
            let iid = iid_of(mr)?;
            client
                .send(
                    Method::PUT,
                    mr_url(iid),
                    Some(&json!({ "state_event": "close" })),
                    &format!(
                        "close merge request !{iid} (Insights matches {} again)",
                        p.base
                    ),
                    &[],
                    &hint(config),
                )
                .await?;
            Ok(Synced {
                action: Action::Closed,
                number: Some(iid),
                url: url(mr),
            })
        }
        (_, None) => {
            let mut reviewer_ids = Vec::new();
            for username in p.reviewers {
                reviewer_ids.push(user_id(client, config, username).await?);
            }
            let title = if p.draft {
                format!("{DRAFT}{}", p.title)
            } else {
                p.title.to_owned()
            };
            let mut body = json!({
                "source_branch": p.head,
                "target_branch": p.base,
                "title": title,
                "description": p.body,
                "remove_source_branch": true,
            });
            if !p.labels.is_empty() {
                body["labels"] = json!(p.labels.join(","));
            }
            if !reviewer_ids.is_empty() {
                body["reviewer_ids"] = json!(reviewer_ids);
            }
            let op = format!("open a merge request from {} into {}", p.head, p.base);
            let created = client
                .send(
                    Method::POST,
                    client.url(&["projects", project, "merge_requests"], &[]),
                    Some(&body),
                    &op,
                    &[],
                    &hint(config),
                )
                .await?;
            let iid = created
                .json
                .get("iid")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(&op, "no iid in the answer"))?;
            Ok(Synced {
                action: Action::Opened,
                number: Some(iid),
                url: url(&created.json),
            })
        }
        (_, Some(mr)) => {
            let iid = iid_of(mr)?;
            let title = mr.get("title").and_then(Value::as_str).unwrap_or_default();
            let description = mr
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let has: Vec<&str> = mr
                .get("labels")
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let missing: Vec<&str> = p
                .labels
                .iter()
                .map(String::as_str)
                .filter(|l| !has.contains(l))
                .collect();
            let mut update = serde_json::Map::new();
            if !same_text(strip_draft(title), p.title) {
                // Whatever a person made of the draft state stays.
                let keep = if title.starts_with(DRAFT) { DRAFT } else { "" };
                update.insert("title".into(), json!(format!("{keep}{}", p.title)));
            }
            if !same_text(description, p.body) {
                update.insert("description".into(), json!(p.body));
            }
            if !missing.is_empty() {
                update.insert("add_labels".into(), json!(missing.join(",")));
            }
            let action = if update.is_empty() {
                Action::Unchanged
            } else {
                client
                    .send(
                        Method::PUT,
                        mr_url(iid),
                        Some(&Value::Object(update)),
                        &format!("update merge request !{iid}"),
                        &[],
                        &hint(config),
                    )
                    .await?;
                Action::Updated
            };
            Ok(Synced {
                action,
                number: Some(iid),
                url: url(mr),
            })
        }
    }
}

/// A reviewer's user id (merge requests take ids, not names).
async fn user_id(client: &Client, config: &ForgeConfig, username: &str) -> Result<u64, ForgeError> {
    let username = username.trim_start_matches('@');
    let op = format!("look up reviewer {username}");
    let found = client
        .send(
            Method::GET,
            client.url(&["users"], &[("username", username)]),
            None,
            &op,
            &[],
            &hint(config),
        )
        .await?;
    found
        .json
        .as_array()
        .and_then(|users| users.first())
        .and_then(|u| u.get("id"))
        .and_then(Value::as_u64)
        .ok_or_else(|| ForgeError::Api {
            forge: "GitLab",
            operation: op,
            status: 200,
            message: format!("no user {username:?}"),
            hint: " (check --pr-reviewer)".into(),
        })
}
