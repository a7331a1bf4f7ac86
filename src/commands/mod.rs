//! What each subcommand does, from parsed arguments to a finished run.
//!
//! Enters: the parsed command line ([`crate::cli::Cli`]). Leaves: an exit
//! code, or an [`Error`] that `main` prints and maps to one. Each command
//! strings the stages together (source → pipeline → plan → sink → report);
//! every check happens before the first write, so a run either carries out
//! every cluster it was asked for, or writes nothing.

pub mod commit;
pub mod completions;
pub mod diff;
pub mod render;
pub mod steps;
pub mod targets;

use crate::cli::{Cli, Command};
use crate::error::{exit, Error};

/// Runs a command; returns the exit code for a run that did not fail.
pub fn run(cli: Cli) -> Result<u8, Error> {
    crate::terminal::progress::set_quiet(cli.quiet);
    match cli.command {
        Command::Render(args) => render::render_command(args),
        Command::Commit(args) => commit::commit_command(args),
        Command::Diff(args) => diff::diff_command(args),
        Command::Completions(args) => {
            completions::print(&completions::completions(args.shell))?;
            Ok(exit::OK)
        }
        Command::Man(args) => {
            match args.out_dir {
                Some(dir) => completions::man_to_dir(&dir)?,
                None => completions::print(&completions::man())?,
            }
            Ok(exit::OK)
        }
    }
}
