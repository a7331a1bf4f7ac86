//! `render`: the rendered directories written to `--out`, or printed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::cli::RenderArgs;
use crate::commands::steps::{finish, load_schemas, render_input, split_failures, write_stdout};
use crate::error::Error;
use crate::manifests::{ClusterDir, Consumers};
use crate::model::kind::PolicyKind;
use crate::model::path::RepoPath;
use crate::plan::guard;
use crate::plan::{plan, plan_without_removals, Plan, Refused};
use crate::report::summary::{ClusterSummary, Summary};
use crate::sink;
use crate::source::Source;

/// What became of one cluster (or of the one `--from-file` response).
struct Outcome {
    cluster: Option<String>,
    result: Result<(PathBuf, Plan, sink::dir::Staged), Error>,
    kinds: BTreeSet<PolicyKind>,
}

pub fn render_command(args: RenderArgs) -> Result<u8, Error> {
    let consumers = args.consumers.consumers().map_err(Error::Usage)?;
    if !consumers.is_empty() && args.output.stdout {
        return Err(Error::Usage(
            "--flux and --argo write files beside the rendered directories: use them with --out, or preview them with `diff`".into(),
        ));
    }
    let source = args.source.source()?;
    let schemas = load_schemas(&args.source)?;
    let clusters = source.clusters();
    let several = clusters.len() > 1;
    // Refused before anything is fetched, so no time is wasted on a run
    // that could not write its result.
    if several && args.output.out.is_some() {
        for name in clusters.iter().flatten() {
            crate::model::cluster::check_dir_name(name).map_err(Error::Usage)?;
        }
    }
    let keep_going = args.source.keep_going;
    let limits = args.safety.limits();
    // A --from-file response is named by the first --cluster, as in `commit`.
    let names: Vec<Option<String>> = match &source {
        Source::File(_) => vec![args.source.clusters.first().cloned()],
        Source::Insights { .. } => clusters.clone(),
    };
    let layout = match &args.output.out {
        Some(out) => ConsumerLayout::new(&consumers, out, &names)?,
        None => None,
    };
    let mut summary = Summary::default();
    if args.output.stdout {
        // Each response is rendered as it arrives, while the others are
        // still being fetched.
        let rendered = source.read_each(|input| render_input(input, schemas.as_ref()))?;
        let (trees, failures) = split_failures(rendered, keep_going)?;
        let mut stdout = std::io::stdout().lock();
        for (cluster, tree) in trees {
            if several {
                write_stdout(
                    &mut stdout,
                    &format!("# cluster: {}\n", cluster.as_deref().unwrap_or("")),
                )?;
            }
            write_stdout(&mut stdout, &tree.to_stream())?;
            // Nothing exists to compare with: every object is an addition.
            let plan = plan(tree, Default::default()).expect("nothing exists to conflict with");
            summary
                .clusters
                .push(ClusterSummary::from_plan(cluster, &plan));
        }
        return finish(args.summary_file.as_deref(), summary, failures);
    }

    let out = args.output.out.as_ref().expect("clap requires an output");
    // Each response is rendered, planned and its directory staged (built
    // beside where it goes) as it arrives, while the others are still
    // being fetched. Nothing is put in place before every cluster is in,
    // so a refusal anywhere leaves everything as it was: the stages are
    // dropped, which removes them.
    let outcomes: Vec<Outcome> = source.read_each(|input| {
        let (cluster, rendered) = render_input(input, schemas.as_ref());
        let dir = match (&cluster, several) {
            (Some(name), true) => out.join(name),
            _ => out.clone(),
        };
        let mut kinds = BTreeSet::new();
        let result = rendered.and_then(|tree| {
            kinds = tree.kinds();
            let existing = sink::dir::read_existing(&dir)?;
            let plan =
                plan(tree, existing).map_err(|e| Refused::writing(dir.display().to_string(), e))?;
            guard::check(&plan, &limits).map_err(|e| {
                let place = cluster
                    .as_deref()
                    .map_or("the response".to_string(), |c| format!("cluster {c:?}"));
                Refused::writing(place, e)
            })?;
            let staged = sink::dir::stage(&dir, &plan)?;
            Ok((dir, plan, staged))
        });
        Outcome {
            cluster,
            result,
            kinds,
        }
    })?;
    let mut plans = Vec::new();
    let mut failures = Vec::new();
    for o in outcomes {
        match o.result {
            Ok(p) => plans.push(((o.cluster, o.kinds), p)),
            Err(e) => failures.push((o.cluster, e)),
        }
    }
    if !failures.is_empty() && !keep_going {
        sink::dir::abandon_all(plans.into_iter().map(|(_, (_, _, staged))| staged));
        return Err(Error::combine(failures));
    }
    let (clusters, planned): (Vec<_>, Vec<_>) = plans.into_iter().unzip();
    let (plans, staged): (Vec<_>, Vec<_>) = planned
        .into_iter()
        .map(|(dir, plan, staged)| ((dir, plan), staged))
        .unzip();
    let staged = sink::dir::StagedDirs(
        staged
            .into_iter()
            .zip(plans.iter().map(|(_, p)| p))
            .collect(),
    );
    let consumer_plans = match &layout {
        Some(layout) => layout.plan(&names, &clusters)?,
        None => Vec::new(),
    };
    let clusters: Vec<Option<String>> = clusters.into_iter().map(|(c, _)| c).collect();
    for (dir, plan) in &plans {
        crate::plan::warn_foreign(&dir.display().to_string(), plan);
    }
    sink::dir::put_all_in_place(staged)?;
    // After the policies, so a Kustomization never points at a directory
    // that is not there yet.
    sink::dir::apply_all(&consumer_plans)?;
    for (cluster, (_, plan)) in clusters.into_iter().zip(&plans) {
        summary
            .clusters
            .push(ClusterSummary::from_plan(cluster, plan));
    }
    finish(args.summary_file.as_deref(), summary, failures)
}

/// Where `render --out` puts the consumer manifests: relative to the root
/// of the git working tree that holds `--out`, since that is what the
/// Kustomization's `path` and the Application's `path` are relative to.
struct ConsumerLayout<'a> {
    consumers: &'a Consumers,
    root: PathBuf,
    /// The repository path of `--out`.
    out: String,
}

impl<'a> ConsumerLayout<'a> {
    fn new(
        consumers: &'a Consumers,
        out: &Path,
        names: &[Option<String>],
    ) -> Result<Option<Self>, Error> {
        if consumers.is_empty() {
            return Ok(None);
        }
        let (root, out_rel) =
            crate::sink::git::locate_in_worktree(out).map_err(|e| Error::Usage(e.to_string()))?;
        let layout = ConsumerLayout {
            consumers,
            root,
            out: out_rel,
        };
        let paths = names
            .iter()
            .map(|n| RepoPath::new(&layout.dir_of(n, names.len())))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::Usage)?;
        consumers
            .check_layout(names, &paths, &layout.template(names.len()))
            .map_err(Error::Usage)?;
        if let Some(argo) = &consumers.argo {
            let existing = sink::dir::read_existing(&layout.root.join(&argo.dir))?;
            consumers
                .check_argo_switch(&existing)
                .map_err(Error::Usage)?;
        }
        Ok(Some(layout))
    }

    fn template(&self, count: usize) -> String {
        if count > 1 {
            format!("{}/{{cluster}}", self.out)
        } else {
            self.out.clone()
        }
    }

    fn dir_of(&self, name: &Option<String>, count: usize) -> String {
        match name {
            Some(n) if count > 1 => format!("{}/{n}", self.out),
            _ => self.out.clone(),
        }
    }

    /// Plans the consumer files of the clusters about to be written.
    fn plan(
        &self,
        names: &[Option<String>],
        clusters: &[(Option<String>, BTreeSet<PolicyKind>)],
    ) -> Result<Vec<(PathBuf, Plan)>, Error> {
        let named: Vec<(Option<String>, String)> = clusters
            .iter()
            .map(|(cluster, _)| {
                let name = if names.len() == 1 {
                    names[0].clone()
                } else {
                    cluster.clone()
                };
                let dir = self.dir_of(&name, names.len());
                (name, dir)
            })
            .collect();
        let rendered: Vec<ClusterDir> = named
            .iter()
            .zip(clusters)
            .map(|((name, dir), (_, kinds))| ClusterDir {
                cluster: name.as_deref(),
                path: dir,
                kinds: kinds.clone(),
            })
            .collect();
        let dirs = self
            .consumers
            .trees(&rendered, &self.template(names.len()))
            .map_err(Error::Usage)?;
        dirs.into_iter()
            .map(|(dir, tree)| {
                let dir = self.root.join(dir.as_str());
                let existing = sink::dir::read_existing(&dir)?;
                let plan = plan_without_removals(tree, existing)
                    .map_err(|e| Refused::writing(dir.display().to_string(), e))?;
                Ok((dir, plan))
            })
            .collect()
    }
}
