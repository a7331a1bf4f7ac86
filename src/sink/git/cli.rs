//! The git command line, for everything where the user's git configuration
//! must apply: talking to the remote, bringing the working tree along, and
//! creating (and signing) commits.
//!
//! libgit2 stays for what is pure repository work (reading trees and blobs,
//! writing blobs and trees, planning). Everything that crosses into the
//! user's environment goes through the `git` they have, as Argo CD, Kargo and
//! Renovate do, because only git itself applies all of it:
//!
//! - the remote: `pushurl`, `insteadOf`/`pushInsteadOf`, the
//!   `http.<url>.extraheader` that GitHub's checkout action leaves, credential
//!   helpers, `http.sslCAInfo`/`GIT_SSL_CAINFO`, `http.proxy`/`HTTPS_PROXY`,
//!   `core.sshCommand`/`GIT_SSH_COMMAND` and `known_hosts`;
//! - the working tree: `.gitattributes` filters and line endings, sparse
//!   checkout, split and sparse indexes, never writing through a symlink,
//!   file/directory/symlink transitions (`git read-tree -m -u`);
//! - signing: `commit.gpgsign`, `gpg.format`, `user.signingkey`.
//!
//! What the tool adds is only what it is asked for on its own command line
//! or environment (`GIT_TOKEN`, `--ca-file`, `--ssh-key`), passed to git as
//! configuration in the environment (`GIT_CONFIG_COUNT`), never in argv,
//! where other users of the machine could read it.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::sink::git::error::{redact, GitError};

/// How the tool reaches the remote, beyond the repository's own
/// configuration.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// `--ssh-key`: added to the user's ssh command.
    pub ssh_key: Option<PathBuf>,
    /// `--ssh-key-passphrase-file`: answers ssh's passphrase prompt.
    pub ssh_passphrase_file: Option<PathBuf>,
    /// `--ca-file`: trusted by git in addition to what it trusts already.
    pub ca_file: Option<PathBuf>,
    /// The user name that goes with `GIT_TOKEN`.
    pub token_username: String,
}

/// A `git` invocation context: one repository, the transport settings as
/// environment, and the descriptor of the run's lock, which every child
/// inherits so that a git process orphaned by a killed run still holds it.
pub struct Git {
    dir: PathBuf,
    env: Vec<(OsString, OsString)>,
    lock_fd: Option<RawFd>,
}

/// What a failed `git` printed, already redacted.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: Option<i32>,
    pub stderr: String,
    pub stdout: String,
}

impl Git {
    /// `dir` is the working tree (or the git directory of a bare repository).
    /// `state` is the tool's directory inside the git directory, where the
    /// helper files (CA bundle, askpass script) are written.
    pub fn new(dir: &Path, state: &Path, transport: &Transport) -> Result<Git, GitError> {
        let mut git = Git {
            dir: dir.to_owned(),
            env: Vec::new(),
            lock_fd: None,
        };
        git.setenv("LC_ALL", "C");
        git.setenv("LANGUAGE", "C");
        // A CI job has no one to answer a prompt: fail instead of hanging.
        git.setenv("GIT_TERMINAL_PROMPT", "0");
        git.setenv("GCM_INTERACTIVE", "never");
        let mut config: Vec<(String, OsString)> = Vec::new();
        if std::env::var_os("GIT_TOKEN").is_some_and(|t| !t.is_empty()) {
            // The helper reads the token from its environment, so it is in
            // no file and no argv. An empty value first resets the list, so
            // GIT_TOKEN wins over a helper the machine already has.
            config.push(("credential.helper".into(), "".into()));
            config.push((
                "credential.helper".into(),
                "!f() { test \"$1\" = get || exit 0; echo \"username=${IPR_GIT_USERNAME}\"; echo \"password=${GIT_TOKEN}\"; }; f".into(),
            ));
            git.setenv("IPR_GIT_USERNAME", &transport.token_username);
        }
        git.trust(state, transport)?;
        git.ssh(state, transport)?;
        git.add_config(config);
        Ok(git)
    }

    /// Makes the children inherit `fd` (the run's lock).
    pub fn with_lock_fd(mut self, fd: RawFd) -> Git {
        self.lock_fd = Some(fd);
        self
    }

    fn setenv(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) {
        self.env.push((key.into(), value.into()));
    }

    /// Appends to whatever `GIT_CONFIG_COUNT` the caller's environment set.
    fn add_config(&mut self, entries: Vec<(String, OsString)>) {
        if entries.is_empty() {
            return;
        }
        let start: usize = std::env::var("GIT_CONFIG_COUNT")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for (i, (key, value)) in entries.iter().enumerate() {
            self.setenv(format!("GIT_CONFIG_KEY_{}", start + i), key);
            self.setenv(format!("GIT_CONFIG_VALUE_{}", start + i), value.clone());
        }
        self.setenv("GIT_CONFIG_COUNT", (start + entries.len()).to_string());
    }

    /// `--ca-file` adds to what git trusts; `SSL_CERT_FILE`/`SSL_CERT_DIR`
    /// (which git reads only when built on OpenSSL) are passed on as git's
    /// own variables when the user set nothing git-specific.
    fn trust(&mut self, state: &Path, transport: &Transport) -> Result<(), GitError> {
        let configured = self.config_value("http.sslCAInfo");
        let git_cainfo = std::env::var_os("GIT_SSL_CAINFO").filter(|v| !v.is_empty());
        if let Some(extra) = &transport.ca_file {
            let base = git_cainfo
                .map(PathBuf::from)
                .or(configured.map(PathBuf::from))
                .or(std::env::var_os("SSL_CERT_FILE").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
            let mut bundle = std::fs::read(&base).unwrap_or_default();
            if !bundle.is_empty() && !bundle.ends_with(b"\n") {
                bundle.push(b'\n');
            }
            let ours = std::fs::read(extra)
                .map_err(GitError::io(format!("read --ca-file {}", extra.display())))?;
            bundle.extend_from_slice(&ours);
            let path = state.join("ca-bundle.pem");
            crate::sink::fsutil::write_atomic(&path, &bundle)
                .map_err(GitError::io(format!("write {}", path.display())))?;
            self.setenv("GIT_SSL_CAINFO", path);
        } else if git_cainfo.is_none() && configured.is_none() {
            if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
                self.setenv("GIT_SSL_CAINFO", file);
            }
            if let Some(dir) = std::env::var_os("SSL_CERT_DIR") {
                if std::env::var_os("GIT_SSL_CAPATH").is_none() {
                    self.setenv("GIT_SSL_CAPATH", dir);
                }
            }
        }
        Ok(())
    }

    /// `--ssh-key` is added to the ssh command the user already has
    /// (`GIT_SSH_COMMAND`, `core.sshCommand`, or plain `ssh`), so their
    /// `known_hosts` and options still apply.
    fn ssh(&mut self, state: &Path, transport: &Transport) -> Result<(), GitError> {
        if let Some(key) = &transport.ssh_key {
            let base = std::env::var("GIT_SSH_COMMAND")
                .ok()
                .filter(|c| !c.is_empty())
                .or_else(|| self.config_value("core.sshCommand"))
                .unwrap_or_else(|| "ssh".into());
            let key = key.to_str().ok_or_else(|| GitError::Command {
                context: "use --ssh-key".into(),
                message: "the path is not UTF-8".into(),
            })?;
            self.setenv(
                "GIT_SSH_COMMAND",
                format!("{base} -i {} -o IdentitiesOnly=yes", shell_quote(key)),
            );
        }
        if let Some(file) = &transport.ssh_passphrase_file {
            let script = state.join("askpass.sh");
            crate::sink::fsutil::write_atomic(
                &script,
                b"#!/bin/sh\nexec cat \"$IPR_SSH_PASSPHRASE_FILE\"\n",
            )
            .and_then(|_| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(GitError::io(format!("write {}", script.display())))?;
            let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            self.setenv("IPR_SSH_PASSPHRASE_FILE", file);
            self.setenv("SSH_ASKPASS", script);
            self.setenv("SSH_ASKPASS_REQUIRE", "force");
            if std::env::var_os("DISPLAY").is_none() {
                self.setenv("DISPLAY", ":0");
            }
        }
        Ok(())
    }

    /// A configuration value as git resolves it for this repository.
    pub fn config_value(&self, key: &str) -> Option<String> {
        self.command(["config", "--get", key])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// All values of a key, or of every key matching a regex (`--get-regexp`).
    pub fn config_regexp(&self, pattern: &str) -> Vec<String> {
        self.command(["config", "--get-regexp", pattern])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.dir).args(args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null());
        if let Some(fd) = self.lock_fd {
            inherit(&mut cmd, fd);
        }
        cmd
    }

    /// Runs git; its stdout on success, what it said on failure.
    pub fn run<I, S>(&self, args: I) -> Result<String, Failure>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_with_input(args, None)
    }

    pub fn run_with_input<I, S>(&self, args: I, input: Option<&[u8]>) -> Result<String, Failure>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_env(args, &[], input)
    }

    /// Runs git with extra environment for this one command.
    pub fn run_env<I, S>(
        &self,
        args: I,
        env: &[(&str, &str)],
        input: Option<&[u8]>,
    ) -> Result<String, Failure>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let spawned = cmd.spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                return Err(Failure {
                    code: None,
                    stderr: format!("cannot run git: {e} (is git installed and on PATH?)"),
                    stdout: String::new(),
                })
            }
        };
        // The input is written from another thread while this one reads
        // the output: git answers as it reads (check-attr does), and a
        // child blocked on a full stdout pipe would never drain its stdin.
        let out = std::thread::scope(|scope| {
            if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
                scope.spawn(move || {
                    // A child that exits early closes its end; its exit
                    // status tells what happened, not this write.
                    let _ = stdin.write_all(input);
                });
            }
            child.wait_with_output()
        })
        .map_err(|e| Failure {
            code: None,
            stderr: format!("waiting for git: {e}"),
            stdout: String::new(),
        })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(Failure {
                code: out.status.code(),
                stderr: redact(String::from_utf8_lossy(&out.stderr).trim_end()),
                stdout: redact(&stdout),
            })
        }
    }
}

/// Clears close-on-exec on `fd` in the child, so that it shares the lock.
fn inherit(cmd: &mut Command, fd: RawFd) {
    use rustix::io::{fcntl_getfd, fcntl_setfd, FdFlags};
    use std::os::unix::process::CommandExt;
    // SAFETY: `pre_exec` is unsafe because the closure runs between fork
    // and exec; it only makes two fcntl system calls (async-signal-safe,
    // no allocation), and `fd` stays open in the parent for the whole run
    // (it is the lock file, held to the end), so borrowing it is sound.
    unsafe {
        cmd.pre_exec(move || {
            let fd = rustix::fd::BorrowedFd::borrow_raw(fd);
            let flags = fcntl_getfd(fd)?;
            fcntl_setfd(fd, flags - FdFlags::CLOEXEC)?;
            Ok(())
        });
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
