//! `commit` and `diff`: the rendered directories as a commit in a policy
//! repository, or as the diff a reviewer would read.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{CommitArgs, DiffArgs, RepoArgs, SourceArgs};
use crate::commands::{finish, load_schemas, render_all};
use crate::error::{exit, Error};
use crate::forge::{self, Action, BranchState, Proposal};
use crate::manifests::{ClusterDir, Consumers};
use crate::plan::Plan;
use crate::report::message::{self as report, Appliers, Changes, ClusterChanges};
use crate::report::summary::{ClusterSummary, PullRequestSummary, Summary};
use crate::sink::git::{self as repo, CommitOptions, Role, Target};
use crate::source::Source;

/// The repository path of each cluster's directory, checked before anything
/// is fetched.
fn target_paths(template: &str, labels: &[Option<String>]) -> Result<Vec<String>, Error> {
    if labels.len() > 1 && !template.contains("{cluster}") {
        return Err(Error::Usage(format!(
            "--path {template:?} has no {{cluster}}: several clusters would share one directory"
        )));
    }
    labels
        .iter()
        .map(|label| {
            let path = match label {
                Some(name) => {
                    crate::source::check_cluster_dir_name(name)?;
                    template.replace("{cluster}", name)
                }
                None if template.contains("{cluster}") => {
                    return Err(Error::Usage(format!(
                        "--path {template:?} needs a cluster name: with --from-file, name it with --cluster"
                    )))
                }
                None => template.to_owned(),
            };
            let path = crate::manifests::repo_relative(&path)
                .map_err(|e| Error::Usage(format!("--path {e}")))?;
            Ok(path)
        })
        .collect()
}

/// The clusters of a source, with a `--from-file` response named by the
/// first `--cluster`, if any.
fn labels(source: &Source, args: &SourceArgs) -> Vec<Option<String>> {
    match source {
        Source::File(_) => vec![args.clusters.first().cloned()],
        Source::Insights { .. } => source.clusters(),
    }
}

fn describe(source: &Source) -> String {
    match source {
        Source::File(path) => format!("file {}", path.display()),
        Source::Insights { config, .. } => {
            format!(
                "{}, organization {}",
                config.host.trim_end_matches('/'),
                config.org
            )
        }
    }
}

/// Fetches and renders; returns the targets and the clusters that failed.
fn render_targets(
    source_args: &SourceArgs,
    repo_args: &RepoArgs,
    consumers: &Consumers,
) -> Result<(Vec<Target>, crate::commands::Failures, String), Error> {
    let source = Source::from_args(source_args)?;
    let labels = labels(&source, source_args);
    let paths = target_paths(&repo_args.path, &labels)?;
    consumers
        .check_layout(&labels, &paths, &repo_args.path)
        .map_err(Error::Usage)?;
    if let Some(argo) = &consumers.argo {
        // The working tree stands for the branch the commit goes on.
        let existing = crate::sink::dir::read_existing(&repo_args.repo.join(&argo.dir))?;
        consumers
            .check_argo_switch(&existing)
            .map_err(Error::Usage)?;
    }
    let description = describe(&source);
    let is_file = matches!(source, Source::File(_));
    let schemas = load_schemas(source_args)?;
    let (trees, failures) = render_all(source.read()?, source_args.keep_going, schemas.as_ref())?;
    let targets = trees
        .into_iter()
        .map(|(cluster, tree)| {
            let cluster = if is_file { labels[0].clone() } else { cluster };
            let at = labels
                .iter()
                .position(|l| *l == cluster)
                .expect("a known cluster");
            Target {
                cluster,
                path: paths[at].clone(),
                tree,
                role: Role::Policies,
            }
        })
        .collect();
    let targets = with_consumers(targets, consumers, &repo_args.path)?;
    Ok((targets, failures, description))
}

/// The policy targets followed by the consumer files' directories.
fn with_consumers(
    mut targets: Vec<Target>,
    consumers: &Consumers,
    path_template: &str,
) -> Result<Vec<Target>, Error> {
    if consumers.is_empty() {
        return Ok(targets);
    }
    let rendered: Vec<_> = targets
        .iter()
        .map(|t| ClusterDir {
            cluster: t.cluster.as_deref(),
            path: &t.path,
            kinds: t.tree.kinds(),
        })
        .collect();
    let trees = consumers
        .trees(&rendered, path_template)
        .map_err(Error::Usage)?;
    targets.extend(trees.into_iter().map(|(path, tree)| Target {
        cluster: None,
        path,
        tree,
        role: Role::Consumer,
    }));
    Ok(targets)
}

fn changes<'a>(targets: &'a [Target], plans: &'a [Plan], appliers: Appliers) -> Changes<'a> {
    let mut changes = Changes {
        clusters: Vec::new(),
        manifests: Vec::new(),
        appliers,
    };
    for (t, plan) in targets.iter().zip(plans) {
        match t.role {
            Role::Policies => changes.clusters.push(ClusterChanges {
                cluster: t.cluster.as_deref(),
                path: &t.path,
                plan,
            }),
            Role::Consumer => changes.manifests.extend(
                plan.changes
                    .iter()
                    .map(|c| (format!("{}/{}", t.path, c.path), c.kind)),
            ),
        }
    }
    changes
}

/// The summary counts policies; consumer manifests are not policies.
///
/// `commit` and `diff` both call this once their plans are known, so it is
/// also where the files in a rendered directory that the tool did not write
/// are warned of (see [`crate::plan::warn_foreign`]).
fn summarise(targets: &[Target], plans: &[Plan]) -> Summary {
    for (target, plan) in targets.iter().zip(plans) {
        if target.role == Role::Policies {
            crate::plan::warn_foreign(&target.path, plan);
        }
    }
    Summary {
        clusters: targets
            .iter()
            .zip(plans)
            .filter(|(t, _)| t.role == Role::Policies)
            .map(|(t, p)| ClusterSummary::from_plan(t.cluster.clone(), p))
            .collect(),
        ..Summary::default()
    }
}

fn append(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| {
            Error::Output(crate::sink::dir::OutputError {
                action: "append to",
                path: path.to_owned(),
                source,
            })
        })
}

/// The git command line for `repository`, with the transport settings of
/// the command line and environment.
fn git_for(
    repository: &git2::Repository,
    transport: &crate::sink::git::cli::Transport,
) -> Result<crate::sink::git::cli::Git, Error> {
    let state = crate::sink::git::worktree::state_dir(repository);
    std::fs::create_dir_all(&state).map_err(|source| {
        Error::Output(crate::sink::dir::OutputError {
            action: "create",
            path: state.clone(),
            source,
        })
    })?;
    let dir = repository.workdir().unwrap_or(repository.path());
    Ok(crate::sink::git::cli::Git::new(dir, &state, transport)?)
}

pub fn commit_command(args: CommitArgs) -> Result<u8, Error> {
    // The repository and the author are checked before any request.
    let consumers = args.consumers.consumers().map_err(Error::Usage)?;
    let repository = repo::open(&args.repo.repo)?;
    let sig = repo::signature(&repository, args.author.as_deref())?;
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
        |plans: &[Plan]| report::commit_message(&changes(&targets, plans, appliers), &description);
    let options = CommitOptions {
        branch: args.branch.as_deref(),
        base: args.repo.base.as_deref(),
        remote: &args.repo.remote,
        push: args.push,
        max_push_attempts: args.push_attempts.max(1),
        sign: repo::wants_signing(&git, args.sign),
        limits: args.safety.limits(),
        message: &message,
    };
    let committed = repo::commit(&repository, &git, &sig, &targets, &options)?;
    let branch = committed.branch.trim_start_matches("refs/heads/");
    let said = match (committed.commit, committed.bot) {
        (Some(id), _) if committed.reused => {
            format!("{branch} already holds these changes in {id}: no new commit, nothing pushed")
        }
        (Some(id), _) => format!(
            "committed {id} on {branch}{}",
            if args.push { " and pushed" } else { "" }
        ),
        (None, Some(repo::BotBranch::Deleted)) => format!(
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
        .then(|| report::pr_body(&changes(&targets, &committed.plans, appliers), &description));
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
                (Some(repo::BotBranch::Updated), _) => BranchState::Updated,
                (Some(repo::BotBranch::Unchanged), Some(_)) => BranchState::Unchanged,
                _ => BranchState::Deleted,
            };
            let base = match args.repo.base.as_deref() {
                Some(b) => b.to_owned(),
                None => match repo::head(&repository)? {
                    repo::Head::Branch { name, .. } => {
                        name.trim_start_matches("refs/heads/").to_owned()
                    }
                    repo::Head::Detached(_) => {
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

pub fn diff_command(args: DiffArgs) -> Result<u8, Error> {
    let consumers = args.consumers.consumers().map_err(Error::Usage)?;
    let repository = repo::open(&args.repo.repo)?;
    let (targets, failures, _) = render_targets(&args.source, &args.repo, &consumers)?;
    let base = match &args.repo.base {
        Some(b) => Some(repo::resolve_base(&repository, b, &args.repo.remote)?),
        None => repo::head(&repository)?.tip(),
    };
    let base = base
        .map(|id| repository.find_commit(id))
        .transpose()
        .map_err(|e| {
            Error::Git(repo::GitError::Git {
                context: "read the base commit".into(),
                message: e.message().to_owned(),
            })
        })?;
    let plans = repo::plan_targets(&repository, base.as_ref(), &targets)?;

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
fn unified_diff(dir: &str, change: &crate::plan::Change) -> String {
    let path = format!("{dir}/{}", change.path);
    let old = change.old.as_deref().unwrap_or_default();
    let new = change.new.as_deref().unwrap_or_default();
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
    let (mode, from, to) = match (&change.old, &change.new) {
        (None, _) => (
            "new file mode 100644\n",
            "/dev/null".to_owned(),
            format!("b/{path}"),
        ),
        (_, None) => (
            "deleted file mode 100644\n",
            format!("a/{path}"),
            "/dev/null".to_owned(),
        ),
        _ => ("", format!("a/{path}"), format!("b/{path}")),
    };
    let mut out = format!("diff --git a/{path} b/{path}\n{mode}");
    if !hunks.is_empty() {
        out.push_str(&format!("--- {from}\n+++ {to}\n{hunks}"));
    }
    out
}
