//! What the tool says and writes besides the rendered files: the patch
//! `diff` prints (applied with the real `git apply`), `GITHUB_OUTPUT`,
//! JSON logs, the complete list of problems, warnings about files it did
//! not write, and the usage errors that protect a run from a guess.

use std::path::{Path, PathBuf};

use crate::support::cli::{run, run_env, Run};
use crate::support::git::git;

fn policy(name: &str, extra: &str) -> String {
    format!("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: {name}\nspec:\n  rules: []\n{extra}")
}

fn stream(docs: &[String]) -> String {
    docs.iter().map(|d| format!("---\n{d}")).collect::<String>()
}

/// A repository on `main` with a README and one commit.
fn repo(tmp: &Path) -> PathBuf {
    let dir = tmp.join("repo");
    git(tmp, &["init", "-q", "-b", "main", dir.to_str().unwrap()]);
    git(&dir, &["config", "user.name", "Policy Bot"]);
    git(&dir, &["config", "user.email", "bot@example.com"]);
    std::fs::write(dir.join("README.md"), "policy repo\n").unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "init"]);
    dir
}

fn write(tmp: &Path, name: &str, text: &str) -> String {
    let path = tmp.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn in_repo(cmd: &str, repo: &Path, input: &str, env: &[(&str, &str)]) -> Run {
    run_env(
        &[
            cmd,
            "--from-file",
            input,
            "--cluster",
            "prod",
            "--repo",
            repo.to_str().unwrap(),
        ],
        env,
        None,
    )
}

#[test]
fn diff_prints_a_patch_that_git_apply_takes() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let first = write(
        tmp.path(),
        "first.yaml",
        &stream(&[policy("a", ""), policy("b", ""), policy("gone", "")]),
    );
    let r = in_repo("commit", &repo, &first, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // One policy changed, one added, one removed.
    let second = write(
        tmp.path(),
        "second.yaml",
        &stream(&[
            policy("a", ""),
            policy("b", "  validationFailureAction: Audit\n"),
            policy("new", ""),
        ]),
    );
    let r = in_repo("diff", &repo, &second, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let patch = tmp.path().join("change.patch");
    std::fs::write(&patch, &r.stdout).unwrap();
    assert!(
        r.stdout.contains(
            "diff --git a/kyverno-policies/prod/clusterpolicy_new.yaml b/kyverno-policies/prod/clusterpolicy_new.yaml\nnew file mode 100644\n--- /dev/null\n+++ b/kyverno-policies/prod/clusterpolicy_new.yaml\n"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "deleted file mode 100644\n--- a/kyverno-policies/prod/clusterpolicy_gone.yaml\n+++ /dev/null\n"
        ),
        "{}",
        r.stdout
    );
    git(&repo, &["apply", "--check", patch.to_str().unwrap()]);
    git(&repo, &["apply", "--index", patch.to_str().unwrap()]);
    git(&repo, &["commit", "-q", "-m", "applied by hand"]);
    // The applied patch is exactly what the tool would have committed.
    let r = in_repo("diff", &repo, &second, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn diff_writes_changed_to_github_output() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let input = write(tmp.path(), "in.yaml", &policy("a", ""));
    let output = tmp.path().join("github_output");
    let env = [("GITHUB_OUTPUT", output.to_str().unwrap())];
    let r = in_repo("diff", &repo, &input, &env);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "changed=true\n");
    std::fs::remove_file(&output).unwrap();
    let r = in_repo("commit", &repo, &input, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = in_repo("diff", &repo, &input, &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "changed=false\n");
}

fn assert_every_line_is_json(stderr: &str) -> Vec<serde_json::Value> {
    assert!(!stderr.is_empty());
    stderr
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("not one JSON object: {line:?}: {e}\n{stderr}"))
        })
        .inspect(|v| {
            assert!(v["level"].is_string() && v["message"].is_string(), "{v}");
            assert!(v["timestamp"].is_string(), "{v}");
        })
        .collect()
}

#[test]
fn with_json_logs_every_line_on_stderr_is_a_json_object() {
    let tmp = tempfile::tempdir().unwrap();
    let good = write(
        tmp.path(),
        "good.yaml",
        &policy("a", "").replace("name: a\n", "name: a\n  namespace: ignored\n"),
    );
    let out = tmp.path().join("out");
    // A warning, then the per-cluster summary.
    let r = run(&[
        "render",
        "--log-format",
        "json",
        "--from-file",
        &good,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = assert_every_line_is_json(&r.stderr);
    let summary = lines.last().unwrap();
    assert_eq!(
        summary["message"],
        "1 added, 0 updated, 0 removed, 0 unchanged"
    );
    assert_eq!(summary["added"], 1);
    assert_eq!(summary["status"], "ok");
    assert!(lines.iter().any(|l| l["level"] == "WARN"), "{}", r.stderr);

    // The final error, several lines of problems in one object.
    let bad = write(
        tmp.path(),
        "bad.yaml",
        &stream(&[
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n".into(),
        ]),
    );
    let r = run(&[
        "render",
        "--log-format=json",
        "--from-file",
        &bad,
        "--stdout",
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let lines = assert_every_line_is_json(&r.stderr);
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert_eq!(lines[0]["level"], "ERROR");
    assert!(lines[0]["message"].as_str().unwrap().contains("document 2"));

    // A usage error clap finds, before logging is set up.
    let r = run(&["render", "--log-format", "json", "--no-such-flag"]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert_every_line_is_json(&r.stderr);
    // And one the tool finds.
    let r = run(&["render", "--log-format", "json", "--stdout"]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert_every_line_is_json(&r.stderr);
}

#[test]
fn every_problem_is_listed_and_a_duplicate_key_hides_none() {
    let tmp = tempfile::tempdir().unwrap();
    let mut docs: Vec<String> = (0..30)
        .map(|i| format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s{i}}}\n"))
        .collect();
    docs.insert(
        3,
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nkind: Policy\nmetadata: {name: d}\n"
            .into(),
    );
    let input = write(tmp.path(), "in.yaml", &stream(&docs));
    let summary = tmp.path().join("summary.json");
    let r = run(&[
        "render",
        "--from-file",
        &input,
        "--stdout",
        "--summary-file",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("(31 problems)"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("document 4 (line 16): duplicate key \"kind\" (first at line 15)"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stderr
            .matches("kind Secret (v1) is not a policy kind")
            .count(),
        30,
        "{}",
        r.stderr
    );
    for i in 0..30 {
        let doc = if i < 3 { i + 1 } else { i + 2 };
        assert!(
            r.stderr.contains(&format!("document {doc} (")),
            "document {doc} missing: {}",
            r.stderr
        );
    }
    assert!(!r.stderr.contains("more"), "{}", r.stderr);
}

#[test]
fn a_non_finite_number_is_refused_naming_document_line_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(
        tmp.path(),
        "in.yaml",
        &stream(&[
            policy("a", ""),
            policy("b", "  x:\n    - limit: .Inf\n"),
            policy("c", "  y: -.inf\n  z: .NaN\n"),
        ]),
    );
    let out = tmp.path().join("out");
    let r = run(&[
        "render",
        "--from-file",
        &input,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("document 2 (line 16): spec.x[0].limit: not a finite number (it reads as infinity, .inf)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "document 3 (line 24): spec.y: not a finite number (it reads as minus infinity, -.inf)"
        ),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}

#[test]
fn from_file_with_several_clusters_is_a_usage_error() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/insights/response.yaml"
    );
    for args in [
        vec![
            "render",
            "--from-file",
            example,
            "--stdout",
            "--cluster",
            "a",
            "--cluster",
            "b",
        ],
        vec![
            "render",
            "--from-file",
            example,
            "--stdout",
            "--cluster",
            "a,b",
        ],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 64, "{}", r.stderr);
        assert!(
            r.stderr.contains("--from-file reads one response"),
            "{}",
            r.stderr
        );
    }
    let r = run_env(
        &["render", "--from-file", example, "--stdout"],
        &[("FAIRWINDS_CLUSTER", "a,b")],
        None,
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    let r = run(&[
        "render",
        "--from-file",
        example,
        "--stdout",
        "--cluster",
        "a,a",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn help_lists_every_exit_code() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    let help = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for code in [
        "0 success",
        "1 I/O",
        "2 `diff`",
        "3 the response",
        "4 a file",
        "5 the run would remove",
        "64 usage",
    ] {
        assert!(help.contains(code), "{code:?} missing from --help: {help}");
    }
    assert!(help.contains("--keep-going"), "{help}");
}

#[test]
fn a_file_the_tool_did_not_write_is_named_in_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "in.yaml", &policy("a", ""));
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("extra-policy.yaml"), "kind: ClusterPolicy\n").unwrap();
    let r = run(&[
        "render",
        "--from-file",
        &input,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("extra-policy.yaml was not written by insights-policy-render")
            && r.stderr.contains("will not apply it"),
        "{}",
        r.stderr
    );

    let repo = repo(tmp.path());
    std::fs::create_dir_all(repo.join("kyverno-policies/prod")).unwrap();
    std::fs::write(
        repo.join("kyverno-policies/prod/hand.yaml"),
        "kind: Policy\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "a hand-written file"]);
    let r = in_repo("commit", &repo, &input, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("kyverno-policies/prod/hand.yaml was not written by insights-policy-render"),
        "{}",
        r.stderr
    );
}
