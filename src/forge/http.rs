//! JSON over HTTPS to a forge's REST API: the token in one sensitive
//! header, rate limits waited out within a bound, errors scrubbed of the
//! token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::Method;
use serde_json::Value;

use super::config::{ForgeConfig, ForgeError, ForgeKind};

/// Rate-limited attempts of one request before giving up (each wait is
/// also bounded by `max_wait`, in all).
const RATE_LIMIT_ATTEMPTS: u32 = 4;

pub struct Client {
    http: reqwest::Client,
    kind: ForgeKind,
    base: reqwest::Url,
    token: String,
    max_wait: Duration,
}

/// A response the caller handles itself (a status it expects).
pub struct Response {
    pub json: Value,
}

impl Client {
    pub fn new(config: &ForgeConfig) -> Result<Client, ForgeError> {
        let mut headers = HeaderMap::new();
        let (name, value) = match config.kind {
            ForgeKind::Github => {
                headers.insert(
                    ACCEPT,
                    HeaderValue::from_static("application/vnd.github+json"),
                );
                headers.insert(
                    HeaderName::from_static("x-github-api-version"),
                    HeaderValue::from_static("2022-11-28"),
                );
                (AUTHORIZATION, format!("Bearer {}", config.token.expose()))
            }
            ForgeKind::Gitlab => (
                HeaderName::from_static("private-token"),
                config.token.expose().to_owned(),
            ),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ForgeError::Config(format!(
                "the token in {} has characters that cannot go in an HTTP header (a line break?)",
                config.token_source
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
        let loopback = config.api_url.host_str().is_some_and(|h| {
            h == "localhost"
                || h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        if config.api_url.scheme() == "http" && !loopback {
            tracing::warn!(
                "--forge-api-url is plain http: the forge token crosses the network unencrypted"
            );
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!(
                "insights-policy-render/",
                env!("CARGO_PKG_VERSION")
            ))
            .timeout(config.timeout)
            // A redirect could carry the token somewhere else.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                ForgeError::Config(format!(
                    "cannot read --forge-ca-file {}: {e}",
                    path.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ForgeError::Config(format!(
                    "--forge-ca-file {} holds no usable PEM certificate: {e}",
                    path.display()
                ))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| {
            ForgeError::Config(format!("cannot set up the HTTP client for the forge: {e}"))
        })?;
        Ok(Client {
            http,
            kind: config.kind,
            base: config.api_url.clone(),
            token: config.token.expose().to_owned(),
            max_wait: config.max_wait,
        })
    }

    /// `base` + these path segments (each percent-encoded as one segment) +
    /// query.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> reqwest::Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http(s) base URL")
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    fn scrub(&self, text: &str) -> String {
        if self.token.len() >= 4 {
            text.replace(&self.token, "<redacted>")
        } else {
            text.to_owned()
        }
    }

    /// Sends one request, waiting out rate limits; a status of 2xx, or one
    /// in `expect`, comes back; any other is an error that names what the
    /// token may lack (`hint` for this operation).
    pub async fn send(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Option<&Value>,
        operation: &str,
        expect: &[u16],
        hint: &dyn Fn(u16, &str) -> String,
    ) -> Result<Response, ForgeError> {
        let forge = self.kind.name();
        let mut waited = Duration::ZERO;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some(body) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(body).expect("JSON values serialise"));
            }
            tracing::debug!(%method, path = url.path(), "forge request");
            let response = request.send().await.map_err(|e| ForgeError::Transport {
                forge,
                operation: operation.to_owned(),
                message: self.scrub(&error_chain(&e)),
            })?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await.map_err(|e| ForgeError::Transport {
                forge,
                operation: operation.to_owned(),
                message: self.scrub(&error_chain(&e)),
            })?;
            let json: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                match serde_json::from_str(&text) {
                    Ok(v) => v,
                    Err(_) if (200..300).contains(&status) => {
                        return Err(ForgeError::Response {
                            forge,
                            operation: operation.to_owned(),
                            message: "not JSON".into(),
                        })
                    }
                    Err(_) => Value::String(text.chars().take(200).collect()),
                }
            };
            if (200..300).contains(&status) || expect.contains(&status) {
                return Ok(Response { json });
            }
            let message = self.scrub(&api_message(&json));
            if let Some(wait) = rate_limit_wait(status, &headers, &message) {
                if waited + wait > self.max_wait || attempt >= RATE_LIMIT_ATTEMPTS {
                    return Err(ForgeError::RateLimited {
                        forge,
                        operation: operation.to_owned(),
                        wait,
                        max_wait: self.max_wait,
                    });
                }
                tracing::warn!(
                    wait_seconds = wait.as_secs(),
                    "{forge} API rate limit: waiting before {operation}"
                );
                tokio::time::sleep(wait).await;
                waited += wait;
                continue;
            }
            return Err(ForgeError::Api {
                forge,
                operation: operation.to_owned(),
                status,
                hint: self.scrub(&hint(status, &message)),
                message,
            });
        }
    }
}

/// The forge's own words: GitHub's `message` and `errors[].message`,
/// GitLab's `message` (a string, a list or a map of lists) or `error`.
fn api_message(json: &Value) -> String {
    let mut parts = Vec::new();
    let flatten = |v: &Value, parts: &mut Vec<String>| match v {
        Value::String(s) => parts.push(s.clone()),
        Value::Array(items) => parts.extend(items.iter().map(|i| {
            match i {
                Value::String(s) => s.clone(),
                other => other
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| other.to_string()),
            }
        })),
        Value::Object(map) => parts.extend(map.iter().map(|(k, v)| format!("{k}: {v}"))),
        _ => {}
    };
    match json {
        Value::Object(_) => {
            for key in ["message", "error", "errors"] {
                if let Some(v) = json.get(key) {
                    flatten(v, &mut parts);
                }
            }
        }
        other => flatten(other, &mut parts),
    }
    let text = parts.join("; ");
    let text: String = text.chars().take(500).collect();
    if text.is_empty() {
        "(no message)".into()
    } else {
        text
    }
}

/// How long a rate limit asks to wait, if this is one: 429, or 403 with
/// `retry-after` or an exhausted `x-ratelimit-remaining` (GitHub's primary
/// and secondary limits). `retry-after` wins; else the reset time.
fn rate_limit_wait(status: u16, headers: &HeaderMap, message: &str) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .and_then(|v| v.parse::<u64>().ok())
    };
    let retry_after = header("retry-after");
    let exhausted =
        header("x-ratelimit-remaining") == Some(0) || header("ratelimit-remaining") == Some(0);
    let limited = status == 429
        || (status == 403
            && (retry_after.is_some()
                || exhausted
                || message.to_ascii_lowercase().contains("rate limit")));
    if !limited {
        return None;
    }
    if let Some(seconds) = retry_after {
        return Some(Duration::from_secs(seconds));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if let Some(reset) = header("x-ratelimit-reset").or_else(|| header("ratelimit-reset")) {
        // An epoch second (both forges); a past one means now.
        return Some(Duration::from_secs(reset.saturating_sub(now)));
    }
    // GitHub: with no header, wait at least a minute.
    Some(Duration::from_secs(60))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn rate_limits_are_told_from_refusals() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(
            rate_limit_wait(429, &headers(&[("retry-after", "7")]), ""),
            secs(7)
        );
        assert_eq!(
            rate_limit_wait(403, &headers(&[("retry-after", "3")]), ""),
            secs(3)
        );
        // An exhausted primary limit whose reset is past: no wait.
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")]);
        assert_eq!(rate_limit_wait(403, &h, ""), secs(0));
        // GitLab's names.
        let h = headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "1")]);
        assert_eq!(rate_limit_wait(429, &h, ""), secs(0));
        // A secondary limit without headers: a minute.
        assert_eq!(
            rate_limit_wait(
                403,
                &headers(&[]),
                "You have exceeded a secondary rate limit"
            ),
            secs(60)
        );
        // A permission refusal is not a rate limit.
        let h = headers(&[("x-ratelimit-remaining", "4999")]);
        assert_eq!(
            rate_limit_wait(403, &h, "Resource not accessible by integration"),
            None
        );
    }

    #[test]
    fn forge_messages_are_read_whatever_their_shape() {
        let m = api_message(
            &serde_json::json!({"message": "Validation Failed", "errors": [{"message": "A pull request already exists"}]}),
        );
        assert_eq!(m, "Validation Failed; A pull request already exists");
        let m = api_message(
            &serde_json::json!({"message": ["Another open merge request already exists"]}),
        );
        assert_eq!(m, "Another open merge request already exists");
        let m = api_message(&serde_json::json!({"message": {"title": ["is too long"]}}));
        assert_eq!(m, "title: [\"is too long\"]");
        assert_eq!(api_message(&Value::Null), "(no message)");
    }
}
