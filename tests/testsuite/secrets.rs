//! Every subcommand, at trace level, through success and failure, with a
//! distinctive FAIRWINDS_TOKEN and GIT_TOKEN: neither appears on stdout,
//! stderr, in any written file, or in any commit; GIT_TOKEN also as the
//! forge token of `--pull-request`, accepted and refused.

use crate::support::cli::run_env;
use crate::support::fake_forge::{FakeForge, Kind};
use crate::support::fake_insights::{FakeInsights, Fault};
use crate::support::git::git;

const API_TOKEN: &str = "api-tok-Qm4Rz81Lp-SECRET";
const GIT_TOKEN: &str = "git-tok-Vx2Nc67Hd-SECRET";
const ONE: &str =
    "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: one\nspec:\n  rules: []\n";

fn leaks(text: &str) -> bool {
    text.contains("Qm4Rz81Lp") || text.contains("Vx2Nc67Hd")
}

#[test]
fn no_token_reaches_output_files_or_commits() {
    let s = FakeInsights::start("acme", API_TOKEN);
    s.cluster("prod", ONE)
        .cluster("flaky", ONE)
        .fault("flaky", Fault::FailFirst(1, 503));
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote.git");
    git(
        tmp.path(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            remote.to_str().unwrap(),
        ],
    );
    let work = tmp.path().join("work");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            remote.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    git(&work, &["checkout", "-q", "-b", "main"]);
    git(&work, &["commit", "-q", "--allow-empty", "-m", "init"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, API_TOKEN).unwrap();
    let out = tmp.path().join("out");
    let summary = tmp.path().join("summary.json");
    let pr = tmp.path().join("pr.md");
    let gh = tmp.path().join("gh_output");

    let api = [
        "--insights-host",
        s.url.as_str(),
        "--org",
        "acme",
        "--log-level",
        "trace",
        "--retry-min-backoff",
        "10ms",
    ];
    let repo = [
        "--repo",
        work.to_str().unwrap(),
        "--author",
        "Bot <bot@example.com>",
    ];
    // The forge token falls back to GIT_TOKEN: one forge accepts it, one
    // refuses it (its error must not quote it either).
    let forge = FakeForge::start(Kind::Github, "acme/policies", GIT_TOKEN);
    let refusing = FakeForge::start(Kind::Github, "acme/policies", "another");
    let runs: Vec<(Vec<&str>, bool)> = vec![
        (
            vec![
                "commit",
                "--cluster",
                "prod",
                "--branch",
                "pr-bot",
                "--base",
                "main",
                "--push",
                "--pull-request",
                "--forge",
                "github",
                "--forge-repo",
                "acme/policies",
                "--forge-api-url",
                forge.url.as_str(),
            ],
            true,
        ),
        (
            vec![
                "commit",
                "--cluster",
                "prod",
                "--branch",
                "pr-bot-2",
                "--base",
                "main",
                "--push",
                "--pull-request",
                "--forge",
                "github",
                "--forge-repo",
                "acme/policies",
                "--forge-api-url",
                refusing.url.as_str(),
            ],
            false,
        ),
        (
            vec![
                "render",
                "--cluster",
                "prod,flaky",
                "--out",
                out.to_str().unwrap(),
                "--summary-file",
                summary.to_str().unwrap(),
            ],
            true,
        ),
        (vec!["render", "--cluster", "nope", "--stdout"], false),
        (vec!["diff", "--cluster", "prod"], true),
        (
            vec![
                "commit",
                "--cluster",
                "prod",
                "--push",
                "--pr-body-file",
                pr.to_str().unwrap(),
                "--summary-file",
                summary.to_str().unwrap(),
            ],
            true,
        ),
        (
            vec![
                "commit",
                "--cluster",
                "flaky",
                "--branch",
                "bot",
                "--push",
                "--remote",
                "nowhere",
            ],
            false,
        ),
        (vec!["commit", "--cluster", "nope"], false),
        (
            vec![
                "render",
                "--cluster",
                "prod",
                "--stdout",
                "--log-format",
                "json",
            ],
            true,
        ),
    ];
    for (args, ok) in runs {
        let mut all: Vec<&str> = args.clone();
        all.extend_from_slice(&api);
        match args[0] {
            "commit" => all.extend_from_slice(&repo),
            "diff" => all.extend_from_slice(&repo[..2]),
            _ => {}
        }
        let r = run_env(
            &all,
            &[
                ("FAIRWINDS_TOKEN", API_TOKEN),
                ("GIT_TOKEN", GIT_TOKEN),
                ("GITHUB_OUTPUT", gh.to_str().unwrap()),
            ],
            None,
        );
        assert_eq!(
            r.code == 0 || (args[0] == "diff" && r.code == 2),
            ok,
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("TRACE")
                || r.stderr.contains("DEBUG")
                || r.stderr.contains("\"level\""),
            "{args:?} logs at trace: {}",
            r.stderr
        );
        assert!(
            !leaks(&r.stdout) && !leaks(&r.stderr),
            "{args:?} leaked a token:\n{}\n{}",
            r.stdout,
            r.stderr
        );
    }
    // The token file variant.
    let r = run_env(
        &[
            "render",
            "--cluster",
            "prod",
            "--stdout",
            "--token-file",
            token_file.to_str().unwrap(),
            "--insights-host",
            &s.url,
            "--org",
            "acme",
            "--log-level",
            "trace",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!leaks(&r.stdout) && !leaks(&r.stderr));

    for (name, bytes) in crate::support::cli::snapshot_dir(tmp.path()) {
        if name != "token" {
            assert!(
                !leaks(&String::from_utf8_lossy(&bytes)),
                "a token leaked into {name}"
            );
        }
    }
    assert_eq!(forge.pulls().len(), 1, "the pull request opened");
    forge.assert_valid();
    let history = git(&remote, &["log", "--all", "-p", "--format=%an %ae %s%n%b"]);
    assert!(
        history.contains("Update Kyverno policies for prod"),
        "the commit landed"
    );
    assert!(!leaks(&history), "a token leaked into a commit");
}
