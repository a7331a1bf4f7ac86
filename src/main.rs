use std::process::ExitCode;

use clap::Parser;
use insights_policy_render::{cli::Cli, commands, error::exit, terminal::logging};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if e.use_stderr() && logging::json_requested(std::env::args()) {
                logging::print_error(e.render().to_string().trim_end());
            } else {
                let _ = e.print();
            }
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    if let Err(message) = logging::init(cli.log_level.as_deref(), cli.log_format) {
        logging::print_error(&message);
        return ExitCode::from(exit::USAGE);
    }
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            logging::print_error(&e.to_string());
            ExitCode::from(e.exit_code())
        }
    }
}
