//! insights-policy-render: Fairwinds Insights' Kyverno policies, rendered as
//! deterministic Kustomize directories for GitOps.
//!
//! Data flows one way: a YAML stream is parsed ([`yaml`]), checked and
//! cleaned into a [`policy::PolicySet`] ([`validate`]), rendered into an
//! in-memory tree of files ([`render`]), compared with what already exists
//! ([`plan`]), and only then written ([`outdir`]). Everything up to the plan
//! is pure, so it is tested directly; `main.rs` only parses arguments, sets up
//! logging and maps errors to exit codes.

pub mod cli;
pub mod commands;
pub mod error;
pub mod forge;
pub mod manifests;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod secret;
pub mod sink;
pub mod source;
pub mod terminal;
pub mod units;
pub mod yaml;

/// The version `--version` prints: the package version and the commit it
/// was built from (`unknown` outside git; see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("INSIGHTS_POLICY_RENDER_COMMIT"),
    ")"
);
