//! What `commit` and `diff` share: the clusters fetched and rendered into
//! targets in the repository (with the consumer manifests), and what the
//! plans against them say.

use std::io::Write;
use std::path::Path;

use crate::cli::{RepoArgs, SourceArgs};
use crate::commands::steps::{load_schemas, render_input, split_failures, Failures};
use crate::error::Error;
use crate::manifests::{ClusterDir, Consumers};
use crate::model::path::RepoPath;
use crate::plan::Plan;
use crate::report::message::{Appliers, Changes, ClusterChanges};
use crate::report::summary::{ClusterSummary, Summary};
use crate::sink::git::{Role, Target};
use crate::source::Source;

/// The repository path of each cluster's directory, checked before anything
/// is fetched.
pub(crate) fn target_paths(
    template: &str,
    labels: &[Option<String>],
) -> Result<Vec<RepoPath>, Error> {
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
                    crate::model::cluster::check_dir_name(name).map_err(Error::Usage)?;
                    template.replace("{cluster}", name)
                }
                None if template.contains("{cluster}") => {
                    return Err(Error::Usage(format!(
                        "--path {template:?} needs a cluster name: with --from-file, name it with --cluster"
                    )))
                }
                None => template.to_owned(),
            };
            RepoPath::new(&path).map_err(|e| Error::Usage(format!("--path {e}")))
        })
        .collect()
}

/// The clusters of a source, with a `--from-file` response named by the
/// first `--cluster`, if any.
pub(crate) fn labels(source: &Source, args: &SourceArgs) -> Vec<Option<String>> {
    match source {
        Source::File(_) => vec![args.clusters.first().cloned()],
        Source::Insights { .. } => source.clusters(),
    }
}

pub(crate) fn describe(source: &Source) -> String {
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
pub(crate) fn render_targets(
    source_args: &SourceArgs,
    repo_args: &RepoArgs,
    consumers: &Consumers,
) -> Result<(Vec<Target>, Failures, String), Error> {
    let source = source_args.source()?;
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
    // Each response is rendered as it arrives, while the others are still
    // being fetched, as `render` does.
    let rendered = source.read_each(|input| render_input(input, schemas.as_ref()))?;
    let (trees, failures) = split_failures(rendered, source_args.keep_going)?;
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
pub(crate) fn with_consumers(
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

pub(crate) fn changes<'a>(
    targets: &'a [Target],
    plans: &'a [Plan],
    appliers: Appliers,
) -> Changes<'a> {
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
                    .map(|c| (format!("{}/{}", t.path, c.path()), c.kind())),
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
pub(crate) fn summarise(targets: &[Target], plans: &[Plan]) -> Summary {
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

pub(crate) fn append(path: &Path, text: &str) -> Result<(), Error> {
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
pub(crate) fn git_for(
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
