//! A fake Insights API: real HTTP/1.1 on 127.0.0.1, serving the real
//! endpoint from fixtures, checking the bearer token, and able to misbehave
//! per cluster in each way the client must survive.
//!
//! Written on a bare `TcpListener` rather than an HTTP server crate so that
//! faults are exact: a body cut short of its `Content-Length`, a connection
//! accepted and never answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

/// How the server answers one cluster.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This status (with a small body and, if given, `Retry-After` seconds).
    Status(u16, Option<u64>),
    /// `Status(status)` for the first `n` requests, then the fixture.
    FailFirst(usize, u16),
    /// Wait this long before answering normally.
    Delay(Duration),
    /// Accept the connection, read the request, never answer.
    Hang,
    /// Announce the full length, send half the body, close.
    Truncate,
    /// A maintenance page with status 200.
    Html,
    /// A JSON error with status 200.
    JsonError,
    /// Announce no length and stream this many bytes of YAML comments.
    Huge(usize),
}

#[derive(Default)]
struct State {
    token: String,
    org: String,
    fixtures: HashMap<String, Vec<u8>>,
    faults: HashMap<String, Fault>,
    latency: Duration,
    /// Requests seen, by raw request path.
    hits: HashMap<String, usize>,
    in_flight: usize,
    max_in_flight: usize,
}

pub struct FakeInsights {
    pub url: String,
    state: Arc<Mutex<State>>,
    _runtime: std::thread::JoinHandle<()>,
}

pub fn path_for(org: &str, cluster: &str) -> String {
    format!(
        "/v0/organizations/{org}/clusters/{cluster}/kyverno-policies/with-app-groups-applied/yaml"
    )
}

impl FakeInsights {
    /// Starts a server for `org` that accepts `token`.
    pub fn start(org: &str, token: &str) -> FakeInsights {
        Self::start_with(org, token, None)
    }

    /// The same over TLS, with this PEM certificate chain and PKCS#8 key.
    pub fn start_tls(org: &str, token: &str, cert_pem: &[u8], key_pem: &[u8]) -> FakeInsights {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_slice(key_pem).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let mut server = Self::start_with(
            org,
            token,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        );
        server.url = server.url.replace("http://", "https://");
        server
    }

    fn start_with(org: &str, token: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> FakeInsights {
        let state = Arc::new(Mutex::new(State {
            token: token.to_owned(),
            org: org.to_owned(),
            ..Default::default()
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = state.clone();
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = shared.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        {
                            let mut s = state.lock().unwrap();
                            s.in_flight += 1;
                            s.max_in_flight = s.max_in_flight.max(s.in_flight);
                        }
                        let _ = match tls {
                            None => serve(stream, state.clone()).await,
                            Some(acceptor) => match acceptor.accept(stream).await {
                                Ok(tls_stream) => serve(tls_stream, state.clone()).await,
                                Err(_) => Ok(()), // the client refused our certificate
                            },
                        };
                        state.lock().unwrap().in_flight -= 1;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        FakeInsights {
            url: format!("http://{addr}"),
            state,
            _runtime: handle,
        }
    }

    /// Serves `body` for `cluster` (whose name is matched as it appears,
    /// percent-encoded, in the request path).
    pub fn cluster(&self, cluster: &str, body: impl Into<Vec<u8>>) -> &Self {
        self.state
            .lock()
            .unwrap()
            .fixtures
            .insert(cluster.to_owned(), body.into());
        self
    }

    pub fn fault(&self, cluster: &str, fault: Fault) -> &Self {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert(cluster.to_owned(), fault);
        self
    }

    /// Added before every response (for the concurrency benchmark).
    pub fn latency(&self, latency: Duration) -> &Self {
        self.state.lock().unwrap().latency = latency;
        self
    }

    /// How many requests reached the endpoint of `cluster`.
    pub fn hits(&self, cluster: &str) -> usize {
        let state = self.state.lock().unwrap();
        let path = path_for(&state.org, cluster);
        state.hits.get(&path).copied().unwrap_or(0)
    }

    /// The most connections that were being served at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// How many requests with this exact raw path arrived.
    pub fn hits_path(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    loop {
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return String::from_utf8(buf).ok();
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
}

async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let Some(head) = read_head(&mut stream).await else {
        return Ok(());
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let target = request_line.split(' ').nth(1).unwrap_or_default();
    // A proxy receives the absolute form (`GET http://host/path`): serving
    // that too lets the same server stand in as an HTTP proxy.
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |at| &rest[at..]).to_owned(),
        None => target.to_owned(),
    };
    let auth = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_owned());

    let (expected_auth, prefix, latency) = {
        let mut s = state.lock().unwrap();
        *s.hits.entry(path.clone()).or_default() += 1;
        (
            format!("Bearer {}", s.token),
            format!("/v0/organizations/{}/clusters/", s.org),
            s.latency,
        )
    };
    tokio::time::sleep(latency).await;
    let suffix = "/kyverno-policies/with-app-groups-applied/yaml";
    let cluster = match path
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix(suffix))
    {
        Some(c) if !c.contains('/') => c.to_owned(),
        _ => return respond(&mut stream, 404, &[], b"{\"error\":\"not found\"}").await,
    };
    if auth.as_deref() != Some(expected_auth.as_str()) {
        return respond(&mut stream, 401, &[], b"{\"error\":\"unauthorized\"}").await;
    }
    let (fixture, fault, hits) = {
        let s = state.lock().unwrap();
        (
            s.fixtures.get(&cluster).cloned(),
            s.faults.get(&cluster).cloned(),
            s.hits[&path],
        )
    };
    let yaml = [("Content-Type", "application/x-yaml".to_string())];
    let Some(body) = fixture else {
        return respond(&mut stream, 404, &[], b"{\"error\":\"cluster not found\"}").await;
    };
    match fault {
        None => respond(&mut stream, 200, &yaml, &body).await,
        Some(Fault::Status(status, retry_after)) => {
            let headers: Vec<_> = retry_after
                .map(|s| ("Retry-After", s.to_string()))
                .into_iter()
                .collect();
            respond(&mut stream, status, &headers, b"error").await
        }
        Some(Fault::FailFirst(n, status)) if hits <= n => {
            respond(&mut stream, status, &[], b"error").await
        }
        Some(Fault::FailFirst(..)) => respond(&mut stream, 200, &yaml, &body).await,
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            respond(&mut stream, 200, &yaml, &body).await
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        Some(Fault::Truncate) => {
            let head = format!("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/x-yaml\r\nContent-Length: {}\r\n\r\n", body.len());
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body[..body.len() / 2]).await?;
            stream.shutdown().await
        }
        Some(Fault::Html) => {
            respond(
                &mut stream,
                200,
                &[("Content-Type", "text/html".into())],
                b"<html><body>Down for maintenance</body></html>",
            )
            .await
        }
        Some(Fault::JsonError) => {
            respond(
                &mut stream,
                200,
                &[("Content-Type", "application/json".into())],
                b"{\"error\":\"internal\"}",
            )
            .await
        }
        Some(Fault::Huge(n)) => {
            let head =
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/x-yaml\r\n\r\n";
            stream.write_all(head.as_bytes()).await?;
            let chunk = vec![b'#'; 64 * 1024];
            let mut sent = 0;
            while sent < n {
                let k = chunk.len().min(n - sent);
                if stream.write_all(&chunk[..k]).await.is_err() {
                    return Ok(()); // the client gave up, as it should
                }
                sent += k;
            }
            stream.shutdown().await
        }
    }
}
