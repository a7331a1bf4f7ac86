//! The `git` command line, to set repositories up and to check what the
//! tool did to them the way a user would.

use std::path::Path;
use std::process::Command;

/// Runs git and returns stdout; panics with stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `git daemon` serving the repositories under `base` over git://, with
/// push enabled; `.1` is the URL of `base/remote.git`. A
/// real receive-pack, which updates the branch only if it still points
/// where the pusher saw it. (libgit2's local-path transport overwrites the
/// ref without that check, so racing pushes to a plain path can lose a
/// commit whatever the client does.)
pub struct Daemon(std::process::Child, pub String);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn git_daemon(base: &Path) -> Daemon {
    // git daemon takes a port number, not a listener: the port is picked
    // free and released, and another process may take it before the daemon
    // binds it. The daemon then exits at once; pick another and try again.
    for _ in 0..10 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut exited = false;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "git daemon did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if exited {
            continue;
        }
        // Connected: but to the daemon, or to whoever took the port? The
        // daemon exits when its bind fails.
        std::thread::sleep(std::time::Duration::from_millis(50));
        if child.try_wait().unwrap().is_some() {
            continue;
        }
        return Daemon(child, format!("git://127.0.0.1:{port}/remote.git"));
    }
    panic!("git daemon could not bind a port in 10 attempts");
}
