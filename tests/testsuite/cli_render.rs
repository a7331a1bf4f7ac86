//! `render` end to end, through the real binary: what a user at a terminal
//! or a pipeline sees (exit codes, messages, files on disk).

use std::path::Path;

use crate::support::cli::{run, run_with_stdin, snapshot_dir};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/insights/response.yaml"
);

const CLUSTER_POLICY: &str =
    "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: a\nspec:\n  rules: []\n";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn render_to(input: &str, out: &Path) -> crate::support::cli::Run {
    run(&[
        "render",
        "--from-file",
        input,
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn stdout_preview_writes_nothing_and_matches_the_rendered_files() {
    let tmp = tempfile::tempdir().unwrap();
    let preview = run(&["render", "--from-file", EXAMPLE, "--stdout"]);
    assert_eq!(preview.code, 0, "{}", preview.stderr);
    assert!(snapshot_dir(tmp.path()).is_empty());
    assert!(
        preview
            .stderr
            .contains("8 added, 0 updated, 0 removed, 0 unchanged"),
        "{}",
        preview.stderr
    );

    let out = tmp.path().join("policies");
    let written = render_to(EXAMPLE, &out);
    assert_eq!(written.code, 0, "{}", written.stderr);
    let files = snapshot_dir(&out);
    assert_eq!(files.len(), 9, "8 objects and the kustomization");
    // The preview is the files' documents, in the kustomization's order.
    let mut expected = String::new();
    for (name, bytes) in &files {
        if name != "kustomization.yaml" {
            let text = String::from_utf8(bytes.clone()).unwrap();
            let body = text.split_once('\n').unwrap().1;
            expected.push_str("---\n");
            expected.push_str(body);
        }
    }
    assert_eq!(preview.stdout, expected);
}

/// Name, modification time and size of every file: a rewrite changes the time.
fn stamps(dir: &Path) -> Vec<(std::ffi::OsString, std::time::SystemTime, u64)> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (e.file_name(), m.modified().unwrap(), m.len())
        })
        .collect();
    all.sort();
    all
}

#[test]
fn second_run_with_the_same_input_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("policies");
    assert_eq!(render_to(EXAMPLE, &out).code, 0);
    let before = stamps(&out);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = render_to(EXAMPLE, &out);
    assert_eq!(again.code, 0);
    assert!(
        again
            .stderr
            .contains("0 added, 0 updated, 0 removed, 8 unchanged"),
        "{}",
        again.stderr
    );
    assert_eq!(before, stamps(&out), "no file was rewritten");
}

#[test]
fn updates_and_removals_touch_only_what_changed_and_leave_foreign_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("policies");
    let b = CLUSTER_POLICY.replace("name: a", "name: b");
    let input = write(tmp.path(), "in.yaml", &format!("{CLUSTER_POLICY}---\n{b}"));
    assert_eq!(render_to(&input, &out).code, 0);
    std::fs::write(out.join("README.md"), "hand written\n").unwrap();
    std::fs::write(out.join("notes.yaml"), "mine: true\n").unwrap();

    let changed = CLUSTER_POLICY.replace("rules: []", "background: false");
    let input = write(tmp.path(), "in.yaml", &changed);
    let summary = tmp.path().join("summary.json");
    let r = run(&[
        "render",
        "--from-file",
        &input,
        "--out",
        out.to_str().unwrap(),
        "--summary-file",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("0 added, 1 updated, 1 removed, 0 unchanged"),
        "{}",
        r.stderr
    );
    let files = snapshot_dir(&out);
    let names: Vec<_> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "README.md",
            "clusterpolicy_a.yaml",
            "kustomization.yaml",
            "notes.yaml"
        ]
    );
    assert_eq!(files["README.md"], b"hand written\n");
    assert_eq!(files["notes.yaml"], b"mine: true\n");
    assert!(String::from_utf8_lossy(&files["clusterpolicy_a.yaml"]).contains("background: false"));

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "clusters": [{
                "cluster": null,
                "status": "ok",
                "added": [],
                "updated": [{"group": "kyverno.io", "kind": "ClusterPolicy", "namespace": null, "name": "a", "file": "clusterpolicy_a.yaml"}],
                "removed": [{"group": "kyverno.io", "kind": "ClusterPolicy", "namespace": null, "name": "b", "file": "clusterpolicy_b.yaml"}],
                "unchanged": 0
            }]
        })
    );
}

#[test]
fn a_namespace_on_a_cluster_scoped_kind_is_dropped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    let input = write(
        tmp.path(),
        "in.yaml",
        &CLUSTER_POLICY.replace("  name: a\n", "  name: a\n  namespace: kyverno\n"),
    );
    let r = render_to(&input, &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "document 1 (line 1): metadata.namespace: ignored: ClusterPolicy is cluster-scoped"
        ),
        "{}",
        r.stderr
    );
    let text = std::fs::read_to_string(out.join("clusterpolicy_a.yaml")).unwrap();
    assert!(!text.contains("namespace"), "{text}");
}

#[test]
fn reads_a_stream_from_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    let r = run_with_stdin(
        &["render", "--from-file", "-", "--out", out.to_str().unwrap()],
        Some(CLUSTER_POLICY.as_bytes()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(out.join("clusterpolicy_a.yaml").is_file());
}

#[test]
fn an_empty_stream_is_no_policies() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    let input = write(tmp.path(), "empty.yaml", "# nothing assigned\n---\n");
    let r = render_to(&input, &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files = snapshot_dir(&out);
    assert_eq!(files.keys().collect::<Vec<_>>(), ["kustomization.yaml"]);
    assert!(String::from_utf8_lossy(&files["kustomization.yaml"]).contains("resources: []"));
}

#[test]
fn refuses_to_overwrite_a_file_it_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("kustomization.yaml"), "resources: [mine.yaml]\n").unwrap();
    let before = snapshot_dir(&out);
    let input = write(tmp.path(), "in.yaml", CLUSTER_POLICY);
    let r = render_to(&input, &out);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("kustomization.yaml exists and was not written by insights-policy-render"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot_dir(&out), before);
}

#[test]
fn stale_temporary_files_of_a_killed_run_are_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    let input = write(tmp.path(), "in.yaml", CLUSTER_POLICY);
    assert_eq!(render_to(&input, &out).code, 0);
    std::fs::write(out.join(".clusterpolicy_a.yaml.ipr-tmp"), "half").unwrap();
    let changed = write(
        tmp.path(),
        "in2.yaml",
        &CLUSTER_POLICY.replace("rules: []", "x: 1"),
    );
    assert_eq!(render_to(&changed, &out).code, 0);
    assert!(!out.join(".clusterpolicy_a.yaml.ipr-tmp").exists());
}

/// Every refusal: exit code 3, a message naming the document, line and
/// field, and the output directory exactly as it was.
#[test]
fn every_refusal_names_document_and_field_and_changes_nothing() {
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: default\ndata: {}\n";
    let crb = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: pwn\nroleRef: {}\n";
    let list = format!("apiVersion: v1\nkind: List\nitems:\n  - {}\n", "{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding, metadata: {name: pwn}}");
    let cases: Vec<(&str, String, &str)> = vec![
        ("scalar document", format!("{CLUSTER_POLICY}---\njust a string\n"), "document 2 (line 8): the document is a string"),
        ("sequence document", "- a\n- b\n".into(), "document 1 (line 1): the document is a sequence"),
        ("missing kind", "apiVersion: kyverno.io/v1\nmetadata: {name: a}\n".into(), "document 1 (line 1): kind: required"),
        ("secret", secret.into(), "kind: kind Secret (v1) is not a policy kind"),
        ("cluster role binding", format!("{CLUSTER_POLICY}---\n{crb}"), "document 2 (line 8): kind: kind ClusterRoleBinding"),
        ("list", list, "a List (v1) is not accepted"),
        ("foreign group", CLUSTER_POLICY.replace("kyverno.io/v1", "kyverno.io.evil.com/v1"), "apiVersion: kind ClusterPolicy belongs to API group kyverno.io"),
        ("duplicate key", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: a\n  name: b\n".into(), "document 1 (line 5): duplicate key \"name\" (first at line 4)"),
        ("duplicate identity", format!("{CLUSTER_POLICY}---\n{CLUSTER_POLICY}"), "document 2 (line 8): ClusterPolicy.kyverno.io/a is already defined by document 1 (line 1)"),
        ("namespace missing", "apiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {name: a}\n".into(), "metadata.namespace: required: Policy is a namespaced kind"),
        ("path traversal", CLUSTER_POLICY.replace("name: a", "name: ../../etc/passwd"), "metadata.name: \"../../etc/passwd\" is not a valid name"),
        ("namespace traversal", "apiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {name: a, namespace: ../x}\n".into(), "metadata.namespace: \"../x\" is not a valid name"),
        ("name too long", CLUSTER_POLICY.replace("name: a", &format!("name: {}", "a".repeat(254))), "is 254 characters long; the limit is 253"),
        ("missing name", CLUSTER_POLICY.replace("  name: a\n", "  labels: {}\n"), "metadata.name: required"),
        ("invalid yaml", "a: [b\n".into(), "document 1 (line"),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    let good = write(tmp.path(), "good.yaml", CLUSTER_POLICY);
    assert_eq!(render_to(&good, &out).code, 0);
    let before = snapshot_dir(&out);
    for (what, input, message) in cases {
        let path = write(tmp.path(), "bad.yaml", &input);
        let r = render_to(&path, &out);
        assert_eq!(r.code, 3, "{what}: {}", r.stderr);
        assert!(
            r.stderr.contains(message),
            "{what}: expected {message:?} in {:?}",
            r.stderr
        );
        assert!(
            r.stderr.contains("bad.yaml"),
            "{what}: the message names the input: {}",
            r.stderr
        );
        assert_eq!(snapshot_dir(&out), before, "{what}: the directory changed");
        assert!(r.stdout.is_empty());
        // The same refusal for a preview, with nothing on stdout.
        let r = run(&["render", "--from-file", &path, "--stdout"]);
        assert_eq!((r.code, r.stdout.as_str()), (3, ""), "{what}");
    }
}

#[test]
fn usage_errors_and_missing_files() {
    let r = run(&["render", "--from-file", EXAMPLE]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("--out"), "{}", r.stderr);
    let r = run(&["render", "--from-file", EXAMPLE, "--stdout", "--out", "x"]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    let r = run(&[
        "render",
        "--from-file",
        "/nonexistent/response.yaml",
        "--stdout",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("cannot read /nonexistent/response.yaml"),
        "{}",
        r.stderr
    );
    let r = run(&["render", "--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("--summary-file"));
}

/// An outage that answers an empty 200 must never become "delete every
/// policy": a distinct exit code, nothing written, and the flag that allows it.
#[test]
fn mass_removal_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    let four: String = ["a", "b", "c", "d"]
        .iter()
        .map(|n| {
            format!(
                "---\n{}",
                CLUSTER_POLICY.replace("name: a", &format!("name: {n}"))
            )
        })
        .collect();
    let all = write(tmp.path(), "all.yaml", &four);
    assert_eq!(render_to(&all, &out).code, 0);
    let before = snapshot_dir(&out);

    let empty = write(tmp.path(), "empty.yaml", "");
    let r = render_to(&empty, &out);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the response has no policies, but 4 are rendered now"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--allow-empty"), "{}", r.stderr);
    assert_eq!(snapshot_dir(&out), before);

    let one = write(tmp.path(), "one.yaml", CLUSTER_POLICY);
    let r = render_to(&one, &out);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("would remove 3 of 4 policies, more than --max-removals 50%"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot_dir(&out), before);

    let r = run(&[
        "render",
        "--from-file",
        &one,
        "--out",
        out.to_str().unwrap(),
        "--max-removals",
        "3",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&[
        "render",
        "--from-file",
        &empty,
        "--out",
        out.to_str().unwrap(),
        "--allow-empty",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        snapshot_dir(&out).keys().collect::<Vec<_>>(),
        ["kustomization.yaml"]
    );
}

/// An update builds the whole new directory beside the old one and swaps
/// them: the directory is a new inode, everything that stayed is carried
/// over by hard link (same inode, same mode), and the directory keeps its mode.
#[test]
fn an_update_swaps_in_a_whole_new_directory_keeping_foreign_files_and_modes() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("policies");
    let b = CLUSTER_POLICY.replace("name: a", "name: b");
    let c = CLUSTER_POLICY.replace("name: a", "name: c");
    let input = write(
        tmp.path(),
        "in.yaml",
        &format!("{CLUSTER_POLICY}---\n{b}---\n{c}"),
    );
    assert_eq!(render_to(&input, &out).code, 0);
    std::fs::write(out.join("check.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(out.join("check.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::write(out.join("secret-notes.txt"), "private\n").unwrap();
    std::fs::set_permissions(
        out.join("secret-notes.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink("check.sh", out.join("link")).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o710)).unwrap();
    let ino = |p: &Path| std::fs::symlink_metadata(p).unwrap().ino();
    let (dir_before, unchanged_before) = (ino(&out), ino(&out.join("clusterpolicy_c.yaml")));

    let changed = CLUSTER_POLICY.replace("rules: []", "background: false");
    let input = write(tmp.path(), "in.yaml", &format!("{changed}---\n{c}"));
    let r = render_to(&input, &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("0 added, 1 updated, 1 removed, 1 unchanged"),
        "{}",
        r.stderr
    );

    assert_ne!(
        ino(&out),
        dir_before,
        "the directory was exchanged, not edited"
    );
    assert_eq!(ino(&out.join("clusterpolicy_c.yaml")), unchanged_before);
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&out), 0o710);
    assert_eq!(mode(&out.join("check.sh")), 0o750);
    assert_eq!(mode(&out.join("secret-notes.txt")), 0o600);
    assert_eq!(
        std::fs::read_link(out.join("link")).unwrap(),
        Path::new("check.sh")
    );
    assert!(!out.join("clusterpolicy_b.yaml").exists());
    assert!(std::fs::read_to_string(out.join("clusterpolicy_a.yaml"))
        .unwrap()
        .contains("background: false"));
    let siblings: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("ipr-tmp"))
        .collect();
    assert!(
        siblings.is_empty(),
        "the old tree was deleted: {siblings:?}"
    );
}

/// A subdirectory cannot be carried over by hard link, so such a directory
/// is updated in place (buildable at every instant, not strictly old-or-new).
#[test]
fn a_directory_with_a_subdirectory_is_updated_in_place() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("policies");
    let input = write(tmp.path(), "in.yaml", CLUSTER_POLICY);
    assert_eq!(render_to(&input, &out).code, 0);
    std::fs::create_dir(out.join("docs")).unwrap();
    std::fs::write(out.join("docs/README.md"), "hand written\n").unwrap();
    let dir_before = std::fs::metadata(&out).unwrap().ino();

    let changed = CLUSTER_POLICY.replace("rules: []", "background: false");
    let input = write(tmp.path(), "in.yaml", &changed);
    let r = render_to(&input, &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::metadata(&out).unwrap().ino(), dir_before);
    assert_eq!(
        std::fs::read_to_string(out.join("docs/README.md")).unwrap(),
        "hand written\n"
    );
    assert!(std::fs::read_to_string(out.join("clusterpolicy_a.yaml"))
        .unwrap()
        .contains("background: false"));
}

/// A killed run can leave its staging directory beside the output (before
/// the exchange: a half-built new tree; after: the old tree). The next run
/// removes it, even when it has nothing to write.
#[test]
fn a_stale_staging_directory_is_removed_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    let input = write(tmp.path(), "in.yaml", CLUSTER_POLICY);
    assert_eq!(render_to(&input, &out).code, 0);
    let staging = tmp.path().join(".p.ipr-tmp");
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("clusterpolicy_a.yaml"), "half").unwrap();
    let before = stamps(&out);
    let r = render_to(&input, &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!staging.exists());
    assert_eq!(
        stamps(&out),
        before,
        "a no-op run writes nothing in the directory"
    );
}
