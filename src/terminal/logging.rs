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

/// The format chosen at [`init`]; text until then.
static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Whether stderr carries JSON: from [`init`], or, before it ran (a usage
/// error clap found), from the command line itself.
fn json() -> bool {
    match FORMAT.get() {
        Some(f) => *f == LogFormat::Json,
        None => json_requested(std::env::args()),
    }
}

/// `--log-format json` or `--log-format=json` anywhere on the command line.
pub fn json_requested(args: impl IntoIterator<Item = String>) -> bool {
    let mut previous_was_flag = false;
    for arg in args {
        if arg == "--" {
            return false;
        }
        if arg == "--log-format=json" || (previous_was_flag && arg == "json") {
            return true;
        }
        previous_was_flag = arg == "--log-format";
    }
    false
}

/// One line on stderr that is not a tracing event (the final error, the
/// per-cluster summary): plain text, or under `--log-format json` one JSON
/// object with the fields a log event has (`timestamp`, `level`, `message`)
/// and `fields` beside them, so that every line on stderr parses.
pub fn print(
    level: &str,
    text: &str,
    message: &str,
    fields: serde_json::Map<String, serde_json::Value>,
) {
    use std::io::Write;
    let line = if json() {
        let mut object = serde_json::Map::new();
        object.insert("timestamp".into(), now_rfc3339().into());
        object.insert("level".into(), level.into());
        object.insert("message".into(), message.into());
        object.extend(fields);
        serde_json::Value::Object(object).to_string()
    } else {
        text.to_owned()
    };
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

/// The error that ends a run: `error: ...` on stderr.
pub fn print_error(message: &str) {
    print(
        "ERROR",
        &format!("error: {message}"),
        message,
        Default::default(),
    );
}

/// An informational line (`nothing changed`, what was committed).
pub fn print_info(message: &str) {
    print("INFO", message, message, Default::default());
}

/// The time now as tracing-subscriber's JSON writes it:
/// `2026-11-26T11:55:02.123456Z`.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        now.subsec_micros()
    )
}

/// `level` comes from `--log-level` or `LOG_LEVEL`; without it `RUST_LOG`
/// is honoured, and the default is `warn`.
pub fn init(level: Option<&str>, format: LogFormat) -> Result<(), String> {
    let _ = FORMAT.set(format);
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
        .with_writer(crate::terminal::progress::Stderr)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_found_on_the_command_line() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(json_requested(args(&[
            "x",
            "render",
            "--log-format",
            "json"
        ])));
        assert!(json_requested(args(&["x", "--log-format=json", "render"])));
        assert!(!json_requested(args(&["x", "--log-format", "text"])));
        assert!(!json_requested(args(&["x", "--cluster", "json"])));
        assert!(!json_requested(args(&["x", "--", "--log-format=json"])));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 27, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{t}"
        );
    }
}
