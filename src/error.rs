//! The errors a run can end with, one variant per class of failure, and
//! the exit code each maps to.
//!
//! Enters: the stages' own error types. Leaves: an [`Error`] and its
//! [`Error::exit_code`], which `main` prints and returns.

use crate::pipeline::schema::SchemaError;
pub use crate::pipeline::InputError;
use crate::plan::{PlanError, Refused};
use crate::sink::dir::OutputError;
use crate::sink::git::GitError;
use crate::source::insights::InsightsError;
use crate::source::SourceError;

/// Exit codes, documented in the README. Distinct codes let a pipeline tell
/// "the response was bad" from "the network was down" without parsing text.
pub mod exit {
    pub const OK: u8 = 0;
    /// I/O, network or git failure: worth retrying later.
    pub const FAILURE: u8 = 1;
    /// `diff` only: something would change.
    pub const CHANGES: u8 = 2;
    /// The response was refused: fix it at the source.
    pub const INVALID_INPUT: u8 = 3;
    /// A file the tool did not write is in the way.
    pub const NOT_OURS: u8 = 4;
    /// The run would remove too many policies (the mass-removal guard).
    pub const TOO_MANY_REMOVALS: u8 = 5;
    /// Bad command-line usage.
    pub const USAGE: u8 = 64;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{origin}: {source}")]
    Input {
        /// Where the response came from: a file name, `stdin`, or a cluster.
        origin: String,
        #[source]
        source: InputError,
    },
    #[error("{origin}: {source}")]
    Schema {
        origin: String,
        #[source]
        source: SchemaError,
    },
    /// A plan was refused: nothing was written or committed.
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Git(GitError),
    /// The forge configuration is incomplete (a usage error).
    #[error(transparent)]
    Forge(#[from] crate::forge::ForgeError),
    /// The commit is done (and pushed); the pull request is not.
    #[error("{done}, but the pull request failed: {source}. The next run completes it")]
    PullRequest {
        done: String,
        #[source]
        source: crate::forge::ForgeError,
    },
    /// Several clusters failed; each is listed.
    #[error("{} clusters failed; nothing was written:{}", .0.len(), list(.0))]
    Clusters(Vec<(Option<String>, Error)>),
}

fn list(failures: &[(Option<String>, Error)]) -> String {
    failures.iter().map(|(_, e)| format!("\n  {e}")).collect()
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input { .. } => exit::INVALID_INPUT,
            Error::Schema {
                source: SchemaError::Invalid { .. },
                ..
            } => exit::INVALID_INPUT,
            Error::Schema { .. } => exit::USAGE,
            Error::Refused(r) => match r.source {
                PlanError::NotOurs { .. } => exit::NOT_OURS,
                PlanError::TooManyRemovals(_) => exit::TOO_MANY_REMOVALS,
            },
            Error::Usage(_) => exit::USAGE,
            Error::Source(SourceError::Fetch(InsightsError::Config(_))) => exit::USAGE,
            Error::Git(
                GitError::NoAuthor
                | GitError::BadAuthor(_)
                | GitError::BranchCheckedOut(_)
                | GitError::BranchInWorktree { .. }
                | GitError::BaseNotFound(_)
                | GitError::DetachedHead,
            ) => exit::USAGE,
            Error::Git(_) => exit::FAILURE,
            Error::Forge(e) if e.is_usage() => exit::USAGE,
            Error::Forge(_) | Error::PullRequest { .. } => exit::FAILURE,
            Error::Source(_) | Error::Output(_) => exit::FAILURE,
            // The most specific code when all agree, else plain failure.
            Error::Clusters(all) => {
                let first = all.first().map_or(exit::FAILURE, |(_, e)| e.exit_code());
                if all.iter().all(|(_, e)| e.exit_code() == first) {
                    first
                } else {
                    exit::FAILURE
                }
            }
        }
    }

    /// One failure as itself, several as [`Error::Clusters`].
    pub fn combine(mut failures: Vec<(Option<String>, Error)>) -> Error {
        if failures.len() == 1 {
            failures.remove(0).1
        } else {
            Error::Clusters(failures)
        }
    }
}

impl From<crate::cli::UsageError> for Error {
    fn from(e: crate::cli::UsageError) -> Error {
        Error::Usage(e.0)
    }
}

/// A refusal found while committing is the same class as one found while
/// writing a directory: one variant, one exit code.
impl From<GitError> for Error {
    fn from(e: GitError) -> Error {
        match e {
            GitError::Refused(r) => Error::Refused(r),
            other => Error::Git(other),
        }
    }
}
