//! The command line. Command and flag names are a contract that pipelines
//! and docs rely on: add, never rename.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Render policies and commit them to a git repository, on the current branch or a bot branch.
    Commit(CommitArgs),
    /// Show what `commit` would change, as a summary and a unified diff; writes nothing.
    /// Exits 0 when nothing would change, 2 when something would, 1 on error.
    Diff(DiffArgs),
}

/// Where rendered directories go in a repository.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// The repository (a working copy).
    #[arg(
        long,
        default_value = ".",
        value_name = "DIR",
        help_heading = "Repository"
    )]
    pub repo: PathBuf,

    /// Where each cluster's directory goes; `{cluster}` is replaced by the cluster name.
    /// Keep it outside `clusters/`, which a `flux bootstrap` root applies recursively.
    #[arg(
        long,
        default_value = "kyverno-policies/{cluster}",
        value_name = "PATH",
        help_heading = "Repository"
    )]
    pub path: String,

    /// Branch to start from [default: the checked-out branch].
    #[arg(long, value_name = "BRANCH", help_heading = "Repository")]
    pub base: Option<String>,

    /// Remote to push to and fetch from.
    #[arg(
        long,
        default_value = "origin",
        value_name = "NAME",
        help_heading = "Repository"
    )]
    pub remote: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub safety: SafetyArgs,

    #[command(flatten)]
    pub repo: RepoArgs,

    /// Commit on this bot branch, recreated from --base on every run, instead of the current branch.
    #[arg(long, value_name = "BRANCH", help_heading = "Repository")]
    pub branch: Option<String>,

    /// Push the branch. A bot branch is force-pushed; the current branch never is: when the
    /// remote moved, the commit is rebuilt on its new tip and pushed again.
    #[arg(long, help_heading = "Repository")]
    pub push: bool,

    /// How many times to rebuild and push again when another pipeline pushed first.
    #[arg(
        long,
        default_value_t = 5,
        value_name = "N",
        help_heading = "Repository"
    )]
    pub push_attempts: u32,

    /// Author and committer [default: the repository's user.name and user.email].
    #[arg(long, value_name = "NAME <EMAIL>", help_heading = "Repository")]
    pub author: Option<String>,

    /// SSH private key for the push [default: the SSH agent]. HTTPS pushes use GIT_TOKEN.
    #[arg(long, value_name = "PATH", help_heading = "Repository")]
    pub ssh_key: Option<PathBuf>,

    /// Write a Markdown pull request description of the changes.
    #[arg(long, value_name = "PATH")]
    pub pr_body_file: Option<PathBuf>,

    /// Write a JSON summary of what was added, updated, removed and left unchanged.
    #[arg(long, value_name = "PATH")]
    pub summary_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub repo: RepoArgs,

    /// Write a JSON summary of what would be added, updated, removed and left unchanged.
    #[arg(long, value_name = "PATH")]
    pub summary_file: Option<PathBuf>,
}

/// The guard against mass removal (Flux prunes whatever leaves the directory).
#[derive(Debug, Args)]
pub struct SafetyArgs {
    /// Refuse a run that would remove more than this many policies of a cluster: a count (10)
    /// or a percentage of what is rendered now (50%).
    #[arg(
        long,
        default_value = "50%",
        value_name = "N|P%",
        help_heading = "Safety"
    )]
    pub max_removals: crate::guard::MaxRemovals,

    /// Allow a response with no policies to empty a cluster's directory (refused by default:
    /// an outage can answer an empty 200).
    #[arg(long, help_heading = "Safety")]
    pub allow_empty: bool,
}

impl SafetyArgs {
    pub fn limits(&self) -> crate::guard::Limits {
        crate::guard::Limits {
            max_removals: self.max_removals,
            allow_empty: self.allow_empty,
        }
    }
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub safety: SafetyArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Write a JSON summary of what was added, updated, removed and left unchanged.
    #[arg(long, value_name = "PATH")]
    pub summary_file: Option<PathBuf>,
}

/// Where the policies come from: a file, or the Insights API.
///
/// The API flags fall back to the insights-agent's variables
/// (`FAIRWINDS_INSIGHTS_HOST`, `FAIRWINDS_ORG`, `FAIRWINDS_CLUSTER`), so
/// `--from-file` wins over them rather than conflicting with them.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Read an Insights response (a multi-document YAML stream) from a file, or `-` for stdin.
    #[arg(long, value_name = "PATH", help_heading = "Source")]
    pub from_file: Option<PathBuf>,

    /// Insights organization.
    #[arg(
        long,
        env = "FAIRWINDS_ORG",
        value_name = "ORG",
        help_heading = "Insights API"
    )]
    pub org: Option<String>,

    /// Cluster to render; repeat it or give a comma-separated list.
    #[arg(
        long = "cluster",
        env = "FAIRWINDS_CLUSTER",
        value_name = "CLUSTER",
        value_delimiter = ',',
        help_heading = "Insights API"
    )]
    pub clusters: Vec<String>,

    /// Insights base URL.
    #[arg(long, env = "FAIRWINDS_INSIGHTS_HOST", default_value = crate::insights::DEFAULT_HOST, value_name = "URL", help_heading = "Insights API")]
    pub insights_host: String,

    /// Read the API token from this file. Without it the token comes from FAIRWINDS_TOKEN; it is never a flag value.
    #[arg(long, value_name = "PATH", help_heading = "Insights API")]
    pub token_file: Option<PathBuf>,

    /// Trust this PEM CA bundle as well as the platform's roots (a self-hosted Insights).
    #[arg(long, value_name = "PATH", help_heading = "Insights API")]
    pub ca_file: Option<PathBuf>,

    /// Clusters fetched at the same time.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256), value_name = "N", help_heading = "Insights API")]
    pub concurrency: u16,

    /// Time allowed to open a connection.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Insights API")]
    pub connect_timeout: Duration,

    /// Time allowed for one attempt, headers and body together.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Insights API")]
    pub request_timeout: Duration,

    /// Further attempts after a connection error, a timeout, a truncated body, HTTP 429 or 5xx.
    #[arg(
        long,
        default_value_t = 3,
        value_name = "N",
        help_heading = "Insights API"
    )]
    pub retries: u32,

    /// First wait before a retry; it doubles up to --retry-max-backoff, with jitter.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Insights API")]
    pub retry_min_backoff: Duration,

    /// Longest wait between retries (a server's Retry-After is honoured up to 60s).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Insights API")]
    pub retry_max_backoff: Duration,

    /// Refuse a response body larger than this (B, KiB, MiB or GiB).
    #[arg(long, default_value = "32MiB", value_parser = parse_size, value_name = "SIZE", help_heading = "Insights API")]
    pub max_body_size: u64,

    /// Check every object against the openAPIV3Schema of its kind and version in the CRDs in this
    /// directory (those of the Kyverno version the clusters run); refuse a response with an object
    /// the API server would reject.
    #[arg(long, value_name = "DIR", help_heading = "Source")]
    pub crd_dir: Option<PathBuf>,

    /// Write the clusters that succeeded even when others failed; still exit non-zero.
    #[arg(long, help_heading = "Insights API")]
    pub keep_going: bool,
}

/// `500ms`, `10s`, `2m`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 10s or 2m"))?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{text:?} is not a duration like 500ms, 10s or 2m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// `1024`, `64KiB`, `32MiB`, `1GiB` (KB/MB/GB are read as the same powers of two).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 512KiB or 32MiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("{text:?} is not a size like 512KiB or 32MiB")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
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
