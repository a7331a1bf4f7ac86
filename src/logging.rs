//! Logging setup: readable on a terminal, JSON for CI log collectors.
//!
//! The chosen level applies to this tool's own events. Dependencies stay at
//! `warn` whatever the level, because HTTP libraries log headers at debug and
//! trace, and the `Authorization` header carries the token.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Libraries whose debug and trace output may include request headers.
const QUIET_DEPENDENCIES: &str =
    "hyper=warn,hyper_util=warn,h2=warn,reqwest=warn,rustls=warn,git2=warn";

/// `level` comes from `--log-level` or `LOG_LEVEL`; without it `RUST_LOG`
/// is honoured, and the default is `warn`.
pub fn init(level: Option<&str>, format: LogFormat) -> Result<(), String> {
    let directives = match level {
        Some(level) => {
            let level = normalise(level)?;
            format!("warn,insights_policy_render={level}")
        }
        None => std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
    };
    let filter = EnvFilter::try_new(format!("{directives},{QUIET_DEPENDENCIES}"))
        .map_err(|e| format!("invalid log filter {directives:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::progress::Stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    }
    .map_err(|e| format!("cannot set up logging: {e}"))
}

/// Accepts the in-cluster plugin's spellings (`warning`, any case) too.
fn normalise(level: &str) -> Result<&'static str, String> {
    Ok(match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        "off" | "none" => "off",
        _ => {
            return Err(format!(
                "invalid log level {level:?}: use trace, debug, info, warn or error"
            ))
        }
    })
}
