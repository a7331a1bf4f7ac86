//! A fake Insights API: real HTTP/1.1 on 127.0.0.1, serving the real
//! endpoint from fixtures, checking the bearer token, and able to misbehave
//! per cluster in each way the client must survive.
//!
//! Written on a bare `TcpListener` rather than an HTTP server crate so that
//! faults are exact: a body cut short of its `Content-Length`, a connection
//! accepted and never answered.
//!
//! It runs on its own thread and runtime, so sync tests (which run the CLI)
//! and async tests (which drive the client on their own runtime) use it
//! alike. Every connection gets its own task and every response says
//! `Connection: close`: one request per connection keeps "requests in
//! flight" equal to "connections open", which is what the concurrency tests
//! count. Fixtures, faults and latency can be changed while it runs.
//!
//! It also answers absolute-form requests (`GET http://host/path`), so it
//! can stand in as the proxy of `HTTP_PROXY`, and it can serve TLS
//! ([`Builder::tls`]) to test a private CA.
//!
//! Names are matched as they appear on the wire, percent-encoded: register
//! cluster `eu%2Fwest` to serve a client asked for `eu/west`, so a test sees
//! exactly how the client encoded the path.
//!
//! ```ignore
//! let server = FakeInsights::builder()
//!     .org("acme")
//!     .token("secret")
//!     .cluster("prod", "apiVersion: kyverno.io/v1\n...")
//!     .fault("staging", Fault::FailFirst(1, 503))
//!     .start();
//! // ... point the client at server.url ...
//! assert_eq!(server.hits("staging"), 2);
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

const SUFFIX: &str = "/kyverno-policies/with-app-groups-applied/yaml";

/// Served by [`Fault::Truncate`] when the cluster's own fixture is too short
/// to be cut in half.
const SAMPLE: &[u8] =
    b"apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: sample\nspec:\n  rules: []\n";

/// What a connection is, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// How the server answers one cluster instead of serving its fixture.
/// Faults apply whether or not the cluster has a fixture; where a fault
/// ends in a normal answer, a cluster without one gets 404.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This status (with a small body and, if given, `Retry-After` seconds).
    Status(u16, Option<u64>),
    /// `Status(status)` for the first `n` requests after the fault is set,
    /// then the fixture.
    FailFirst(usize, u16),
    /// Wait this long before answering normally.
    Delay(Duration),
    /// Accept the connection, read the request, never answer.
    Hang,
    /// Announce the fixture's full length, send half of it, close.
    Truncate,
    /// A maintenance page with status 200 and `Content-Type: text/html`.
    Html,
    /// A JSON error with status 200 and `Content-Type: application/json`.
    JsonError,
    /// Announce no length and stream this many bytes of YAML comment.
    Huge(usize),
    /// Announce a `Content-Length` of this many bytes, then stream them.
    HugeWithLength(usize),
    /// This fault for the first `n` requests after it is set, then the
    /// fixture: a truncation or a hang that the retry gets past.
    First(usize, Box<Fault>),
    /// Exactly this status, these headers and this body
    /// (`Content-Length` and `Connection` are added).
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

/// Configures a server before it starts; all but TLS can also be changed
/// afterwards through [`FakeInsights`].
pub struct Builder {
    org: String,
    token: String,
    fixtures: Vec<(String, String, Vec<u8>)>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Builder {
    /// The organization that [`Builder::cluster`], [`FakeInsights::cluster`]
    /// and [`FakeInsights::hits`] refer to (default `acme`).
    pub fn org(mut self, org: &str) -> Self {
        self.org = org.to_owned();
        self
    }

    /// The only bearer token accepted; anything else gets 401.
    pub fn token(mut self, token: &str) -> Self {
        self.token = token.to_owned();
        self
    }

    /// Serves `body` for `cluster` of the default organization.
    pub fn cluster(mut self, cluster: &str, body: impl Into<Vec<u8>>) -> Self {
        let org = self.org.clone();
        self.fixtures.push((org, cluster.to_owned(), body.into()));
        self
    }

    /// Serves HTTPS with this PEM certificate chain and PKCS#8 key; the
    /// server's `url` then starts with `https://`.
    pub fn tls(mut self, cert_pem: &[u8], key_pem: &[u8]) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .map(|c| c.expect("a PEM certificate chain"))
            .collect();
        let key = PrivateKeyDer::from_pem_slice(key_pem).expect("a PEM private key");
        // ring, as reqwest uses: no process-wide default provider needed.
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("a certificate that matches its key");
        self.tls = Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)));
        self
    }

    pub fn start(self) -> FakeInsights {
        let mut state = State {
            token: self.token,
            org: self.org,
            ..Default::default()
        };
        for (org, cluster, body) in self.fixtures {
            state.fixtures.insert((org, cluster), body.into());
        }
        FakeInsights::run(state, self.tls)
    }
}

#[derive(Default)]
struct State {
    token: String,
    org: String,
    /// By (org, cluster) as they appear in the path.
    fixtures: HashMap<(String, String), Arc<[u8]>>,
    /// By cluster; the count is of requests since the fault was set.
    faults: HashMap<String, (Fault, usize)>,
    latency: Duration,
    /// Requests seen, by request path.
    hits: HashMap<String, usize>,
    /// Every request target as received, in arrival order.
    targets: Vec<String>,
    in_flight: usize,
    max_in_flight: usize,
}

/// A running fake; it stops when dropped.
pub struct FakeInsights {
    /// `http://127.0.0.1:PORT` (or `https://`), for `--insights-host`.
    pub url: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The endpoint's path, with `org` and `cluster` as given (so already
/// percent-encoded where they need to be).
pub fn path_for(org: &str, cluster: &str) -> String {
    format!("/v0/organizations/{org}/clusters/{cluster}{SUFFIX}")
}

impl FakeInsights {
    pub fn builder() -> Builder {
        Builder {
            org: "acme".into(),
            token: String::new(),
            fixtures: Vec::new(),
            tls: None,
        }
    }

    /// Starts a server for `org` that accepts `token`, with no fixtures.
    pub fn start(org: &str, token: &str) -> FakeInsights {
        Self::builder().org(org).token(token).start()
    }

    /// The same over TLS, with this PEM certificate chain and PKCS#8 key.
    pub fn start_tls(org: &str, token: &str, cert_pem: &[u8], key_pem: &[u8]) -> FakeInsights {
        Self::builder()
            .org(org)
            .token(token)
            .tls(cert_pem, key_pem)
            .start()
    }

    fn run(state: State, tls: Option<tokio_rustls::TlsAcceptor>) -> FakeInsights {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(Mutex::new(state));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        std::thread::Builder::new()
            .name("fake-insights".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the fake Insights");
                runtime.block_on(async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                    addr_tx.send(listener.local_addr().expect("addr")).unwrap();
                    loop {
                        tokio::select! {
                            _ = &mut stop => break,
                            accepted = listener.accept() => {
                                // Out of file descriptors, say: that client
                                // sees its connection fail, which is fair.
                                let Ok((stream, _)) = accepted else { continue };
                                let state = shared.clone();
                                match tls.clone() {
                                    None => tokio::spawn(serve(stream, state)),
                                    Some(acceptor) => tokio::spawn(async move {
                                        // A failed handshake is the client
                                        // refusing our certificate: its
                                        // error is what the test looks at.
                                        if let Ok(stream) = acceptor.accept(stream).await {
                                            serve(stream, state).await;
                                        }
                                    }),
                                };
                            }
                        }
                    }
                });
                // Drops the connections still open (a `Hang`, say) without
                // waiting for them.
                runtime.shutdown_background();
            })
            .expect("a thread for the fake Insights");
        let addr = addr_rx.recv().expect("the fake Insights started");
        FakeInsights {
            url: format!("{scheme}://{addr}"),
            state,
            shutdown: Some(shutdown),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        locked(&self.state, f)
    }

    /// Serves `body` for `cluster` of the default organization.
    pub fn cluster(&self, cluster: &str, body: impl Into<Vec<u8>>) -> &Self {
        let body: Vec<u8> = body.into();
        self.with(|s| {
            let key = (s.org.clone(), cluster.to_owned());
            s.fixtures.insert(key, body.into())
        });
        self
    }

    /// Misbehaves for `cluster` from the next request on, replacing any
    /// fault it had.
    pub fn fault(&self, cluster: &str, fault: Fault) -> &Self {
        self.with(|s| s.faults.insert(cluster.to_owned(), (fault, 0)));
        self
    }

    /// Back to serving the fixture.
    pub fn clear_fault(&self, cluster: &str) -> &Self {
        self.with(|s| s.faults.remove(cluster));
        self
    }

    /// Waits this long before every response (for the concurrency tests
    /// and the benchmark).
    pub fn latency(&self, latency: Duration) -> &Self {
        self.with(|s| s.latency = latency);
        self
    }

    /// How many requests reached the endpoint of `cluster` of the default
    /// organization.
    pub fn hits(&self, cluster: &str) -> usize {
        self.with(|s| {
            let path = path_for(&s.org, cluster);
            s.hits.get(&path).copied().unwrap_or(0)
        })
    }

    /// How many requests with this exact (percent-encoded) path arrived.
    pub fn hits_path(&self, path: &str) -> usize {
        self.with(|s| s.hits.get(path).copied().unwrap_or(0))
    }

    /// Requests of any path.
    pub fn requests(&self) -> usize {
        self.with(|s| s.targets.len())
    }

    /// Every request target as received (a path, or an absolute URL when
    /// acting as a proxy), in arrival order.
    pub fn targets(&self) -> Vec<String> {
        self.with(|s| s.targets.clone())
    }

    /// The most requests that were being answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.with(|s| s.max_in_flight)
    }
}

impl Drop for FakeInsights {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

fn locked<T>(state: &Mutex<State>, f: impl FnOnce(&mut State) -> T) -> T {
    // A test that panicked while holding the lock has already failed; the
    // state is still good enough to answer the others.
    let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

/// The request line and headers, or `None` if the client went away first.
async fn read_head(stream: &mut impl Stream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return String::from_utf8(buf).ok();
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Fake",
    }
}

/// The status line and headers; `length` is announced when given, otherwise
/// the body runs until the connection closes.
fn response_head(status: u16, headers: &[(&str, &str)], length: Option<usize>) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\n",
        reason(status)
    );
    if let Some(n) = length {
        head.push_str(&format!("Content-Length: {n}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

async fn respond(
    stream: &mut impl Stream,
    flight: &InFlight,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut bytes = response_head(status, headers, Some(body.len()));
    bytes.extend_from_slice(body);
    // The client cannot have the whole answer before its last byte is
    // written, so the request stops counting just before it: never after
    // the client has moved on to its next request.
    let (most, last) = bytes.split_at(bytes.len() - 1);
    stream.write_all(most).await?;
    flight.end();
    stream.write_all(last).await?;
    stream.shutdown().await
}

/// One request being answered, counted from its head read to the last
/// byte of its answer (see [`respond`]); a connection that ends some other
/// way (a fault, a client that hung up, the server stopping) stops counting
/// when it is dropped.
struct InFlight {
    state: Arc<Mutex<State>>,
    open: std::sync::atomic::AtomicBool,
}

impl InFlight {
    fn start(state: Arc<Mutex<State>>) -> InFlight {
        locked(&state, |s| {
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
        });
        InFlight {
            state,
            open: true.into(),
        }
    }

    fn end(&self) {
        if self.open.swap(false, std::sync::atomic::Ordering::SeqCst) {
            locked(&self.state, |s| s.in_flight -= 1);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.end();
    }
}

const YAML: (&str, &str) = ("Content-Type", "application/x-yaml");
const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn serve(mut stream: impl Stream, state: Arc<Mutex<State>>) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    let flight = InFlight::start(state.clone());
    // A client that hangs up mid-answer is the client's business: there is
    // no one to report the write error to.
    let _ = answer(&mut stream, &head, &state, &flight).await;
}

async fn answer(
    stream: &mut impl Stream,
    head: &str,
    state: &Mutex<State>,
    flight: &InFlight,
) -> std::io::Result<()> {
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    // A proxy receives the absolute form (`GET http://host/path`).
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |at| &rest[at..]).to_owned(),
        None => target.clone(),
    };
    let auth = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_owned());

    let (token, latency) = locked(state, |s| {
        *s.hits.entry(path.clone()).or_default() += 1;
        s.targets.push(target.clone());
        (s.token.clone(), s.latency)
    });
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if auth.as_deref() != Some(format!("Bearer {token}").as_str()) {
        return respond(
            stream,
            flight,
            401,
            &[JSON],
            b"{\"error\":\"unauthorized\"}",
        )
        .await;
    }
    let Some((org, cluster)) = path
        .strip_prefix("/v0/organizations/")
        .and_then(|rest| rest.strip_suffix(SUFFIX))
        .and_then(|rest| rest.split_once("/clusters/"))
        .filter(|(org, cluster)| !org.contains('/') && !cluster.contains('/'))
    else {
        return respond(
            stream,
            flight,
            404,
            &[JSON],
            b"{\"error\":\"no such route\"}",
        )
        .await;
    };
    if method != "GET" {
        return respond(stream, flight, 405, &[JSON], b"{\"error\":\"GET only\"}").await;
    }
    let (fixture, fault) = locked(state, |s| {
        let fault = s.faults.get_mut(cluster).map(|(fault, seen)| {
            *seen += 1;
            (fault.clone(), *seen)
        });
        let key = (org.to_owned(), cluster.to_owned());
        (s.fixtures.get(&key).cloned(), fault)
    });
    let fault = match fault {
        Some((Fault::First(n, inner), seen)) if seen <= n => Some((*inner, seen)),
        Some((Fault::First(..), _)) => None,
        other => other,
    };
    let Some((fault, seen)) = fault else {
        return serve_fixture(stream, flight, fixture).await;
    };
    match fault {
        Fault::Status(status, retry_after) => {
            let after = retry_after.map(|s| s.to_string());
            let mut headers = vec![JSON];
            if let Some(after) = &after {
                headers.push(("Retry-After", after));
            }
            respond(
                stream,
                flight,
                status,
                &headers,
                b"{\"error\":\"injected\"}",
            )
            .await
        }
        Fault::FailFirst(n, status) if seen <= n => {
            respond(stream, flight, status, &[JSON], b"{\"error\":\"injected\"}").await
        }
        // Nested `First`s count the same requests: the outer one decides.
        Fault::FailFirst(..) | Fault::First(..) => serve_fixture(stream, flight, fixture).await,
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            serve_fixture(stream, flight, fixture).await
        }
        Fault::Hang => {
            // Until the server is dropped, which drops this task.
            std::future::pending::<()>().await;
            Ok(())
        }
        Fault::Truncate => {
            let body = fixture.filter(|b| b.len() >= 2);
            let body: &[u8] = body.as_deref().unwrap_or(SAMPLE);
            stream
                .write_all(&response_head(200, &[YAML], Some(body.len())))
                .await?;
            stream.write_all(&body[..body.len() / 2]).await?;
            flight.end();
            stream.shutdown().await
        }
        Fault::Html => {
            respond(
                stream,
                flight,
                200,
                &[("Content-Type", "text/html; charset=utf-8")],
                b"<html><body>Down for maintenance</body></html>",
            )
            .await
        }
        Fault::JsonError => {
            respond(stream, flight, 200, &[JSON], b"{\"error\":\"internal\"}").await
        }
        Fault::Huge(n) => {
            stream.write_all(&response_head(200, &[YAML], None)).await?;
            stream_comment(stream, n).await?;
            flight.end();
            stream.shutdown().await
        }
        Fault::HugeWithLength(n) => {
            stream
                .write_all(&response_head(200, &[YAML], Some(n)))
                .await?;
            stream_comment(stream, n).await?;
            stream.shutdown().await
        }
        Fault::Raw {
            status,
            headers,
            body,
        } => {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            respond(stream, flight, status, &headers, &body).await
        }
    }
}

async fn serve_fixture(
    stream: &mut impl Stream,
    flight: &InFlight,
    fixture: Option<Arc<[u8]>>,
) -> std::io::Result<()> {
    match fixture {
        Some(body) => respond(stream, flight, 200, &[YAML], &body).await,
        None => {
            respond(
                stream,
                flight,
                404,
                &[JSON],
                b"{\"error\":\"cluster not found\"}",
            )
            .await
        }
    }
}

/// `n` bytes of one long YAML comment, in pieces, so that a client that
/// stops reading makes a write fail instead of the server buffering it all.
async fn stream_comment(stream: &mut impl Stream, n: usize) -> std::io::Result<()> {
    let piece = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    if n > 0 {
        stream.write_all(b"#").await?;
        sent = 1;
    }
    while sent < n {
        let k = piece.len().min(n - sent);
        stream.write_all(&piece[..k]).await?;
        sent += k;
    }
    Ok(())
}
