//! What surrounds the commands: `--version`, `completions`, `man`, and the
//! progress bar over several clusters (drawn on a terminal only, never
//! with `--quiet`).

use std::process::Command;
use std::time::Duration;

use crate::support::cli::{run, run_env};
use crate::support::fake_insights::FakeInsights;

const SUBCOMMANDS: [&str; 5] = ["render", "commit", "diff", "completions", "man"];

#[test]
fn version_names_the_commit() {
    let r = run(&["--version"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r.stdout.trim();
    let expected_prefix = format!(
        "insights-policy-render {} (commit ",
        env!("CARGO_PKG_VERSION")
    );
    assert!(line.starts_with(&expected_prefix), "{line}");
    let commit = line[expected_prefix.len()..].trim_end_matches(')');
    // Built from this checkout when git is there, else "unknown".
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    match head {
        // HEAD may have moved since the build; the form is what matters.
        Some(_) => assert!(
            commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{line}"
        ),
        None => assert_eq!(commit, "unknown", "{line}"),
    }
    // Subcommands print the same version and commit.
    let sub = run(&["render", "--version"]);
    assert_eq!(
        sub.stdout.trim(),
        line.replacen("insights-policy-render", "insights-policy-render-render", 1)
    );
}

#[test]
fn completions_for_every_shell_know_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let r = run(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(r.stdout.len() > 500, "{shell}: {}", r.stdout);
        for sub in SUBCOMMANDS {
            assert!(r.stdout.contains(sub), "{shell} completions lack {sub}");
        }
        // And the flags of the subcommands.
        assert!(r.stdout.contains("max-removals"), "{shell}");
        assert!(r.stderr.is_empty(), "{shell}: {}", r.stderr);
    }
    let r = run(&["completions", "tcsh"]);
    assert_eq!(r.code, 64);
}

#[test]
fn the_bash_completion_script_loads() {
    let r = run(&["completions", "bash"]);
    let out = Command::new("bash")
        .args([
            "-c",
            "source /dev/stdin && complete -p insights-policy-render",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(r.stdout.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_man_page_documents_every_subcommand() {
    let r = run(&["man"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let page = r.stdout;
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "roff");
    assert!(page.contains(".TH insights-policy-render 1"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "the man page lacks {sub}");
        assert!(
            page.contains(&format!(
                ".SH \"INSIGHTS-POLICY-RENDER {}\"",
                sub.to_uppercase()
            )),
            "no section for {sub}"
        );
    }
    // The subcommands' own flags are in it.
    for flag in [
        "from\\-file",
        "max\\-removals",
        "pr\\-body\\-file",
        "stdout",
    ] {
        assert!(page.contains(flag), "the man page lacks {flag}");
    }

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    let r = run(&["man", "--out-dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for page in [
        "insights-policy-render.1",
        "insights-policy-render-render.1",
        "insights-policy-render-commit.1",
        "insights-policy-render-diff.1",
    ] {
        assert!(dir.join(page).is_file(), "{page}");
    }
}

const TOKEN: &str = "tok-progress";
const ONE: &str =
    "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: one\nspec:\n  rules: []\n";

fn server() -> FakeInsights {
    let s = FakeInsights::start("acme", TOKEN);
    s.cluster("prod", ONE)
        .cluster("staging", ONE)
        .cluster("dev", ONE)
        .latency(Duration::from_millis(400));
    s
}

const BAR: &str = "fetching clusters";

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let s = server();
    let r = run_env(
        &[
            "render",
            "--insights-host",
            &s.url,
            "--org",
            "acme",
            "--cluster",
            "prod,staging,dev",
            "--concurrency",
            "1",
            "--stdout",
        ],
        &[("FAIRWINDS_TOKEN", TOKEN)],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains(BAR), "{}", r.stderr);
    assert!(
        !r.stderr.contains('\u{1b}'),
        "no escape sequences: {:?}",
        r.stderr
    );
}

/// Runs the binary with stdin, stdout and stderr on a pseudo-terminal
/// (through util-linux `script`); everything it printed, or `None` when
/// `script` is not there (outside CI).
fn on_a_terminal(args: &[&str]) -> Option<String> {
    let available = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "util-linux `script` is required in CI"
        );
        eprintln!("SKIPPED: util-linux `script` (for a pseudo-terminal) is missing");
        return None;
    }
    let quote = |a: &str| format!("'{}'", a.replace('\'', "'\\''"));
    let mut line = quote(env!("CARGO_BIN_EXE_insights-policy-render"));
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    line.push_str(" >/dev/null");
    let out = Command::new("script")
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .env("FAIRWINDS_TOKEN", TOKEN)
        .env("TERM", "xterm")
        .env_remove("LOG_LEVEL")
        .env_remove("RUST_LOG")
        .env_remove("FAIRWINDS_CLUSTER")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    Some(text)
}

#[test]
fn a_progress_bar_on_a_terminal_unless_quiet() {
    let s = server();
    let args = |extra: &[&'static str]| {
        let mut a: Vec<String> = [
            "render",
            "--insights-host",
            &s.url,
            "--org",
            "acme",
            "--cluster",
            "prod,staging,dev",
            "--concurrency",
            "1",
            "--stdout",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let shown = args(&[]);
    let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
    let Some(text) = on_a_terminal(&shown) else {
        return;
    };
    assert!(text.contains(BAR), "{text:?}");
    // Cleared before the summary.
    assert!(text.contains("unchanged"), "{text:?}");

    let quiet = args(&["--quiet"]);
    let quiet: Vec<&str> = quiet.iter().map(String::as_str).collect();
    let text = on_a_terminal(&quiet).unwrap();
    assert!(!text.contains(BAR), "{text:?}");

    // One cluster: nothing to show progress over.
    let one: Vec<&str> = shown
        .iter()
        .map(|a| if *a == "prod,staging,dev" { "prod" } else { a })
        .collect();
    let text = on_a_terminal(&one).unwrap();
    assert!(!text.contains(BAR), "{text:?}");
}
