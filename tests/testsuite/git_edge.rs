//! `commit` in the checkouts CI systems make: CRLF and filters, sparse
//! checkouts and unusual indexes, detached and shallow single-branch
//! clones, a bot branch that follows Insights, signing, linked worktrees,
//! push URLs, and many pipelines at once. Every scenario ends as a user
//! would check it: `git fsck --strict`, an empty `git status --porcelain`,
//! and `git update-index --refresh` succeeding.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{run_env, Run};
use crate::support::git::{git, git_daemon};

fn policy(name: &str, message: &str) -> String {
    format!("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: {name}\n  annotations:\n    policies.kyverno.io/title: Title of {name}\nspec:\n  validationFailureAction: Audit\n  rules:\n  - name: r\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    validate:\n      message: \"{message}\"\n      pattern:\n        metadata:\n          labels:\n            team: \"?*\"\n")
}

fn response(names: &[&str], message: &str) -> String {
    names
        .iter()
        .map(|n| policy(n, message))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// A bare remote with `main` holding a README, and a place for inputs.
struct World {
    tmp: tempfile::TempDir,
    remote: PathBuf,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let remote = tmp.path().join("remote.git");
        git(
            tmp.path(),
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        );
        let seed = tmp.path().join("seed");
        git(tmp.path(), &["init", "-q", "-b", "main", "seed"]);
        std::fs::write(seed.join("README.md"), "policy repo\n").unwrap();
        git(&seed, &["add", "-A"]);
        git(&seed, &["commit", "-q", "-m", "init"]);
        git(&seed, &["push", "-q", remote.to_str().unwrap(), "main"]);
        World { tmp, remote }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A clone, with `extra` clone options, and an identity.
    fn clone(&self, name: &str, extra: &[&str]) -> PathBuf {
        let dir = self.path(name);
        let url = format!("file://{}", self.remote.display());
        let mut args = vec!["clone", "-q"];
        args.extend(extra);
        args.extend([url.as_str(), dir.to_str().unwrap()]);
        git(self.tmp.path(), &args);
        git(&dir, &["config", "user.name", "Policy Bot"]);
        git(&dir, &["config", "user.email", "bot@example.com"]);
        dir
    }

    fn input(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// Commits `input` for cluster prod in `repo`.
    fn commit(&self, repo: &Path, input: &str, extra: &[&str]) -> Run {
        self.commit_env(repo, input, extra, &[])
    }

    fn commit_env(&self, repo: &Path, input: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let mut args = vec![
            "commit",
            "--from-file",
            input,
            "--cluster",
            "prod",
            "--repo",
            repo.to_str().unwrap(),
        ];
        args.extend(extra);
        run_env(&args, env, None)
    }

    /// A commit on the remote's main, made from a clone of its own, as
    /// another pipeline or a person would.
    fn push_elsewhere(&self, name: &str, change: impl FnOnce(&Path)) {
        let other = self.clone(name, &[]);
        change(&other);
        git(&other, &["add", "-A"]);
        git(&other, &["commit", "-q", "-m", "elsewhere"]);
        git(&other, &["push", "-q", "origin", "main"]);
    }
}

/// What a user checks after a run.
fn assert_clean(repo: &Path) {
    git(repo, &["fsck", "--strict", "--no-progress"]);
    assert_eq!(
        git(repo, &["status", "--porcelain", "--untracked-files=all"]),
        "",
        "git status is clean in {}",
        repo.display()
    );
    git(repo, &["update-index", "--refresh"]);
}

fn tip(repo: &Path, what: &str) -> String {
    git(repo, &["rev-parse", what]).trim().to_owned()
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn crlf_checkouts_commit_and_stay_clean() {
    let w = World::new();
    let v1 = w.input("v1.yaml", &response(&["a", "b"], "one"));
    let v2 = w.input("v2.yaml", &response(&["a", "c"], "two"));

    // Windows runners: core.autocrlf=true.
    let auto = w.clone("autocrlf", &["-c", "core.autocrlf=true"]);
    ok(&w.commit(&auto, &v1, &["--push", "--max-removals", "100%"]));
    assert_clean(&auto);
    let file = auto.join("kyverno-policies/prod/clusterpolicy_a.yaml");
    assert!(std::fs::read(&file)
        .unwrap()
        .windows(2)
        .any(|p| p == b"\r\n"));
    ok(&w.commit(&auto, &v2, &["--push", "--max-removals", "100%"]));
    assert_clean(&auto);
    let stored = git(
        &w.remote,
        &["show", "main:kyverno-policies/prod/clusterpolicy_a.yaml"],
    );
    assert!(!stored.contains('\r'), "the repository holds LF");

    // A repository that asks for CRLF in its .gitattributes.
    w.push_elsewhere("attrs", |d| {
        std::fs::write(d.join(".gitattributes"), "* text=auto eol=crlf\n").unwrap()
    });
    let eol = w.clone("eol", &[]);
    assert_clean(&eol);
    let v3 = w.input("v3.yaml", &response(&["a", "d"], "three"));
    ok(&w.commit(&eol, &v3, &["--push", "--max-removals", "100%"]));
    assert_clean(&eol);
    let file = eol.join("kyverno-policies/prod/clusterpolicy_d.yaml");
    assert!(std::fs::read(&file)
        .unwrap()
        .windows(2)
        .any(|p| p == b"\r\n"));
    // And a run with nothing new commits nothing.
    let before = tip(&w.remote, "main");
    let r = w.commit(&eol, &v3, &["--push"]);
    ok(&r);
    assert!(r.stderr.contains("nothing changed"), "{}", r.stderr);
    assert_eq!(tip(&w.remote, "main"), before);
    assert_clean(&eol);
}

#[test]
fn a_symlink_replaced_by_a_directory_upstream_is_followed_without_writing_outside() {
    let w = World::new();
    let outside = w.path("outside");
    std::fs::create_dir(&outside).unwrap();
    w.push_elsewhere("linker", |d| {
        std::os::unix::fs::symlink(&outside, d.join("foo")).unwrap();
    });
    let work = w.clone("work", &[]);
    assert!(work
        .join("foo")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    // Upstream, the symlink becomes a directory with a file in it.
    w.push_elsewhere("dirmaker", |d| {
        std::fs::remove_file(d.join("foo")).unwrap();
        std::fs::create_dir(d.join("foo")).unwrap();
        std::fs::write(d.join("foo/bar"), "inside\n").unwrap();
    });
    let v1 = w.input("v1.yaml", &response(&["a"], "one"));
    let r = w.commit(&work, &v1, &["--push"]);
    ok(&r);
    assert!(
        r.stderr.contains("push refused"),
        "the push on the old tip was refused, and rebuilt on the new one: {}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing was written through the old symlink"
    );
    assert!(work.join("foo").symlink_metadata().unwrap().is_dir());
    assert_eq!(
        std::fs::read_to_string(work.join("foo/bar")).unwrap(),
        "inside\n"
    );
    assert_eq!(tip(&work, "HEAD"), tip(&w.remote, "main"));
    assert_clean(&work);
}

#[test]
fn sparse_checkouts_and_split_and_sparse_indexes() {
    let w = World::new();
    w.push_elsewhere("layout", |d| {
        std::fs::create_dir_all(d.join("clusters/prod")).unwrap();
        std::fs::write(d.join("clusters/prod/flux.yaml"), "kind: Kustomization\n").unwrap();
    });
    let v1 = w.input("v1.yaml", &response(&["a", "b"], "one"));
    let v2 = w.input("v2.yaml", &response(&["a", "c"], "two"));

    // Sparse checkout without the policy directory: the files are
    // committed, not written, and keep their skip-worktree bits.
    let sparse = w.clone("sparse", &[]);
    git(&sparse, &["sparse-checkout", "set", "clusters"]);
    ok(&w.commit(&sparse, &v1, &["--push"]));
    assert!(!sparse.join("kyverno-policies").exists());
    let listed = git(&sparse, &["ls-files", "-t", "kyverno-policies"]);
    assert!(!listed.is_empty());
    assert!(listed.lines().all(|l| l.starts_with("S ")), "{listed}");
    ok(&w.commit(&sparse, &v2, &["--push", "--max-removals", "100%"]));
    assert!(git(&sparse, &["ls-files", "-t", "kyverno-policies"])
        .lines()
        .all(|l| l.starts_with("S ")));
    assert_clean(&sparse);

    // A split index.
    let split = w.clone("split", &[]);
    git(&split, &["update-index", "--split-index"]);
    let v3 = w.input("v3.yaml", &response(&["a", "d"], "three"));
    ok(&w.commit(&split, &v3, &["--push", "--max-removals", "100%"]));
    assert!(split
        .join("kyverno-policies/prod/clusterpolicy_d.yaml")
        .exists());
    assert_clean(&split);

    // A sparse index, with the policy directory inside the cone.
    let sparse_index = w.clone("sparse-index", &[]);
    git(
        &sparse_index,
        &["sparse-checkout", "init", "--cone", "--sparse-index"],
    );
    git(
        &sparse_index,
        &["sparse-checkout", "set", "kyverno-policies"],
    );
    let v4 = w.input("v4.yaml", &response(&["a", "e"], "four"));
    ok(&w.commit(&sparse_index, &v4, &["--push", "--max-removals", "100%"]));
    assert!(sparse_index
        .join("kyverno-policies/prod/clusterpolicy_e.yaml")
        .exists());
    assert!(!sparse_index.join("clusters").exists());
    assert_clean(&sparse_index);
}

#[test]
fn git_lfs_tracking_yaml_is_refused_with_the_line_that_exempts_the_policies() {
    if Command::new("git")
        .args(["lfs", "version"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        panic!("git-lfs is not installed (Debian package git-lfs; .ci/run installs it)");
    }
    let w = World::new();
    let work = w.clone("work", &[]);
    git(&work, &["lfs", "install", "--local"]);
    git(&work, &["lfs", "track", "*.yaml"]);
    git(&work, &["add", ".gitattributes"]);
    git(&work, &["commit", "-q", "-m", "lfs"]);
    let before = tip(&work, "HEAD");
    let v1 = w.input("v1.yaml", &response(&["a"], "one"));
    let r = w.commit(&work, &v1, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("/kyverno-policies/prod/** -filter -diff -merge"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("\"lfs\""), "{}", r.stderr);
    assert_eq!(tip(&work, "HEAD"), before, "nothing committed");

    // With the suggested line, the commit goes through and stays clean.
    let mut attrs = std::fs::read_to_string(work.join(".gitattributes")).unwrap();
    attrs.push_str("/kyverno-policies/prod/** -filter -diff -merge\n");
    std::fs::write(work.join(".gitattributes"), attrs).unwrap();
    git(&work, &["commit", "-q", "-am", "exempt the policies"]);
    ok(&w.commit(&work, &v1, &[]));
    assert_clean(&work);
}

#[test]
fn gitlab_detached_shallow_checkout_commits_directly_and_on_a_bot_branch() {
    let w = World::new();
    // GitLab CI: the pipeline's commit, detached, shallow.
    let work = w.clone(
        "work",
        &["--depth", "1", "--single-branch", "--branch", "main"],
    );
    git(&work, &["checkout", "-q", "--detach"]);
    let detached_at = tip(&work, "HEAD");
    // Another pipeline moved main since this job's checkout.
    w.push_elsewhere("other", |d| {
        std::fs::write(d.join("other.txt"), "x\n").unwrap()
    });
    let moved_main = tip(&w.remote, "main");

    let v1 = w.input("v1.yaml", &response(&["a"], "one"));
    let out = w.path("out1");
    let r = w.commit_env(
        &work,
        &v1,
        &["--base", "main", "--push"],
        &[("GITHUB_OUTPUT", out.to_str().unwrap())],
    );
    ok(&r);
    let main = tip(&w.remote, "main");
    assert_eq!(
        tip(&w.remote, "main^"),
        moved_main,
        "committed on top of the remote's main, not the job's older commit"
    );
    let files = git(&w.remote, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(
        files.contains("other.txt") && files.contains("kyverno-policies/prod/clusterpolicy_a.yaml"),
        "{files}"
    );
    assert_eq!(
        tip(&work, "HEAD"),
        detached_at,
        "the checkout is left where CI put it"
    );
    assert_clean(&work);

    // diff works detached too (against HEAD, the pipeline's commit).
    let r = run_env(
        &[
            "diff",
            "--from-file",
            &v1,
            "--cluster",
            "prod",
            "--repo",
            work.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);

    // Bot-branch mode needs only --branch and --base.
    let v2 = w.input("v2.yaml", &response(&["a", "b"], "two"));
    let r = w.commit(
        &work,
        &v2,
        &["--branch", "insights/p", "--base", "main", "--push"],
    );
    ok(&r);
    assert_eq!(tip(&w.remote, "insights/p^"), main);
    assert_eq!(tip(&work, "HEAD"), detached_at);
    assert_clean(&work);

    // Without --base, detached direct mode is a usage error naming it.
    let r = w.commit(&work, &v2, &[]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("--base"), "{}", r.stderr);
}

/// GitHub's checkout: one commit of one branch. The bot branch is read from
/// the remote: an unchanged input pushes nothing, and when Insights matches
/// the base again the branch is deleted.
#[test]
fn a_bot_branch_follows_insights_from_single_branch_clones() {
    let w = World::new();
    let v1 = w.input("v1.yaml", &response(&["a"], "one"));
    let bot = ["--branch", "insights/p", "--base", "main", "--push"];
    let output = |name: &str| w.path(name);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();

    let first = w.clone("first", &["--depth", "1", "--single-branch"]);
    let out = output("o1");
    ok(&w.commit_env(
        &first,
        &v1,
        &bot,
        &[("GITHUB_OUTPUT", out.to_str().unwrap())],
    ));
    let proposed = tip(&w.remote, "insights/p");
    assert!(read(&out).contains("changed=true\n"), "{}", read(&out));
    assert!(
        read(&out).contains("bot_branch=updated\n"),
        "{}",
        read(&out)
    );

    // A later run, from a new single-branch clone, with the same input.
    let reflog_before = git(
        &w.remote,
        &[
            "for-each-ref",
            "--format=%(objectname)",
            "refs/heads/insights/p",
        ],
    );
    let second = w.clone("second", &["--depth", "1", "--single-branch"]);
    let out = output("o2");
    let r = w.commit_env(
        &second,
        &v1,
        &bot,
        &[("GITHUB_OUTPUT", out.to_str().unwrap())],
    );
    ok(&r);
    assert!(
        r.stderr.contains("already holds these changes"),
        "{}",
        r.stderr
    );
    assert_eq!(tip(&w.remote, "insights/p"), proposed, "nothing pushed");
    assert_eq!(
        git(
            &w.remote,
            &[
                "for-each-ref",
                "--format=%(objectname)",
                "refs/heads/insights/p"
            ]
        ),
        reflog_before
    );
    assert!(
        read(&out).contains("bot_branch=unchanged\n"),
        "{}",
        read(&out)
    );
    assert_clean(&second);

    // main takes the change by another way (the pull request was merged
    // by hand, say); Insights now matches main: the proposal is withdrawn.
    git(&w.remote, &["update-ref", "refs/heads/main", &proposed]);
    let third = w.clone("third", &["--depth", "1", "--single-branch"]);
    let out = output("o3");
    let r = w.commit_env(
        &third,
        &v1,
        &bot,
        &[("GITHUB_OUTPUT", out.to_str().unwrap())],
    );
    ok(&r);
    assert!(r.stderr.contains("deleted"), "{}", r.stderr);
    assert!(read(&out).contains("changed=false\n"), "{}", read(&out));
    assert!(
        read(&out).contains("bot_branch=deleted\n"),
        "{}",
        read(&out)
    );
    assert_eq!(
        git(&w.remote, &["branch", "--list", "insights/p"]),
        "",
        "the bot branch is gone from the remote"
    );
    // And once gone, nothing to do.
    let out = output("o4");
    ok(&w.commit_env(
        &third,
        &v1,
        &bot,
        &[("GITHUB_OUTPUT", out.to_str().unwrap())],
    ));
    assert!(
        read(&out).contains("bot_branch=unchanged\n"),
        "{}",
        read(&out)
    );
    assert_clean(&third);
}

#[test]
fn a_bot_branch_checked_out_in_another_worktree_is_refused() {
    let w = World::new();
    let work = w.clone("work", &[]);
    let linked = w.path("linked");
    git(
        &work,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "insights/p",
            linked.to_str().unwrap(),
        ],
    );
    let before = tip(&work, "insights/p");
    let v1 = w.input("v1.yaml", &response(&["a"], "one"));
    let r = w.commit(&work, &v1, &["--branch", "insights/p", "--base", "main"]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr.contains("checked out in the worktree at"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("linked"), "{}", r.stderr);
    assert_eq!(tip(&work, "insights/p"), before);
    assert_clean(&work);
}

#[test]
fn run_from_a_subdirectory_finds_the_repository() {
    let w = World::new();
    w.push_elsewhere("layout", |d| {
        std::fs::create_dir_all(d.join("clusters/prod")).unwrap();
        std::fs::write(d.join("clusters/prod/flux.yaml"), "kind: Kustomization\n").unwrap();
    });
    let work = w.clone("work", &[]);
    let v1 = w.input("v1.yaml", &response(&["a"], "one"));
    ok(&w.commit(&work.join("clusters/prod"), &v1, &["--push"]));
    assert!(work
        .join("kyverno-policies/prod/clusterpolicy_a.yaml")
        .exists());
    assert_clean(&work);
}

#[test]
fn pushurl_and_push_instead_of_are_honoured_for_the_push_and_what_follows() {
    let w = World::new();
    let v1 = w.input("v1.yaml", &response(&["a"], "one"));
    let v2 = w.input("v2.yaml", &response(&["a", "b"], "two"));
    let gone = w.path("no-such-mirror.git");

    // pushurl: fetches would go to a mirror that does not answer.
    let work = w.clone("work", &[]);
    git(
        &work,
        &[
            "config",
            "remote.origin.pushurl",
            w.remote.to_str().unwrap(),
        ],
    );
    git(
        &work,
        &["config", "remote.origin.url", gone.to_str().unwrap()],
    );
    ok(&w.commit(&work, &v1, &["--push"]));
    assert_eq!(tip(&work, "HEAD"), tip(&w.remote, "main"));
    ok(&w.commit(
        &work,
        &v2,
        &["--branch", "insights/p", "--base", "main", "--push"],
    ));
    assert_eq!(tip(&w.remote, "insights/p^"), tip(&w.remote, "main"));
    assert_clean(&work);

    // pushInsteadOf: the configured URL is rewritten for pushes only.
    let other = w.clone("other", &[]);
    git(&other, &["fetch", "-q", "origin"]);
    git(&other, &["reset", "-q", "--hard", "origin/main"]);
    git(
        &other,
        &[
            "config",
            "remote.origin.url",
            "https://mirror.invalid/policies.git",
        ],
    );
    git(
        &other,
        &[
            "config",
            &format!("url.{}.pushInsteadOf", w.remote.display()),
            "https://mirror.invalid/policies.git",
        ],
    );
    let v3 = w.input("v3.yaml", &response(&["a", "c"], "three"));
    ok(&w.commit(&other, &v3, &["--push", "--max-removals", "100%"]));
    assert_eq!(tip(&other, "HEAD"), tip(&w.remote, "main"));
    assert_clean(&other);
}

/// `commit.gpgsign=true` signs with the user's key, in gpg or ssh format;
/// a key that cannot sign stops the run with no commit.
#[test]
fn commits_are_signed_as_git_commit_would_sign_them() {
    let w = World::new();
    let gnupg = w.path("gnupg");
    std::fs::create_dir(&gnupg).unwrap();
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .env("GNUPGHOME", &gnupg)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .expect("gpg (Debian package gnupg; .ci/run installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    gpg(&[
        "--quick-gen-key",
        "Policy Bot <bot@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);
    let env = [("GNUPGHOME", gnupg.to_str().unwrap())];

    let work = w.clone("work", &[]);
    git(&work, &["config", "commit.gpgsign", "true"]);
    let v1 = w.input("v1.yaml", &response(&["a"], "one"));
    ok(&w.commit_env(&work, &v1, &["--push"], &env));
    let status = Command::new("git")
        .args(["log", "-1", "--format=%G?"])
        .current_dir(&work)
        .env("GNUPGHOME", &gnupg)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&status.stdout).trim(),
        "G",
        "a good gpg signature"
    );
    assert_clean(&work);

    // ssh format, with --sign instead of the configuration.
    let key = w.path("signing_key");
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "bot",
            "-f",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let public = std::fs::read_to_string(w.path("signing_key.pub")).unwrap();
    let allowed = w.path("allowed_signers");
    std::fs::write(&allowed, format!("bot@example.com {public}")).unwrap();
    let ssh = w.clone("ssh", &[]);
    git(&ssh, &["config", "gpg.format", "ssh"]);
    git(
        &ssh,
        &[
            "config",
            "user.signingkey",
            w.path("signing_key.pub").to_str().unwrap(),
        ],
    );
    git(
        &ssh,
        &[
            "config",
            "gpg.ssh.allowedSignersFile",
            allowed.to_str().unwrap(),
        ],
    );
    let v2 = w.input("v2.yaml", &response(&["a", "b"], "two"));
    ok(&w.commit(&ssh, &v2, &["--push", "--sign"]));
    assert_eq!(
        git(&ssh, &["log", "-1", "--format=%G?"]).trim(),
        "G",
        "a good ssh signature"
    );
    assert_clean(&ssh);

    // A key that cannot sign: no commit, an error that says so.
    let broken = w.clone("broken", &[]);
    git(&broken, &["config", "commit.gpgsign", "true"]);
    git(&broken, &["config", "user.signingkey", "0000000000000000"]);
    let before = tip(&broken, "HEAD");
    let v3 = w.input("v3.yaml", &response(&["a", "c"], "three"));
    let r = w.commit_env(&broken, &v3, &["--push", "--max-removals", "100%"], &env);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("could not sign the commit"),
        "{}",
        r.stderr
    );
    assert_eq!(tip(&broken, "HEAD"), before);
    assert_eq!(tip(&w.remote, "main"), tip(&ssh, "HEAD"), "nothing pushed");
    assert_clean(&broken);
}

/// Eight pipelines, each with its own cluster, push to one remote at once:
/// every one lands (backoff with jitter between attempts). Each refused
/// push means another pipeline's push landed, so with as many attempts as
/// pipelines no one can run out.
#[test]
fn eight_pipelines_pushing_at_once_all_land() {
    let w = World::new();
    let daemon = git_daemon(w.tmp.path());
    let clusters: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    let mut children = Vec::new();
    for cluster in &clusters {
        let work = w.clone(cluster, &[]);
        git(&work, &["remote", "set-url", "origin", &daemon.1]);
        let input = w.input(&format!("{cluster}.yaml"), &response(&["a", "b"], cluster));
        children.push((
            work.clone(),
            crate::support::cli::bin()
                .args([
                    "commit",
                    "--from-file",
                    &input,
                    "--cluster",
                    cluster,
                    "--repo",
                ])
                .arg(&work)
                .arg("--push")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        ));
    }
    for (work, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(&work);
    }
    let files = git(&w.remote, &["ls-tree", "-r", "--name-only", "main"]);
    for cluster in &clusters {
        assert!(
            files.contains(&format!("kyverno-policies/{cluster}/clusterpolicy_a.yaml")),
            "{cluster} landed: {files}"
        );
    }
    git(&w.remote, &["fsck", "--strict", "--no-progress"]);
}

#[test]
fn a_repository_owned_by_someone_else_names_safe_directory() {
    let w = World::new();
    let work = w.clone("work", &[]);
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&work)
        .status()
        .unwrap();
    assert!(status.success());
    let v1 = w.input("v1.yaml", &response(&["a"], "one"));
    let r = w.commit(&work, &v1, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("safe.directory"), "{}", r.stderr);
}

/// Thousands of policies in one commit: git's answers for every path (the
/// attribute check) are larger than a pipe holds, so they must be read
/// while the paths are still being written.
#[test]
fn a_commit_of_thousands_of_policies_completes() {
    let w = World::new();
    let work = w.clone("work", &[]);
    let names: Vec<String> = (0..3000)
        .map(|i| format!("policy-with-a-longer-name-{i:05}"))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let big = w.input("big.yaml", &response(&refs, "many"));
    ok(&w.commit(&work, &big, &["--push"]));
    let files = git(
        &w.remote,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "main",
            "kyverno-policies/prod/",
        ],
    );
    assert_eq!(
        files.lines().count(),
        3001,
        "every policy and the kustomization"
    );
    assert_clean(&work);
}
