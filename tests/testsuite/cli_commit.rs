//! `commit` and `diff` on real repositories with a real bare remote, checked
//! with the `git` command line as a user would.

use std::path::{Path, PathBuf};

use crate::support::cli::{run_env, Run};
use crate::support::git::{git, git_daemon};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/insights/response.yaml"
);

fn policy(name: &str, extra: &str) -> String {
    format!("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: {name}\n  annotations:\n    policies.kyverno.io/title: Title of {name}\n    policies.kyverno.io/severity: high\nspec:\n  rules: []\n{extra}")
}

struct Setup {
    tmp: tempfile::TempDir,
    remote: PathBuf,
}

impl Setup {
    /// A bare remote whose `main` holds a README, a Flux bootstrap file and
    /// a hand-written note inside the rendered directory.
    fn new() -> Setup {
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
        let seed = tmp.path().join("seed");
        git(
            tmp.path(),
            &[
                "clone",
                "-q",
                remote.to_str().unwrap(),
                seed.to_str().unwrap(),
            ],
        );
        git(&seed, &["checkout", "-q", "-b", "main"]);
        std::fs::write(seed.join("README.md"), "policy repo\n").unwrap();
        std::fs::create_dir_all(seed.join("clusters/prod")).unwrap();
        std::fs::write(
            seed.join("clusters/prod/flux.yaml"),
            "kind: Kustomization\n",
        )
        .unwrap();
        std::fs::create_dir_all(seed.join("kyverno-policies/prod")).unwrap();
        std::fs::write(
            seed.join("kyverno-policies/prod/NOTES.md"),
            "hand written\n",
        )
        .unwrap();
        git(&seed, &["add", "-A"]);
        git(&seed, &["commit", "-q", "-m", "init"]);
        git(&seed, &["push", "-q", "origin", "main"]);
        Setup { tmp, remote }
    }

    fn clone(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        git(
            self.tmp.path(),
            &[
                "clone",
                "-q",
                self.remote.to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
        );
        git(&dir, &["config", "user.name", "Policy Bot"]);
        git(&dir, &["config", "user.email", "bot@example.com"]);
        dir
    }

    fn input(&self, name: &str, text: &str) -> String {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn remote_log(&self, branch: &str) -> Vec<String> {
        git(&self.remote, &["log", "--format=%s", branch])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn commit(repo: &Path, input: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "commit",
        "--from-file",
        input,
        "--cluster",
        "prod",
        "--repo",
        repo.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_env(&args, &[], None)
}

#[test]
fn first_commit_then_a_rerun_that_commits_nothing() {
    let s = Setup::new();
    let work = s.clone("work");
    let r = commit(&work, EXAMPLE, &["--push"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("and pushed"), "{}", r.stderr);
    assert_eq!(
        s.remote_log("main"),
        ["Update Kyverno policies for prod", "init"]
    );
    let stat = git(
        &s.remote,
        &["show", "--stat", "--format=%an <%ae>%n%b", "main"],
    );
    assert!(stat.starts_with("Policy Bot <bot@example.com>\nprod (kyverno-policies/prod): 8 added, 0 updated, 0 removed\n"), "{stat}");
    assert!(stat.contains("Source: file "), "{stat}");
    assert!(stat.contains("9 files changed"), "{stat}");
    assert!(
        git(&work, &["status", "--porcelain"]).is_empty(),
        "working tree and index follow the commit"
    );
    git(&s.remote, &["fsck", "--strict"]);

    let again = commit(&work, EXAMPLE, &["--push"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("nothing changed: no commit on main"),
        "{}",
        again.stderr
    );
    assert_eq!(s.remote_log("main").len(), 2);
    if crate::support::env::kubectl().is_some() {
        crate::support::env::kustomize_build(&work.join("kyverno-policies/prod"));
    }
}

#[test]
fn an_update_touches_only_what_changed_and_leaves_everything_else() {
    let s = Setup::new();
    let work = s.clone("work");
    let v1 = s.input(
        "v1.yaml",
        &format!("{}---\n{}", policy("a", ""), policy("b", "")),
    );
    assert_eq!(commit(&work, &v1, &[]).code, 0);
    // Local work of the user that must survive: an edit and a staged file.
    std::fs::write(work.join("README.md"), "edited locally\n").unwrap();
    std::fs::write(work.join("staged.txt"), "staged\n").unwrap();
    git(&work, &["add", "staged.txt"]);

    let v2 = s.input(
        "v2.yaml",
        &format!(
            "{}---\n{}",
            policy("a", "  background: false\n"),
            policy("c", "")
        ),
    );
    let r = commit(&work, &v2, &["--author", "Renderer <r@example.com>"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("prod: 1 added, 1 updated, 1 removed, 0 unchanged"),
        "{}",
        r.stderr
    );
    let files = git(
        &work,
        &[
            "show",
            "--no-renames",
            "--name-status",
            "--format=%an",
            "HEAD",
        ],
    );
    assert_eq!(
        files.trim(),
        "Renderer\n\nM\tkyverno-policies/prod/clusterpolicy_a.yaml\nD\tkyverno-policies/prod/clusterpolicy_b.yaml\nA\tkyverno-policies/prod/clusterpolicy_c.yaml\nM\tkyverno-policies/prod/kustomization.yaml"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("README.md")).unwrap(),
        "edited locally\n"
    );
    let status = git(&work, &["status", "--porcelain"]);
    assert_eq!(status, " M README.md\nA  staged.txt\n");
    assert_eq!(
        std::fs::read_to_string(work.join("kyverno-policies/prod/NOTES.md")).unwrap(),
        "hand written\n"
    );
    assert!(!work
        .join("kyverno-policies/prod/clusterpolicy_b.yaml")
        .exists());
    git(&work, &["fsck", "--strict"]);
}

#[test]
fn a_foreign_file_in_the_way_is_refused_without_a_commit() {
    let s = Setup::new();
    let work = s.clone("work");
    std::fs::write(
        work.join("kyverno-policies/prod/kustomization.yaml"),
        "resources: []\n",
    )
    .unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "hand-made kustomization"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    let r = commit(&work, EXAMPLE, &[]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("kyverno-policies/prod: kustomization.yaml exists and was not written by insights-policy-render"), "{}", r.stderr);
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), head);
    assert!(git(&work, &["status", "--porcelain"]).is_empty());
}

#[test]
fn bot_branch_for_a_pull_request() {
    let s = Setup::new();
    let work = s.clone("work");
    let main_before = git(&s.remote, &["rev-parse", "main"]);
    let pr = s.tmp.path().join("pr.md");
    let gh_output = s.tmp.path().join("github_output");
    let args = [
        "commit",
        "--from-file",
        EXAMPLE,
        "--cluster",
        "prod",
        "--repo",
        work.to_str().unwrap(),
        "--branch",
        "insights/kyverno-policies",
        "--base",
        "main",
        "--push",
        "--pr-body-file",
        pr.to_str().unwrap(),
    ];
    let r = run_env(
        &args,
        &[("GITHUB_OUTPUT", gh_output.to_str().unwrap())],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        git(&s.remote, &["rev-parse", "main"]),
        main_before,
        "main untouched"
    );
    assert_eq!(
        git(&s.remote, &["rev-parse", "insights/kyverno-policies^"]),
        main_before
    );
    assert_eq!(
        git(&work, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "main"
    );
    assert!(
        !work
            .join("kyverno-policies/prod/kustomization.yaml")
            .exists(),
        "the checked-out tree is not touched"
    );
    let body = std::fs::read_to_string(&pr).unwrap();
    assert!(body.contains("| added | ClusterPolicy |  | `disallow-latest-tag` | Disallow Latest Tag | Best Practices | medium |"), "{body}");
    let sha = git(&s.remote, &["rev-parse", "insights/kyverno-policies"]);
    assert_eq!(
        std::fs::read_to_string(&gh_output).unwrap(),
        format!("changed=true\ncommit={sha}bot_branch=updated\n")
    );

    // A run with the same policies, while the pull request waits, keeps
    // the commit: no force-push, no notification, even from a fresh clone.
    for clone in [work.clone(), s.clone("fresh")] {
        let output = s.tmp.path().join("again_output");
        let mut again = args.to_vec();
        again[6] = clone.to_str().unwrap();
        let r = run_env(&again, &[("GITHUB_OUTPUT", output.to_str().unwrap())], None);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stderr.contains("already holds these changes"),
            "{}",
            r.stderr
        );
        assert_eq!(
            git(&s.remote, &["rev-parse", "insights/kyverno-policies"]),
            sha
        );
        assert_eq!(
            std::fs::read_to_string(&output).unwrap(),
            format!("changed=true\ncommit={sha}bot_branch=unchanged\n")
        );
        std::fs::remove_file(&output).unwrap();
    }

    // The next run recreates the branch from main: one commit on top, force-pushed.
    let v2 = s.input("v2.yaml", &policy("only", ""));
    let mut args2 = args.to_vec();
    args2[2] = &v2;
    let r = run_env(&args2, &[], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        git(&s.remote, &["rev-parse", "insights/kyverno-policies^"]),
        main_before
    );
    let files = git(
        &s.remote,
        &[
            "ls-tree",
            "--name-only",
            "insights/kyverno-policies",
            "kyverno-policies/prod/",
        ],
    );
    assert!(
        files.contains("clusterpolicy_only.yaml") && !files.contains("disallow"),
        "{files}"
    );
}

#[test]
fn a_push_refused_because_the_remote_moved_is_rebuilt_on_the_new_tip() {
    let s = Setup::new();
    let ours = s.clone("ours");
    let theirs = s.clone("theirs");
    std::fs::write(theirs.join("other.txt"), "another pipeline\n").unwrap();
    git(&theirs, &["add", "-A"]);
    git(&theirs, &["commit", "-q", "-m", "their change"]);
    git(&theirs, &["push", "-q", "origin", "main"]);

    let r = run_env(
        &[
            "commit",
            "--from-file",
            EXAMPLE,
            "--cluster",
            "prod",
            "--repo",
            ours.to_str().unwrap(),
            "--push",
            "--log-level",
            "warn",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("push refused"),
        "the first push was refused: {}",
        r.stderr
    );
    assert_eq!(
        s.remote_log("main"),
        ["Update Kyverno policies for prod", "their change", "init"]
    );
    assert_eq!(
        git(&ours, &["rev-parse", "HEAD"]),
        git(&s.remote, &["rev-parse", "main"])
    );
    assert!(
        ours.join("other.txt").is_file(),
        "the local checkout caught up with the remote"
    );
    assert!(git(&ours, &["status", "--porcelain"]).is_empty());
    git(&s.remote, &["fsck", "--strict"]);
}

#[test]
fn four_pipelines_committing_at_once_all_land() {
    let s = Setup::new();
    let daemon = git_daemon(s.tmp.path());
    let children: Vec<_> = (0..4)
        .map(|i| {
            let work = s.clone(&format!("job{i}"));
            git(&work, &["remote", "set-url", "origin", &daemon.1]);
            let input = s.input(&format!("in{i}.yaml"), &policy(&format!("p{i}"), ""));
            let cluster = format!("cluster-{i}");
            crate::support::cli::bin()
                .args([
                    "commit",
                    "--from-file",
                    &input,
                    "--cluster",
                    &cluster,
                    "--repo",
                    work.to_str().unwrap(),
                    "--push",
                    "--push-attempts",
                    "10",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tree = git(&s.remote, &["ls-tree", "-r", "--name-only", "main"]);
    for i in 0..4 {
        assert!(
            tree.contains(&format!(
                "kyverno-policies/cluster-{i}/clusterpolicy_p{i}.yaml"
            )),
            "cluster-{i} lost:\n{tree}"
        );
    }
    assert_eq!(s.remote_log("main").len(), 5, "four commits on init");
    git(&s.remote, &["fsck", "--strict"]);
}

#[test]
fn diff_shows_what_would_change_with_terraform_style_exit_codes() {
    let s = Setup::new();
    let work = s.clone("work");
    let diff = |input: &str| {
        run_env(
            &[
                "diff",
                "--from-file",
                input,
                "--cluster",
                "prod",
                "--repo",
                work.to_str().unwrap(),
            ],
            &[],
            None,
        )
    };
    let r = diff(EXAMPLE);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(
            "# prod (kyverno-policies/prod): 8 added, 0 updated, 0 removed, 0 unchanged\n"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("+++ b/kyverno-policies/prod/clusterpolicy_disallow-latest-tag.yaml")
            || r.stdout
                .contains("+++ kyverno-policies/prod/clusterpolicy_disallow-latest-tag.yaml"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("+    insights.fairwinds.com/owned-by: Fairwinds Insights"),
        "{}",
        r.stdout
    );
    let head = git(&work, &["rev-parse", "HEAD"]);
    assert!(
        git(&work, &["status", "--porcelain"]).is_empty(),
        "diff writes nothing"
    );
    assert_eq!(commit(&work, EXAMPLE, &[]).code, 0);
    assert_ne!(git(&work, &["rev-parse", "HEAD"]), head);
    let r = diff(EXAMPLE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "# prod (kyverno-policies/prod): 0 added, 0 updated, 0 removed, 8 unchanged\n"
    );
}

#[test]
fn usage_errors_change_nothing() {
    let s = Setup::new();
    let work = s.clone("work");
    let head = git(&work, &["rev-parse", "HEAD"]);
    // No author anywhere: an isolated HOME hides any global git config.
    git(&work, &["config", "--unset", "user.name"]);
    let home = s.tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let r = run_env(
        &[
            "commit",
            "--from-file",
            EXAMPLE,
            "--cluster",
            "prod",
            "--repo",
            work.to_str().unwrap(),
        ],
        &[
            ("HOME", home.to_str().unwrap()),
            ("XDG_CONFIG_HOME", home.to_str().unwrap()),
            ("GIT_CONFIG_NOSYSTEM", "1"),
        ],
        None,
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr.contains("no author: pass --author"),
        "{}",
        r.stderr
    );
    let r = commit(&work, EXAMPLE, &["--author", "nobody"]);
    assert_eq!(r.code, 64);
    let r = run_env(
        &[
            "commit",
            "--from-file",
            EXAMPLE,
            "--repo",
            work.to_str().unwrap(),
            "--author",
            "A <a@b>",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 64);
    assert!(
        r.stderr
            .contains("with --from-file, name it with --cluster"),
        "{}",
        r.stderr
    );
    let r = commit(
        &work,
        EXAMPLE,
        &["--author", "A <a@b>", "--path", "../outside/{cluster}"],
    );
    assert_eq!(r.code, 64);
    let r = commit(&work, EXAMPLE, &["--author", "A <a@b>", "--branch", "main"]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), head);
    assert!(git(&work, &["status", "--porcelain"]).is_empty());
}

#[test]
fn a_local_edit_to_a_rendered_file_is_never_overwritten() {
    let s = Setup::new();
    let work = s.clone("work");
    let v1 = s.input("v1.yaml", &policy("a", ""));
    assert_eq!(commit(&work, &v1, &[]).code, 0);
    let file = work.join("kyverno-policies/prod/clusterpolicy_a.yaml");
    std::fs::write(&file, "edited by hand\n").unwrap();
    let head = git(&work, &["rev-parse", "HEAD"]);
    let v2 = s.input("v2.yaml", &policy("a", "  background: false\n"));
    let r = commit(&work, &v2, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("local changes to the rendered files"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("kyverno-policies/prod/clusterpolicy_a.yaml"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "edited by hand\n");
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), head, "no commit");
}

#[test]
fn an_empty_response_is_not_committed_as_a_mass_removal() {
    let s = Setup::new();
    let work = s.clone("work");
    assert_eq!(commit(&work, EXAMPLE, &["--push"]).code, 0);
    let head = git(&s.remote, &["rev-parse", "main"]);
    let empty = s.input("empty.yaml", "");
    let r = commit(&work, &empty, &["--push"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "kyverno-policies/prod: the response has no policies, but 8 are rendered now"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was committed"), "{}", r.stderr);
    assert_eq!(git(&s.remote, &["rev-parse", "main"]), head);
    assert!(git(&work, &["status", "--porcelain"]).is_empty());
    let r = commit(&work, &empty, &["--push", "--allow-empty"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("0 added, 0 updated, 8 removed"),
        "{}",
        r.stderr
    );
}

/// The local branch moves only after the push succeeded: a remote that
/// cannot be reached leaves the repository as it was.
#[test]
fn a_failed_push_leaves_the_repository_as_it_was() {
    let s = Setup::new();
    let work = s.clone("work");
    let gone = s.tmp.path().join("gone.git");
    git(&work, &["remote", "add", "gone", gone.to_str().unwrap()]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    let r = commit(&work, EXAMPLE, &["--push", "--remote", "gone"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("push to gone"), "{}", r.stderr);
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), head);
    assert!(git(&work, &["status", "--porcelain"]).is_empty());
    assert!(!work
        .join("kyverno-policies/prod/kustomization.yaml")
        .exists());
    assert!(
        git(&work, &["for-each-ref", "refs/insights-policy-render"]).is_empty(),
        "no temporary ref left"
    );
    git(&work, &["fsck", "--strict"]);
    // And the next run, with a reachable remote, succeeds.
    let r = commit(&work, EXAMPLE, &["--push"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        git(&work, &["rev-parse", "HEAD"]),
        git(&s.remote, &["rev-parse", "main"])
    );
}
