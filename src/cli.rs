//! The command line. Command and flag names are a contract that pipelines
//! and docs rely on: add, never rename.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;

/// Render the Kyverno policies that Fairwinds Insights assigns to your
/// clusters into deterministic Kustomize directories, for Flux or Argo CD to
/// apply. Never talks to a cluster.
#[derive(Debug, Parser)]
#[command(name = "insights-policy-render", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success, 1 I/O or network failure, 2 `diff` found changes, \
3 the response was refused, 4 a file the tool did not write is in the way, 64 usage error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log level: trace, debug, info, warn or error [default: warn; RUST_LOG is honoured when unset].
    #[arg(long, global = true, env = "LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Log format on stderr: `text` for people, `json` for CI log collectors.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render policies into a Kustomize directory (--out) or preview them (--stdout).
    Render(RenderArgs),
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Write a JSON summary of what was added, updated, removed and left unchanged.
    #[arg(long, value_name = "PATH")]
    pub summary_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[group(id = "source", required = true, multiple = false)]
pub struct SourceArgs {
    /// Read an Insights response (a multi-document YAML stream) from a file, or `-` for stdin.
    #[arg(long, value_name = "PATH", help_heading = "Source")]
    pub from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[group(id = "output", required = true, multiple = false)]
pub struct OutputArgs {
    /// Create or update this directory. Only files the tool wrote are ever changed or removed.
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    pub out: Option<PathBuf>,

    /// Print the rendered objects as one YAML stream on stdout; write nothing.
    #[arg(long, help_heading = "Output")]
    pub stdout: bool,
}
