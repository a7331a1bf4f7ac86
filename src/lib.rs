//! insights-policy-render: Fairwinds Insights' Kyverno policies, rendered as
//! deterministic Kustomize directories for GitOps.
//!
//! Data flows one way, one folder per stage, and only the ends do I/O
//! (the README's "How it is built" draws the same path):
//!
//! 1. [`cli`] turns arguments into configurations; [`commands`] runs one
//!    command with them.
//! 2. [`source`] reads each cluster's response ([`source::Source::read_each`]).
//! 3. [`pipeline`] parses ([`yaml`]), validates, renders and assembles it
//!    into a [`pipeline::render::RenderedTree`] ([`pipeline::render_response`]),
//!    each file carrying its [`model::facts::ObjectFacts`]; `--crd-dir`
//!    checks the tree ([`pipeline::schema::Schemas::check`]).
//! 4. [`plan`] compares it with what exists and refuses what must not
//!    happen ([`plan::plan`], [`plan::guard::check`]); [`manifests`] adds
//!    the Flux or Argo CD files.
//! 5. [`sink`] carries the plans out: [`sink::dir::stage`] builds each
//!    directory beside its place as its response arrives, and
//!    [`sink::dir::put_all_in_place`] swaps them in once all are in; or
//!    [`sink::git::commit`], then [`forge::sync`] for the pull request.
//! 6. [`report`] says what happened (summary, commit message, PR body).
//!
//! A module uses only the stages before it (and [`model`], [`yaml`],
//! [`secret`], [`units`], which use nothing above them); the test suite's
//! `architecture` test fails on an import that climbs back.
//! `main.rs` only parses arguments, sets up logging and maps errors to exit
//! codes.

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
