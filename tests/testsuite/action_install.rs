//! `action/install.sh`, the GitHub Action's download-and-verify step, run
//! against a release layout served over HTTP on 127.0.0.1: a good checksum
//! installs and is reused from the cache, a bad one or a missing asset
//! installs nothing and says why.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const TAG: &str = "v9.8.7";
const ASSET: &str = "insights-policy-render-x86_64-unknown-linux-musl.tar.gz";

/// A tiny HTTP server: fixed routes, every request path recorded. Stops
/// on Drop (the tests share one process: nothing may outlive its test).
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

enum Reply {
    Body(Vec<u8>),
    Redirect(String),
}

impl Server {
    fn start(routes: BTreeMap<String, Reply>) -> Server {
        // Port 0: the kernel picks a free port, and we keep the socket.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Skip the headers.
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if header == "\r\n" || header == "\n" => break,
                        Ok(_) => {}
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                seen.lock().unwrap().push(path.clone());
                let head = |status: &str, extra: &str, len: usize| {
                    format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n")
                };
                let _ = match routes.get(&path) {
                    Some(Reply::Body(body)) => stream
                        .write_all(head("200 OK", "", body.len()).as_bytes())
                        .and_then(|()| stream.write_all(body)),
                    Some(Reply::Redirect(to)) => stream
                        .write_all(head("302 Found", &format!("Location: {to}\r\n"), 0).as_bytes()),
                    None => stream.write_all(head("404 Not Found", "", 0).as_bytes()),
                };
            }
        });
        Server {
            port,
            requests,
            stop,
        }
    }

    fn releases(&self) -> String {
        format!(
            "http://127.0.0.1:{}/acme/insights-policy-render/releases",
            self.port
        )
    }

    fn requested(&self, suffix: &str) -> usize {
        let requests = self.requests.lock().unwrap();
        requests.iter().filter(|p| p.ends_with(suffix)).count()
    }
}

/// A release archive holding a stand-in binary that prints `marker`.
fn archive(tmp: &Path, marker: &str) -> Vec<u8> {
    let dir = tmp.join(format!("archive-{marker}"));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("insights-policy-render");
    std::fs::write(&bin, format!("#!/bin/sh\necho {marker}\n")).unwrap();
    let out = dir.join("a.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(&dir)
        .arg("insights-policy-render")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

fn sha256(tmp: &Path, bytes: &[u8]) -> String {
    let file = tmp.join("to-hash");
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new("sha256sum").arg(&file).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

fn prefix() -> String {
    format!("/acme/insights-policy-render/releases/download/{TAG}/")
}

/// A release whose SHA256SUMS lists `listed` for the archive.
fn release(asset: Option<Vec<u8>>, listed: &str) -> BTreeMap<String, Reply> {
    let mut routes = BTreeMap::new();
    let sums = format!(
        "{}  insights-policy-render-aarch64-unknown-linux-musl.tar.gz\n{listed}  {ASSET}\n",
        "0".repeat(64)
    );
    routes.insert(
        format!("{}SHA256SUMS", prefix()),
        Reply::Body(sums.into_bytes()),
    );
    if let Some(asset) = asset {
        routes.insert(format!("{}{ASSET}", prefix()), Reply::Body(asset));
    }
    routes.insert(
        "/acme/insights-policy-render/releases/latest".into(),
        Reply::Redirect(format!("/acme/insights-policy-render/releases/tag/{TAG}")),
    );
    routes
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Run {
    out: Output,
    cache: PathBuf,
    github_path: PathBuf,
    github_output: PathBuf,
}

impl Run {
    fn ok(&self) -> bool {
        self.out.status.success()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn binary(&self) -> PathBuf {
        self.cache.join("bin/insights-policy-render")
    }
}

fn install(server: &Server, tmp: &Path, version: &str, arch: &str) -> Run {
    let cache = tmp.join("cache");
    let github_path = tmp.join("github_path");
    let github_output = tmp.join("github_output");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("action/install.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("install")
        .env("IPR_VERSION", version)
        .env("IPR_RELEASES", server.releases())
        .env("IPR_CACHE_DIR", &cache)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", arch)
        .env("GITHUB_PATH", &github_path)
        .env("GITHUB_OUTPUT", &github_output)
        .env_remove("IPR_REPOSITORY")
        .env_remove("IPR_BIN_DIR")
        .output()
        .unwrap();
    Run {
        out,
        cache,
        github_path,
        github_output,
    }
}

fn run_binary(path: &Path) -> String {
    let out = Command::new(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        f.read_to_string(&mut text).unwrap();
    }
    text
}

#[test]
fn a_good_checksum_installs_and_the_cached_archive_is_verified_again() {
    let tmp = tempfile::tempdir().unwrap();
    let asset = archive(tmp.path(), "release-binary");
    let hash = sha256(tmp.path(), &asset);
    let server = Server::start(release(Some(asset), &hash));

    let run = install(&server, tmp.path(), TAG, "X64");
    assert!(run.ok(), "{}", run.stderr());
    assert_eq!(run_binary(&run.binary()), "release-binary");
    assert_eq!(
        read(&run.github_path).trim(),
        run.cache.join("bin").to_str().unwrap()
    );
    let outputs = read(&run.github_output);
    assert!(outputs.contains(&format!("version={TAG}\n")), "{outputs}");
    assert!(
        outputs.contains(&format!("path={}\n", run.binary().display())),
        "{outputs}"
    );
    assert_eq!(server.requested(ASSET), 1);

    // A second run (actions/cache restored the directory) downloads only
    // the checksums and checks the kept archive against them.
    std::fs::remove_file(run.binary()).unwrap();
    let again = install(&server, tmp.path(), TAG, "X64");
    assert!(again.ok(), "{}", again.stderr());
    assert!(again.stderr().contains("cached"), "{}", again.stderr());
    assert_eq!(server.requested(ASSET), 1, "not downloaded again");
    assert_eq!(server.requested("SHA256SUMS"), 2);
    assert_eq!(run_binary(&again.binary()), "release-binary");

    // A cached archive that no longer matches is replaced by a download.
    std::fs::write(run.cache.join(ASSET), b"tampered").unwrap();
    let third = install(&server, tmp.path(), TAG, "X64");
    assert!(third.ok(), "{}", third.stderr());
    assert_eq!(server.requested(ASSET), 2);
    assert_eq!(run_binary(&third.binary()), "release-binary");
}

#[test]
fn latest_resolves_to_the_tag_the_releases_page_redirects_to() {
    let tmp = tempfile::tempdir().unwrap();
    let asset = archive(tmp.path(), "latest-binary");
    let hash = sha256(tmp.path(), &asset);
    let server = Server::start(release(Some(asset), &hash));
    let run = install(&server, tmp.path(), "latest", "X64");
    assert!(run.ok(), "{}", run.stderr());
    assert!(read(&run.github_output).contains(&format!("version={TAG}\n")));
    assert_eq!(run_binary(&run.binary()), "latest-binary");
}

#[test]
fn a_bad_checksum_installs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let asset = archive(tmp.path(), "tampered-binary");
    let server = Server::start(release(Some(asset), &"ab".repeat(32)));
    let run = install(&server, tmp.path(), TAG, "X64");
    assert!(!run.ok());
    let stderr = run.stderr();
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert!(stderr.contains(ASSET), "{stderr}");
    assert!(!run.binary().exists(), "nothing installed");
    assert!(!run.cache.join(ASSET).exists(), "nothing cached");
    assert_eq!(read(&run.github_path), "");
}

#[test]
fn a_missing_asset_installs_nothing_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(release(None, &"ab".repeat(32)));
    let run = install(&server, tmp.path(), TAG, "X64");
    assert!(!run.ok());
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!("cannot download {ASSET}")),
        "{stderr}"
    );
    assert!(!run.binary().exists());

    // An asset the checksums file does not list is refused before download.
    let run = install(&server, tmp.path(), TAG, "ARM64");
    assert!(!run.ok());
    assert!(
        run.stderr()
            .contains("lists no insights-policy-render-aarch64")
            || run.stderr().contains("cannot download"),
        "{}",
        run.stderr()
    );

    // A release that does not exist at all.
    let run = install(&server, tmp.path(), "v0.0.0", "X64");
    assert!(!run.ok());
    assert!(
        run.stderr().contains("cannot download SHA256SUMS"),
        "{}",
        run.stderr()
    );
}

#[test]
fn an_unlisted_asset_and_an_unsupported_platform_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let asset = archive(tmp.path(), "x");
    let hash = sha256(tmp.path(), &asset);
    let mut routes = release(Some(asset), &hash);
    routes.insert(
        format!("{}SHA256SUMS", prefix()),
        Reply::Body(b"0000  something-else.tar.gz\n".to_vec()),
    );
    let server = Server::start(routes);
    let run = install(&server, tmp.path(), TAG, "X64");
    assert!(!run.ok());
    assert!(
        run.stderr().contains(&format!("lists no {ASSET}")),
        "{}",
        run.stderr()
    );
    assert_eq!(server.requested(ASSET), 0, "never downloaded");

    let run = install(&server, tmp.path(), TAG, "S390X");
    assert!(!run.ok());
    assert!(
        run.stderr().contains("no prebuilt binary"),
        "{}",
        run.stderr()
    );
}
