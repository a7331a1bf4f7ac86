//! `render` against a fake Insights API over real HTTP: the endpoint, the
//! token, every fault the client must survive, several clusters, and the
//! token never showing up anywhere.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cli::{run_env, snapshot_dir, Run};
use crate::support::fake_insights::{path_for, FakeInsights, Fault};

const TOKEN: &str = "tok-Zq7xVb93-DISTINCTIVE";
const EXAMPLE: &str = include_str!("../../examples/insights/response.yaml");
const ONE: &str =
    "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: one\nspec:\n  rules: []\n";

/// Fast retries so fault tests take milliseconds, not the production seconds.
const FAST: &[&str] = &["--retry-min-backoff", "10ms", "--retry-max-backoff", "20ms"];

fn render(server: &FakeInsights, extra: &[&str]) -> Run {
    let mut args = vec!["render", "--insights-host", &server.url, "--org", "acme"];
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    run_env(&args, &[("FAIRWINDS_TOKEN", TOKEN)], None)
}

fn server() -> FakeInsights {
    let s = FakeInsights::start("acme", TOKEN);
    s.cluster("prod", EXAMPLE)
        .cluster("staging", ONE)
        .cluster("empty", "");
    s
}

#[test]
fn one_cluster_renders_what_the_file_source_renders() {
    let s = server();
    let api = render(&s, &["--cluster", "prod", "--stdout"]);
    assert_eq!(api.code, 0, "{}", api.stderr);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("r.yaml");
    std::fs::write(&file, EXAMPLE).unwrap();
    let local =
        crate::support::cli::run(&["render", "--from-file", file.to_str().unwrap(), "--stdout"]);
    assert_eq!(api.stdout, local.stdout);
    assert_eq!(s.hits("prod"), 1);
}

#[test]
fn several_clusters_render_a_directory_each_with_one_summary() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("policies");
    let summary = tmp.path().join("summary.json");
    let r = render(
        &s,
        &[
            "--cluster",
            "prod,staging",
            "--cluster",
            "empty",
            "--out",
            out.to_str().unwrap(),
            "--summary-file",
            summary.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("prod: 8 added, 0 updated, 0 removed, 0 unchanged"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("staging: 1 added"), "{}", r.stderr);
    assert!(r.stderr.contains("empty: 0 added"), "{}", r.stderr);
    assert_eq!(snapshot_dir(&out.join("prod")).len(), 9);
    assert!(out.join("staging/clusterpolicy_one.yaml").is_file());
    assert!(out.join("empty/kustomization.yaml").is_file());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let clusters: Vec<_> = json["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(clusters, ["prod", "staging", "empty"]);
    if crate::support::env::kubectl().is_some() {
        for c in ["prod", "staging", "empty"] {
            crate::support::env::kustomize_build(&out.join(c));
        }
    }
}

#[test]
fn several_clusters_on_stdout_come_under_separators() {
    let s = server();
    let r = render(&s, &["--cluster", "staging,empty", "--stdout"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("# cluster: staging\n---\napiVersion: kyverno.io/v1\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("# cluster: empty\n"), "{}", r.stdout);
}

#[test]
fn settings_fall_back_to_the_insights_agent_variables() {
    let s = server();
    let r = run_env(
        &["render", "--stdout"],
        &[
            ("FAIRWINDS_TOKEN", TOKEN),
            ("FAIRWINDS_INSIGHTS_HOST", &s.url),
            ("FAIRWINDS_ORG", "acme"),
            ("FAIRWINDS_CLUSTER", "staging"),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("name: one"));
}

#[test]
fn org_and_cluster_are_percent_encoded_path_segments() {
    let s = FakeInsights::start("acme%20corp", TOKEN);
    s.cluster("eu%2Fwest", ONE);
    let r = run_env(
        &[
            "render",
            "--insights-host",
            &s.url,
            "--org",
            "acme corp",
            "--cluster",
            "eu/west",
            "--stdout",
        ],
        &[("FAIRWINDS_TOKEN", TOKEN)],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.hits_path(&path_for("acme%20corp", "eu%2Fwest")), 1);
}

/// A refusal that retrying cannot fix is not retried.
#[test]
fn authentication_permission_and_unknown_cluster_fail_at_once() {
    let s = server();
    let wrong = run_env(
        &[
            "render",
            "--insights-host",
            &s.url,
            "--org",
            "acme",
            "--cluster",
            "prod",
            "--stdout",
        ],
        &[("FAIRWINDS_TOKEN", "not-the-token")],
        None,
    );
    assert_eq!(wrong.code, 1);
    assert!(wrong.stderr.contains("refused the token for cluster \"prod\" of organization \"acme\" (HTTP 401): check FAIRWINDS_TOKEN"), "{}", wrong.stderr);
    assert_eq!(s.hits("prod"), 1);

    s.fault("staging", Fault::Status(403, None));
    let r = render(&s, &["--cluster", "staging", "--stdout"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("HTTP 403"), "{}", r.stderr);
    assert_eq!(s.hits("staging"), 1);

    let r = render(&s, &["--cluster", "nope", "--stdout"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "no cluster \"nope\" in organization \"acme\" (HTTP 404): check --org and --cluster"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(s.hits("nope"), 1);
    assert!(r.stdout.is_empty());
}

#[test]
fn server_errors_are_retried_then_succeed() {
    let s = server();
    s.fault("staging", Fault::FailFirst(2, 500));
    let r = render(&s, &["--cluster", "staging", "--stdout"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.hits("staging"), 3);
    assert!(
        r.stderr.contains("retrying"),
        "a retry is logged at warn: {}",
        r.stderr
    );
}

#[test]
fn server_errors_give_up_after_the_retry_budget() {
    let s = server();
    s.fault("staging", Fault::Status(503, None));
    let r = render(&s, &["--cluster", "staging", "--stdout", "--retries", "3"]);
    assert_eq!(r.code, 1);
    assert_eq!(s.hits("staging"), 4, "one attempt and three retries");
    assert!(
        r.stderr.contains(
            "HTTP 503 for cluster \"staging\" of organization \"acme\" after 4 attempt(s)"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn too_many_requests_honours_retry_after() {
    let s = server();
    s.fault("staging", Fault::Status(429, Some(1)));
    let started = Instant::now();
    let r = render(&s, &["--cluster", "staging", "--stdout", "--retries", "1"]);
    assert_eq!(r.code, 1);
    assert_eq!(s.hits("staging"), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After, not the 10ms backoff"
    );
}

#[test]
fn a_server_that_never_answers_times_out() {
    let s = server();
    s.fault("staging", Fault::Hang);
    let r = render(
        &s,
        &[
            "--cluster",
            "staging",
            "--stdout",
            "--request-timeout",
            "300ms",
            "--retries",
            "1",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("within the 300ms request timeout, after 2 attempt(s)"),
        "{}",
        r.stderr
    );
    assert_eq!(s.hits("staging"), 2);
}

#[test]
fn a_truncated_body_is_retried_and_refused() {
    let s = server();
    s.fault("prod", Fault::Truncate);
    let r = render(&s, &["--cluster", "prod", "--stdout", "--retries", "2"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("was cut short"), "{}", r.stderr);
    assert_eq!(s.hits("prod"), 3);
}

#[test]
fn error_pages_with_status_200_are_refused() {
    let s = server();
    s.fault("prod", Fault::Html)
        .fault("staging", Fault::JsonError);
    let r = render(&s, &["--cluster", "prod", "--stdout"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("not a YAML stream of policies but an HTML page"),
        "{}",
        r.stderr
    );
    let r = render(&s, &["--cluster", "staging", "--stdout"]);
    assert!(r.stderr.contains("but JSON"), "{}", r.stderr);
    assert_eq!((s.hits("prod"), s.hits("staging")), (1, 1));
}

#[test]
fn bodies_over_the_limit_are_refused_with_or_without_a_length() {
    let s = server();
    s.fault("staging", Fault::Huge(4 << 20));
    let r = render(
        &s,
        &[
            "--cluster",
            "staging",
            "--stdout",
            "--max-body-size",
            "1MiB",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("larger than the limit of 1048576 bytes"),
        "{}",
        r.stderr
    );
    let r = render(
        &s,
        &["--cluster", "prod", "--stdout", "--max-body-size", "1KiB"],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("larger than the limit of 1024 bytes"),
        "{}",
        r.stderr
    );
}

#[test]
fn one_failing_cluster_writes_nothing_by_default() {
    let s = server();
    s.fault("staging", Fault::Status(500, None));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("policies");
    let r = render(
        &s,
        &[
            "--cluster",
            "prod,staging",
            "--out",
            out.to_str().unwrap(),
            "--retries",
            "0",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("cluster \"staging\""), "{}", r.stderr);
    assert!(!out.exists(), "nothing written for any cluster");
}

#[test]
fn keep_going_writes_the_clusters_that_succeeded() {
    let s = server();
    s.fault("staging", Fault::Status(500, None));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("policies");
    let summary = tmp.path().join("s.json");
    let r = render(
        &s,
        &[
            "--cluster",
            "prod,staging",
            "--out",
            out.to_str().unwrap(),
            "--retries",
            "0",
            "--keep-going",
            "--summary-file",
            summary.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "still non-zero: {}", r.stderr);
    assert_eq!(snapshot_dir(&out.join("prod")).len(), 9);
    assert!(!out.join("staging").exists());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let failed = json["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == "staging")
        .unwrap();
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("HTTP 500"));
}

#[test]
fn requests_run_concurrently_within_the_bound() {
    let s = FakeInsights::start("acme", TOKEN);
    let clusters: Vec<String> = (0..16).map(|i| format!("c{i}")).collect();
    for c in &clusters {
        s.cluster(c, ONE);
    }
    s.latency(Duration::from_millis(200));
    let list = clusters.join(",");
    let r = render(&s, &["--cluster", &list, "--stdout", "--concurrency", "4"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.max_in_flight(), 4, "exactly the bound, never more");
}

#[test]
fn usage_errors_are_caught_before_any_request() {
    let s = server();
    let r = run_env(
        &[
            "render",
            "--insights-host",
            &s.url,
            "--org",
            "acme",
            "--cluster",
            "prod",
            "--stdout",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 64);
    assert!(
        r.stderr
            .contains("set FAIRWINDS_TOKEN or pass --token-file"),
        "{}",
        r.stderr
    );
    let r = render(&s, &["--stdout"]);
    assert_eq!(r.code, 64);
    assert!(r.stderr.contains("--cluster"), "{}", r.stderr);
    let tmp = tempfile::tempdir().unwrap();
    let r = render(
        &s,
        &[
            "--cluster",
            "prod,../etc",
            "--out",
            tmp.path().to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 64);
    assert!(
        r.stderr
            .contains("cluster name \"../etc\" cannot be a directory"),
        "{}",
        r.stderr
    );
    assert_eq!(s.hits("prod"), 0);
    let r = run_env(
        &[
            "render",
            "--insights-host",
            "ftp://x",
            "--org",
            "a",
            "--cluster",
            "b",
            "--stdout",
        ],
        &[("FAIRWINDS_TOKEN", TOKEN)],
        None,
    );
    assert_eq!(r.code, 64);
    assert!(r.stderr.contains("not an http(s) URL"), "{}", r.stderr);
}

/// The token, from the environment or a file, at trace level, through
/// success and failure: never on stdout, stderr, or in any written file.
#[test]
fn the_token_never_appears_anywhere() {
    let s = server();
    s.fault("staging", Fault::FailFirst(1, 503));
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let out = tmp.path().join("out");
    let summary = tmp.path().join("summary.json");
    let mut outputs = Vec::new();
    for (extra, env) in [
        (
            vec!["--cluster", "prod,staging", "--out", out.to_str().unwrap()],
            vec![("FAIRWINDS_TOKEN", TOKEN)],
        ),
        (
            vec![
                "--cluster",
                "prod",
                "--stdout",
                "--token-file",
                token_file.to_str().unwrap(),
            ],
            vec![],
        ),
        (
            vec!["--cluster", "nope", "--stdout"],
            vec![("FAIRWINDS_TOKEN", TOKEN)],
        ),
        (
            vec!["--cluster", "prod", "--stdout", "--log-format", "json"],
            vec![("FAIRWINDS_TOKEN", TOKEN)],
        ),
    ] {
        let mut args = vec![
            "render",
            "--insights-host",
            &s.url,
            "--org",
            "acme",
            "--log-level",
            "trace",
            "--summary-file",
            summary.to_str().unwrap(),
        ];
        args.extend(extra);
        let r = run_env(&args, &env, None);
        assert!(
            r.stderr.contains("TRACE")
                || r.stderr.contains("DEBUG")
                || r.stderr.contains("\"level\""),
            "trace logging is on: {}",
            r.stderr
        );
        outputs.push(r.stdout);
        outputs.push(r.stderr);
    }
    // A wrong token in a file, so the failure path carries it too.
    std::fs::write(&token_file, "wrong-tok-Zq7xVb93-DISTINCTIVE").unwrap();
    let r = run_env(
        &[
            "render",
            "--insights-host",
            &s.url,
            "--org",
            "acme",
            "--cluster",
            "prod",
            "--stdout",
            "--log-level",
            "trace",
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 1);
    outputs.push(r.stdout);
    outputs.push(r.stderr);
    for text in &outputs {
        assert!(!text.contains("Zq7xVb93"), "the token leaked: {text}");
    }
    for (name, bytes) in snapshot_dir(tmp.path()) {
        if name != "token" {
            assert!(
                !String::from_utf8_lossy(&bytes).contains("Zq7xVb93"),
                "the token leaked into {name}"
            );
        }
    }
}

/// A private CA and a server certificate for 127.0.0.1, made with openssl.
fn private_ca(dir: &std::path::Path) -> Option<(Vec<u8>, Vec<u8>, std::path::PathBuf)> {
    let has_openssl = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_openssl {
        return crate::support::env::missing("openssl (to make the test CA)");
    }
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null");
    sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost 2>/dev/null");
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf 2>/dev/null");
    Some((
        std::fs::read(dir.join("srv.pem")).unwrap(),
        std::fs::read(dir.join("srv.key")).unwrap(),
        dir.join("ca.pem"),
    ))
}

#[test]
fn a_self_hosted_insights_with_a_private_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((cert, key, ca)) = private_ca(tmp.path()) else {
        return;
    };
    let s = FakeInsights::start_tls("acme", TOKEN, &cert, &key);
    s.cluster("staging", ONE);
    assert!(s.url.starts_with("https://127.0.0.1:"));
    // Unknown to the platform's roots: refused, and said so, without retrying forever.
    let r = render(&s, &["--cluster", "staging", "--stdout", "--retries", "0"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("cannot reach 127.0.0.1"), "{}", r.stderr);
    assert!(
        r.stderr.to_lowercase().contains("certificate"),
        "the reason is the certificate: {}",
        r.stderr
    );
    // Trusted through --ca-file.
    let r = render(
        &s,
        &[
            "--cluster",
            "staging",
            "--stdout",
            "--ca-file",
            ca.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("name: one"));
    // A --ca-file that holds no certificate is a usage error.
    let bogus = tmp.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate\n").unwrap();
    let r = render(
        &s,
        &[
            "--cluster",
            "staging",
            "--stdout",
            "--ca-file",
            bogus.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("--ca-file"), "{}", r.stderr);
}

/// The usual proxy variables are honoured (the fake server stands in as the
/// proxy for a host that does not resolve), and NO_PROXY exempts a host.
#[test]
fn proxy_variables_are_honoured() {
    let s = server();
    let args = [
        "render",
        "--insights-host",
        "http://insights.invalid",
        "--org",
        "acme",
        "--cluster",
        "staging",
        "--stdout",
        "--retries",
        "0",
    ];
    let r = run_env(
        &args,
        &[
            ("FAIRWINDS_TOKEN", TOKEN),
            ("HTTP_PROXY", &s.url),
            ("http_proxy", &s.url),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("name: one"));
    assert_eq!(s.hits("staging"), 1);
    let r = run_env(
        &args,
        &[
            ("FAIRWINDS_TOKEN", TOKEN),
            ("HTTP_PROXY", &s.url),
            ("http_proxy", &s.url),
            ("NO_PROXY", "insights.invalid"),
            ("no_proxy", "insights.invalid"),
        ],
        None,
    );
    assert_eq!(
        r.code, 1,
        "NO_PROXY sends the request direct, to a host that does not resolve: {}",
        r.stderr
    );
    assert_eq!(s.hits("staging"), 1);
}

/// `--out` builds each cluster's new directory beside the old one as its
/// response arrives; a later cluster's failure must leave no trace of it.
#[test]
fn a_later_failure_leaves_every_directory_as_it_was() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("policies");
    let out_arg = out.to_str().unwrap();
    let r = render(&s, &["--cluster", "prod,staging", "--out", out_arg]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = snapshot_dir(tmp.path());
    // prod changes and, fetched first (one cluster at a time), is built
    // beside its directory before staging fails.
    s.cluster("prod", format!("{EXAMPLE}\n---\n{ONE}"));
    s.fault("staging", Fault::Status(500, None));
    let r = render(
        &s,
        &[
            "--cluster",
            "prod,staging",
            "--out",
            out_arg,
            "--concurrency",
            "1",
            "--retries",
            "0",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("cluster \"staging\""), "{}", r.stderr);
    let after = snapshot_dir(tmp.path());
    assert!(
        after == before,
        "nothing changed on disk: {:?}",
        after.keys()
    );
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no staging directory left: {names:?}");
    // And with staging back, the change lands.
    s.clear_fault("staging");
    let r = render(&s, &["--cluster", "prod,staging", "--out", out_arg]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(out.join("prod/clusterpolicy_one.yaml").exists());
}

/// Responses arrive in any order: the stage that created `--out` may not
/// be the first cluster's. A failure must still leave no `--out` at all.
#[test]
fn a_failure_removes_the_out_directory_a_later_cluster_created() {
    let s = server();
    // staging answers first and creates `policies/` for its stage; prod
    // stages into it later; broken fails.
    s.cluster("broken", ONE)
        .fault("broken", Fault::Status(500, None))
        .fault("prod", Fault::Delay(Duration::from_millis(300)));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("policies");
    let r = render(
        &s,
        &[
            "--cluster",
            "prod,staging,broken",
            "--out",
            out.to_str().unwrap(),
            "--retries",
            "0",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("cluster \"broken\""), "{}", r.stderr);
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
}
