//! GitHub's REST API (api.github.com and GitHub Enterprise Server's
//! `/api/v3`): pulls/list, pulls/create, pulls/update, issues/add-labels,
//! pulls/request-reviewers.

use reqwest::Method;
use serde_json::{json, Value};

use super::config::{ForgeConfig, ForgeError};
use super::http::Client;
use super::proposal::{same_text, Action, BranchState, Proposal, Synced};

/// What an error adds: the permission the token lacks for this operation,
/// or the repository setting that refuses it.
fn hint<'a>(config: &'a ForgeConfig, scope: &'static str) -> impl Fn(u16, &str) -> String + 'a {
    move |status, message| {
        match status {
        401 => format!(
            " (the token from {} was refused: expired, revoked or mistyped?)",
            config.token_source
        ),
        403 if message.contains("GitHub Actions is not permitted to create or approve pull requests") => {
            " (the repository, or its organization, does not let workflows open pull requests: turn on Settings → Actions → General → Workflow permissions → \"Allow GitHub Actions to create and approve pull requests\", or use a GitHub App or fine-grained token with Pull requests: Read and write)".to_owned()
        }
        403 => format!(
            " (the token from {} lacks the permission: a workflow needs `permissions: {scope}`; a fine-grained token needs {} on {})",
            config.token_source,
            if scope.starts_with("issues") { "Issues: Read and write (or Pull requests: Read and write)" } else if scope.ends_with("read") { "Pull requests: Read" } else { "Pull requests: Read and write" },
            config.repo
        ),
        404 => format!(
            " (repository {} not found, or the token from {} cannot see it: check --forge-repo and that the token has `{scope}`)",
            config.repo, config.token_source
        ),
        422 => " (GitHub refused the request as sent: see its message)".to_owned(),
        _ => String::new(),
    }
    }
}

fn number(pr: &Value) -> Option<u64> {
    pr.get("number").and_then(Value::as_u64)
}

fn url(pr: &Value) -> Option<String> {
    pr.get("html_url")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn bad(operation: &str, message: &str) -> ForgeError {
    ForgeError::Response {
        forge: "GitHub",
        operation: operation.to_owned(),
        message: message.to_owned(),
    }
}

pub async fn sync(
    client: &Client,
    config: &ForgeConfig,
    p: &Proposal<'_>,
) -> Result<Synced, ForgeError> {
    let (owner, name) = config
        .repo
        .split_once('/')
        .expect("checked to be OWNER/NAME");
    let head = format!("{owner}:{}", p.head);
    let op = format!("list the open pull requests of {}", p.head);
    let list = client
        .send(
            Method::GET,
            client.url(
                &["repos", owner, name, "pulls"],
                &[
                    ("state", "open"),
                    ("head", &head),
                    ("base", p.base),
                    ("per_page", "100"),
                ],
            ),
            None,
            &op,
            &[],
            &hint(config, "pull-requests: read"),
        )
        .await?;
    let pulls = list.json.as_array().ok_or_else(|| bad(&op, "not a list"))?;
    let open = pulls.iter().find(|pr| {
        pr.pointer("/head/ref").and_then(Value::as_str) == Some(p.head)
            && pr.pointer("/base/ref").and_then(Value::as_str) == Some(p.base)
    });

    let pull_url = |n: u64| client.url(&["repos", owner, name, "pulls", &n.to_string()], &[]);
    match (p.state, open) {
        (BranchState::Deleted, None) => Ok(Synced {
            action: Action::None,
            number: None,
            url: None,
        }),
        (BranchState::Deleted, Some(pr)) => {
            let n = number(pr).ok_or_else(|| bad(&op, "a pull request without a number"))?;
            client
                .send(
                    Method::PATCH,
                    pull_url(n),
                    Some(&json!({ "state": "closed" })),
                    &format!(
                        "close pull request #{n} (Insights matches {} again)",
                        p.base
                    ),
                    &[],
                    &hint(config, "pull-requests: write"),
                )
                .await?;
            Ok(Synced {
                action: Action::Closed,
                number: Some(n),
                url: url(pr),
            })
        }
        (_, None) => {
            let op = format!("open a pull request from {} into {}", p.head, p.base);
            let created = client
                .send(
                    Method::POST,
                    client.url(&["repos", owner, name, "pulls"], &[]),
                    Some(&json!({
                        "title": p.title,
                        "head": p.head,
                        "base": p.base,
                        "body": p.body,
                        "draft": p.draft,
                    })),
                    &op,
                    &[],
                    &hint(config, "pull-requests: write"),
                )
                .await?;
            let n = number(&created.json).ok_or_else(|| bad(&op, "no number in the answer"))?;
            let synced = Synced {
                action: Action::Opened,
                number: Some(n),
                url: url(&created.json),
            };
            add_labels(client, config, owner, name, n, p.labels).await?;
            let (teams, users): (Vec<&str>, Vec<&str>) = p
                .reviewers
                .iter()
                .map(String::as_str)
                .partition(|r| r.contains('/'));
            if !p.reviewers.is_empty() {
                let teams: Vec<&str> = teams
                    .iter()
                    .map(|t| t.rsplit_once('/').map_or(*t, |(_, slug)| slug))
                    .collect();
                client
                    .send(
                        Method::POST,
                        client.url(
                            &[
                                "repos",
                                owner,
                                name,
                                "pulls",
                                &n.to_string(),
                                "requested_reviewers",
                            ],
                            &[],
                        ),
                        Some(&json!({ "reviewers": users, "team_reviewers": teams })),
                        &format!("request reviews on pull request #{n}"),
                        &[],
                        &hint(config, "pull-requests: write"),
                    )
                    .await?;
            }
            Ok(synced)
        }
        (_, Some(pr)) => {
            let n = number(pr).ok_or_else(|| bad(&op, "a pull request without a number"))?;
            let mut action = Action::Unchanged;
            let title = pr.get("title").and_then(Value::as_str).unwrap_or_default();
            let body = pr.get("body").and_then(Value::as_str).unwrap_or_default();
            if !same_text(title, p.title) || !same_text(body, p.body) {
                client
                    .send(
                        Method::PATCH,
                        pull_url(n),
                        Some(&json!({ "title": p.title, "body": p.body })),
                        &format!("update pull request #{n}"),
                        &[],
                        &hint(config, "pull-requests: write"),
                    )
                    .await?;
                action = Action::Updated;
            }
            let has: Vec<&str> = pr
                .get("labels")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|l| l.get("name").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            let missing: Vec<String> = p
                .labels
                .iter()
                .filter(|l| !has.contains(&l.as_str()))
                .cloned()
                .collect();
            if !missing.is_empty() {
                add_labels(client, config, owner, name, n, &missing).await?;
                action = Action::Updated;
            }
            Ok(Synced {
                action,
                number: Some(n),
                url: url(pr),
            })
        }
    }
}

async fn add_labels(
    client: &Client,
    config: &ForgeConfig,
    owner: &str,
    name: &str,
    n: u64,
    labels: &[String],
) -> Result<(), ForgeError> {
    if labels.is_empty() {
        return Ok(());
    }
    client
        .send(
            Method::POST,
            client.url(
                &["repos", owner, name, "issues", &n.to_string(), "labels"],
                &[],
            ),
            Some(&json!({ "labels": labels })),
            &format!("label pull request #{n}"),
            &[],
            &hint(config, "issues: write"),
        )
        .await?;
    Ok(())
}
