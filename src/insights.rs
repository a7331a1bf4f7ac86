//! The HTTP edge: each cluster's policies from the Insights API.
//!
//! `GET {host}/v0/organizations/{org}/clusters/{cluster}/kyverno-policies/with-app-groups-applied/yaml`
//! with `Authorization: Bearer {token}`. The body is a YAML stream; an empty
//! body means "no policies". Everything here is about making that one request
//! safe to run unattended: bounded time (timeouts, a retry budget), bounded
//! memory (a body limit enforced while reading), clear refusals, and a token
//! that never leaves the `Authorization` header.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

pub const DEFAULT_HOST: &str = "https://insights.fairwinds.com";

/// A bearer token. Debug and Display never show it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: String) -> Self {
        Token(token)
    }

    /// Reads a token file; surrounding whitespace (a final newline) is not
    /// part of the token. Errors name the path, never the content.
    pub fn from_file(path: &std::path::Path) -> Result<Self, InsightsError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            InsightsError::Config(format!("cannot read token file {}: {e}", path.display()))
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(InsightsError::Config(format!(
                "token file {} is empty",
                path.display()
            )));
        }
        Ok(Token(token.to_owned()))
    }

    fn header(&self) -> Result<HeaderValue, InsightsError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0)).map_err(|_| {
            InsightsError::Config(
                "the token contains characters that cannot go in an HTTP header".into(),
            )
        })?;
        // Marks the value for HTTP/2 header compression to never index it,
        // and for hyper's debug output to skip it.
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to reach Insights, and how patient to be with it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub host: String,
    pub org: String,
    pub token: Token,
    pub connect_timeout: Duration,
    /// Per attempt, headers and body together.
    pub request_timeout: Duration,
    /// Further attempts after the first.
    pub retries: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub max_body_bytes: u64,
    /// Extra PEM certificates (a private CA for a self-hosted Insights),
    /// trusted in addition to the platform's roots.
    pub ca_file: Option<PathBuf>,
    pub concurrency: usize,
}

impl ClientConfig {
    /// The defaults mirror the in-cluster plugin (10 s per request, 3
    /// retries, 1–5 s backoff): a server that accepts connections and never
    /// answers fails a cluster in 4 × 10 s + backoff, under a minute.
    pub fn new(host: impl Into<String>, org: impl Into<String>, token: Token) -> Self {
        ClientConfig {
            host: host.into(),
            org: org.into(),
            token,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            retries: 3,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5),
            max_body_bytes: 32 * 1024 * 1024,
            ca_file: None,
            concurrency: 8,
        }
    }
}

/// Why a cluster's policies could not be fetched. Messages name the org and
/// cluster and say what to check; none contains the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InsightsError {
    #[error("{0}")]
    Config(String),
    #[error("Insights refused the token for cluster {cluster:?} of organization {org:?} (HTTP 401): check FAIRWINDS_TOKEN or --token-file")]
    Unauthorized { org: String, cluster: String },
    #[error("the token may not read cluster {cluster:?} of organization {org:?} (HTTP 403): check that the token belongs to organization {org:?} and can read its policies")]
    Forbidden { org: String, cluster: String },
    #[error("Insights knows no cluster {cluster:?} in organization {org:?} (HTTP 404): check --org and --cluster")]
    NotFound { org: String, cluster: String },
    #[error("Insights answered HTTP {status} for cluster {cluster:?} of organization {org:?} after {attempts} attempt(s)")]
    Status {
        org: String,
        cluster: String,
        status: u16,
        attempts: u32,
    },
    #[error("the response for cluster {cluster:?} is not a YAML stream of policies but {what}; is Insights (or a proxy in front of it) in maintenance?")]
    NotYaml { cluster: String, what: String },
    #[error("the response for cluster {cluster:?} is larger than the limit of {limit} bytes (--max-body-size)")]
    TooLarge { cluster: String, limit: u64 },
    #[error("the response for cluster {cluster:?} was cut short: {received} of {expected} bytes arrived, after {attempts} attempt(s)")]
    Truncated {
        cluster: String,
        received: u64,
        expected: u64,
        attempts: u32,
    },
    #[error("no answer from {host} for cluster {cluster:?} within the {timeout:?} request timeout, after {attempts} attempt(s) (--request-timeout)")]
    Timeout {
        host: String,
        cluster: String,
        timeout: Duration,
        attempts: u32,
    },
    #[error("cannot reach {host} for cluster {cluster:?} after {attempts} attempt(s): {reason}")]
    Connect {
        host: String,
        cluster: String,
        reason: String,
        attempts: u32,
    },
}

/// Fetches clusters' policies from one Insights organization.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    base: reqwest::Url,
    auth: HeaderValue,
}

/// What one attempt ended with; the retry loop decides what comes next.
enum Attempt {
    Done(Vec<u8>),
    /// Worth another try, after at least this long (Retry-After).
    Retry(InsightsError, Option<Duration>),
    Fail(InsightsError),
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, InsightsError> {
        let base = reqwest::Url::parse(config.host.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                InsightsError::Config(format!(
                    "--insights-host {:?} is not an http(s) URL",
                    config.host
                ))
            })?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!(
                "insights-policy-render/",
                env!("CARGO_PKG_VERSION")
            ))
            // Redirects could carry the Authorization header elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                InsightsError::Config(format!("cannot read --ca-file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                InsightsError::Config(format!(
                    "--ca-file {} holds no usable PEM certificate: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(InsightsError::Config(format!(
                    "--ca-file {} holds no PEM certificate",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| InsightsError::Config(format!("cannot set up the HTTP client: {e}")))?;
        let auth = config.token.header()?;
        Ok(Client {
            http,
            config: Arc::new(config),
            base,
            auth,
        })
    }

    /// The endpoint for one cluster; org and cluster are single path
    /// segments whatever they contain.
    pub fn url(&self, cluster: &str) -> reqwest::Url {
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
        url
    }

    /// One cluster's response body, retried as the config allows.
    pub async fn fetch(&self, cluster: &str) -> Result<Vec<u8>, InsightsError> {
        let attempts = self.config.retries + 1;
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

    /// Every cluster, at most `concurrency` at a time, in the order given.
    pub async fn fetch_all(
        &self,
        clusters: &[String],
    ) -> Vec<(String, Result<Vec<u8>, InsightsError>)> {
        let permits = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)));
        let tasks: Vec<_> = clusters
            .iter()
            .map(|cluster| {
                let client = self.clone();
                let cluster = cluster.clone();
                let permits = permits.clone();
                tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await.expect("never closed");
                    let result = client.fetch(&cluster).await;
                    (cluster, result)
                })
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await.expect("a fetch task panicked"));
        }
        results
    }

    /// Exponential from `backoff_min`, capped at `backoff_max`, with jitter
    /// (between half and all of it) so a matrix of CI jobs does not retry in
    /// lockstep. A server's Retry-After wins when longer, up to a minute.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let c = &self.config;
        let exp = c
            .backoff_min
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(c.backoff_max);
        let jittered = exp.mul_f64(0.5 + 0.5 * jitter());
        match retry_after {
            Some(after) => after.min(Duration::from_secs(60)).max(jittered),
            None => jittered,
        }
    }

    async fn attempt(&self, cluster: &str, attempt: u32) -> Attempt {
        let c = &self.config;
        let cluster_s = cluster.to_owned();
        let host = self.base.host_str().unwrap_or_default().to_owned();
        let timeout_err = || InsightsError::Timeout {
            host: host.clone(),
            cluster: cluster_s.clone(),
            timeout: c.request_timeout,
            attempts: attempt,
        };
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                Attempt::Retry(timeout_err(), None)
            } else {
                Attempt::Retry(
                    InsightsError::Connect {
                        host: host.clone(),
                        cluster: cluster_s.clone(),
                        reason: error_chain(&e),
                        attempts: attempt,
                    },
                    None,
                )
            }
        };
        tracing::debug!(cluster, attempt, url = %self.url(cluster), "requesting");
        let request = self
            .http
            .get(self.url(cluster))
            .header(AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::ACCEPT, "application/yaml, text/yaml, */*")
            .timeout(c.request_timeout);
        let deadline = Instant::now() + c.request_timeout;
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport(e),
        };
        let status = response.status();
        tracing::debug!(cluster, attempt, status = status.as_u16(), "response");
        let ids = || (c.org.clone(), cluster.to_owned());
        match status {
            StatusCode::UNAUTHORIZED => {
                let (org, cluster) = ids();
                return Attempt::Fail(InsightsError::Unauthorized { org, cluster });
            }
            StatusCode::FORBIDDEN => {
                let (org, cluster) = ids();
                return Attempt::Fail(InsightsError::Forbidden { org, cluster });
            }
            StatusCode::NOT_FOUND => {
                let (org, cluster) = ids();
                return Attempt::Fail(InsightsError::NotFound { org, cluster });
            }
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let (org, cluster) = ids();
                return Attempt::Retry(
                    InsightsError::Status {
                        org,
                        cluster,
                        status: s.as_u16(),
                        attempts: attempt,
                    },
                    retry_after,
                );
            }
            s if !s.is_success() => {
                let (org, cluster) = ids();
                return Attempt::Fail(InsightsError::Status {
                    org,
                    cluster,
                    status: s.as_u16(),
                    attempts: attempt,
                });
            }
            _ => {}
        }

        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if let Some(what) = not_yaml(&content_type, b"") {
            return Attempt::Fail(InsightsError::NotYaml {
                cluster: cluster.to_owned(),
                what,
            });
        }
        let expected = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = || {
            Attempt::Fail(InsightsError::TooLarge {
                cluster: cluster.to_owned(),
                limit: c.max_body_bytes,
            })
        };
        if expected.is_some_and(|n| n > c.max_body_bytes) {
            return too_large();
        }
        // Read chunk by chunk so a server that sends more than it announced
        // (or announces nothing) cannot make us buffer past the limit.
        let mut body = Vec::with_capacity(expected.unwrap_or(0) as usize);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > c.max_body_bytes {
                        return too_large();
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() || Instant::now() >= deadline => {
                    return Attempt::Retry(timeout_err(), None)
                }
                Err(_) => {
                    return Attempt::Retry(
                        InsightsError::Truncated {
                            cluster: cluster.to_owned(),
                            received: body.len() as u64,
                            expected: expected.unwrap_or(0),
                            attempts: attempt,
                        },
                        None,
                    )
                }
            }
        }
        if let Some(n) = expected {
            if (body.len() as u64) < n {
                return Attempt::Retry(
                    InsightsError::Truncated {
                        cluster: cluster.to_owned(),
                        received: body.len() as u64,
                        expected: n,
                        attempts: attempt,
                    },
                    None,
                );
            }
        }
        if let Some(what) = not_yaml("", &body) {
            return Attempt::Fail(InsightsError::NotYaml {
                cluster: cluster.to_owned(),
                what,
            });
        }
        Attempt::Done(body)
    }
}

/// Recognises the error pages that arrive with status 200: an HTML page
/// from a proxy or a maintenance screen, a JSON error object.
fn not_yaml(content_type: &str, body: &[u8]) -> Option<String> {
    if content_type.starts_with("text/html") {
        return Some("an HTML page (Content-Type text/html)".into());
    }
    if content_type.starts_with("application/json") {
        return Some("JSON (Content-Type application/json)".into());
    }
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Some("an HTML or XML page".into()),
        Some(b'{') | Some(b'[') => Some("a JSON document".into()),
        _ => None,
    }
}

/// reqwest's errors say "error sending request"; the cause is further down.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A number in [0, 1) that differs between calls and processes; good enough
/// to spread retries, which is all it is for.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_never_shown() {
        let t = Token::new("tok-SECRET".into());
        assert!(!format!("{t:?} {t}").contains("SECRET"));
        let config = ClientConfig::new("https://x", "o", t);
        assert!(!format!("{config:?}").contains("SECRET"));
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
            client.url("a/b%c").as_str(),
            "https://insights.example/v0/organizations/acme%20corp/clusters/a%2Fb%25c/kyverno-policies/with-app-groups-applied/yaml"
        );
    }

    #[test]
    fn error_pages_are_recognised() {
        assert!(not_yaml("text/html; charset=utf-8", b"").is_some());
        assert!(not_yaml("", b"  <!doctype html>").is_some());
        assert!(not_yaml("", b"{\"error\": \"maintenance\"}").is_some());
        assert!(not_yaml("application/yaml", b"---\napiVersion: v1\n").is_none());
        assert!(not_yaml("", b"").is_none());
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let mut config = ClientConfig::new("https://x", "o", Token::new("t".into()));
        config.backoff_min = Duration::from_secs(1);
        config.backoff_max = Duration::from_secs(5);
        let client = Client::new(config).unwrap();
        for _ in 0..50 {
            let first = client.backoff(1, None);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let late = client.backoff(10, None);
            assert!(late >= Duration::from_millis(2500) && late <= Duration::from_secs(5));
            let told = client.backoff(1, Some(Duration::from_secs(7)));
            assert_eq!(told, Duration::from_secs(7));
        }
    }
}
