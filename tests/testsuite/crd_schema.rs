//! `--crd-dir` against the published Kyverno CRDs and the whole published
//! policy library, file by file: the policies that would not validate are
//! found, and the message says which field and why.

use crate::support::cli::run;
use crate::support::env;
use insights_policy_render::pipeline::render::Keep;
use insights_policy_render::pipeline::render_response_keeping;
use insights_policy_render::pipeline::schema::Schemas;

#[test]
fn the_published_policies_that_would_be_rejected_are_found() {
    let Some(shared) = env::shared() else { return };
    let schemas = Schemas::load(&shared.join("crds/kyverno")).unwrap();
    let mut rejected = Vec::new();
    let files = env::library_files(&shared);
    assert!(files.len() > 600);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let (tree, _) = render_response_keeping(&bytes, Keep::Documents)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Err(e) = schemas.check(&tree) {
            let rel = file
                .strip_prefix(shared.join("corpus/kyverno-policies-library"))
                .unwrap();
            rejected.push((rel.to_string_lossy().into_owned(), e.to_string()));
        }
    }
    let names: Vec<&str> = rejected.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names, EXPECTED_REJECTED,
        "the set of published policies that do not validate changed"
    );
    for (_, message) in &rejected {
        // Every message names the object, the field and the reason.
        assert!(message.contains(".kyverno.io/"), "{message}");
        assert!(message.contains("spec."), "{message}");
    }
}

/// Found by the test above against the CRDs of `../shared/crds/kyverno`: of
/// the 639 published files, one gives a context `variable` as a string
/// where the CRD wants an object.
const EXPECTED_REJECTED: &[&str] =
    &["cost-optimization/schedule-based-quotas/schedule-based-quotas.yaml"];

#[test]
fn the_cli_refuses_an_invalid_policy_and_names_the_field() {
    let Some(shared) = env::shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let crds = shared.join("crds/kyverno");
    let library = shared.join("corpus/insights/library.yaml");
    let r = run(&[
        "render",
        "--from-file",
        library.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--crd-dir",
        crds.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("ClusterPolicy.kyverno.io/schedule-based-quotas (clusterpolicy_schedule-based-quotas.yaml): spec.rules.0.context.1.variable:"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("is not of type \"object\""),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "nothing written");
    // The same response minus that policy renders.
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/insights/response.yaml"
    );
    let r = run(&[
        "render",
        "--from-file",
        example,
        "--out",
        out.to_str().unwrap(),
        "--crd-dir",
        crds.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&[
        "render",
        "--from-file",
        example,
        "--stdout",
        "--crd-dir",
        "/nonexistent",
    ]);
    assert_eq!(r.code, 64, "{}", r.stderr);
}
