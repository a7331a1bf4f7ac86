//! The errors a run can end with, and the exit code each maps to.

use std::path::PathBuf;

use crate::outdir::OutputError;
use crate::plan::PlanError;
use crate::validate::ValidationError;
use crate::yaml::ParseError;

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
    /// Bad command-line usage.
    pub const USAGE: u8 = 64;
}

/// Why a response could not become a policy set.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("the response is not a YAML stream we accept: {0}")]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
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
    #[error("cannot read {}: {source}", path.display())]
    ReadInput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", dir.display())]
    Plan {
        dir: PathBuf,
        #[source]
        source: PlanError,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input { .. } => exit::INVALID_INPUT,
            Error::Plan { .. } => exit::NOT_OURS,
            Error::Usage(_) => exit::USAGE,
            Error::ReadInput { .. } | Error::Output(_) => exit::FAILURE,
        }
    }
}
