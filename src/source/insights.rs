//! The HTTP edge: each cluster's policies from the Insights API.
//!
//! `GET {host}/v0/organizations/{org}/clusters/{cluster}/kyverno-policies/with-app-groups-applied/yaml`
//! with `Authorization: Bearer {token}`. The body is a YAML stream; an empty
//! body means "no policies". Everything here is about making that one request
//! safe to run unattended: bounded time (timeouts, a retry budget), bounded
//! memory (a body limit enforced while reading), clear refusals, and a token
//! that never leaves the `Authorization` header.
//!
//! # Retry policy
//!
//! Retried (up to [`ClientConfig::retries`] more attempts), because the next
//! attempt may well succeed:
//! - connection errors, and a connection that breaks before the response;
//! - the connect timeout and the per-attempt request timeout;
//! - a body cut short of its `Content-Length` (or of its last chunk);
//! - HTTP 429 and 5xx, waiting at least as long as a `Retry-After` in
//!   seconds asks, up to [`RETRY_AFTER_CAP`].
//!
//! Not retried, because the same request would get the same answer: 401,
//! 403, 404 and every other 4xx; redirects (never followed, so the token is
//! never sent to another place); an unexpected success status; an HTML or
//! JSON page served with 200; a body over the size limit. A scheduled run is
//! the retry for those.
//!
//! With the defaults (10 s per attempt, 3 retries, waits of 1–5 s) a server
//! that accepts connections and never answers fails a cluster in at most
//! 4 × 10 s + 2 s + 4 s + 5 s = 51 s.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{
    HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
};
use reqwest::StatusCode;

pub use crate::secret::Token;
use crate::units::{parse_duration, parse_size};

pub const DEFAULT_HOST: &str = "https://insights.fairwinds.com";

/// The longest wait a server's `Retry-After` can impose. Longer requests are
/// cut to this: a CI job should fail and be rescheduled rather than sit idle
/// for an hour because a proxy said so. `--retry-max-backoff` does not cap
/// it, since retrying before a rate limiter allows only earns another 429.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// The `Authorization` header for a token, kept out of logs.
fn bearer(token: &Token) -> Result<HeaderValue, InsightsError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
            InsightsError::Config(
                "the token contains characters that cannot go in an HTTP header (a line break?): check FAIRWINDS_TOKEN or --token-file".into(),
            )
        })?;
    // Tells HTTP/2 header compression never to index it, and makes the
    // value's Debug print `Sensitive`.
    value.set_sensitive(true);
    Ok(value)
}

/// The defaults of [`ClientConfig`], stated once, as the command line
/// spells them: clap shows them in `--help`, and [`ClientConfig::new`]
/// reads them.
pub mod defaults {
    pub const CONCURRENCY: u16 = 8;
    pub const CONNECT_TIMEOUT: &str = "5s";
    pub const REQUEST_TIMEOUT: &str = "10s";
    pub const RETRIES: u32 = 3;
    pub const RETRY_MIN_BACKOFF: &str = "1s";
    pub const RETRY_MAX_BACKOFF: &str = "5s";
    pub const MAX_BODY_SIZE: &str = "32MiB";
}

fn default_duration(text: &str) -> Duration {
    parse_duration(text).expect("a valid default")
}

/// How to reach Insights, and how patient to be with it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL; a path prefix (a self-hosted Insights behind a proxy) and a
    /// trailing slash are fine.
    pub host: String,
    pub org: String,
    pub token: Token,
    pub connect_timeout: Duration,
    /// Per attempt, headers and body together.
    pub request_timeout: Duration,
    /// Further attempts after the first.
    pub retries: u32,
    /// The waits between attempts grow from this...
    pub backoff_min: Duration,
    /// ...doubling up to this (see [`RETRY_AFTER_CAP`] for `Retry-After`).
    pub backoff_max: Duration,
    pub max_body_bytes: u64,
    /// Extra PEM certificates (a private CA for a self-hosted Insights),
    /// trusted in addition to the platform's roots.
    pub ca_file: Option<PathBuf>,
    /// Clusters fetched at the same time by [`Client::fetch_all`].
    pub concurrency: usize,
}

impl ClientConfig {
    /// The defaults mirror the in-cluster plugin: 10 s per request, 3
    /// retries, 1–5 s between them.
    pub fn new(host: impl Into<String>, org: impl Into<String>, token: Token) -> Self {
        ClientConfig {
            host: host.into(),
            org: org.into(),
            token,
            connect_timeout: default_duration(defaults::CONNECT_TIMEOUT),
            request_timeout: default_duration(defaults::REQUEST_TIMEOUT),
            retries: defaults::RETRIES,
            backoff_min: default_duration(defaults::RETRY_MIN_BACKOFF),
            backoff_max: default_duration(defaults::RETRY_MAX_BACKOFF),
            max_body_bytes: parse_size(defaults::MAX_BODY_SIZE).expect("a valid default"),
            ca_file: None,
            concurrency: usize::from(defaults::CONCURRENCY),
        }
    }
}

/// Which of the two timeouts ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    Connect,
    Request,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::Request => "request",
        })
    }
}

/// Why a cluster's policies could not be fetched. Messages name the org and
/// cluster and say what to check; none contains the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InsightsError {
    /// A flag or file that keeps the client from starting: never retried.
    #[error("{0}")]
    Config(String),
    #[error("Insights refused the token for cluster {cluster:?} of organization {org:?} (HTTP 401): check FAIRWINDS_TOKEN or --token-file, and that the token belongs to organization {org:?}")]
    Unauthorized { org: String, cluster: String },
    #[error("the token may not read cluster {cluster:?} of organization {org:?} (HTTP 403): check FAIRWINDS_TOKEN or --token-file, and that the token belongs to organization {org:?} and may read its policies")]
    Forbidden { org: String, cluster: String },
    #[error("Insights knows no cluster {cluster:?} in organization {org:?} (HTTP 404): check --org and --cluster")]
    NotFound { org: String, cluster: String },
    /// Any other status; 429 and 5xx only once the retries are spent.
    #[error("Insights answered HTTP {status} for cluster {cluster:?} of organization {org:?} after {attempts} attempt(s): {}", status_hint(*status))]
    Status {
        org: String,
        cluster: String,
        status: u16,
        attempts: u32,
    },
    /// A status 200 whose body is an error page. The body is not quoted:
    /// a proxy's debug page may echo request headers.
    #[error("the response for cluster {cluster:?} of organization {org:?} is not a YAML stream of policies but {what}: is Insights (or a proxy in front of it) in maintenance? check --insights-host")]
    NotYaml {
        org: String,
        cluster: String,
        what: String,
    },
    #[error("the response for cluster {cluster:?} of organization {org:?} is larger than the limit of {limit} bytes{}: raise --max-body-size if the cluster really has that many policies", announced.map(|n| format!(" (it announced {n} bytes)")).unwrap_or_default())]
    TooLarge {
        org: String,
        cluster: String,
        limit: u64,
        announced: Option<u64>,
    },
    #[error("the response for cluster {cluster:?} of organization {org:?} was cut short: {}, after {attempts} attempt(s): check the network and any proxy in between", match expected { Some(n) => format!("{received} of {n} bytes arrived"), None => format!("the connection broke after {received} bytes") })]
    Truncated {
        org: String,
        cluster: String,
        received: u64,
        expected: Option<u64>,
        attempts: u32,
    },
    #[error("no answer from {host} for cluster {cluster:?} of organization {org:?} within the {timeout:?} {kind} timeout, after {attempts} attempt(s): {}", timeout_hint(*kind))]
    Timeout {
        org: String,
        cluster: String,
        host: String,
        kind: TimeoutKind,
        timeout: Duration,
        attempts: u32,
    },
    #[error("cannot reach {host} for cluster {cluster:?} of organization {org:?} after {attempts} attempt(s): {reason}: check --insights-host, the network, HTTPS_PROXY/NO_PROXY, and --ca-file for a private CA")]
    Connect {
        org: String,
        cluster: String,
        host: String,
        reason: String,
        attempts: u32,
    },
    /// The connection was made but broke before a response arrived.
    #[error("the connection to {host} broke before a response for cluster {cluster:?} of organization {org:?} arrived, after {attempts} attempt(s): {reason}: check the network and any proxy in between")]
    Network {
        org: String,
        cluster: String,
        host: String,
        reason: String,
        attempts: u32,
    },
}

impl InsightsError {
    /// Whether [`Client::fetch`] tries again after this error (before its
    /// retries are spent).
    pub fn is_retryable(&self) -> bool {
        match self {
            InsightsError::Status { status, .. } => is_retryable_status(*status),
            InsightsError::Truncated { .. }
            | InsightsError::Timeout { .. }
            | InsightsError::Connect { .. }
            | InsightsError::Network { .. } => true,
            _ => false,
        }
    }
}

fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

fn status_hint(status: u16) -> &'static str {
    match status {
        429 => "Insights is rate-limiting this token; lower --concurrency or run later",
        500..=599 => "Insights (or a proxy in front of it) is failing; run again later",
        300..=399 => "redirects are not followed, so that the token goes nowhere else; check --insights-host (the https:// URL of the API itself)",
        200..=299 => "a success without the policies; check --insights-host",
        _ => "check --insights-host and --org",
    }
}

fn timeout_hint(kind: TimeoutKind) -> &'static str {
    match kind {
        TimeoutKind::Connect => {
            "check --insights-host, the network and HTTPS_PROXY/NO_PROXY, or raise --connect-timeout"
        }
        TimeoutKind::Request => "check the network, or raise --request-timeout",
    }
}

/// Fetches clusters' policies from one Insights organization. Cheap to
/// clone: clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    base: reqwest::Url,
    /// `host[:port]`, for messages.
    origin: String,
    auth: HeaderValue,
    jitter: Arc<AtomicU64>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("org", &self.config.org)
            .finish_non_exhaustive()
    }
}

/// What one attempt ended with; the retry loop decides what comes next.
enum Attempt {
    Done(Vec<u8>),
    /// Worth another try, after at least this long (Retry-After).
    Retry(InsightsError, Option<Duration>),
    Fail(InsightsError),
}

impl Client {
    /// Checks the configuration and builds the HTTP client. Errors are
    /// [`InsightsError::Config`] naming the flag at fault.
    pub fn new(config: ClientConfig) -> Result<Client, InsightsError> {
        let base = parse_host(&config.host)?;
        check_segment("--org", &config.org)?;
        if base.scheme() == "http" && !is_loopback(&base) {
            tracing::warn!(
                host = %origin(&base),
                "--insights-host is plain http: the token crosses the network unencrypted"
            );
        }
        for (flag, value) in [
            ("--connect-timeout", config.connect_timeout),
            ("--request-timeout", config.request_timeout),
        ] {
            if value.is_zero() {
                return Err(InsightsError::Config(format!(
                    "{flag} must be longer than 0"
                )));
            }
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!(
                "insights-policy-render/",
                env!("CARGO_PKG_VERSION")
            ))
            // A redirect could carry the Authorization header somewhere else.
            .redirect(reqwest::redirect::Policy::none());
        // `connection_verbose` stays off: it logs raw bytes, headers included.
        if let Some(path) = &config.ca_file {
            for cert in read_ca_file(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| {
            let flag = match &config.ca_file {
                Some(path) => format!(" (check --ca-file {})", path.display()),
                None => String::new(),
            };
            InsightsError::Config(format!(
                "cannot set up the HTTP client{flag}: {}",
                error_chain(&e)
            ))
        })?;
        let auth = bearer(&config.token)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64
            ^ u64::from(std::process::id()).rotate_left(32);
        Ok(Client {
            http,
            origin: origin(&base),
            base,
            config: Arc::new(config),
            auth,
            jitter: Arc::new(AtomicU64::new(seed)),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The endpoint for one cluster; org and cluster are single path
    /// segments whatever they contain (`/`, `%`, spaces are encoded).
    pub fn url(&self, cluster: &str) -> Result<reqwest::Url, InsightsError> {
        check_segment("--cluster", cluster)?;
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked to be an http(s) URL")
            .pop_if_empty()
            .extend([
                "v0",
                "organizations",
                &self.config.org,
                "clusters",
                cluster,
                "kyverno-policies",
                "with-app-groups-applied",
                "yaml",
            ]);
        Ok(url)
    }

    /// One cluster's response body, retried as the module documentation
    /// says. An empty `Ok` body means the cluster has no policies.
    pub async fn fetch(&self, cluster: &str) -> Result<Vec<u8>, InsightsError> {
        self.url(cluster)?;
        let attempts = self.config.retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let outcome = self.attempt(cluster, attempt).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match outcome {
                Attempt::Done(body) => {
                    tracing::debug!(cluster, attempt, bytes = body.len(), elapsed_ms, "fetched");
                    return Ok(body);
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e, _) if attempt >= attempts => return Err(e),
                Attempt::Retry(e, retry_after) => {
                    let wait = self.backoff(attempt, retry_after);
                    tracing::warn!(
                        cluster,
                        attempt,
                        elapsed_ms,
                        wait_ms = wait.as_millis() as u64,
                        "retrying: {e}"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Every cluster, at most `concurrency` at a time (a few workers taking
    /// the next index, so clusters start in the order given); hands each
    /// result to `done` (with
    /// the cluster's index in `clusters`) as soon as it is complete, so a
    /// caller can render one response while others are still on their way.
    /// Returns once every cluster is done.
    pub async fn fetch_each(
        &self,
        clusters: &[String],
        done: std::sync::mpsc::Sender<(usize, Result<Vec<u8>, InsightsError>)>,
    ) {
        let clusters: Arc<[String]> = clusters.into();
        let next = Arc::new(AtomicUsize::new(0));
        let workers = self.config.concurrency.clamp(1, clusters.len().max(1));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (client, clusters, next, done) =
                (self.clone(), clusters.clone(), next.clone(), done.clone());
            set.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cluster) = clusters.get(i) else {
                        return;
                    };
                    let result = client.fetch(cluster).await;
                    // The receiver gone means the caller stopped waiting.
                    if done.send((i, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done);
        while let Some(joined) = set.join_next().await {
            if let Err(e) = joined {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
                panic!("a fetch task was cancelled: {e}");
            }
        }
    }

    /// Every cluster, at most `concurrency` at a time, results in the order
    /// given. One cluster's failure is its own result and stops nothing.
    pub async fn fetch_all(
        &self,
        clusters: &[String],
    ) -> Vec<(String, Result<Vec<u8>, InsightsError>)> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.fetch_each(clusters, tx).await;
        let mut results: Vec<Option<Result<Vec<u8>, InsightsError>>> =
            clusters.iter().map(|_| None).collect();
        for (i, result) in rx.try_iter() {
            results[i] = Some(result);
        }
        clusters
            .iter()
            .cloned()
            .zip(results)
            .map(|(c, r)| (c, r.expect("every index is taken by one worker")))
            .collect()
    }

    /// The wait before retry number `retry` (1 for the first): uniform
    /// between `backoff_min` and a ceiling that doubles from
    /// 2 × `backoff_min` up to `backoff_max`. Random within the whole range
    /// so that a matrix of CI jobs hit by the same outage does not come back
    /// in lockstep, and never below `backoff_min`. A server's `Retry-After`
    /// wins when longer, up to [`RETRY_AFTER_CAP`].
    fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let c = &self.config;
        let min = c.backoff_min;
        let max = c.backoff_max.max(min);
        let ceiling = min
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(max);
        let wait = min + (ceiling - min).mul_f64(self.jitter());
        match retry_after {
            Some(after) => after.min(RETRY_AFTER_CAP).max(wait),
            None => wait,
        }
    }

    /// A number in [0, 1): splitmix64 over a per-client counter seeded from
    /// the clock and pid, so clients in different processes diverge.
    fn jitter(&self) -> f64 {
        let mut z = self
            .jitter
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    async fn attempt(&self, cluster: &str, attempt: u32) -> Attempt {
        let c = &self.config;
        let url = match self.url(cluster) {
            Ok(url) => url,
            Err(e) => return Attempt::Fail(e),
        };
        tracing::debug!(cluster, attempt, url = %url, "requesting");
        let started = Instant::now();
        let request = self
            .http
            .get(url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(
                ACCEPT,
                "application/yaml, application/x-yaml, text/yaml, */*",
            )
            .timeout(c.request_timeout);
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(self.transport_error(&e, cluster, attempt), None),
        };
        let status = response.status();
        tracing::debug!(
            cluster,
            attempt,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "response"
        );
        let org = || c.org.clone();
        let name = || cluster.to_owned();
        match status {
            StatusCode::OK | StatusCode::NO_CONTENT => {}
            StatusCode::UNAUTHORIZED => {
                return Attempt::Fail(InsightsError::Unauthorized {
                    org: org(),
                    cluster: name(),
                })
            }
            StatusCode::FORBIDDEN => {
                return Attempt::Fail(InsightsError::Forbidden {
                    org: org(),
                    cluster: name(),
                })
            }
            StatusCode::NOT_FOUND => {
                return Attempt::Fail(InsightsError::NotFound {
                    org: org(),
                    cluster: name(),
                })
            }
            s => {
                let e = InsightsError::Status {
                    org: org(),
                    cluster: name(),
                    status: s.as_u16(),
                    attempts: attempt,
                };
                // Only 200 and 204 are taken: a 202 or 206 with a short or
                // empty body must not become "every policy was removed".
                return if is_retryable_status(s.as_u16()) {
                    Attempt::Retry(e, retry_after(response.headers()))
                } else {
                    Attempt::Fail(e)
                };
            }
        }

        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        };
        let not_yaml = |what: String| {
            Attempt::Fail(InsightsError::NotYaml {
                org: org(),
                cluster: name(),
                what,
            })
        };
        if let Some(what) = not_yaml_content_type(&header(CONTENT_TYPE)) {
            return not_yaml(what);
        }
        let encoding = header(CONTENT_ENCODING);
        if !encoding.is_empty() && encoding != "identity" {
            // Nothing here asks for compression, so nothing can undo it.
            return not_yaml(format!("a compressed body (Content-Encoding {encoding})"));
        }
        let expected = header(CONTENT_LENGTH).parse::<u64>().ok();
        let too_large = |announced| {
            Attempt::Fail(InsightsError::TooLarge {
                org: org(),
                cluster: name(),
                limit: c.max_body_bytes,
                announced,
            })
        };
        if expected.is_some_and(|n| n > c.max_body_bytes) {
            return too_large(expected);
        }
        // Chunk by chunk, so that a server that announces nothing (or lies)
        // cannot make us buffer past the limit.
        let mut body = Vec::with_capacity(expected.unwrap_or(0).min(1 << 20) as usize);
        let truncated = |received: usize| {
            Attempt::Retry(
                InsightsError::Truncated {
                    org: org(),
                    cluster: name(),
                    received: received as u64,
                    expected,
                    attempts: attempt,
                },
                None,
            )
        };
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > c.max_body_bytes {
                        return too_large(expected);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() || started.elapsed() >= c.request_timeout => {
                    return Attempt::Retry(
                        self.timeout_error(TimeoutKind::Request, cluster, attempt),
                        None,
                    )
                }
                // hyper reports a body that ends before its Content-Length
                // (or its last chunk) as an error; this is what it means.
                Err(_) => return truncated(body.len()),
            }
        }
        if expected.is_some_and(|n| (body.len() as u64) < n) {
            return truncated(body.len());
        }
        tracing::debug!(
            cluster,
            attempt,
            bytes = body.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "body read"
        );
        if let Some(what) = not_yaml_body(&body) {
            return not_yaml(what);
        }
        Attempt::Done(body)
    }

    fn timeout_error(&self, kind: TimeoutKind, cluster: &str, attempt: u32) -> InsightsError {
        InsightsError::Timeout {
            org: self.config.org.clone(),
            cluster: cluster.to_owned(),
            host: self.origin.clone(),
            kind,
            timeout: match kind {
                TimeoutKind::Connect => self.config.connect_timeout,
                TimeoutKind::Request => self.config.request_timeout,
            },
            attempts: attempt,
        }
    }

    /// An error before any response: all of them are worth a retry.
    fn transport_error(&self, e: &reqwest::Error, cluster: &str, attempt: u32) -> InsightsError {
        // reqwest marks both timeouts alike; the connect one is the one
        // that happened while connecting.
        if e.is_timeout() {
            let kind = if e.is_connect() {
                TimeoutKind::Connect
            } else {
                TimeoutKind::Request
            };
            return self.timeout_error(kind, cluster, attempt);
        }
        let (org, cluster, host) = (
            self.config.org.clone(),
            cluster.to_owned(),
            self.origin.clone(),
        );
        let reason = self.scrub(error_chain(e));
        if e.is_connect() {
            InsightsError::Connect {
                org,
                cluster,
                host,
                reason,
                attempts: attempt,
            }
        } else {
            InsightsError::Network {
                org,
                cluster,
                host,
                reason,
                attempts: attempt,
            }
        }
    }

    /// The token is only ever in a header, which no error message quotes;
    /// this holds that line should a library's message ever change. A
    /// token too short to be real is left alone: replacing every "t" in a
    /// message would hide the message, not a secret.
    fn scrub(&self, text: String) -> String {
        let token = self.config.token.expose();
        if token.len() < 8 || !text.contains(token) {
            text
        } else {
            text.replace(token, "<redacted>")
        }
    }
}

/// The URL parser drops a `.` or `..` segment (and an empty one leaves
/// `//`), which would ask for another path than the named cluster's: such
/// names are refused before any request. Everything else is encoded.
fn check_segment(flag: &str, name: &str) -> Result<(), InsightsError> {
    if matches!(name, "" | "." | "..") {
        return Err(InsightsError::Config(format!(
            "{flag} {name:?} cannot name anything in Insights"
        )));
    }
    Ok(())
}

fn parse_host(host: &str) -> Result<reqwest::Url, InsightsError> {
    let bad = |why: &str| InsightsError::Config(format!("--insights-host {host:?} {why}"));
    let url = reqwest::Url::parse(host.trim().trim_end_matches('/'))
        .map_err(|_| bad("is not a URL like https://insights.fairwinds.com"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(
            "is not an http(s) URL like https://insights.fairwinds.com",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: whatever sits there is likely a secret.
        return Err(InsightsError::Config(
            "--insights-host must not hold a user name or password; the token comes from FAIRWINDS_TOKEN or --token-file".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query (?...) or fragment (#...)"));
    }
    Ok(url)
}

/// `host[:port]`: what a reader compares with their `--insights-host`.
fn origin(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, InsightsError> {
    let pem = std::fs::read(path).map_err(|e| {
        InsightsError::Config(format!("cannot read --ca-file {}: {e}", path.display()))
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        InsightsError::Config(format!(
            "--ca-file {} holds no usable PEM certificate: {}",
            path.display(),
            error_chain(&e)
        ))
    })?;
    if certs.is_empty() {
        return Err(InsightsError::Config(format!(
            "--ca-file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

/// `Retry-After` in seconds. The HTTP-date form is ignored (our own backoff
/// applies): Insights and common proxies send seconds, and a date would need
/// a clock we cannot trust to agree with the server's.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Error pages announced as such: a proxy's or a maintenance screen's HTML,
/// an API gateway's JSON error.
fn not_yaml_content_type(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence == "text/html" || essence == "application/xhtml+xml" {
        return Some(format!("an HTML page (Content-Type {essence})"));
    }
    if essence == "application/json" || essence.ends_with("+json") {
        return Some(format!("JSON (Content-Type {essence})"));
    }
    None
}

/// Error pages that do not say what they are. A YAML stream of policies
/// starts with a comment, `---` or a key; one starting with `{` or `[` is
/// taken for JSON, even though JSON is YAML: the endpoint serves block YAML,
/// and gateways answer errors in JSON.
fn not_yaml_body(body: &[u8]) -> Option<String> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Some("an HTML or XML page (the body starts with '<')".into()),
        Some(&b @ (b'{' | b'[')) => Some(format!("JSON (the body starts with '{}')", b as char)),
        _ => None,
    }
}

/// reqwest's own message is only "error sending request"; the cause is
/// further down the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        // hyper and hyper-util often repeat their source in their message.
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = s.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(host: &str) -> Result<Client, InsightsError> {
        Client::new(ClientConfig::new(
            host,
            "o",
            Token::new("tok-SECRET".into()),
        ))
    }

    #[test]
    fn tokens_are_never_shown() {
        let t = Token::new("tok-SECRET".into());
        assert!(!format!("{t:?} {t}").contains("SECRET"));
        let config = ClientConfig::new("https://x", "o", t);
        assert!(!format!("{config:?}").contains("SECRET"));
        let c = client("https://x").unwrap();
        assert!(!format!("{c:?}").contains("SECRET"));
    }

    #[test]
    fn org_and_cluster_are_single_encoded_segments() {
        let client = Client::new(ClientConfig::new(
            "https://insights.example/",
            "acme corp",
            Token::new("t".into()),
        ))
        .unwrap();
        assert_eq!(
            client.url("a/b%c").unwrap().as_str(),
            "https://insights.example/v0/organizations/acme%20corp/clusters/a%2Fb%25c/kyverno-policies/with-app-groups-applied/yaml"
        );
        let prefixed = Client::new(ClientConfig::new(
            "https://example.com/insights//",
            "o",
            Token::new("t".into()),
        ))
        .unwrap();
        assert_eq!(
            prefixed.url("c").unwrap().path(),
            "/insights/v0/organizations/o/clusters/c/kyverno-policies/with-app-groups-applied/yaml"
        );
    }

    #[test]
    fn hosts_are_checked_without_echoing_credentials() {
        for bad in [
            "insights.fairwinds.com",
            "ftp://x",
            "https://x?a=b",
            "http://",
        ] {
            let e = client(bad).unwrap_err();
            assert!(e.to_string().contains("--insights-host"), "{e}");
        }
        let e = client("https://user:hunter2@x").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn error_pages_are_recognised() {
        assert!(not_yaml_content_type("text/html; charset=utf-8").is_some());
        assert!(not_yaml_content_type("application/problem+json").is_some());
        assert!(not_yaml_content_type("application/x-yaml").is_none());
        assert!(not_yaml_content_type("").is_none());
        assert!(not_yaml_body(b"  <!doctype html>").is_some());
        assert!(not_yaml_body(b"\xef\xbb\xbf{\"error\": \"maintenance\"}").is_some());
        assert!(not_yaml_body(b"\n[1]").is_some());
        assert!(not_yaml_body(b"---\napiVersion: v1\n").is_none());
        assert!(not_yaml_body(b"# comment\n").is_none());
        assert!(not_yaml_body(b"").is_none());
    }

    #[test]
    fn backoff_grows_is_bounded_and_jittered() {
        let mut config = ClientConfig::new("https://x", "o", Token::new("t".into()));
        config.backoff_min = Duration::from_secs(1);
        config.backoff_max = Duration::from_secs(5);
        let client = Client::new(config).unwrap();
        let (mut firsts, mut lates) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            let first = client.backoff(1, None);
            assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
            let late = client.backoff(40, None);
            assert!(late >= Duration::from_secs(1) && late <= Duration::from_secs(5));
            firsts.push(first);
            lates.push(late);
            let told = client.backoff(1, Some(Duration::from_secs(7)));
            assert_eq!(told, Duration::from_secs(7));
            let greedy = client.backoff(1, Some(Duration::from_secs(3600)));
            assert_eq!(greedy, RETRY_AFTER_CAP);
        }
        assert!(lates.iter().any(|d| *d > Duration::from_secs(4)));
        firsts.sort();
        firsts.dedup();
        assert!(firsts.len() > 100, "jittered, not a constant");
    }

    #[test]
    fn backoff_survives_min_above_max() {
        let mut config = ClientConfig::new("https://x", "o", Token::new("t".into()));
        config.backoff_min = Duration::from_secs(3);
        config.backoff_max = Duration::from_secs(1);
        let client = Client::new(config).unwrap();
        assert_eq!(client.backoff(2, None), Duration::from_secs(3));
    }

    #[test]
    fn token_files_are_trimmed_and_never_quoted() {
        let dir = std::env::temp_dir().join(format!("ipr-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, "tok-SECRET\n").unwrap();
        assert_eq!(
            Token::from_file("--token-file", &good).unwrap().expose(),
            "tok-SECRET"
        );
        let bad = dir.join("bad");
        std::fs::write(&bad, b"tok-SECRET\xff\n").unwrap();
        let e = Token::from_file("--token-file", &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad") && !e.contains("SECRET"), "{e}");
        let empty = dir.join("empty");
        std::fs::write(&empty, " \n").unwrap();
        assert!(Token::from_file("--token-file", &empty).is_err());
        let e = Token::from_file("--token-file", &dir.join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
