//! `commit`: the rendered directories as a commit in a policy repository,
//! on the checked-out branch, a base branch or a bot branch, pushed if
//! asked, with its pull request.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::cli::CommitArgs;
use crate::commands::steps::finish;
use crate::commands::targets::{append, changes, git_for, render_targets, summarise};
use crate::error::Error;
use crate::forge::{self, Action, BranchState, Proposal};
use crate::plan::Plan;
use crate::report::message::{self, Appliers};
use crate::report::summary::PullRequestSummary;
use crate::sink;
use crate::sink::git::CommitOptions;

pub fn commit_command(args: CommitArgs) -> Result<u8, Error> {
    // The repository and the author are checked before any request.
    let consumers = args.consumers.consumers().map_err(Error::Usage)?;
    let repository = sink::git::open(&args.repo.repo)?;
    let sig = sink::git::signature(&repository, args.author.as_deref())?;
    // --pull-request: the forge, repository and token are checked before
    // any request, from the push remote's URL and the flags.
    let remote_url = repository
        .find_remote(&args.repo.remote)
        .ok()
        .and_then(|r| r.pushurl().or(r.url()).map(str::to_owned));
    let forge = args.forge.config(remote_url.as_deref())?;
    let (targets, failures, description) = render_targets(&args.source, &args.repo, &consumers)?;
    // Taken once the input is known good, so a refused run leaves even the
    // git directory untouched. Held to the end of the run, and by every git
    // process the run starts; what a killed run left is put right before
    // anything is planned against HEAD.
    let lock = crate::sink::git::worktree::lock(&repository)?;
    let transport = crate::sink::git::cli::Transport {
        ssh_key: args.ssh_key.clone(),
        ssh_passphrase_file: args.ssh_key_passphrase_file.clone(),
        ca_file: args.source.ca_file.clone(),
        token_username: args.git_username.clone(),
    };
    let git = git_for(&repository, &transport)?.with_lock_fd(lock.fd());
    crate::sink::git::worktree::recover(&repository, &git)?;

    let appliers = Appliers {
        flux: consumers.flux.is_some(),
        argo: consumers.argo.is_some(),
    };
    let message =
        |plans: &[Plan]| message::commit_message(&changes(&targets, plans, appliers), &description);
    let options = CommitOptions {
        branch: args.branch.as_deref(),
        base: args.repo.base.as_deref(),
        remote: &args.repo.remote,
        push: args.push,
        max_push_attempts: args.push_attempts.max(1),
        sign: sink::git::wants_signing(&git, args.sign),
        limits: args.safety.limits(),
        message: &message,
    };
    let committed = sink::git::commit(&repository, &git, &sig, &targets, &options)?;
    let branch = committed.branch.trim_start_matches("refs/heads/");
    let said = match (committed.commit, committed.bot) {
        (Some(id), _) if committed.reused => {
            format!("{branch} already holds these changes in {id}: no new commit, nothing pushed")
        }
        (Some(id), _) => format!(
            "committed {id} on {branch}{}",
            if args.push { " and pushed" } else { "" }
        ),
        (None, Some(sink::git::BotBranch::Deleted)) => format!(
            "nothing changed from the base: {branch} deleted{}",
            if args.push {
                " on the remote, which withdraws its pull request"
            } else {
                ""
            }
        ),
        (None, _) => format!("nothing changed: no commit on {branch}"),
    };
    crate::terminal::logging::print_info(&said);

    // The body reads every changed policy's annotations back from its file:
    // worth doing only when something will show it.
    let step_summary = std::env::var_os("GITHUB_STEP_SUMMARY").map(PathBuf::from);
    let body = (args.pr_body_file.is_some() || step_summary.is_some() || forge.is_some())
        .then(|| message::pr_body(&changes(&targets, &committed.plans, appliers), &description));
    if let (Some(path), Some(body)) = (&args.pr_body_file, &body) {
        std::fs::write(path, body).map_err(|source| {
            Error::Output(crate::sink::dir::OutputError {
                action: "write",
                path: path.clone(),
                source,
            })
        })?;
    }

    // ---- Pull request (forge::sync), after the commit and the push. ----
    // What the git side did to the bot branch decides what happens to its
    // pull request: a new commit (updated), the same commit kept
    // (unchanged), or nothing to propose because the rendered files match
    // the base (deleted: any open pull request is closed).
    let pull_request = match (&forge, args.branch.as_deref(), &body) {
        (Some(config), Some(head), Some(body)) => {
            // Nothing to propose closes any open pull request, whether the
            // branch was deleted now or was already gone.
            let state = match (committed.bot, committed.commit) {
                (Some(sink::git::BotBranch::Updated), _) => BranchState::Updated,
                (Some(sink::git::BotBranch::Unchanged), Some(_)) => BranchState::Unchanged,
                _ => BranchState::Deleted,
            };
            let base = match args.repo.base.as_deref() {
                Some(b) => b.to_owned(),
                None => match sink::git::head(&repository)? {
                    sink::git::Head::Branch { name, .. } => {
                        name.trim_start_matches("refs/heads/").to_owned()
                    }
                    sink::git::Head::Detached(_) => {
                        return Err(Error::Usage(
                            "--pull-request on a detached HEAD needs --base, the branch the pull request targets".into(),
                        ))
                    }
                },
            };
            let title = message(&committed.plans)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            let proposal = Proposal {
                head,
                base: &base,
                title: &title,
                body,
                labels: &args.forge.pr_label,
                reviewers: &args.forge.pr_reviewer,
                draft: args.forge.pr_draft,
                state,
            };
            let done = match (committed.commit, state) {
                (Some(id), BranchState::Updated) => format!("pushed {id} to {head}"),
                (Some(id), _) => format!("{head} already holds these changes ({id})"),
                (None, _) => format!("nothing to propose on {head}"),
            };
            Some((forge::sync(config, &proposal), done))
        }
        _ => None,
    };
    if let Some((Ok(synced), _)) = &pull_request {
        let word = forge.as_ref().map_or("", |f| f.kind.request_word());
        match (&synced.url, synced.action) {
            (_, Action::None) => {
                crate::terminal::logging::print_info(&format!("no open {word} to close"))
            }
            (Some(url), action) => {
                crate::terminal::logging::print_info(&format!("{word} {}: {url}", action.as_str()))
            }
            (None, action) => {
                crate::terminal::logging::print_info(&format!("{word} {}", action.as_str()))
            }
        }
    }
    let synced = match &pull_request {
        Some((Ok(s), _)) => Some(s.clone()),
        _ => None,
    };

    if let Some(path) = std::env::var_os("GITHUB_OUTPUT").map(PathBuf::from) {
        let sha = committed.commit.map(|c| c.to_string()).unwrap_or_default();
        // `changed`: the rendered policies differ from the base (a commit
        // landed, or a pull request proposes one); `bot_branch` says what
        // this run did to the bot branch.
        let mut out = format!("changed={}\ncommit={sha}\n", committed.commit.is_some());
        if let Some(bot) = committed.bot {
            let _ = writeln!(out, "bot_branch={}", bot.as_str());
        }
        match (&synced, &pull_request) {
            (Some(s), _) => {
                let _ = write!(
                    out,
                    "pr_url={}\npr_number={}\npr_action={}\n",
                    s.url.as_deref().unwrap_or_default(),
                    s.number.map(|n| n.to_string()).unwrap_or_default(),
                    s.action.as_str()
                );
            }
            (None, Some(_)) => out.push_str("pr_action=failed\n"),
            (None, None) => {}
        }
        append(&path, &out)?;
    }
    if let (Some(path), Some(body)) = (step_summary, &body) {
        append(&path, body)?;
    }
    let mut summary = summarise(&targets, &committed.plans);
    if let Some(id) = committed.commit {
        summary.commit = Some(id.to_string());
        summary.branch = Some(branch.to_owned());
    }
    summary.bot_branch = committed.bot.map(|b| b.as_str().to_owned());
    summary.pull_request = match (synced, &pull_request) {
        (Some(s), _) => Some(PullRequestSummary {
            action: s.action.as_str().to_owned(),
            number: s.number,
            url: s.url,
            error: None,
        }),
        (None, Some((Err(e), _))) => Some(PullRequestSummary {
            action: "failed".into(),
            number: None,
            url: None,
            error: Some(e.to_string()),
        }),
        _ => None,
    };
    let code = finish(args.summary_file.as_deref(), summary, failures)?;
    match pull_request {
        Some((Err(source), done)) => Err(Error::PullRequest { done, source }),
        _ => Ok(code),
    }
}
