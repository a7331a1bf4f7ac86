//! What each subcommand does, from parsed arguments to a finished run.
//!
//! Every check happens before the first write: a run either renders every
//! cluster it was asked for, or writes nothing.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, RenderArgs};
use crate::error::{Error, InputError};
use crate::outdir;
use crate::plan::{plan, Plan};
use crate::render::{RenderedTree, TreeBuilder};
use crate::summary::{ClusterSummary, Summary};
use crate::validate::{Problem, Validator};
use crate::yaml::parse_stream_each;

/// Runs a command; returns the exit code for a run that did not fail.
pub fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Render(args) => render_command(args),
    }
}

/// Parses, validates and renders one response, with the warnings of
/// validation. Pure: the core of every command.
///
/// Each document is rendered as soon as it is validated and its tree
/// dropped, so memory holds the input and the output, not every tree.
pub fn render_response(bytes: &[u8]) -> Result<(RenderedTree, Vec<Problem>), InputError> {
    let mut validator = Validator::default();
    let mut tree = TreeBuilder::default();
    parse_stream_each(bytes, |doc| {
        if let Some(policy) = validator.push(doc) {
            if validator.is_ok() {
                tree.add(&policy);
            }
        }
    })?;
    let warnings = validator.finish()?;
    Ok((tree.finish(), warnings))
}

/// One response, from wherever it came.
struct Input {
    /// The cluster it belongs to, when the source knows.
    cluster: Option<String>,
    /// How to name it in messages.
    origin: String,
    bytes: Vec<u8>,
}

fn read_inputs(args: &RenderArgs) -> Result<Vec<Input>, Error> {
    let path = args
        .source
        .from_file
        .as_ref()
        .expect("clap requires a source");
    let (origin, bytes) = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|source| Error::ReadInput {
                path: path.clone(),
                source,
            })?;
        ("stdin".to_string(), bytes)
    } else {
        let bytes = std::fs::read(path).map_err(|source| Error::ReadInput {
            path: path.clone(),
            source,
        })?;
        (path.display().to_string(), bytes)
    };
    Ok(vec![Input {
        cluster: None,
        origin,
        bytes,
    }])
}

struct Rendered {
    cluster: Option<String>,
    tree: RenderedTree,
}

fn render_inputs(inputs: Vec<Input>) -> Result<Vec<Rendered>, Error> {
    inputs
        .into_iter()
        .map(|input| {
            let (tree, warnings) =
                render_response(&input.bytes).map_err(|source| Error::Input {
                    origin: input.origin.clone(),
                    source,
                })?;
            for w in warnings {
                tracing::warn!("{}: {w}", input.origin);
            }
            tracing::info!(
                cluster = input.cluster.as_deref().unwrap_or("-"),
                objects = tree.object_count(),
                "rendered"
            );
            Ok(Rendered {
                cluster: input.cluster,
                tree,
            })
        })
        .collect()
}

fn render_command(args: RenderArgs) -> Result<u8, Error> {
    let rendered = render_inputs(read_inputs(&args)?)?;
    let mut summary = Summary::default();

    if args.output.stdout {
        let mut stdout = std::io::stdout().lock();
        for r in rendered {
            write_stdout(&mut stdout, &r.tree)?;
            // Nothing exists to compare with: every object is an addition.
            let plan = plan(r.tree, Default::default()).expect("nothing exists to conflict with");
            summary
                .clusters
                .push(ClusterSummary::from_plan(r.cluster, &plan));
        }
    } else {
        let out = args.output.out.as_ref().expect("clap requires an output");
        // Plan every directory before writing any, so a refusal anywhere
        // leaves everything as it was.
        let mut plans: Vec<(PathBuf, Plan)> = Vec::new();
        for r in rendered {
            let dir = out.clone();
            let existing = outdir::read_existing(&dir)?;
            let plan = plan(r.tree, existing).map_err(|source| Error::Plan {
                dir: dir.clone(),
                source,
            })?;
            summary
                .clusters
                .push(ClusterSummary::from_plan(r.cluster, &plan));
            plans.push((dir, plan));
        }
        for (dir, plan) in &plans {
            if !plan.is_empty() {
                outdir::apply(dir, plan)?;
            }
        }
    }

    if let Some(path) = &args.summary_file {
        write_summary(path, &summary)?;
    }
    eprint!("{}", summary.human());
    Ok(crate::error::exit::OK)
}

fn write_stdout(stdout: &mut impl Write, tree: &RenderedTree) -> Result<(), Error> {
    let to_err = |source| {
        Error::Output(outdir::OutputError {
            action: "write to",
            path: PathBuf::from("stdout"),
            source,
        })
    };
    stdout
        .write_all(tree.to_stream().as_bytes())
        .map_err(to_err)?;
    stdout.flush().map_err(to_err)
}

fn write_summary(path: &Path, summary: &Summary) -> Result<(), Error> {
    std::fs::write(path, summary.to_json()).map_err(|source| {
        Error::Output(outdir::OutputError {
            action: "write summary",
            path: path.to_owned(),
            source,
        })
    })
}
