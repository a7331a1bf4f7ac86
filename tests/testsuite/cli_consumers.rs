//! `--flux` and `--argo`: the consumer manifests written beside the
//! policies, by `render --out` and `commit`, owned and deterministic, and
//! every bad flag refused before anything is written.

use std::path::Path;

use crate::support::cli::{run, run_env, snapshot_dir, Run};
use crate::support::git::git;

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/insights/response.yaml"
);

const AUTHOR: &str = "Bot <bot@example.com>";

fn repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    git(tmp.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(tmp.path().join("README.md"), "policies\n").unwrap();
    git(tmp.path(), &["add", "-A"]);
    git(tmp.path(), &["commit", "-q", "-m", "init"]);
    tmp
}

fn commit(dir: &Path, input: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "commit",
        "--from-file",
        input,
        "--cluster",
        "prod",
        "--repo",
        dir.to_str().unwrap(),
        "--author",
        AUTHOR,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn commit_writes_the_kustomization_beside_the_policies_and_is_idempotent() {
    let repo = repo();
    let r = commit(repo.path(), EXAMPLE, &["--flux"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let shown = git(repo.path(), &["show", "--name-only", "--format=%B", "HEAD"]);
    assert!(
        shown.contains("Consumer manifests:\n  + clusters/prod/kyverno-policies.yaml"),
        "{shown}"
    );
    assert!(
        shown.contains("\nclusters/prod/kyverno-policies.yaml\n"),
        "{shown}"
    );
    let ks =
        std::fs::read_to_string(repo.path().join("clusters/prod/kyverno-policies.yaml")).unwrap();
    assert!(
        ks.contains("  path: ./kyverno-policies/prod\n  prune: true\n  wait: true\n"),
        "{ks}"
    );
    assert!(
        ks.contains("  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"),
        "{ks}"
    );

    let head = git(repo.path(), &["rev-parse", "HEAD"]);
    let again = commit(repo.path(), EXAMPLE, &["--flux"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("nothing changed"), "{}", again.stderr);
    assert_eq!(git(repo.path(), &["rev-parse", "HEAD"]), head);
    assert_eq!(git(repo.path(), &["status", "--porcelain"]), "");
}

#[test]
fn readiness_checks_follow_the_kinds_in_the_directory() {
    let repo = repo();
    let tmp = tempfile::tempdir().unwrap();
    let only_cluster_policy = write(
        tmp.path(),
        "a.yaml",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: disallow-latest-tag}\nspec: {rules: []}\n",
    );
    assert_eq!(
        commit(repo.path(), &only_cluster_policy, &["--flux"]).code,
        0
    );
    let ks =
        std::fs::read_to_string(repo.path().join("clusters/prod/kyverno-policies.yaml")).unwrap();
    assert!(ks.contains("kind: ClusterPolicy\n      current:"), "{ks}");
    assert!(!ks.contains("ValidatingPolicy"), "{ks}");

    let r = commit(repo.path(), EXAMPLE, &["--flux"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ks =
        std::fs::read_to_string(repo.path().join("clusters/prod/kyverno-policies.yaml")).unwrap();
    assert!(
        ks.contains("kind: ValidatingPolicy\n      current:"),
        "{ks}"
    );
    let message = git(repo.path(), &["log", "-1", "--format=%B"]);
    assert!(
        message.contains("  ~ clusters/prod/kyverno-policies.yaml"),
        "{message}"
    );
}

#[test]
fn a_hand_written_file_at_the_consumer_path_is_never_overwritten() {
    let repo = repo();
    std::fs::create_dir_all(repo.path().join("clusters/prod")).unwrap();
    write(
        &repo.path().join("clusters/prod"),
        "kyverno-policies.yaml",
        "# mine\nkind: Kustomization\n",
    );
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "hand written"]);
    let head = git(repo.path(), &["rev-parse", "HEAD"]);

    let r = commit(repo.path(), EXAMPLE, &["--flux"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("clusters/prod") && r.stderr.contains("kyverno-policies.yaml"),
        "{}",
        r.stderr
    );
    assert_eq!(git(repo.path(), &["rev-parse", "HEAD"]), head);
    assert_eq!(git(repo.path(), &["status", "--porcelain"]), "");

    // render --out refuses too, and writes neither the policies nor the file.
    let before = snapshot_dir(repo.path());
    let out = repo.path().join("kyverno-policies/prod");
    let r = run(&[
        "render",
        "--from-file",
        EXAMPLE,
        "--cluster",
        "prod",
        "--out",
        out.to_str().unwrap(),
        "--flux",
    ]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(snapshot_dir(repo.path()), before);
}

#[test]
fn render_out_places_the_manifests_relative_to_the_repository_root() {
    let repo = repo();
    let out = repo.path().join("policies/prod");
    let args = [
        "render",
        "--from-file",
        EXAMPLE,
        "--cluster",
        "prod",
        "--out",
        out.to_str().unwrap(),
        "--flux",
        "--argo",
        "--argo-repo-url",
        "https://git.example.com/policies.git",
    ];
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ks =
        std::fs::read_to_string(repo.path().join("clusters/prod/kyverno-policies.yaml")).unwrap();
    assert!(ks.contains("  path: ./policies/prod\n"), "{ks}");
    let app = std::fs::read_to_string(
        repo.path()
            .join("argocd/application_kyverno-policies-prod.yaml"),
    )
    .unwrap();
    assert!(app.contains("    path: policies/prod\n"), "{app}");
    assert!(
        app.contains("argocd.argoproj.io/compare-options: ServerSideDiff=true"),
        "{app}"
    );
    assert!(repo
        .path()
        .join("argocd/appproject_kyverno-policies.yaml")
        .is_file());

    // The same run again changes nothing.
    let before = snapshot_dir(repo.path());
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(snapshot_dir(repo.path()), before);
}

#[test]
fn argo_applications_of_several_runs_share_a_directory_without_removing_each_other() {
    let repo = repo();
    for cluster in ["prod", "staging"] {
        let r = run(&[
            "commit",
            "--from-file",
            EXAMPLE,
            "--cluster",
            cluster,
            "--repo",
            repo.path().to_str().unwrap(),
            "--author",
            AUTHOR,
            "--argo",
            "--argo-repo-url",
            "https://git.example.com/policies.git",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let files = git(repo.path(), &["ls-files", "argocd"]);
    assert_eq!(
        files,
        "argocd/application_kyverno-policies-prod.yaml\nargocd/application_kyverno-policies-staging.yaml\nargocd/appproject_kyverno-policies.yaml\n"
    );
}

#[test]
fn diff_shows_the_manifests_that_would_change() {
    let repo = repo();
    let args = [
        "diff",
        "--from-file",
        EXAMPLE,
        "--cluster",
        "prod",
        "--repo",
        repo.path().to_str().unwrap(),
        "--flux",
    ];
    let r = run(&args);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("# consumer manifests (clusters/prod): 1 changed"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("+++ b/clusters/prod/kyverno-policies.yaml"),
        "{}",
        r.stdout
    );
    assert_eq!(commit(repo.path(), EXAMPLE, &["--flux"]).code, 0);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(!r.stdout.contains("consumer manifests"), "{}", r.stdout);
}

/// Each bad combination: exit 64, a message naming the flag, nothing written.
#[test]
fn bad_consumer_flags_are_refused_before_anything_is_written() {
    let repo = repo();
    let outside = tempfile::tempdir().unwrap();
    let out_outside = outside.path().join("out");
    let out_inside = repo.path().join("kyverno-policies/prod");
    let repo_dir = repo.path().to_str().unwrap();
    let token = "ghp_consumerSecret1234567890";
    let url_with_token = format!("https://bot:{token}@github.com/acme/policies.git");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["render", "--out", out_outside.to_str().unwrap(), "--flux"],
            "not inside a git working tree",
        ),
        (vec!["render", "--stdout", "--flux"], "use them with --out"),
        (
            vec!["render", "--out", out_inside.to_str().unwrap(), "--argo"],
            "--argo-repo-url",
        ),
        (
            vec![
                "render",
                "--out",
                out_inside.to_str().unwrap(),
                "--argo-namespace",
                "x",
            ],
            "--argo-namespace needs --argo",
        ),
        (
            vec![
                "render",
                "--out",
                out_inside.to_str().unwrap(),
                "--flux-interval",
                "5m",
            ],
            "--flux",
        ),
        (
            vec![
                "render",
                "--out",
                out_inside.to_str().unwrap(),
                "--flux",
                "--flux-interval",
                "5 minutes",
            ],
            "--flux-interval",
        ),
        (
            vec![
                "render",
                "--out",
                out_inside.to_str().unwrap(),
                "--flux",
                "--flux-depends-on",
                "Kyverno",
            ],
            "--flux-depends-on",
        ),
        (
            vec![
                "render",
                "--out",
                out_inside.to_str().unwrap(),
                "--flux",
                "--flux-path",
                "kyverno-policies/prod/ks.yaml",
            ],
            "inside the rendered directory",
        ),
        (
            vec![
                "render",
                "--out",
                out_inside.to_str().unwrap(),
                "--flux",
                "--flux-path",
                "../ks.yaml",
            ],
            "inside the repository",
        ),
        (
            vec![
                "render",
                "--out",
                out_inside.to_str().unwrap(),
                "--flux",
                "--flux-path",
                "clusters/ks.json",
            ],
            "must end in .yaml",
        ),
        (
            vec![
                "commit",
                "--repo",
                repo_dir,
                "--author",
                AUTHOR,
                "--flux",
                "--flux-source-url",
                &url_with_token,
            ],
            "carries credentials",
        ),
        (
            vec![
                "commit",
                "--repo",
                repo_dir,
                "--author",
                AUTHOR,
                "--argo",
                "--argo-repo-url",
                &url_with_token,
            ],
            "carries credentials",
        ),
        (
            vec![
                "commit",
                "--repo",
                repo_dir,
                "--author",
                AUTHOR,
                "--argo-appset",
                "--argo-repo-url",
                "https://x/y.git",
                "--path",
                "policies",
            ],
            "{cluster}",
        ),
    ];
    for (args, expected) in cases {
        let mut full = args.clone();
        full.extend(["--from-file", EXAMPLE, "--cluster", "prod"]);
        let before = snapshot_dir(repo.path());
        let r = run(&full);
        assert_eq!(r.code, 64, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(expected), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains(token), "{args:?}: the token was echoed");
        assert_eq!(
            snapshot_dir(repo.path()),
            before,
            "{args:?} wrote something"
        );
        assert!(!out_outside.exists(), "{args:?} wrote outside");
    }

    // Several clusters cannot share one Kustomization file; refused before
    // any request (the host is unreachable).
    let r = run_env(
        &[
            "commit",
            "--org",
            "acme",
            "--cluster",
            "a,b",
            "--repo",
            repo_dir,
            "--author",
            AUTHOR,
            "--insights-host",
            "http://127.0.0.1:9",
            "--flux",
            "--flux-path",
            "clusters/all/ks.yaml",
        ],
        &[("FAIRWINDS_TOKEN", "t0ken-value")],
        None,
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr.contains("put {cluster} in --flux-path"),
        "{}",
        r.stderr
    );
}

/// With several clusters and no destination, every cluster's Application
/// would apply its policies to Argo CD's own cluster: refused before any
/// request (the host is unreachable), naming the flags that fix it.
#[test]
fn argo_with_several_clusters_needs_a_destination() {
    let repo = repo();
    let repo_dir = repo.path().to_str().unwrap();
    for flag in ["--argo", "--argo-appset"] {
        let r = run_env(
            &[
                "commit",
                "--org",
                "acme",
                "--cluster",
                "a,b",
                "--repo",
                repo_dir,
                "--author",
                AUTHOR,
                "--insights-host",
                "http://127.0.0.1:9",
                flag,
                "--argo-repo-url",
                "https://github.com/acme/policies.git",
            ],
            &[("FAIRWINDS_TOKEN", "t0ken-value")],
            None,
        );
        assert_eq!(r.code, 64, "{flag}: {}", r.stderr);
        assert!(
            r.stderr.contains("--argo-destination-name")
                && r.stderr.contains("--argo-destination-server"),
            "{flag}: {}",
            r.stderr
        );
    }
    // A server URL per cluster: {cluster} is replaced in the Application,
    // and the shared AppProject admits them all through a glob.
    let mut args = vec![
        "render",
        "--from-file",
        EXAMPLE,
        "--cluster",
        "prod",
        "--out",
    ];
    let out = repo.path().join("kyverno-policies/prod");
    args.push(out.to_str().unwrap());
    args.extend([
        "--argo",
        "--argo-repo-url",
        "https://github.com/acme/policies.git",
        "--argo-destination-server",
        "https://{cluster}.k8s.acme.example",
    ]);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let app = std::fs::read_to_string(
        repo.path()
            .join("argocd/application_kyverno-policies-prod.yaml"),
    )
    .unwrap();
    assert!(
        app.contains("  destination:\n    server: https://prod.k8s.acme.example\n"),
        "{app}"
    );
    let project =
        std::fs::read_to_string(repo.path().join("argocd/appproject_kyverno-policies.yaml"))
            .unwrap();
    assert!(
        project.contains("server: https://*.k8s.acme.example"),
        "{project}"
    );
}

/// Per-cluster Applications left beside an ApplicationSet that generates
/// Applications of the same names (or the other way round) would have two
/// owners fighting over each Application: refused, naming what to remove.
#[test]
fn switching_between_argo_and_argo_appset_names_the_files_to_remove() {
    let repo = repo();
    let url = "https://github.com/acme/policies.git";
    let name = ["--argo-destination-name", "{cluster}"];
    let r = commit(repo.path(), EXAMPLE, &["--argo", "--argo-repo-url", url]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let head = git(repo.path(), &["rev-parse", "HEAD"]);
    let mut appset = vec!["--argo-appset", "--argo-repo-url", url];
    appset.extend(name);
    let r = commit(repo.path(), EXAMPLE, &appset);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Remove argocd/application_kyverno-policies-prod.yaml"),
        "{}",
        r.stderr
    );
    assert_eq!(git(repo.path(), &["rev-parse", "HEAD"]), head);
    git(
        repo.path(),
        &["rm", "-q", "argocd/application_kyverno-policies-prod.yaml"],
    );
    git(repo.path(), &["commit", "-q", "-m", "drop the Application"]);
    let r = commit(repo.path(), EXAMPLE, &appset);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // And back: the ApplicationSet is in the way of the Applications.
    let r = commit(repo.path(), EXAMPLE, &["--argo", "--argo-repo-url", url]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Remove argocd/applicationset_kyverno-policies.yaml"),
        "{}",
        r.stderr
    );
    // render --out checks the same.
    let out = repo.path().join("kyverno-policies/prod");
    let r = run(&[
        "render",
        "--from-file",
        EXAMPLE,
        "--cluster",
        "prod",
        "--out",
        out.to_str().unwrap(),
        "--argo",
        "--argo-repo-url",
        url,
    ]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr.contains("applicationset_kyverno-policies.yaml"),
        "{}",
        r.stderr
    );
}
