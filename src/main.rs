use std::process::ExitCode;

use clap::Parser;
use insights_policy_render::{cli::Cli, commands, error::exit, logging};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    if let Err(message) = logging::init(cli.log_level.as_deref(), cli.log_format) {
        eprintln!("error: {message}");
        return ExitCode::from(exit::USAGE);
    }
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
