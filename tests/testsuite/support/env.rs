//! What the tests need from the machine: `../shared` (the corpus and CRDs)
//! and `kubectl` (with kustomize v5). Outside CI a missing one skips the test
//! with a printed reason; in CI (`CI` set) it fails, so a green CI run can
//! never mean "skipped".

use std::path::PathBuf;
use std::process::Command;

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Panics in CI, prints a reason and returns `None` elsewhere.
pub fn missing<T>(what: &str) -> Option<T> {
    if in_ci() {
        panic!("required for this test and missing in CI: {what}");
    }
    skipped(&format!("{what} is missing"));
    None
}

/// Prints `SKIPPED: why` where it is seen: `eprintln!` goes to the test
/// harness's capture, which shows it only for a failed test, so a skip
/// would pass unnoticed. A write to the stderr handle itself is not
/// captured and shows in `cargo test`'s output beside the test's name.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// The `shared` directory beside the repository.
pub fn shared() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if dir.join("corpus").is_dir() && dir.join("crds").is_dir() {
        Some(dir)
    } else {
        missing(&format!("{} (the corpus and CRDs)", dir.display()))
    }
}

/// `kubectl`, if it runs and has `kustomize`.
pub fn kubectl() -> Option<PathBuf> {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Kustomize")
        });
    if ok {
        Some(PathBuf::from("kubectl"))
    } else {
        missing("kubectl with kustomize (kubectl version --client)")
    }
}

/// Builds `dir` with `kubectl kustomize`; panics with kustomize's message on failure.
pub fn kustomize_build(dir: &std::path::Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kustomize prints UTF-8")
}

/// Every policy file of the published Kyverno library in `shared`, sorted.
pub fn library_files(shared: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![shared.join("corpus/kyverno-policies-library")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}
