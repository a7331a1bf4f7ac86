//! Real git servers on 127.0.0.1, each in its own temporary directory, for
//! testing the tool's git side the way CI meets it:
//!
//! - [`HttpsGit`]: nginx + fcgiwrap + `git-http-backend` over TLS from a
//!   private CA, with HTTP basic auth (a user and password, and the
//!   `x-access-token` user that GitHub's checkout action sends);
//! - [`Sshd`]: OpenSSH's server with its own host key and key-only login;
//! - `git daemon` is [`super::git::git_daemon`], started the same way.
//!
//! Servers that cannot be told to bind port 0 and report it (nginx, sshd,
//! git daemon) are started on a random high port; a bind failure is detected
//! and retried on another port, and readiness means "our child process holds
//! a listening socket on that port and it accepts a connection". No port is
//! ever picked by binding and releasing it, and nothing waits a fixed time.
//!
//! Every server process runs in its own process group, which is killed (and
//! the server reaped) when its handle is dropped.
//!
//! Commands are run with [`git_cmd`], which shields git and ssh from the
//! user's configuration, proxies, agents and prompts.

use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to start listening. Only a liveness bound: a
/// loaded 2-core machine starts nginx in well under a second.
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);
/// Random ports tried before giving up; each failure is a port some other
/// process already had.
const PORT_ATTEMPTS: usize = 25;
/// The text nginx, sshd and git daemon all log when their port is taken.
const ADDR_IN_USE: &str = "Address already in use";

// ---------------------------------------------------------------------------
// Availability
// ---------------------------------------------------------------------------

/// Whether tests that need a missing server may be skipped: only outside CI,
/// and only when asked for, so a green run never silently means "skipped".
fn skipping_allowed() -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    !ci && std::env::var_os("INSIGHTS_SKIP_SERVER_TESTS").is_some_and(|v| v == "1")
}

/// Finds a program in PATH and the sbin directories (fcgiwrap, nginx and
/// sshd live in /usr/sbin, which a non-root PATH often lacks).
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file() && fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0))
}

/// Resolves each `(program, Debian package)` pair. A missing one fails the
/// test with the package to install, unless skipping is allowed
/// (`INSIGHTS_SKIP_SERVER_TESTS=1`, never with `CI=true`): then it prints a
/// notice and returns `None`.
pub fn require(programs: &[(&str, &str)]) -> Option<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (program, package) in programs {
        match find_program(program) {
            Some(p) => found.push(p),
            None => missing.push(format!("{program} (Debian package {package})")),
        }
    }
    if missing.is_empty() {
        Some(found)
    } else {
        not_installed(&missing.join(", "))
    }
}

/// Fails the test naming what to install, or, when skipping is allowed,
/// prints a notice and returns `None`.
fn not_installed<T>(what: &str) -> Option<T> {
    if skipping_allowed() {
        eprintln!("SKIPPED (INSIGHTS_SKIP_SERVER_TESTS=1): missing {what}");
        return None;
    }
    panic!(
        "this test runs a real git server and needs: {what}. Install with \
         `apt-get install -y --no-install-recommends nginx-light fcgiwrap openssh-server` \
         (as .ci/run does), or set INSIGHTS_SKIP_SERVER_TESTS=1 outside CI to skip"
    );
}

/// `git-http-backend`, which lives in git's exec path, not in PATH.
fn git_http_backend() -> Option<PathBuf> {
    let out = Command::new("git").arg("--exec-path").output().ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let p = Path::new(dir.trim()).join("git-http-backend");
    p.is_file().then_some(p)
}

// ---------------------------------------------------------------------------
// Processes and ports
// ---------------------------------------------------------------------------

/// A server process started by a test: in its own process group, with its
/// stdout and stderr in a log file. Dropping it kills the whole group (the
/// server and whatever it forked per request) and reaps the server.
pub struct ServerProcess {
    child: Child,
    log: PathBuf,
}

impl ServerProcess {
    /// The server's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stdout and stderr so far, for assertion
    /// messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process group and reaps the leader (Drop does this).
    /// Children that started a session of their own (sshd's per-connection
    /// processes) are not in the group: they and their groups go first.
    fn stop(&mut self) {
        // The group id is the leader's pid; the leader is not reaped yet, so
        // the id cannot have been reused.
        let pgid = self.child.id();
        for (pid, group) in proc_stats() {
            if pid.1 == pgid && group != pgid {
                unsafe {
                    libc::kill(-(group as libc::pid_t), libc::SIGKILL);
                    libc::kill(pid.0 as libc::pid_t, libc::SIGKILL);
                }
            }
        }
        unsafe {
            libc::kill(-(pgid as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Random bits without a dependency: std's per-process random hash keys
/// over the time, pid and a counter.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// Random lowercase hex, for passwords and tokens that differ per server.
pub fn random_hex(len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        s.push_str(&format!("{:016x}", random_u64()));
    }
    s.truncate(len);
    s
}

/// A random port in 10000..=65535 outside the kernel's ephemeral range, so
/// that outgoing connections (which take ephemeral ports) never hold it.
pub fn random_port() -> u16 {
    let (lo, hi) = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    let below = (10000, lo.saturating_sub(1).max(10000));
    let above = ((hi + 1).min(65535), 65535);
    let (a, b) = if below.1 - below.0 >= above.1 - above.0 {
        below
    } else {
        above
    };
    (a + (random_u64() % u64::from(b - a + 1)) as u32) as u16
}

/// Inodes of the TCP sockets listening on `port` (any address), from
/// /proc/net/tcp{,6}; `None` where /proc has no such files.
fn listening_inodes(port: u16) -> Option<Vec<String>> {
    let want = format!(":{port:04X}");
    let mut found = None;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        let inodes = found.get_or_insert_with(Vec::new);
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, st (0A = LISTEN), inode.
            if f.len() > 9 && f[1].ends_with(&want) && f[3] == "0A" {
                inodes.push(f[9].to_string());
            }
        }
    }
    found
}

/// Every process's `((pid, parent pid), process group)`, from /proc, to
/// find what a server started.
fn proc_stats() -> Vec<((u32, u32), u32)> {
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            // "pid (comm) state ppid pgrp ...": comm may hold anything but
            // ends at the last ')'.
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut rest = stat.rsplit_once(')')?.1.split_whitespace().skip(1);
            let ppid = rest.next()?.parse().ok()?;
            let pgrp = rest.next()?.parse().ok()?;
            Some(((pid, ppid), pgrp))
        })
        .collect()
}

/// The processes in process group `pgid`: a server and whatever it started
/// (`git daemon` is `git` running `git-daemon`, which holds the socket).
fn group_members(pgid: u32) -> Vec<u32> {
    proc_stats()
        .into_iter()
        .filter(|&(_, group)| group == pgid)
        .map(|((pid, _), _)| pid)
        .collect()
}

/// Whether a process of the server's group `pgid` holds a socket listening
/// on `port`. This is what tells our server from another process that
/// already had the port (which would accept our readiness probe too).
/// Without /proc, assumes yes.
fn holds_listener(pgid: u32, port: u16) -> bool {
    let Some(inodes) = listening_inodes(port) else {
        return true;
    };
    if inodes.is_empty() {
        return false;
    }
    let sockets: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    group_members(pgid).into_iter().any(|pid| {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .is_ok_and(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
        })
    })
}

/// Why a started server is not serving.
enum NotReady {
    /// It exited first (for example because its port was taken).
    Exited(ExitStatus),
    /// It neither served nor exited within [`STARTUP_DEADLINE`].
    Timeout,
}

/// Polls until `ready()` holds while the child is still alive: no fixed
/// sleep, and no bound a slow machine could trip short of a minute.
fn wait_ready(child: &mut Child, mut ready: impl FnMut() -> bool) -> Result<(), NotReady> {
    let deadline = Instant::now() + STARTUP_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(NotReady::Exited(status));
        }
        if ready() {
            // A server that dies right after binding is not ready either.
            return match child.try_wait() {
                Ok(Some(status)) => Err(NotReady::Exited(status)),
                _ => Ok(()),
            };
        }
        if Instant::now() > deadline {
            return Err(NotReady::Timeout);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Spawns `cmd` as a server in its own process group with output to `log`
/// (truncated), without waiting for anything.
fn spawn_logged(what: &str, log: &Path, mut cmd: Command) -> ServerProcess {
    let out = fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let err = out.try_clone().unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
    ServerProcess {
        child,
        log: log.to_path_buf(),
    }
}

/// Starts a server on a random free port: `make(port)` writes whatever
/// configuration names the port and returns the command. If the server
/// exits saying its address is in use, another port is tried; any other
/// early exit fails the test with the server's log. Returns the running
/// server and its port.
pub fn spawn_on_port(
    what: &str,
    log: &Path,
    make: impl FnMut(u16) -> Command,
) -> (ServerProcess, u16) {
    spawn_on_ports(
        what,
        log,
        &mut std::iter::repeat_with(random_port).take(PORT_ATTEMPTS),
        make,
    )
}

/// [`spawn_on_port`] over the given ports in order, so a test can hand it a
/// port that is already taken and check the retry.
pub fn spawn_on_ports(
    what: &str,
    log: &Path,
    ports: &mut dyn Iterator<Item = u16>,
    mut make: impl FnMut(u16) -> Command,
) -> (ServerProcess, u16) {
    let mut tried = Vec::new();
    for port in ports {
        tried.push(port);
        let mut server = spawn_logged(what, log, make(port));
        let pgid = server.pid();
        let ready =
            || holds_listener(pgid, port) && TcpStream::connect(("127.0.0.1", port)).is_ok();
        match wait_ready(&mut server.child, ready) {
            Ok(()) => return (server, port),
            Err(NotReady::Exited(_)) if server.log().contains(ADDR_IN_USE) => continue,
            Err(NotReady::Exited(status)) => {
                panic!(
                    "{what} exited ({status}) on port {port}; its log:\n{}",
                    server.log()
                )
            }
            Err(NotReady::Timeout) => panic!(
                "{what} did not listen on port {port} within {STARTUP_DEADLINE:?}; its log:\n{}",
                server.log()
            ),
        }
    }
    panic!("{what}: every port tried was in use: {tried:?}");
}

/// Starts a server that listens on the unix socket `sock` (fcgiwrap), ready
/// once the socket accepts a connection.
fn spawn_on_unix_socket(what: &str, log: &Path, cmd: Command, sock: &Path) -> ServerProcess {
    let mut server = spawn_logged(what, log, cmd);
    let ready = || std::os::unix::net::UnixStream::connect(sock).is_ok();
    match wait_ready(&mut server.child, ready) {
        Ok(()) => server,
        Err(NotReady::Exited(status)) => {
            panic!("{what} exited ({status}); its log:\n{}", server.log())
        }
        Err(NotReady::Timeout) => panic!(
            "{what} did not listen on {} within {STARTUP_DEADLINE:?}; its log:\n{}",
            sock.display(),
            server.log()
        ),
    }
}

// ---------------------------------------------------------------------------
// Running git and friends
// ---------------------------------------------------------------------------

/// A `git` command in `dir` that sees none of the machine's git or ssh
/// setup: no system or global config, no proxy or CA variables, no
/// credential prompts, no askpass, no ssh agent. Tests add exactly what
/// they mean to test.
pub fn git_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir);
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "GIT_SSL_CAINFO",
        "GIT_SSL_CAPATH",
        "GIT_SSL_NO_VERIFY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "SSH_AUTH_SOCK",
        "GIT_PROXY_COMMAND",
        "GIT_DIR",
        "GIT_WORK_TREE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com");
    cmd
}

/// Runs a command to completion with no stdin; the output whatever the
/// status.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command that must succeed; its stdout, or a panic with stderr.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail; its stderr, for checking why.
pub fn run_fails(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded but should have failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a shell command line in `dir` for the key and certificate tools,
/// panicking with its output on failure.
fn sh(dir: &Path, script: &str) {
    let out = output(Command::new("sh").arg("-c").arg(script).current_dir(dir));
    assert!(
        out.status.success(),
        "`{script}` failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Quotes a path for a shell command line (GIT_SSH_COMMAND is one).
fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Standard base64, for the `Authorization: basic` header GitHub's checkout
/// action writes (no crate for a dozen lines).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Creates the bare repository `root/name` with branch `main` and pushes
/// over HTTP allowed, as a hosting service would before the first push.
fn create_bare_in(root: &Path, name: &str) -> PathBuf {
    let path = root.join(name);
    run_ok(
        git_cmd(root)
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&path),
    );
    run_ok(git_cmd(&path).args(["config", "http.receivepack", "true"]));
    path
}

/// The user the tests run as, which sshd logs in as.
fn current_user() -> String {
    let out = run_ok(Command::new("id").arg("-un"));
    out.trim().to_string()
}

// ---------------------------------------------------------------------------
// HTTPS
// ---------------------------------------------------------------------------

/// Git over HTTPS: nginx terminating TLS with a certificate from a private
/// CA, checking HTTP basic auth, and handing requests over FastCGI
/// (fcgiwrap) to `git-http-backend`. Every request needs credentials:
/// `user`/`password`, or user `x-access-token` with `token` (what GitHub's
/// checkout action sends). Stops on Drop.
pub struct HttpsGit {
    // Processes first: fields drop in order, so the servers die before
    // their directory is removed.
    nginx: ServerProcess,
    fcgiwrap: ServerProcess,
    /// The port nginx listens on, on 127.0.0.1.
    pub port: u16,
    /// The directory served (GIT_PROJECT_ROOT); see [`HttpsGit::create_bare`].
    pub root: PathBuf,
    /// The private CA's certificate (PEM), for `GIT_SSL_CAINFO`,
    /// `http.sslCAInfo` or `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
    /// Basic-auth user and password allowed to fetch and push.
    pub user: String,
    pub password: String,
    /// The password of user `x-access-token`, like a GitHub Actions token.
    pub token: String,
    /// nginx's access log: one line per request, with the user.
    pub access_log: PathBuf,
    tmp: tempfile::TempDir,
}

impl HttpsGit {
    /// Starts the server, or `None` when a program is missing and skipping
    /// is allowed (see [`require`]).
    pub fn start() -> Option<HttpsGit> {
        let progs = require(&[
            ("nginx", "nginx-light"),
            ("fcgiwrap", "fcgiwrap"),
            ("openssl", "openssl"),
        ])?;
        let (nginx_bin, fcgiwrap_bin) = (progs[0].clone(), progs[1].clone());
        let backend = match git_http_backend() {
            Some(b) => b,
            None => {
                return not_installed("git-http-backend in `git --exec-path` (Debian package git)")
            }
        };
        let tmp = tempfile::Builder::new()
            .prefix("https-git")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let root = dir.join("repos");
        fs::create_dir(&root).unwrap();
        for t in ["body", "fastcgi", "proxy", "scgi", "uwsgi"] {
            fs::create_dir_all(dir.join("nginx-temp").join(t)).unwrap();
        }

        // The private CA and the server's certificate.
        sh(
            &dir,
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
               -keyout ca.key -out ca.pem -days 30 -subj /CN=insights-test-ca \
               -addext basicConstraints=critical,CA:TRUE \
               -addext keyUsage=critical,keyCertSign,cRLSign 2>&1 && \
             openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
               -keyout server.key -out server.csr -subj /CN=localhost 2>&1 && \
             printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n\
extendedKeyUsage=serverAuth\\nkeyUsage=critical,digitalSignature\\n' > server.ext && \
             openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
               -out server.pem -days 30 -extfile server.ext 2>&1",
        );

        // Basic auth: the user, and x-access-token for the header mode.
        let user = "policy-bot".to_string();
        let password = format!("pw-{}", random_hex(16));
        let token = format!("ghs_{}", random_hex(36));
        let hash = |pw: &str| {
            run_ok(Command::new("openssl").args(["passwd", "-apr1", pw]))
                .trim()
                .to_string()
        };
        fs::write(
            dir.join("htpasswd"),
            format!(
                "{user}:{}\nx-access-token:{}\n",
                hash(&password),
                hash(&token)
            ),
        )
        .unwrap();

        // fcgiwrap on a unix socket; 4 workers so parallel pushes overlap.
        let sock = dir.join("fcgiwrap.sock");
        let mut cmd = Command::new(&fcgiwrap_bin);
        cmd.arg("-c")
            .arg("4")
            .arg("-s")
            .arg(format!("unix:{}", sock.display()))
            .env("HOME", &dir)
            .env("GIT_CONFIG_NOSYSTEM", "1");
        let fcgiwrap = spawn_on_unix_socket("fcgiwrap", &dir.join("fcgiwrap.log"), cmd, &sock);

        let access_log = dir.join("access.log");
        let (nginx, port) = spawn_on_port("nginx", &dir.join("nginx.log"), |port| {
            let conf = dir.join("nginx.conf");
            fs::write(
                &conf,
                nginx_conf(&dir, port, &sock, &backend, &root, &access_log),
            )
            .unwrap();
            let mut cmd = Command::new(&nginx_bin);
            cmd.arg("-p")
                .arg(&dir)
                .arg("-e")
                .arg(dir.join("nginx-error.log"))
                .arg("-c")
                .arg(&conf);
            cmd
        });
        Some(HttpsGit {
            nginx,
            fcgiwrap,
            port,
            ca_file: dir.join("ca.pem"),
            root,
            user,
            password,
            token,
            access_log,
            tmp,
        })
    }

    /// `https://127.0.0.1:PORT/`: the prefix for `http.<url>.*` settings.
    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }

    /// The URL of repository `name` (for example `policies.git`), without
    /// credentials.
    pub fn repo_url(&self, name: &str) -> String {
        format!("{}{name}", self.base_url())
    }

    /// The URL of repository `name` with `user:password@` in it, the way a
    /// GitLab job puts an access token in the remote URL.
    pub fn authed_repo_url(&self, name: &str) -> String {
        format!(
            "https://{}:{}@127.0.0.1:{}/{name}",
            self.user, self.password, self.port
        )
    }

    /// The header GitHub's checkout action persists for `token`:
    /// `AUTHORIZATION: basic base64(x-access-token:TOKEN)`.
    pub fn extraheader(&self) -> String {
        format!(
            "AUTHORIZATION: basic {}",
            base64(format!("x-access-token:{}", self.token).as_bytes())
        )
    }

    /// The config key the checkout action sets it under:
    /// `http.https://127.0.0.1:PORT/.extraheader`.
    pub fn extraheader_key(&self) -> String {
        format!("http.{}.extraheader", self.base_url())
    }

    /// Creates bare repository `name` under [`HttpsGit::root`] (branch
    /// `main`, `http.receivepack` on) and returns its path.
    pub fn create_bare(&self, name: &str) -> PathBuf {
        create_bare_in(&self.root, name)
    }

    /// The access log so far.
    pub fn requests(&self) -> String {
        fs::read_to_string(&self.access_log).unwrap_or_default()
    }

    /// nginx's and fcgiwrap's logs, for assertion messages.
    pub fn logs(&self) -> String {
        format!(
            "--- nginx\n{}\n--- nginx error log\n{}\n--- fcgiwrap (and git-http-backend)\n{}",
            self.nginx.log(),
            fs::read_to_string(self.tmp.path().join("nginx-error.log")).unwrap_or_default(),
            self.fcgiwrap.log()
        )
    }

    /// The server processes' ids (nginx, fcgiwrap), to check they are gone
    /// after Drop.
    pub fn pids(&self) -> Vec<u32> {
        vec![self.nginx.pid(), self.fcgiwrap.pid()]
    }
}

/// nginx's configuration: one process in the foreground (so killing it by
/// pid leaves nothing behind), every path in the server's directory, TLS
/// and basic auth on 127.0.0.1:`port`, all requests to git-http-backend.
fn nginx_conf(
    dir: &Path,
    port: u16,
    sock: &Path,
    backend: &Path,
    root: &Path,
    access_log: &Path,
) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log info;
events {{ worker_connections 512; }}
http {{
  access_log {access_log};
  client_body_temp_path {d}/nginx-temp/body;
  fastcgi_temp_path {d}/nginx-temp/fastcgi;
  proxy_temp_path {d}/nginx-temp/proxy;
  scgi_temp_path {d}/nginx-temp/scgi;
  uwsgi_temp_path {d}/nginx-temp/uwsgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name localhost 127.0.0.1;
    ssl_certificate {d}/server.pem;
    ssl_certificate_key {d}/server.key;
    client_max_body_size 0;
    location / {{
      auth_basic "git";
      auth_basic_user_file {d}/htpasswd;
      fastcgi_pass unix:{sock};
      fastcgi_read_timeout 600s;
      fastcgi_param SCRIPT_FILENAME {backend};
      fastcgi_param GIT_PROJECT_ROOT {root};
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param PATH_INFO $uri;
      fastcgi_param REMOTE_USER $remote_user;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param GIT_PROTOCOL $http_git_protocol;
    }}
  }}
}}
"#,
        access_log = access_log.display(),
        sock = sock.display(),
        backend = backend.display(),
        root = root.display(),
    )
}

// ---------------------------------------------------------------------------
// SSH
// ---------------------------------------------------------------------------

/// Git over SSH: OpenSSH's sshd on 127.0.0.1 with its own ed25519 host key,
/// logging in the current user (root in CI) by key only, from an
/// authorized_keys file of its own. Repositories are addressed by absolute
/// path. Stops on Drop.
pub struct Sshd {
    sshd: ServerProcess,
    /// The port sshd listens on, on 127.0.0.1.
    pub port: u16,
    /// The user to log in as (the one running the tests).
    pub user: String,
    /// Where [`Sshd::create_bare`] puts repositories.
    pub root: PathBuf,
    /// A known_hosts file with the server's host key:
    /// `[127.0.0.1]:PORT ssh-ed25519 ...`.
    pub known_hosts: PathBuf,
    /// The server's public host key line (`ssh-ed25519 AAAA...`).
    pub host_key: String,
    /// An authorized ed25519 client key without a passphrase.
    pub key: PathBuf,
    /// An authorized ed25519 client key protected by [`Sshd::passphrase`].
    pub passphrase_key: PathBuf,
    pub passphrase: String,
    /// Holds the server's directory until the server is stopped.
    _tmp: tempfile::TempDir,
}

impl Sshd {
    /// Starts the server, or `None` when a program is missing and skipping
    /// is allowed (see [`require`]).
    pub fn start() -> Option<Sshd> {
        let progs = require(&[
            ("sshd", "openssh-server"),
            ("ssh-keygen", "openssh-client"),
            ("ssh", "openssh-client"),
        ])?;
        let sshd_bin = progs[0].clone();
        // sshd refuses to run as root without its privilege separation
        // directory, which the package's service (not installed here) makes.
        if unsafe { libc::geteuid() } == 0 && !Path::new("/run/sshd").is_dir() {
            fs::create_dir_all("/run/sshd").expect("create /run/sshd for sshd");
            fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755)).unwrap();
        }
        let tmp = tempfile::Builder::new().prefix("sshd").tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let root = dir.join("repos");
        fs::create_dir(&root).unwrap();
        let passphrase = format!("phrase-{}", random_hex(12));
        sh(
            &dir,
            &format!(
                "ssh-keygen -q -t ed25519 -N '' -C host -f host_key && \
                 ssh-keygen -q -t ed25519 -N '' -C client -f id_ed25519 && \
                 ssh-keygen -q -t ed25519 -N '{passphrase}' -C client-with-passphrase \
                   -f id_ed25519_passphrase"
            ),
        );
        let pubkey = |name: &str| {
            let text = fs::read_to_string(dir.join(name)).unwrap();
            text.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let host_key = pubkey("host_key.pub");
        // git upload-pack/receive-pack are found through this PATH, wherever
        // this machine's git is installed.
        let git_dir = find_program("git")
            .and_then(|g| g.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("/usr/bin"));
        let path_env = format!("{}:/usr/local/bin:/usr/bin:/bin", git_dir.display());
        let authorized_keys = dir.join("authorized_keys");
        fs::write(
            &authorized_keys,
            format!(
                "environment=\"PATH={path_env}\" {}\nenvironment=\"PATH={path_env}\" {}\n",
                pubkey("id_ed25519.pub"),
                pubkey("id_ed25519_passphrase.pub")
            ),
        )
        .unwrap();
        let known_hosts = dir.join("known_hosts");
        let user = current_user();

        let (sshd, port) = spawn_on_port("sshd", &dir.join("sshd.log"), |port| {
            fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_key}\n")).unwrap();
            let conf = dir.join("sshd_config");
            fs::write(&conf, sshd_config(&dir, port, &authorized_keys)).unwrap();
            let mut cmd = Command::new(&sshd_bin);
            cmd.arg("-D").arg("-e").arg("-f").arg(&conf);
            cmd
        });
        Some(Sshd {
            sshd,
            port,
            user,
            root,
            known_hosts,
            host_key,
            key: dir.join("id_ed25519"),
            passphrase_key: dir.join("id_ed25519_passphrase"),
            passphrase,
            _tmp: tmp,
        })
    }

    /// `ssh://USER@127.0.0.1:PORT/ROOT/name`, the URL of a repository made
    /// with [`Sshd::create_bare`].
    pub fn repo_url(&self, name: &str) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            self.root.join(name).display()
        )
    }

    /// Creates bare repository `name` under [`Sshd::root`] (branch `main`)
    /// and returns its path.
    pub fn create_bare(&self, name: &str) -> PathBuf {
        create_bare_in(&self.root, name)
    }

    /// A `GIT_SSH_COMMAND` that logs in with [`Sshd::key`] and trusts only
    /// [`Sshd::known_hosts`], never prompting.
    pub fn ssh_command(&self) -> String {
        self.ssh_command_with(&self.key, &self.known_hosts, true)
    }

    /// A `GIT_SSH_COMMAND` with the given key and known_hosts file; `batch`
    /// (BatchMode) forbids every prompt, including for a passphrase, which
    /// is off only for tests that answer it through SSH_ASKPASS. The user's
    /// ssh config, agent and other keys are ignored.
    pub fn ssh_command_with(&self, key: &Path, known_hosts: &Path, batch: bool) -> String {
        format!(
            "ssh -F /dev/null -i {} -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
             -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o IdentityAgent=none \
             -o BatchMode={} -p {}",
            shell_quote(key),
            shell_quote(known_hosts),
            if batch { "yes" } else { "no" },
            self.port
        )
    }

    /// sshd's log (`-e`), for assertion messages.
    pub fn log(&self) -> String {
        self.sshd.log()
    }

    /// The server's process id, to check it is gone after Drop.
    pub fn pid(&self) -> u32 {
        self.sshd.pid()
    }
}

/// sshd's configuration: key-only login from our authorized_keys file, and
/// every file sshd writes inside `dir`.
fn sshd_config(dir: &Path, port: u16, authorized_keys: &Path) -> String {
    let d = dir.display();
    format!(
        "Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PermitUserEnvironment PATH
StrictModes no
UsePAM no
PrintMotd no
LogLevel VERBOSE
MaxStartups 100:30:200
MaxSessions 100
",
        keys = authorized_keys.display()
    )
}
