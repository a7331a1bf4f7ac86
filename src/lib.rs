//! insights-policy-render: Fairwinds Insights' Kyverno policies, rendered as
//! deterministic Kustomize directories for GitOps.
//!
//! Data flows one way: a YAML stream is parsed ([`yaml`]), checked and
//! cleaned into a [`policy::PolicySet`] ([`validate`]), rendered into an
//! in-memory tree of files ([`render`]), compared with what already exists
//! ([`plan`]), and only then written ([`outdir`]). Everything up to the plan
//! is pure, so it is tested directly; `main.rs` only parses arguments, sets up
//! logging and maps errors to exit codes.

pub mod admission;
pub mod cli;
pub mod commands;
pub mod completions;
pub mod consumer;
pub mod error;
pub mod forge;
pub mod fsutil;
pub mod gitcli;
pub mod gitops;
pub mod guard;
pub mod identity;
pub mod insights;
pub mod kind;
pub mod logging;
pub mod outdir;
pub mod pack;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod render;
pub mod repo;
pub mod report;
pub mod schema;
pub mod source;
pub mod summary;
pub mod validate;
pub mod worktree;
pub mod yaml;

/// The version `--version` prints: the package version and the commit it
/// was built from (`unknown` outside git; see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("INSIGHTS_POLICY_RENDER_COMMIT"),
    ")"
);
