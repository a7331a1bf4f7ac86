//! `commit --push` against real servers on 127.0.0.1: smart HTTP (nginx +
//! git-http-backend) with TLS from a private CA and basic auth, through a
//! CONNECT proxy, and sshd with key-only logins. Credentials, trust and
//! proxies come from where a CI runner has them: `GIT_TOKEN`, the extra
//! header GitHub's checkout action leaves, git's own configuration.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::cli::{bin, Run};
use crate::support::proxy::ConnectProxy;
use crate::support::servers::{git_cmd, run_ok, HttpsGit, Sshd};

fn policy(name: &str) -> String {
    format!("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: {name}\nspec:\n  rules: []\n")
}

/// The tool with none of the machine's git, proxy or ssh setup, like
/// [`git_cmd`]: each test adds exactly what it means to test.
fn tool(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = bin();
    let isolated = git_cmd(Path::new("."));
    for (key, value) in isolated.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.env_remove("GIT_TOKEN");
    cmd.envs(env.iter().copied());
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("start the binary");
    Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A bare repository on the server with `main` holding a README, seeded
/// through the server itself.
fn seed(tmp: &Path, url: &str, env: &[(&str, &str)]) {
    let seed = tmp.join("seed");
    run_ok(git_cmd(tmp).args(["init", "-q", "-b", "main"]).arg(&seed));
    std::fs::write(seed.join("README.md"), "policy repo\n").unwrap();
    run_ok(git_cmd(&seed).args(["add", "-A"]));
    run_ok(git_cmd(&seed).args(["commit", "-q", "-m", "init"]));
    run_ok(
        git_cmd(&seed)
            .envs(env.iter().copied())
            .args(["push", "-q", url, "main"]),
    );
}

/// A clone as `actions/checkout` makes it: depth 1, one branch.
fn clone(tmp: &Path, name: &str, url: &str, env: &[(&str, &str)]) -> PathBuf {
    let dir = tmp.join(name);
    run_ok(
        git_cmd(tmp)
            .envs(env.iter().copied())
            .args(["clone", "-q", "--depth", "1", "--single-branch", url])
            .arg(&dir),
    );
    run_ok(git_cmd(&dir).args(["config", "user.name", "Policy Bot"]));
    run_ok(git_cmd(&dir).args(["config", "user.email", "bot@example.com"]));
    dir
}

fn remote_tip(srv_root: &Path, repo: &str, branch: &str) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(srv_root.join(repo))
        .args(["rev-parse", "-q", "--verify", branch])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

fn commit_args<'a>(repo: &'a Path, input: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "commit",
        "--from-file",
        input,
        "--cluster",
        "prod",
        "--repo",
        repo.to_str().unwrap(),
        "--push",
    ];
    args.extend(extra);
    args
}

fn input(tmp: &Path, name: &str, text: &str) -> String {
    let path = tmp.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn clean(repo: &Path) {
    run_ok(git_cmd(repo).args(["fsck", "--strict", "--no-progress"]));
    assert_eq!(run_ok(git_cmd(repo).args(["status", "--porcelain"])), "");
    run_ok(git_cmd(repo).args(["update-index", "--refresh"]));
}

/// A server with `policies.git` seeded, a scratch directory, the CA file,
/// and a clone made with the user's credentials in the URL.
fn https_world() -> Option<(HttpsGit, tempfile::TempDir, String, PathBuf)> {
    let srv = HttpsGit::start()?;
    let tmp = tempfile::tempdir().unwrap();
    srv.create_bare("policies.git");
    let ca = srv.ca_file.to_str().unwrap().to_owned();
    let env = [("GIT_SSL_CAINFO", ca.as_str())];
    seed(tmp.path(), &srv.authed_repo_url("policies.git"), &env);
    let work = clone(
        tmp.path(),
        "work",
        &srv.authed_repo_url("policies.git"),
        &env,
    );
    Some((srv, tmp, ca, work))
}

/// The remote's main is the clone's HEAD: the push landed and the clone
/// followed it.
fn assert_landed(root: &Path, work: &Path) {
    assert_eq!(
        remote_tip(root, "policies.git", "main"),
        Some(
            run_ok(git_cmd(work).args(["rev-parse", "HEAD"]))
                .trim()
                .to_owned()
        )
    );
}

/// GitHub's checkout: the token in `http.<url>.extraheader`, one commit of
/// one branch. The push needs nothing else; a rerun pushes nothing.
#[test]
fn https_with_the_checkout_actions_extraheader() {
    let Some(srv) = HttpsGit::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    srv.create_bare("policies.git");
    let ca = srv.ca_file.to_str().unwrap().to_owned();
    let ca_env = [("GIT_SSL_CAINFO", ca.as_str())];
    seed(tmp.path(), &srv.authed_repo_url("policies.git"), &ca_env);

    let header_env = [
        ("GIT_SSL_CAINFO", ca.as_str()),
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", &srv.extraheader_key()),
        ("GIT_CONFIG_VALUE_0", &srv.extraheader()),
    ];
    let work = clone(
        tmp.path(),
        "work",
        &srv.repo_url("policies.git"),
        &header_env,
    );
    run_ok(git_cmd(&work).args(["config", &srv.extraheader_key(), &srv.extraheader()]));
    let v1 = input(tmp.path(), "v1.yaml", &policy("a"));
    let bot = ["--branch", "insights/p", "--base", "main"];
    let r = tool(&ca_env, &commit_args(&work, &v1, &bot));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let proposed = remote_tip(&srv.root, "policies.git", "insights/p").expect("pushed");
    let pushes = srv.requests().matches("git-receive-pack").count();

    let again = clone(
        tmp.path(),
        "again",
        &srv.repo_url("policies.git"),
        &header_env,
    );
    run_ok(git_cmd(&again).args(["config", &srv.extraheader_key(), &srv.extraheader()]));
    let r = tool(&ca_env, &commit_args(&again, &v1, &bot));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("already holds these changes"),
        "{}",
        r.stderr
    );
    assert_eq!(
        remote_tip(&srv.root, "policies.git", "insights/p").as_deref(),
        Some(proposed.as_str())
    );
    assert_eq!(
        srv.requests().matches("git-receive-pack").count(),
        pushes,
        "the rerun did not even start a push"
    );
    assert!(!r.stderr.contains(&srv.token), "the token is never printed");
    clean(&work);
    clean(&again);
}

/// GIT_TOKEN alone (GitLab's project access token, say), and what a wrong
/// one says: where git looked, never the token.
#[test]
fn https_with_git_token_and_a_clear_refusal() {
    let Some((srv, tmp, ca, work)) = https_world() else {
        return;
    };
    // The clone's URL carries no credentials from here on.
    run_ok(git_cmd(&work).args(["remote", "set-url", "origin", &srv.repo_url("policies.git")]));
    let v1 = input(tmp.path(), "v1.yaml", &policy("a"));

    let wrong = "wrong-token-7f3a9c";
    let r = tool(
        &[("GIT_SSL_CAINFO", &ca), ("GIT_TOKEN", wrong)],
        &commit_args(&work, &v1, &[]),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("authentication to"), "{}", r.stderr);
    assert!(r.stderr.contains("GIT_TOKEN is set"), "{}", r.stderr);
    assert!(r.stderr.contains("extraheader"), "{}", r.stderr);
    assert!(!r.stderr.contains(wrong), "{}", r.stderr);
    let main_before = remote_tip(&srv.root, "policies.git", "main");

    let r = tool(
        &[("GIT_SSL_CAINFO", &ca), ("GIT_TOKEN", &srv.token)],
        &commit_args(&work, &v1, &[]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains(&srv.token));
    assert_ne!(remote_tip(&srv.root, "policies.git", "main"), main_before);
    assert_landed(&srv.root, &work);
    clean(&work);
}

/// A private CA: refused without it, naming what to set; trusted through
/// --ca-file, http.sslCAInfo or GIT_SSL_CAINFO.
#[test]
fn https_with_a_private_ca() {
    let Some((srv, tmp, ca, work)) = https_world() else {
        return;
    };
    let token = [("GIT_TOKEN", srv.token.as_str())];

    let v1 = input(tmp.path(), "v1.yaml", &policy("a"));
    let r = tool(&token, &commit_args(&work, &v1, &[]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--ca-file"), "{}", r.stderr);
    assert!(r.stderr.contains("GIT_SSL_CAINFO"), "{}", r.stderr);
    assert_eq!(
        run_ok(git_cmd(&work).args(["status", "--porcelain"])),
        "",
        "nothing changed"
    );

    let r = tool(&token, &commit_args(&work, &v1, &["--ca-file", &ca]));
    assert_eq!(r.code, 0, "{}", r.stderr);

    run_ok(git_cmd(&work).args(["config", "http.sslCAInfo", &ca]));
    let v2 = input(
        tmp.path(),
        "v2.yaml",
        &format!("{}---\n{}", policy("a"), policy("b")),
    );
    let r = tool(&token, &commit_args(&work, &v2, &[]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_landed(&srv.root, &work);
    clean(&work);
}

/// A corporate proxy: HTTPS_PROXY reaches git, and the proxy sees the
/// tunnel to the server.
#[test]
fn https_through_a_proxy() {
    let Some((srv, tmp, ca, work)) = https_world() else {
        return;
    };
    let proxy = ConnectProxy::start();
    let v1 = input(tmp.path(), "v1.yaml", &policy("a"));
    let r = tool(
        &[("GIT_SSL_CAINFO", &ca), ("HTTPS_PROXY", &proxy.url())],
        &commit_args(&work, &v1, &[]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        proxy
            .connects()
            .iter()
            .any(|c| c == &format!("127.0.0.1:{}", srv.port)),
        "{:?}",
        proxy.connects()
    );
    clean(&work);
}

/// SSH with --ssh-key added to the user's ssh command (their known_hosts
/// applies), and a key with a passphrase: refused as such without it,
/// working with --ssh-key-passphrase-file.
#[test]
fn ssh_with_a_key_and_with_a_passphrase() {
    let Some(srv) = Sshd::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    srv.create_bare("policies.git");
    let url = srv.repo_url("policies.git");
    let ssh = [("GIT_SSH_COMMAND", srv.ssh_command())];
    let ssh: Vec<(&str, &str)> = ssh.iter().map(|(k, v)| (*k, v.as_str())).collect();
    seed(tmp.path(), &url, &ssh);
    let work = clone(tmp.path(), "work", &url, &ssh);

    // The user's ssh command trusts the host; the key comes from --ssh-key.
    let base = format!(
        "ssh -F /dev/null -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentityAgent=none -o BatchMode=yes",
        srv.known_hosts.display()
    );
    let v1 = input(tmp.path(), "v1.yaml", &policy("a"));
    let key = srv.key.to_str().unwrap().to_owned();
    let r = tool(
        &[("GIT_SSH_COMMAND", &base)],
        &commit_args(&work, &v1, &["--ssh-key", &key]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_landed(&srv.root, &work);

    // A passphrase-protected key, with prompts allowed (through askpass only).
    let prompting = base.replace("BatchMode=yes", "BatchMode=no");
    let locked = srv.passphrase_key.to_str().unwrap().to_owned();
    let v2 = input(
        tmp.path(),
        "v2.yaml",
        &format!("{}---\n{}", policy("a"), policy("b")),
    );
    let r = tool(
        &[
            ("GIT_SSH_COMMAND", &prompting),
            ("SSH_ASKPASS_REQUIRE", "never"),
        ],
        &commit_args(&work, &v2, &["--ssh-key", &locked]),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("--ssh-key-passphrase-file"),
        "{}",
        r.stderr
    );
    let pass = input(tmp.path(), "pass", &format!("{}\n", srv.passphrase));
    let r = tool(
        &[("GIT_SSH_COMMAND", &prompting)],
        &commit_args(
            &work,
            &v2,
            &["--ssh-key", &locked, "--ssh-key-passphrase-file", &pass],
        ),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains(&srv.passphrase));
    clean(&work);
}
