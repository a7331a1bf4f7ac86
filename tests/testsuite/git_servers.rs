//! The real git servers in tests/testsuite/support/servers.rs, proved with the git
//! command line alone (not the tool): clone, commit and push over HTTPS
//! (basic auth, GitHub's extraheader, a CONNECT proxy), SSH and git://,
//! and the ways each must refuse.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::proxy::ConnectProxy;
use crate::support::servers::{self, git_cmd, run_fails, run_ok, HttpsGit, Sshd};

/// A git command in `dir` with extra environment, shielded from the
/// machine's configuration by [`git_cmd`].
fn git_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = git_cmd(dir);
    cmd.envs(env.iter().copied()).args(args);
    cmd
}

/// Clones `url` into `dir/name`, commits a file and pushes `main`,
/// everything with `env` and `config` (`-c` pairs); returns the commit, so
/// the caller can check it arrived.
fn clone_commit_push(
    dir: &Path,
    name: &str,
    url: &str,
    env: &[(&str, &str)],
    config: &[String],
) -> String {
    let c: Vec<String> = config
        .iter()
        .flat_map(|kv| ["-c".into(), kv.clone()])
        .collect();
    let c: Vec<&str> = c.iter().map(String::as_str).collect();
    run_ok(&mut git_env(
        dir,
        env,
        &[&c[..], &["clone", "-q", url, name]].concat(),
    ));
    let work = dir.join(name);
    // Empty remotes leave the clone on the default branch name: make it main.
    run_ok(&mut git_env(&work, env, &["checkout", "-q", "-B", "main"]));
    std::fs::write(work.join("policy.yaml"), format!("name: {name}\n")).unwrap();
    run_ok(&mut git_env(&work, env, &["add", "policy.yaml"]));
    run_ok(&mut git_env(&work, env, &["commit", "-q", "-m", name]));
    run_ok(&mut git_env(
        &work,
        env,
        &[&c[..], &["push", "-q", "origin", "main"]].concat(),
    ));
    run_ok(&mut git_env(&work, env, &["rev-parse", "HEAD"]))
        .trim()
        .to_string()
}

/// The commit `main` points at in a bare repository, read from disk.
fn remote_main(bare: &Path) -> String {
    run_ok(git_cmd(bare).args(["rev-parse", "--verify", "-q", "refs/heads/main"]))
        .trim()
        .to_string()
}

/// Whether a bare repository has no `main` yet (nothing was pushed).
fn remote_empty(bare: &Path) -> bool {
    run_ok(git_cmd(bare).args(["for-each-ref"])).is_empty()
}

#[test]
fn https_push_with_basic_auth_and_the_private_ca() {
    let Some(srv) = HttpsGit::start() else { return };
    let bare = srv.create_bare("policies.git");
    let tmp = tempfile::tempdir().unwrap();
    let ca = srv.ca_file.to_str().unwrap();

    // GIT_SSL_CAINFO, credentials in the URL.
    let pushed = clone_commit_push(
        tmp.path(),
        "env-ca",
        &srv.authed_repo_url("policies.git"),
        &[("GIT_SSL_CAINFO", ca)],
        &[],
    );
    assert_eq!(remote_main(&bare), pushed, "{}", srv.logs());

    // http.sslCAInfo, and a clone that sees the pushed commit.
    run_ok(&mut git_env(
        tmp.path(),
        &[],
        &[
            "-c",
            &format!("http.sslCAInfo={ca}"),
            "clone",
            "-q",
            &srv.authed_repo_url("policies.git"),
            "second",
        ],
    ));
    let second = tmp.path().join("second");
    assert_eq!(
        run_ok(git_cmd(&second).args(["rev-parse", "HEAD"])).trim(),
        pushed
    );

    // nginx saw the push from the authenticated user.
    let log = srv.requests();
    assert!(
        log.lines().any(|l| l.contains(&format!(" {} ", srv.user))
            && l.contains("POST /policies.git/git-receive-pack")
            && l.contains("\" 200 ")),
        "no authenticated receive-pack in the access log:\n{log}"
    );
}

#[test]
fn https_without_the_ca_is_refused() {
    let Some(srv) = HttpsGit::start() else { return };
    let bare = srv.create_bare("policies.git");
    let tmp = tempfile::tempdir().unwrap();
    let err = run_fails(&mut git_env(
        tmp.path(),
        &[],
        &["clone", "-q", &srv.authed_repo_url("policies.git"), "w"],
    ));
    assert!(err.contains("certificate"), "{err}");
    assert!(remote_empty(&bare));
    // No request got past TLS.
    assert!(srv.requests().is_empty(), "{}", srv.requests());
}

#[test]
fn https_with_a_wrong_password_is_refused() {
    let Some(srv) = HttpsGit::start() else { return };
    let bare = srv.create_bare("policies.git");
    let tmp = tempfile::tempdir().unwrap();
    let ca = srv.ca_file.to_str().unwrap();
    // A good clone and commit, then a push with a wrong password.
    clone_commit_push(
        tmp.path(),
        "w",
        &srv.authed_repo_url("policies.git"),
        &[("GIT_SSL_CAINFO", ca)],
        &[],
    );
    let before = remote_main(&bare);
    let work = tmp.path().join("w");
    std::fs::write(work.join("more.yaml"), "x: 1\n").unwrap();
    run_ok(git_cmd(&work).args(["add", "more.yaml"]));
    run_ok(git_cmd(&work).args(["commit", "-q", "-m", "more"]));
    let wrong = format!(
        "https://{}:not-{}@127.0.0.1:{}/policies.git",
        srv.user, srv.password, srv.port
    );
    let err = run_fails(&mut git_env(
        &work,
        &[("GIT_SSL_CAINFO", ca)],
        &["push", "-q", &wrong, "main"],
    ));
    assert!(err.contains("Authentication failed"), "{err}");
    // And with no credentials at all (prompting is off).
    let err = run_fails(&mut git_env(
        &work,
        &[("GIT_SSL_CAINFO", ca)],
        &["push", "-q", &srv.repo_url("policies.git"), "main"],
    ));
    assert!(err.contains("could not read Username"), "{err}");
    assert_eq!(remote_main(&bare), before);
}

#[test]
fn https_push_with_the_extraheader_github_checkout_leaves() {
    let Some(srv) = HttpsGit::start() else { return };
    let bare = srv.create_bare("policies.git");
    let tmp = tempfile::tempdir().unwrap();
    let ca = srv.ca_file.to_str().unwrap();
    let header = srv.extraheader();
    assert!(header.starts_with("AUTHORIZATION: basic "), "{header}");

    // What actions/checkout does: clone with the header, then persist it in
    // the local config; the remote URL carries no credentials.
    let config = format!("{}={header}", srv.extraheader_key());
    run_ok(&mut git_env(
        tmp.path(),
        &[("GIT_SSL_CAINFO", ca)],
        &[
            "-c",
            &config,
            "clone",
            "-q",
            &srv.repo_url("policies.git"),
            "w",
        ],
    ));
    let work = tmp.path().join("w");
    run_ok(git_cmd(&work).args(["config", "--local", &srv.extraheader_key(), &header]));
    run_ok(git_cmd(&work).args(["config", "--local", "http.sslCAInfo", ca]));
    run_ok(git_cmd(&work).args(["checkout", "-q", "-B", "main"]));
    std::fs::write(work.join("policy.yaml"), "a: 1\n").unwrap();
    run_ok(git_cmd(&work).args(["add", "policy.yaml"]));
    run_ok(git_cmd(&work).args(["commit", "-q", "-m", "one"]));
    run_ok(git_cmd(&work).args(["push", "-q", "origin", "main"]));
    let pushed = run_ok(git_cmd(&work).args(["rev-parse", "HEAD"]));
    assert_eq!(remote_main(&bare), pushed.trim(), "{}", srv.logs());
    assert!(
        srv.requests()
            .lines()
            .any(|l| l.contains(" x-access-token ") && l.contains("git-receive-pack")),
        "{}",
        srv.requests()
    );

    // A wrong token in the same place is refused.
    let wrong = format!(
        "AUTHORIZATION: basic {}",
        servers::base64(format!("x-access-token:not-{}", srv.token).as_bytes())
    );
    run_ok(git_cmd(&work).args(["config", "--local", &srv.extraheader_key(), &wrong]));
    std::fs::write(work.join("policy.yaml"), "a: 2\n").unwrap();
    run_ok(git_cmd(&work).args(["commit", "-q", "-am", "two"]));
    let err = run_fails(git_cmd(&work).args(["push", "-q", "origin", "main"]));
    assert!(
        err.contains("Authentication failed") || err.contains("could not read Username"),
        "{err}"
    );
    assert_eq!(remote_main(&bare), pushed.trim());
}

#[test]
fn https_push_through_a_connect_proxy() {
    let Some(srv) = HttpsGit::start() else { return };
    let bare = srv.create_bare("policies.git");
    let tmp = tempfile::tempdir().unwrap();
    let ca = srv.ca_file.to_str().unwrap();
    let target = format!("127.0.0.1:{}", srv.port);

    // HTTPS_PROXY for the clone, http.proxy for the push.
    let proxy = ConnectProxy::start();
    let pushed = clone_commit_push(
        tmp.path(),
        "w",
        &srv.authed_repo_url("policies.git"),
        &[("GIT_SSL_CAINFO", ca), ("HTTPS_PROXY", &proxy.url())],
        &[],
    );
    assert_eq!(remote_main(&bare), pushed);
    let first = proxy.connects().len();
    assert!(
        first > 0,
        "the proxy saw no CONNECT: {:?}",
        proxy.requests()
    );

    let work = tmp.path().join("w");
    std::fs::write(work.join("policy.yaml"), "b: 1\n").unwrap();
    run_ok(git_cmd(&work).args(["commit", "-q", "-am", "again"]));
    run_ok(&mut git_env(
        &work,
        &[("GIT_SSL_CAINFO", ca)],
        &[
            "-c",
            &format!("http.proxy={}", proxy.url()),
            "push",
            "-q",
            "origin",
            "main",
        ],
    ));
    let pushed = run_ok(git_cmd(&work).args(["rev-parse", "HEAD"]));
    assert_eq!(remote_main(&bare), pushed.trim());
    let connects = proxy.connects();
    assert!(connects.len() > first, "{connects:?}");
    assert!(connects.iter().all(|c| *c == target), "{connects:?}");
}

#[test]
fn https_through_a_proxy_that_wants_credentials() {
    let Some(srv) = HttpsGit::start() else { return };
    let bare = srv.create_bare("policies.git");
    let tmp = tempfile::tempdir().unwrap();
    let ca = srv.ca_file.to_str().unwrap();
    let proxy = ConnectProxy::with_basic_auth("proxy-user", "proxy-pass");
    let port = proxy.addr.port();

    let err = run_fails(&mut git_env(
        tmp.path(),
        &[
            ("GIT_SSL_CAINFO", ca),
            ("HTTPS_PROXY", &format!("http://127.0.0.1:{port}")),
        ],
        &[
            "clone",
            "-q",
            &srv.authed_repo_url("policies.git"),
            "refused",
        ],
    ));
    assert!(err.contains("407"), "{err}");

    let pushed = clone_commit_push(
        tmp.path(),
        "w",
        &srv.authed_repo_url("policies.git"),
        &[
            ("GIT_SSL_CAINFO", ca),
            (
                "HTTPS_PROXY",
                &format!("http://proxy-user:proxy-pass@127.0.0.1:{port}"),
            ),
        ],
        &[],
    );
    assert_eq!(remote_main(&bare), pushed);
    assert!(
        proxy.requests().iter().any(|h| h
            .to_ascii_lowercase()
            .contains("proxy-authorization: basic")),
        "{:?}",
        proxy.requests()
    );
}

#[test]
fn ssh_push_with_the_key_and_known_hosts() {
    let Some(srv) = Sshd::start() else { return };
    let bare = srv.create_bare("policies.git");
    let tmp = tempfile::tempdir().unwrap();
    let pushed = clone_commit_push(
        tmp.path(),
        "w",
        &srv.repo_url("policies.git"),
        &[("GIT_SSH_COMMAND", &srv.ssh_command())],
        &[],
    );
    assert_eq!(remote_main(&bare), pushed, "{}", srv.log());
    // The known_hosts line is what OpenSSH itself would write.
    let known = std::fs::read_to_string(&srv.known_hosts).unwrap();
    assert_eq!(
        known,
        format!("[127.0.0.1]:{} {}\n", srv.port, srv.host_key)
    );
    assert!(known.contains(" ssh-ed25519 "), "{known}");
}

#[test]
fn ssh_refuses_an_unknown_host_key_and_an_unauthorized_key() {
    let Some(srv) = Sshd::start() else { return };
    let bare = srv.create_bare("policies.git");
    let tmp = tempfile::tempdir().unwrap();
    let url = srv.repo_url("policies.git");

    // A known_hosts file naming another key for the same address.
    let other = tmp.path().join("other_host_key");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other),
    );
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_pub: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let wrong_hosts = tmp.path().join("known_hosts");
    std::fs::write(
        &wrong_hosts,
        format!("[127.0.0.1]:{} {}\n", srv.port, other_pub.join(" ")),
    )
    .unwrap();
    let cmd = srv.ssh_command_with(&srv.key, &wrong_hosts, true);
    let err = run_fails(&mut git_env(
        tmp.path(),
        &[("GIT_SSH_COMMAND", &cmd)],
        &["ls-remote", &url],
    ));
    assert!(err.contains("Host key verification failed"), "{err}");

    // A client key sshd does not know.
    let cmd = srv.ssh_command_with(&other, &srv.known_hosts, true);
    let err = run_fails(&mut git_env(
        tmp.path(),
        &[("GIT_SSH_COMMAND", &cmd)],
        &["ls-remote", &url],
    ));
    assert!(err.contains("Permission denied"), "{err}");
    assert!(remote_empty(&bare));
}

#[test]
fn ssh_key_with_a_passphrase_needs_the_passphrase() {
    let Some(srv) = Sshd::start() else { return };
    srv.create_bare("policies.git");
    let tmp = tempfile::tempdir().unwrap();
    let url = srv.repo_url("policies.git");

    // Without a way to ask, ssh cannot use the key.
    let cmd = srv.ssh_command_with(&srv.passphrase_key, &srv.known_hosts, true);
    let err = run_fails(&mut git_env(
        tmp.path(),
        &[("GIT_SSH_COMMAND", &cmd)],
        &["ls-remote", &url],
    ));
    assert!(err.contains("Permission denied"), "{err}");

    // Answered through SSH_ASKPASS, it is authorized.
    let askpass = tmp.path().join("askpass");
    std::fs::write(&askpass, format!("#!/bin/sh\necho '{}'\n", srv.passphrase)).unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cmd = srv.ssh_command_with(&srv.passphrase_key, &srv.known_hosts, false);
    run_ok(&mut git_env(
        tmp.path(),
        &[
            ("GIT_SSH_COMMAND", &cmd),
            ("SSH_ASKPASS", askpass.to_str().unwrap()),
            ("SSH_ASKPASS_REQUIRE", "force"),
        ],
        &["ls-remote", &url],
    ));
}

#[test]
fn git_daemon_push() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("served");
    std::fs::create_dir(&base).unwrap();
    run_ok(git_cmd(&base).args(["init", "-q", "--bare", "-b", "main", "remote.git"]));
    let daemon = crate::support::git::git_daemon(&base);
    assert_eq!(daemon.url("remote.git"), daemon.1);
    let pushed = clone_commit_push(tmp.path(), "w", &daemon.1, &[], &[]);
    assert_eq!(
        remote_main(&base.join("remote.git")),
        pushed,
        "{}",
        daemon.log()
    );
}

#[test]
fn a_taken_port_is_detected_and_another_one_used() {
    // A listener of ours holds the first port offered: it accepts
    // connections, so only the server's own exit tells the harness.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let mut offered = Vec::new();
    let mut ports =
        std::iter::once(taken).chain(std::iter::repeat_with(servers::random_port).take(20));
    let (process, port) =
        servers::spawn_on_ports("git daemon", &tmp.path().join("log"), &mut ports, |port| {
            offered.push(port);
            crate::support::git::daemon_command(&base, port)
        });
    assert_eq!(offered[0], taken);
    assert_ne!(port, taken);
    assert_eq!(*offered.last().unwrap(), port);
    drop(process);
    drop(holder);
}

#[test]
fn servers_leave_no_process_behind() {
    let Some(https) = HttpsGit::start() else {
        return;
    };
    let Some(sshd) = Sshd::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let daemon = crate::support::git::git_daemon(tmp.path());
    let mut pids = https.pids();
    pids.push(sshd.pid());
    pids.push(daemon.pid());
    let dirs = [https.root.clone(), sshd.root.clone()];
    for pid in &pids {
        assert!(Path::new(&format!("/proc/{pid}")).exists());
    }
    drop((https, sshd, daemon));
    for pid in &pids {
        // Killed and reaped: the pid no longer exists (not even a zombie).
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} is still there"
        );
    }
    for dir in dirs {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}

#[test]
fn base64_matches_rfc4648() {
    for (plain, coded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(servers::base64(plain.as_bytes()), coded);
    }
}
