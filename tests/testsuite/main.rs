//! The integration tests, as one test binary (cargo's own `tests/testsuite`
//! layout): one link of the library and its dependencies instead of one per
//! file. Each module is what used to be a test binary of its own; run one
//! with `cargo test --test testsuite cli_render::`.
//!
//! The tests of every module run as threads of this one process, so nothing
//! here may change process-wide state (environment variables, the current
//! directory, signal dispositions, the umask): a child process gets its
//! environment and directory through `Command`, never through `std::env`.

mod support;

mod action_install;
mod architecture;
mod ci_examples;
mod cli_commit;
mod cli_consumers;
mod cli_insights;
mod cli_meta;
mod cli_outputs;
mod cli_render;
mod corpus;
mod crash;
mod crd_schema;
mod examples;
mod forge;
mod git_edge;
mod git_remote;
mod git_servers;
mod hostile;
mod insights_client;
mod pr_body;
mod secrets;
mod snapshots;
mod yaml_emit;
