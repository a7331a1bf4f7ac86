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
/// commit whatever the client does.) Killed with its per-connection
/// children on Drop.
pub struct Daemon(
    super::servers::ServerProcess,
    pub String,
    /// The daemon's log, held only to be removed after the daemon is
    /// stopped (fields drop in order).
    #[expect(dead_code, reason = "held for its Drop, never read")]
    tempfile::TempDir,
);

impl Daemon {
    /// The port the daemon listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.1
            .trim_start_matches("git://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("daemon URL has a port")
    }

    /// The git:// URL of repository `name` under the base directory.
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port())
    }

    /// What the daemon logged, for assertion messages.
    pub fn log(&self) -> String {
        self.0.log()
    }

    /// The daemon's process id, to check it is gone after Drop.
    pub fn pid(&self) -> u32 {
        self.0.pid()
    }
}

/// Starts `git daemon` for `base` on a random port (retrying if the port is
/// taken; never a port found free and then released), ready once it
/// accepts connections.
pub fn git_daemon(base: &Path) -> Daemon {
    let logs = tempfile::Builder::new()
        .prefix("git-daemon")
        .tempdir()
        .unwrap();
    let (process, port) =
        super::servers::spawn_on_port("git daemon", &logs.path().join("log"), |port| {
            daemon_command(base, port)
        });
    Daemon(process, format!("git://127.0.0.1:{port}/remote.git"), logs)
}

/// The `git daemon` command line for `base` on `port`: exports everything
/// under `base` read-write, on 127.0.0.1 only.
pub fn daemon_command(base: &Path, port: u16) -> Command {
    let mut cmd = Command::new("git");
    cmd.args([
        "daemon",
        "--reuseaddr",
        "--export-all",
        "--enable=receive-pack",
        "--listen=127.0.0.1",
        "--verbose",
    ])
    .arg(format!("--port={port}"))
    .arg(format!("--base-path={}", base.display()))
    .arg(base);
    cmd
}
