//! Many clusters from the API (issue: Insights API source). 200 clusters of
//! 50 policies each, served by the fake Insights with 200 ms of latency per
//! response, rendered to a directory per cluster: once at the default
//! concurrency, once one at a time. Run with `cargo bench --bench api`.

#[path = "../tests/testsuite/support/fake_insights.rs"]
#[allow(dead_code)]
mod fake_insights;

use std::process::Command;
use std::time::{Duration, Instant};

const CLUSTERS: usize = 200;
const POLICIES: usize = 50;

fn main() {
    let library = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/insights/library.yaml"
    );
    let text =
        std::fs::read_to_string(library).expect("needs ../shared/corpus/insights/library.yaml");
    // The first 50 documents of the real library, as one cluster's response.
    let text = format!("\n{text}");
    let mut docs = text.split("\n---").filter(|d| d.contains("kind:"));
    let body: String = (0..POLICIES)
        .map(|_| format!("---{}\n", docs.next().unwrap()))
        .collect();

    let server = fake_insights::FakeInsights::start("acme", "bench-token");
    let clusters: Vec<String> = (0..CLUSTERS).map(|i| format!("cluster-{i:03}")).collect();
    for c in &clusters {
        server.cluster(c, body.clone());
    }
    server.latency(Duration::from_millis(200));
    let list = clusters.join(",");
    println!(
        "{CLUSTERS} clusters x {POLICIES} policies ({} KiB each), 200 ms latency per response",
        body.len() / 1024
    );
    // Output directories are kept until the end: deleting thousands of
    // files just before creating thousands more makes ext4 slow and noisy.
    let mut keep = Vec::new();
    // BIN=path measures another build (an earlier commit, say).
    let bin = std::env::var_os("BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_insights-policy-render").into());
    for (concurrency, output) in [
        ("8", "--out"),
        ("8", "--stdout"),
        ("32", "--out"),
        ("32", "--stdout"),
        ("1", "--out"),
    ] {
        let out = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let mut cmd = Command::new(&bin);
        cmd.args([
            "render",
            "--insights-host",
            &server.url,
            "--org",
            "acme",
            "--cluster",
            &list,
        ])
        .args(["--concurrency", concurrency, output])
        .stdout(std::process::Stdio::null());
        if output == "--out" {
            cmd.arg(out.path());
        }
        let status = cmd
            .env("FAIRWINDS_TOKEN", "bench-token")
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        keep.push(out);
        // No run can beat ceil(clusters / concurrency) rounds of latency.
        let n: usize = concurrency.parse().unwrap();
        let floor = CLUSTERS.div_ceil(n) as f64 * 0.2;
        let took = started.elapsed().as_secs_f64();
        println!(
            "--concurrency {concurrency:>2} {output:<8}: {took:.2} s (fetch floor {floor:.1} s, x{:.2})",
            took / floor
        );
    }
}
