//! The steps the commands share: loading `--crd-dir`, rendering each
//! input, and reporting the end of a run.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::pipeline::render::Keep;
use crate::pipeline::render::RenderedTree;
use crate::pipeline::render_response_keeping;
use crate::pipeline::schema::Schemas;
use crate::report::summary::{ClusterSummary, Summary};
use crate::sink;
use crate::source::Input;

/// Rendered trees, and the inputs that failed. Any failure ends the run
/// here unless `keep_going`.
pub(crate) type Rendered = Vec<(Option<String>, RenderedTree)>;
pub(crate) type Failures = Vec<(Option<String>, Error)>;

/// The `--crd-dir` schemas, loaded (and checked) before anything is fetched.
pub(crate) fn load_schemas(source: &crate::cli::SourceArgs) -> Result<Option<Schemas>, Error> {
    source
        .crd_dir
        .as_deref()
        .map(Schemas::load)
        .transpose()
        .map_err(|source| Error::Schema {
            origin: "--crd-dir".into(),
            source,
        })
}

/// Rendered trees apart from failures; any failure ends the run here
/// unless `keep_going`.
pub(crate) fn split_failures(
    rendered: Vec<(Option<String>, Result<RenderedTree, Error>)>,
    keep_going: bool,
) -> Result<(Rendered, Failures), Error> {
    let mut trees = Vec::new();
    let mut failures = Vec::new();
    for (cluster, result) in rendered {
        match result {
            Ok(tree) => trees.push((cluster, tree)),
            Err(e) => failures.push((cluster, e)),
        }
    }
    if !failures.is_empty() && !keep_going {
        return Err(Error::combine(failures));
    }
    Ok((trees, failures))
}

/// Parses, validates and renders one input, logging validation warnings.
pub(crate) fn render_input(
    input: Input,
    schemas: Option<&Schemas>,
) -> (Option<String>, Result<RenderedTree, Error>) {
    let Input {
        cluster,
        origin,
        bytes,
    } = input;
    let result = bytes.map_err(Error::from).and_then(|bytes| {
        let keep = if schemas.is_some() {
            Keep::Documents
        } else {
            Keep::Facts
        };
        let (mut tree, warnings) =
            render_response_keeping(&bytes, keep).map_err(|source| Error::Input {
                origin: origin.clone(),
                source,
            })?;
        for w in warnings {
            tracing::warn!("{origin}: {w}");
        }
        if let Some(schemas) = schemas {
            schemas.check(&tree).map_err(|source| Error::Schema {
                origin: origin.clone(),
                source,
            })?;
            tree.forget_documents();
        }
        tracing::info!(
            cluster = cluster.as_deref().unwrap_or("-"),
            objects = tree.object_count(),
            "rendered"
        );
        Ok(tree)
    });
    (cluster, result)
}

/// Reports the run: the summary file, the human summary, and under
/// `--keep-going` the clusters that failed (which make the exit non-zero).
pub(crate) fn finish(
    summary_file: Option<&Path>,
    mut summary: Summary,
    failures: Vec<(Option<String>, Error)>,
) -> Result<u8, Error> {
    let code = failures
        .iter()
        .map(|(_, e)| e.exit_code())
        .max()
        .unwrap_or(crate::error::exit::OK);
    for (cluster, e) in &failures {
        crate::terminal::logging::print_error(&e.to_string());
        summary
            .clusters
            .push(ClusterSummary::failed(cluster.clone(), e.to_string()));
    }
    if let Some(path) = summary_file {
        write_summary(path, &summary)?;
    }
    for cluster in &summary.clusters {
        let text = cluster.human_line();
        crate::terminal::logging::print(
            if cluster.error.is_some() {
                "ERROR"
            } else {
                "INFO"
            },
            &text,
            &text,
            cluster.log_fields(),
        );
    }
    Ok(code)
}

pub(crate) fn write_stdout(stdout: &mut impl Write, text: &str) -> Result<(), Error> {
    let to_err = |source| {
        Error::Output(sink::dir::OutputError {
            action: "write to",
            path: PathBuf::from("stdout"),
            source,
        })
    };
    stdout.write_all(text.as_bytes()).map_err(to_err)?;
    stdout.flush().map_err(to_err)
}

pub(crate) fn write_summary(path: &Path, summary: &Summary) -> Result<(), Error> {
    std::fs::write(path, summary.to_json()).map_err(|source| {
        Error::Output(sink::dir::OutputError {
            action: "write summary",
            path: path.to_owned(),
            source,
        })
    })
}
