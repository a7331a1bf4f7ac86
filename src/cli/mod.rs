//! The command line. Command and flag names are a contract that pipelines
//! and docs rely on: add, never rename.
//!
//! Enters: the process arguments and environment (clap). Leaves: a parsed
//! [`Cli`], and from it the configurations the stages take (a
//! [`Source`] through [`SourceArgs::source`], the
//! consumers, the forge settings, the mass-removal limits), or a
//! [`UsageError`]. Nothing here reads a file or the network.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::secret::Token;
use crate::source::insights::defaults;
use crate::source::insights::ClientConfig;
use crate::source::Source;
use crate::terminal::logging::LogFormat;
use crate::units::{parse_duration, parse_size};

/// Render the Kyverno policies that Fairwinds Insights assigns to your
/// clusters into deterministic Kustomize directories, for Flux or Argo CD to
/// apply. Never talks to a cluster.
#[derive(Debug, Parser)]
#[command(name = "insights-policy-render", version = crate::VERSION, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success (nothing changed included), 1 I/O, network or git failure, \
2 `diff` found changes, 3 the response was refused, 4 a file the tool did not write is in the way, \
5 the run would remove too many policies (--max-removals, --allow-empty), 64 usage error. \
With --keep-going, the clusters that succeeded are written and the exit code is the highest \
of the failed clusters' codes (never 0)."
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

    /// No progress bar (one is drawn on stderr, when it is a terminal, while several clusters are fetched).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
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
    /// Print a shell completion script on stdout, e.g.
    /// `insights-policy-render completions bash > /etc/bash_completion.d/insights-policy-render`.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout, or write one page per command with --out-dir.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, powershell or elvish.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write insights-policy-render.1 and a page per subcommand into this directory instead.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
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

    /// Branch to start from; without --branch, the branch to commit on [default: the
    /// checked-out branch]. With --push it is read from the remote, so a detached or
    /// single-branch CI checkout works.
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

    #[command(flatten)]
    pub consumers: ConsumerArgs,

    /// Commit on this bot branch, always --base plus exactly the current difference: replaced when
    /// that changes, left alone when it does not, deleted (withdrawing its pull request) when
    /// Insights matches the base again.
    #[arg(long, value_name = "BRANCH", help_heading = "Repository")]
    pub branch: Option<String>,

    /// Push the branch. A bot branch is force-pushed; the current branch never is: when the
    /// remote moved, the commit is rebuilt on its new tip and pushed again.
    #[arg(long, help_heading = "Repository")]
    pub push: bool,

    /// How many times to push in all, rebuilding on the remote's new tip (with a growing, jittered
    /// wait) when another pipeline pushed first.
    #[arg(
        long,
        default_value_t = 10,
        value_name = "N",
        help_heading = "Repository"
    )]
    pub push_attempts: u32,

    /// Author and committer [default: the repository's user.name and user.email].
    #[arg(long, value_name = "NAME <EMAIL>", help_heading = "Repository")]
    pub author: Option<String>,

    /// SSH private key for the remote, added to your ssh command (GIT_SSH_COMMAND or
    /// core.sshCommand) [default: what ssh finds: the agent, ~/.ssh].
    #[arg(long, value_name = "PATH", help_heading = "Repository")]
    pub ssh_key: Option<PathBuf>,

    /// A file holding the passphrase of --ssh-key.
    #[arg(
        long,
        value_name = "PATH",
        requires = "ssh_key",
        help_heading = "Repository"
    )]
    pub ssh_key_passphrase_file: Option<PathBuf>,

    /// The user name that goes with GIT_TOKEN over HTTPS. Without GIT_TOKEN, git's own
    /// credentials apply: http.<url>.extraheader, credential helpers, user info in the URL.
    #[arg(
        long,
        env = "GIT_USERNAME",
        default_value = "x-access-token",
        value_name = "NAME",
        help_heading = "Repository"
    )]
    pub git_username: String,

    /// Sign the commit with your git signing configuration (gpg.format, user.signingkey), as
    /// `git commit -S` would. Also on when git's commit.gpgsign is true; a commit that cannot be
    /// signed is not made.
    #[arg(long, help_heading = "Repository")]
    pub sign: bool,

    /// Write a Markdown pull request description of the changes.
    #[arg(long, value_name = "PATH")]
    pub pr_body_file: Option<PathBuf>,

    /// Write a JSON summary of what was added, updated, removed and left unchanged.
    #[arg(long, value_name = "PATH")]
    pub summary_file: Option<PathBuf>,

    #[command(flatten)]
    pub forge: Box<ForgeArgs>,
}

/// The bot branch's pull request (GitHub) or merge request (GitLab).
#[derive(Debug, Args)]
pub struct ForgeArgs {
    /// Open the pull request (GitHub) or merge request (GitLab) of --branch into --base when
    /// none is open, update its title and body when they changed, close it when Insights
    /// matches the base again. Needs --branch and --push.
    #[arg(long, requires_all = ["branch", "push"], help_heading = "Pull request")]
    pub pull_request: bool,

    /// The forge [default: from the remote's URL, github.com or gitlab.com].
    #[arg(
        long,
        value_enum,
        value_name = "FORGE",
        requires = "pull_request",
        help_heading = "Pull request"
    )]
    pub forge: Option<crate::forge::ForgeKind>,

    /// The forge's REST API [default: https://api.github.com, https://HOST/api/v3 for GitHub
    /// Enterprise Server, https://HOST/api/v4 for GitLab].
    #[arg(
        long,
        value_name = "URL",
        requires = "pull_request",
        help_heading = "Pull request"
    )]
    pub forge_api_url: Option<String>,

    /// OWNER/NAME on GitHub, the project's path on GitLab [default: from the remote's URL].
    #[arg(
        long,
        value_name = "OWNER/NAME",
        requires = "pull_request",
        help_heading = "Pull request"
    )]
    pub forge_repo: Option<String>,

    /// Read the forge token from this file. Without it: GITHUB_TOKEN (GitHub) or GITLAB_TOKEN
    /// (GitLab), else GIT_TOKEN. Never a flag value.
    #[arg(
        long,
        value_name = "PATH",
        requires = "pull_request",
        help_heading = "Pull request"
    )]
    pub forge_token_file: Option<PathBuf>,

    /// Trust this PEM CA bundle as well as the platform's roots (a self-hosted forge).
    #[arg(
        long,
        value_name = "PATH",
        requires = "pull_request",
        help_heading = "Pull request"
    )]
    pub forge_ca_file: Option<PathBuf>,

    /// The longest a rate limit may make the run wait, in all; a longer one fails the run
    /// (the next run completes the pull request).
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Pull request")]
    pub forge_max_wait: Duration,

    /// Label the pull request; repeatable.
    #[arg(
        long,
        value_name = "LABEL",
        requires = "pull_request",
        help_heading = "Pull request"
    )]
    pub pr_label: Vec<String>,

    /// Request a review from this user (or ORG/TEAM on GitHub) when the pull request opens;
    /// repeatable.
    #[arg(
        long,
        value_name = "USER",
        requires = "pull_request",
        help_heading = "Pull request"
    )]
    pub pr_reviewer: Vec<String>,

    /// Open it as a draft.
    #[arg(long, requires = "pull_request", help_heading = "Pull request")]
    pub pr_draft: bool,
}

impl ForgeArgs {
    /// The forge configuration when --pull-request is given; `remote_url`
    /// is the push remote's URL.
    pub fn config(
        &self,
        remote_url: Option<&str>,
    ) -> Result<Option<crate::forge::ForgeConfig>, crate::forge::ForgeError> {
        if !self.pull_request {
            return Ok(None);
        }
        let settings = crate::forge::Settings {
            kind: self.forge,
            api_url: self.forge_api_url.as_deref(),
            repo: self.forge_repo.as_deref(),
            token_file: self.forge_token_file.as_deref(),
            ca_file: self.forge_ca_file.as_deref(),
            max_wait: self.forge_max_wait,
            timeout: Duration::from_secs(30),
        };
        crate::forge::ForgeConfig::resolve(&settings, remote_url, &|var| std::env::var(var).ok())
            .map(Some)
    }
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub repo: RepoArgs,

    #[command(flatten)]
    pub consumers: ConsumerArgs,

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
    pub max_removals: crate::plan::guard::MaxRemovals,

    /// Allow a response with no policies to empty a cluster's directory (refused by default:
    /// an outage can answer an empty 200).
    #[arg(long, help_heading = "Safety")]
    pub allow_empty: bool,
}

impl SafetyArgs {
    pub fn limits(&self) -> crate::plan::guard::Limits {
        crate::plan::guard::Limits {
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

    #[command(flatten)]
    pub consumers: ConsumerArgs,

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
    #[arg(long, env = "FAIRWINDS_INSIGHTS_HOST", default_value = crate::source::insights::DEFAULT_HOST, value_name = "URL", help_heading = "Insights API")]
    pub insights_host: String,

    /// Read the API token from this file. Without it the token comes from FAIRWINDS_TOKEN; it is never a flag value.
    #[arg(long, value_name = "PATH", help_heading = "Insights API")]
    pub token_file: Option<PathBuf>,

    /// Trust this PEM CA bundle as well as the platform's roots: for a self-hosted Insights, and
    /// for the git remote of `commit` and `diff`.
    #[arg(long, value_name = "PATH", help_heading = "Insights API")]
    pub ca_file: Option<PathBuf>,

    /// Clusters fetched at the same time.
    #[arg(long, default_value_t = defaults::CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=256), value_name = "N", help_heading = "Insights API")]
    pub concurrency: u16,

    /// Time allowed to open a connection.
    #[arg(long, default_value = defaults::CONNECT_TIMEOUT, value_parser = parse_duration, value_name = "DURATION", help_heading = "Insights API")]
    pub connect_timeout: Duration,

    /// Time allowed for one attempt, headers and body together.
    #[arg(long, default_value = defaults::REQUEST_TIMEOUT, value_parser = parse_duration, value_name = "DURATION", help_heading = "Insights API")]
    pub request_timeout: Duration,

    /// Further attempts after a connection error, a timeout, a truncated body, HTTP 429 or 5xx.
    #[arg(
        long,
        default_value_t = defaults::RETRIES,
        value_name = "N",
        help_heading = "Insights API"
    )]
    pub retries: u32,

    /// First wait before a retry; it doubles up to --retry-max-backoff, with jitter.
    #[arg(long, default_value = defaults::RETRY_MIN_BACKOFF, value_parser = parse_duration, value_name = "DURATION", help_heading = "Insights API")]
    pub retry_min_backoff: Duration,

    /// Longest wait between retries (a server's Retry-After is honoured up to 60s).
    #[arg(long, default_value = defaults::RETRY_MAX_BACKOFF, value_parser = parse_duration, value_name = "DURATION", help_heading = "Insights API")]
    pub retry_max_backoff: Duration,

    /// Refuse a response body larger than this (B, KiB, MiB or GiB).
    #[arg(long, default_value = defaults::MAX_BODY_SIZE, value_parser = parse_size, value_name = "SIZE", help_heading = "Insights API")]
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

/// The objects that consume the rendered directories: a Flux Kustomization
/// or an Argo CD Application per cluster, written beside the policies and
/// owned the same way.
#[derive(Debug, Args)]
pub struct ConsumerArgs {
    /// Also write, per cluster, a Flux Kustomization (kustomize.toolkit.fluxcd.io/v1) that
    /// applies the rendered directory with prune, wait and Kyverno readiness checks.
    #[arg(long, help_heading = "Flux")]
    pub flux: bool,

    /// Where the Kustomization goes in the repository; `{cluster}` is replaced. Under a
    /// `flux bootstrap` path, so that the cluster's root reconciles it.
    #[arg(
        long,
        default_value = "clusters/{cluster}/kyverno-policies.yaml",
        value_name = "PATH",
        requires = "flux",
        help_heading = "Flux"
    )]
    pub flux_path: String,

    /// Name of the Kustomization.
    #[arg(
        long,
        default_value = "kyverno-policies",
        value_name = "NAME",
        requires = "flux",
        help_heading = "Flux"
    )]
    pub flux_name: String,

    /// Namespace of the Kustomization (and of the service account and GitRepository it writes).
    #[arg(
        long,
        default_value = "flux-system",
        value_name = "NAMESPACE",
        requires = "flux",
        help_heading = "Flux"
    )]
    pub flux_namespace: String,

    /// The GitRepository holding this repository, as NAME or NAMESPACE/NAME.
    #[arg(
        long,
        default_value = "flux-system",
        value_name = "[NAMESPACE/]NAME",
        requires = "flux",
        help_heading = "Flux"
    )]
    pub flux_source: String,

    /// Also write the GitRepository, with this URL (for a policy repository that is not the
    /// bootstrap repository). Never put credentials in it: see --flux-source-secret.
    #[arg(long, value_name = "URL", requires = "flux", help_heading = "Flux")]
    pub flux_source_url: Option<String>,

    /// Branch the written GitRepository follows.
    #[arg(
        long,
        default_value = "main",
        value_name = "BRANCH",
        requires = "flux_source_url",
        help_heading = "Flux"
    )]
    pub flux_source_branch: String,

    /// Secret with the credentials of the written GitRepository.
    #[arg(
        long,
        value_name = "NAME",
        requires = "flux_source_url",
        help_heading = "Flux"
    )]
    pub flux_source_secret: Option<String>,

    /// The Kustomization that installs Kyverno, as NAME or NAMESPACE/NAME; repeatable.
    /// Policies applied before Kyverno's CRDs exist fail. An empty value means none.
    #[arg(
        long,
        default_value = "kyverno",
        value_name = "[NAMESPACE/]NAME",
        requires = "flux",
        help_heading = "Flux"
    )]
    pub flux_depends_on: Vec<String>,

    /// How often Flux reconciles (and corrects drift).
    #[arg(
        long,
        default_value = "10m",
        value_name = "DURATION",
        requires = "flux",
        help_heading = "Flux"
    )]
    pub flux_interval: String,

    /// How long Flux waits for the policies to become ready before failing the reconciliation.
    #[arg(
        long,
        default_value = "5m",
        value_name = "DURATION",
        requires = "flux",
        help_heading = "Flux"
    )]
    pub flux_timeout: String,

    /// Apply as this service account, and write it with a ClusterRole that grants exactly the
    /// Kyverno policy kinds (instead of kustomize-controller's cluster-admin).
    #[arg(long, value_name = "NAME", requires = "flux", help_heading = "Flux")]
    pub flux_service_account: Option<String>,

    /// Also write, per cluster, an Argo CD Application (automated prune and self-heal,
    /// server-side apply and diff), and an AppProject that admits only policy kinds.
    #[arg(long, requires = "argo_repo_url", help_heading = "Argo CD")]
    pub argo: bool,

    /// Like --argo, but one ApplicationSet (git directory generator over --path) instead of an
    /// Application per cluster.
    #[arg(long, requires = "argo_repo_url", help_heading = "Argo CD")]
    pub argo_appset: bool,

    /// The policy repository's URL, as Argo CD knows it (no credentials in it).
    #[arg(long, value_name = "URL", help_heading = "Argo CD")]
    pub argo_repo_url: Option<String>,

    /// Directory of the Argo CD files in the repository [default: argocd].
    #[arg(long, value_name = "DIR", help_heading = "Argo CD")]
    pub argo_dir: Option<String>,

    /// The revision Argo CD follows [default: HEAD].
    #[arg(long, value_name = "REVISION", help_heading = "Argo CD")]
    pub argo_revision: Option<String>,

    /// Argo CD's namespace [default: argocd].
    #[arg(long, value_name = "NAMESPACE", help_heading = "Argo CD")]
    pub argo_namespace: Option<String>,

    /// Name of the AppProject written for the policies [default: kyverno-policies].
    #[arg(long, value_name = "NAME", help_heading = "Argo CD")]
    pub argo_project: Option<String>,

    /// Destination API server; `{cluster}` is replaced [default: https://kubernetes.default.svc,
    /// Argo CD's own cluster, and only for one cluster: several need a destination each].
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "argo_destination_name",
        help_heading = "Argo CD"
    )]
    pub argo_destination_server: Option<String>,

    /// Destination cluster by its name in Argo CD; `{cluster}` is replaced (`'{cluster}'`:
    /// clusters registered in Argo CD under their Insights names).
    #[arg(long, value_name = "NAME", help_heading = "Argo CD")]
    pub argo_destination_name: Option<String>,
}

impl ConsumerArgs {
    /// The checked consumer configuration; an error names the flag.
    pub fn consumers(&self) -> Result<crate::manifests::Consumers, String> {
        use crate::manifests::{ArgoConfig, Destination, FluxConfig, FluxRef};
        use crate::model::identity::{Namespace, ObjectName};

        let name = |flag: &str, v: &str| {
            ObjectName::new(v).map_err(|e| format!("{flag} {v:?}: the name {e}"))
        };
        let namespace = |flag: &str, v: &str| {
            Namespace::new(v).map_err(|e| format!("{flag} {v:?}: the namespace {e}"))
        };
        let reference = |flag: &str, v: &str| {
            v.parse::<FluxRef>()
                .map_err(|e| format!("{flag} {v:?}: the {e}"))
        };
        let flux = if self.flux {
            if !self.flux_path.ends_with(".yaml") {
                return Err(format!(
                    "--flux-path {:?} must end in .yaml",
                    self.flux_path
                ));
            }
            Some(FluxConfig {
                path: self.flux_path.clone(),
                name: name("--flux-name", &self.flux_name)?,
                namespace: namespace("--flux-namespace", &self.flux_namespace)?,
                source: reference("--flux-source", &self.flux_source)?,
                source_url: self
                    .flux_source_url
                    .as_deref()
                    .map(|u| repository_url("--flux-source-url", u))
                    .transpose()?,
                source_branch: self.flux_source_branch.clone(),
                source_secret: self
                    .flux_source_secret
                    .as_deref()
                    .map(|s| name("--flux-source-secret", s))
                    .transpose()?,
                depends_on: self
                    .flux_depends_on
                    .iter()
                    .filter(|d| !d.is_empty())
                    .map(|d| reference("--flux-depends-on", d))
                    .collect::<Result<_, _>>()?,
                interval: self
                    .flux_interval
                    .parse()
                    .map_err(|e| format!("--flux-interval: {e}"))?,
                timeout: self
                    .flux_timeout
                    .parse()
                    .map_err(|e| format!("--flux-timeout: {e}"))?,
                service_account: self
                    .flux_service_account
                    .as_deref()
                    .map(|s| name("--flux-service-account", s))
                    .transpose()?,
            })
        } else {
            None
        };

        let argo_options = [
            ("--argo-dir", self.argo_dir.is_some()),
            ("--argo-revision", self.argo_revision.is_some()),
            ("--argo-namespace", self.argo_namespace.is_some()),
            ("--argo-project", self.argo_project.is_some()),
            (
                "--argo-destination-server",
                self.argo_destination_server.is_some(),
            ),
            (
                "--argo-destination-name",
                self.argo_destination_name.is_some(),
            ),
            ("--argo-repo-url", self.argo_repo_url.is_some()),
        ];
        let argo = if self.argo || self.argo_appset {
            let repo_url = self.argo_repo_url.as_deref().unwrap_or_default();
            let destination = match (&self.argo_destination_server, &self.argo_destination_name) {
                (_, Some(n)) => {
                    name("--argo-destination-name", &n.replace("{cluster}", "c"))?;
                    Destination::Name(n.clone())
                }
                (Some(url), None) => Destination::Server(url.clone()),
                (None, None) => Destination::Server("https://kubernetes.default.svc".into()),
            };
            Some(ArgoConfig {
                dir: self
                    .argo_dir
                    .clone()
                    .unwrap_or_else(|| "argocd".into())
                    .trim_end_matches('/')
                    .to_owned(),
                appset: self.argo_appset,
                repo_url: repository_url("--argo-repo-url", repo_url)?,
                revision: self.argo_revision.clone().unwrap_or_else(|| "HEAD".into()),
                namespace: namespace(
                    "--argo-namespace",
                    self.argo_namespace.as_deref().unwrap_or("argocd"),
                )?,
                project: name(
                    "--argo-project",
                    self.argo_project.as_deref().unwrap_or("kyverno-policies"),
                )?,
                destination,
                destination_given: self.argo_destination_server.is_some()
                    || self.argo_destination_name.is_some(),
            })
        } else if let Some((flag, _)) = argo_options.iter().find(|(_, given)| *given) {
            return Err(format!("{flag} needs --argo or --argo-appset"));
        } else {
            None
        };
        Ok(crate::manifests::Consumers { flux, argo })
    }
}

/// A repository URL that goes into a committed file: it must not carry
/// credentials, which would then be in every clone of the repository.
fn repository_url(flag: &str, url: &str) -> Result<String, String> {
    if url.is_empty() {
        return Err(format!("{flag} must not be empty"));
    }
    // A token in the user part of an HTTPS URL is the common leak; an SSH
    // user name (`ssh://git@host`) is not a secret.
    let userinfo = url.split_once("://").and_then(|(scheme, rest)| {
        let authority = rest.split('/').next()?;
        authority.rsplit_once('@').map(|(user, _)| (scheme, user))
    });
    if let Some((scheme, user)) = userinfo {
        if user.contains(':') || scheme.starts_with("http") {
            return Err(format!(
                "{flag} carries credentials (user:password@); they would be committed. Give Flux or Argo CD the credentials through a Secret instead"
            ));
        }
    }
    Ok(url.to_owned())
}

/// A command line that parses but does not make sense (exit 64).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl SourceArgs {
    /// Checks the flags. `--from-file` wins over the API settings, which may
    /// come from the insights-agent's environment variables.
    pub fn source(&self) -> Result<Source, UsageError> {
        if let Some(path) = &self.from_file {
            // A file is one response, named by the one --cluster: with
            // several, which cluster it belongs to would be a guess (and
            // the others would silently get nothing).
            let mut named: Vec<&str> = Vec::new();
            for c in self
                .clusters
                .iter()
                .map(|c| c.trim())
                .filter(|c| !c.is_empty())
            {
                if !named.contains(&c) {
                    named.push(c);
                }
            }
            if named.len() > 1 {
                return Err(UsageError(format!(
                    "--from-file reads one response, for one cluster, but {} clusters are named ({}; from --cluster or FAIRWINDS_CLUSTER): name only the cluster the file belongs to",
                    named.len(),
                    named.join(", ")
                )));
            }
            return Ok(Source::File(path.clone()));
        }
        let org = self.org.as_deref().filter(|o| !o.is_empty()).ok_or_else(|| {
            UsageError(
                "say where the policies come from: --from-file PATH, or --org ORG and --cluster CLUSTER (or FAIRWINDS_ORG and FAIRWINDS_CLUSTER)".into(),
            )
        })?;
        let mut clusters: Vec<String> = Vec::new();
        for c in self
            .clusters
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
        {
            if !clusters.iter().any(|seen| seen == c) {
                clusters.push(c.to_owned());
            }
        }
        if clusters.is_empty() {
            return Err(UsageError(
                "name at least one cluster: --cluster CLUSTER (repeatable, or comma-separated), or FAIRWINDS_CLUSTER".into(),
            ));
        }
        let token = match &self.token_file {
            Some(path) => Token::from_file("--token-file", path).map_err(UsageError)?,
            None => match std::env::var("FAIRWINDS_TOKEN") {
                Ok(t) if !t.trim().is_empty() => Token::new(t.trim().to_owned()),
                _ => {
                    return Err(UsageError(
                        "no API token: set FAIRWINDS_TOKEN or pass --token-file PATH".into(),
                    ))
                }
            },
        };
        let mut config = ClientConfig::new(self.insights_host.clone(), org, token);
        config.connect_timeout = self.connect_timeout;
        config.request_timeout = self.request_timeout;
        config.retries = self.retries;
        config.backoff_min = self.retry_min_backoff;
        config.backoff_max = self.retry_max_backoff.max(self.retry_min_backoff);
        config.max_body_bytes = self.max_body_size;
        config.ca_file = self.ca_file.clone();
        config.concurrency = usize::from(self.concurrency);
        Ok(Source::Insights { config, clusters })
    }
}
