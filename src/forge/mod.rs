//! The bot branch's pull request (GitHub) or merge request (GitLab): opened
//! when none is open, its title and body updated when they changed, left
//! alone (no write at all) when nothing changed, closed when the bot branch
//! is withdrawn.
//!
//! One entry point, [`sync`], with everything it needs in [`ForgeConfig`]
//! (where, who) and [`Proposal`] (what). It is idempotent: a run after a
//! failed one finds the state the forge is in and completes it.
//!
//! The token is sent in one header, marked sensitive, and scrubbed from
//! every error; no request or response is logged with headers.
//!
//! Enters: a [`ForgeConfig`] (from the flags, the environment and the
//! remote's URL) and a [`Proposal`] (the bot branch, its state, the title
//! and body from `report`). Leaves: [`Synced`] (what was done and the URL),
//! or a [`ForgeError`].

pub mod config;
mod github;
mod gitlab;
mod http;
pub mod proposal;

pub use config::{parse_remote, ForgeConfig, ForgeError, ForgeKind, Settings};
pub use proposal::{Action, BranchState, Proposal, Synced};

/// Opens, updates, leaves or closes the pull request of `proposal.head`.
pub fn sync(config: &ForgeConfig, proposal: &Proposal) -> Result<Synced, ForgeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ForgeError::Transport {
            forge: config.kind.name(),
            operation: "start".into(),
            message: e.to_string(),
        })?;
    let client = http::Client::new(config)?;
    runtime.block_on(async {
        match config.kind {
            ForgeKind::Github => github::sync(&client, config, proposal).await,
            ForgeKind::Gitlab => gitlab::sync(&client, config, proposal).await,
        }
    })
}
