//! The Insights client against the fake Insights over real HTTP: the
//! endpoint and its encoding, the token, each refusal, the retry policy, the
//! body limits, concurrency, and the token never showing in an error.

use std::time::{Duration, Instant};

use crate::support::fake_insights::{path_for, FakeInsights, Fault};
use insights_policy_render::source::insights::{
    Client, ClientConfig, InsightsError, TimeoutKind, Token,
};

const TOKEN: &str = "tok-Hx83kPq-UNMISTAKABLE";
const ONE: &str =
    "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: one\nspec:\n  rules: []\n";
const TWO: &str = "---\napiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: a\nspec:\n  rules: []\n---\napiVersion: kyverno.io/v1\nkind: Policy\nmetadata:\n  name: b\n  namespace: default\nspec:\n  rules: []\n";

fn server() -> FakeInsights {
    FakeInsights::builder()
        .org("acme")
        .token(TOKEN)
        .cluster("prod", TWO)
        .cluster("staging", ONE)
        .cluster("empty", "")
        .start()
}

/// Tiny waits and timeouts, so that fault tests take milliseconds.
fn config(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, "acme", Token::new(TOKEN.into()));
    c.connect_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(5);
    c.backoff_min = Duration::from_millis(5);
    c.backoff_max = Duration::from_millis(10);
    c
}

fn client(server: &FakeInsights) -> Client {
    Client::new(config(&server.url)).unwrap()
}

/// The error's message, after checking that neither it nor its Debug
/// carries the token.
fn message(e: &(impl std::fmt::Display + std::fmt::Debug)) -> String {
    let (shown, debug) = (e.to_string(), format!("{e:?}"));
    for text in [&shown, &debug] {
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
        assert!(
            !text.contains("UNMISTAKABLE"),
            "part of the token leaked: {text}"
        );
    }
    shown
}

fn fails(result: Result<Vec<u8>, InsightsError>) -> InsightsError {
    match result {
        Ok(body) => panic!(
            "expected an error, got {} bytes: {}",
            body.len(),
            String::from_utf8_lossy(&body)
        ),
        Err(e) => {
            message(&e);
            e
        }
    }
}

#[tokio::test]
async fn a_cluster_s_body_arrives_byte_for_byte() {
    let s = server();
    let body = client(&s).fetch("prod").await.unwrap();
    assert_eq!(body, TWO.as_bytes());
    assert_eq!(s.hits("prod"), 1);
}

#[tokio::test]
async fn an_empty_body_is_no_policies() {
    let s = server();
    assert_eq!(client(&s).fetch("empty").await.unwrap(), b"");
    assert_eq!(s.hits("empty"), 1);
}

#[tokio::test]
async fn a_trailing_slash_or_a_path_prefix_in_the_host_is_fine() {
    let s = server();
    let c = Client::new(config(&format!("{}/", s.url))).unwrap();
    assert_eq!(c.fetch("staging").await.unwrap(), ONE.as_bytes());
    let c = Client::new(config(&format!("{}/insights/", s.url))).unwrap();
    let e = fails(c.fetch("staging").await);
    assert!(matches!(e, InsightsError::NotFound { .. }), "{e}");
    assert_eq!(
        s.hits_path(&format!("/insights{}", path_for("acme", "staging"))),
        1
    );
}

#[tokio::test]
async fn org_and_cluster_are_each_one_percent_encoded_segment() {
    let s = FakeInsights::builder()
        .org("acme%20corp%2Fx%25")
        .token(TOKEN)
        .cluster("eu%2Fwest%201%25%3F", ONE)
        .start();
    let mut c = config(&s.url);
    c.org = "acme corp/x%".into();
    let body = Client::new(c).unwrap().fetch("eu/west 1%?").await.unwrap();
    assert_eq!(body, ONE.as_bytes());
    let path = path_for("acme%20corp%2Fx%25", "eu%2Fwest%201%25%3F");
    assert_eq!(s.hits_path(&path), 1);
    assert_eq!(s.targets(), vec![path]);
}

#[tokio::test]
async fn names_that_would_change_the_path_are_refused_before_any_request() {
    let s = server();
    let c = client(&s);
    for name in ["", ".", ".."] {
        let e = fails(c.fetch(name).await);
        assert!(matches!(e, InsightsError::Config(_)), "{e}");
        assert!(message(&e).contains("--cluster"), "{e}");
    }
    let mut bad_org = config(&s.url);
    bad_org.org = "..".into();
    assert!(message(&Client::new(bad_org).unwrap_err()).contains("--org"));
    assert_eq!(s.requests(), 0);
    // Dots inside a name are just characters.
    s.cluster("..prod..", ONE);
    assert_eq!(c.fetch("..prod..").await.unwrap(), ONE.as_bytes());
}

#[tokio::test]
async fn the_bearer_token_is_sent_and_a_wrong_one_is_refused_at_once() {
    let s = server();
    let mut c = config(&s.url);
    c.token = Token::new("tok-wrong-UNMISTAKABLE".into());
    let e = fails(Client::new(c).unwrap().fetch("prod").await);
    assert!(matches!(e, InsightsError::Unauthorized { .. }), "{e}");
    let m = message(&e);
    assert!(m.contains("HTTP 401"), "{m}");
    assert!(m.contains("FAIRWINDS_TOKEN"), "{m}");
    assert!(m.contains("\"acme\"") && m.contains("\"prod\""), "{m}");
    assert_eq!(s.hits("prod"), 1, "a refused token is not retried");
    // The right one is accepted by the same server.
    client(&s).fetch("prod").await.unwrap();
    assert_eq!(s.hits("prod"), 2);
}

#[tokio::test]
async fn forbidden_and_unknown_are_refused_at_once() {
    let s = server();
    let c = client(&s);
    s.fault("staging", Fault::Status(403, None));
    let e = fails(c.fetch("staging").await);
    assert!(matches!(e, InsightsError::Forbidden { .. }), "{e}");
    let m = message(&e);
    assert!(
        m.contains("HTTP 403") && m.contains("organization \"acme\"") && m.contains("--token-file"),
        "{m}"
    );
    assert_eq!(s.hits("staging"), 1);

    let e = fails(c.fetch("nope").await);
    assert!(matches!(e, InsightsError::NotFound { .. }), "{e}");
    assert!(
        message(&e).contains(
            "no cluster \"nope\" in organization \"acme\" (HTTP 404): check --org and --cluster"
        ),
        "{e}"
    );
    assert_eq!(s.hits("nope"), 1);
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    let s = server();
    for status in [400, 405, 410, 422] {
        s.fault("staging", Fault::Status(status, None));
        let before = s.hits("staging");
        let e = fails(client(&s).fetch("staging").await);
        assert!(
            matches!(e, InsightsError::Status { status: got, attempts: 1, .. } if got == status),
            "{e}"
        );
        assert!(!e.is_retryable());
        assert_eq!(s.hits("staging") - before, 1, "HTTP {status} is final");
    }
}

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let s = server();
    s.fault("prod", Fault::FailFirst(1, 500));
    assert_eq!(client(&s).fetch("prod").await.unwrap(), TWO.as_bytes());
    assert_eq!(s.hits("prod"), 2);
}

#[tokio::test]
async fn a_lasting_server_error_gives_up_after_the_retry_budget() {
    let s = server();
    s.fault("staging", Fault::Status(503, None));
    let e = fails(client(&s).fetch("staging").await);
    assert_eq!(s.hits("staging"), 4, "one attempt and three retries");
    assert!(
        matches!(
            e,
            InsightsError::Status {
                status: 503,
                attempts: 4,
                ..
            }
        ),
        "{e}"
    );
    let m = message(&e);
    assert!(
        m.contains("HTTP 503 for cluster \"staging\" of organization \"acme\" after 4 attempt(s)"),
        "{m}"
    );

    let mut c = config(&s.url);
    c.retries = 0;
    let before = s.hits("staging");
    fails(Client::new(c).unwrap().fetch("staging").await);
    assert_eq!(
        s.hits("staging") - before,
        1,
        "--retries 0 means one attempt"
    );
}

#[tokio::test]
async fn too_many_requests_waits_as_long_as_retry_after_asks() {
    let s = server();
    s.fault("staging", Fault::Status(429, Some(1)));
    let mut c = config(&s.url);
    c.retries = 1;
    let started = Instant::now();
    let e = fails(Client::new(c).unwrap().fetch("staging").await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "waited for Retry-After, not the 10ms backoff: {took:?}"
    );
    assert_eq!(s.hits("staging"), 2);
    assert!(
        matches!(e, InsightsError::Status { status: 429, .. }),
        "{e}"
    );
    assert!(message(&e).contains("--concurrency"), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_per_attempt() {
    let s = server();
    s.fault("staging", Fault::Hang);
    let mut c = config(&s.url);
    c.request_timeout = Duration::from_millis(300);
    c.retries = 1;
    let started = Instant::now();
    let e = fails(Client::new(c).unwrap().fetch("staging").await);
    let took = started.elapsed();
    assert!(
        matches!(
            e,
            InsightsError::Timeout {
                kind: TimeoutKind::Request,
                attempts: 2,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_retryable());
    let m = message(&e);
    assert!(
        m.contains("within the 300ms request timeout, after 2 attempt(s)"),
        "{m}"
    );
    assert!(m.contains("--request-timeout"), "{m}");
    assert_eq!(s.hits("staging"), 2);
    // Two whole timeouts were waited out; no upper bound, which only a
    // loaded machine would test.
    assert!(took >= Duration::from_millis(600), "{took:?}");
}

#[tokio::test]
async fn a_slow_answer_within_the_timeout_is_fine() {
    let s = server();
    s.fault("staging", Fault::Delay(Duration::from_millis(100)));
    let mut c = config(&s.url);
    c.request_timeout = Duration::from_secs(2);
    assert_eq!(
        Client::new(c).unwrap().fetch("staging").await.unwrap(),
        ONE.as_bytes()
    );
    assert_eq!(s.hits("staging"), 1);
}

#[tokio::test]
async fn one_attempt_that_times_out_is_retried_into_a_success() {
    let s = server();
    s.fault("staging", Fault::First(1, Box::new(Fault::Hang)));
    let mut c = config(&s.url);
    c.request_timeout = Duration::from_millis(200);
    assert_eq!(
        Client::new(c).unwrap().fetch("staging").await.unwrap(),
        ONE.as_bytes()
    );
    assert_eq!(s.hits("staging"), 2);
}

#[tokio::test]
async fn a_truncated_body_is_retried_and_then_refused() {
    let s = server();
    s.fault("prod", Fault::Truncate);
    let mut c = config(&s.url);
    c.retries = 2;
    let e = fails(Client::new(c).unwrap().fetch("prod").await);
    let n = TWO.len() as u64;
    match &e {
        InsightsError::Truncated {
            received,
            expected,
            attempts,
            ..
        } => {
            assert_eq!(
                (*received, *expected, *attempts),
                (n / 2, Some(n), 3),
                "{e}"
            );
        }
        other => panic!("expected Truncated, got {other}"),
    }
    let m = message(&e);
    assert!(m.contains("was cut short"), "{m}");
    assert!(m.contains(&format!("{} of {n} bytes", n / 2)), "{m}");
    assert_eq!(s.hits("prod"), 3);

    // Cut once, whole the next time: the retry gets past it.
    s.fault("prod", Fault::First(1, Box::new(Fault::Truncate)));
    assert_eq!(client(&s).fetch("prod").await.unwrap(), TWO.as_bytes());
    assert_eq!(s.hits("prod"), 5);
}

#[tokio::test]
async fn error_pages_served_with_200_are_refused_at_once() {
    let s = server();
    let c = client(&s);
    let raw = |content_type: &str, body: &str| Fault::Raw {
        status: 200,
        headers: vec![("Content-Type".into(), content_type.into())],
        body: body.as_bytes().to_vec(),
    };
    let cases = [
        (Fault::Html, "an HTML page"),
        (Fault::JsonError, "but JSON"),
        (
            raw(
                "text/plain",
                "\n  <!DOCTYPE html><title>Maintenance</title>",
            ),
            "an HTML or XML page",
        ),
        (
            raw("application/x-yaml", " {\"error\": \"down\"}"),
            "but JSON",
        ),
        (raw("text/yaml", "[\"no\"]"), "but JSON"),
        (raw("application/problem+json", "policies"), "but JSON"),
    ];
    for (i, (fault, what)) in cases.into_iter().enumerate() {
        let cluster = format!("page-{i}");
        s.cluster(&cluster, ONE).fault(&cluster, fault);
        let e = fails(c.fetch(&cluster).await);
        assert!(matches!(e, InsightsError::NotYaml { .. }), "{e}");
        assert!(!e.is_retryable());
        let m = message(&e);
        assert!(
            m.contains("is not a YAML stream of policies") && m.contains(what),
            "{what}: {m}"
        );
        assert!(!m.contains("Maintenance"), "the body is not quoted: {m}");
        assert_eq!(s.hits(&cluster), 1, "{what}: not retried");
    }
}

#[tokio::test]
async fn a_compressed_body_is_refused() {
    let s = server();
    s.fault(
        "staging",
        Fault::Raw {
            status: 200,
            headers: vec![("Content-Encoding".into(), "gzip".into())],
            body: vec![0x1f, 0x8b, 8, 0],
        },
    );
    let e = fails(client(&s).fetch("staging").await);
    assert!(message(&e).contains("Content-Encoding gzip"), "{e}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_or_without_a_length() {
    let s = server();
    let mut c = config(&s.url);
    c.max_body_bytes = 1 << 20;
    let c = Client::new(c).unwrap();

    // Announced: refused from the headers, before any of it is read.
    s.cluster("announced", "")
        .fault("announced", Fault::HugeWithLength(64 << 20));
    let e = fails(c.fetch("announced").await);
    assert!(
        matches!(
            e,
            InsightsError::TooLarge {
                limit: 1048576,
                announced: Some(67108864),
                ..
            }
        ),
        "{e}"
    );
    let m = message(&e);
    assert!(
        m.contains("larger than the limit of 1048576 bytes") && m.contains("--max-body-size"),
        "{m}"
    );
    assert_eq!(s.hits("announced"), 1, "not retried");

    // Unannounced: counted while streaming, and given up at the limit.
    s.cluster("streamed", "")
        .fault("streamed", Fault::Huge(64 << 20));
    let e = fails(c.fetch("streamed").await);
    assert!(
        matches!(
            e,
            InsightsError::TooLarge {
                announced: None,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(s.hits("streamed"), 1, "not retried");

    // Exactly the limit is still fine.
    let exact = format!("#{}\n", "x".repeat((1 << 20) - 2));
    s.cluster("exact", exact.clone());
    assert_eq!(c.fetch("exact").await.unwrap(), exact.as_bytes());
}

#[tokio::test]
async fn an_unexpected_success_status_or_a_redirect_is_not_taken_for_policies() {
    let s = server();
    let c = client(&s);
    s.fault(
        "staging",
        Fault::Raw {
            status: 202,
            headers: vec![],
            body: vec![],
        },
    );
    let e = fails(c.fetch("staging").await);
    assert!(
        matches!(e, InsightsError::Status { status: 202, .. }),
        "{e}"
    );
    // A redirect could take the token elsewhere: it is not followed.
    s.fault(
        "prod",
        Fault::Raw {
            status: 302,
            headers: vec![(
                "Location".into(),
                format!("{}{}", s.url, path_for("acme", "staging")),
            )],
            body: vec![],
        },
    );
    let before = s.hits("staging");
    let e = fails(c.fetch("prod").await);
    assert!(
        matches!(e, InsightsError::Status { status: 302, .. }),
        "{e}"
    );
    assert!(message(&e).contains("--insights-host"), "{e}");
    assert_eq!(s.hits("staging"), before, "the redirect was not followed");
    assert_eq!(s.hits("prod"), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_names_the_host() {
    // A port we hold without listening: nothing can listen there.
    let refused = crate::support::ports::refused_port();
    let port = refused.port;
    let mut c = config(&format!("http://127.0.0.1:{port}"));
    c.retries = 2;
    let e = fails(Client::new(c).unwrap().fetch("prod").await);
    assert!(
        matches!(e, InsightsError::Connect { attempts: 3, .. }),
        "{e}"
    );
    let m = message(&e);
    assert!(m.contains(&format!("cannot reach 127.0.0.1:{port}")), "{m}");
    assert!(m.contains("\"prod\""), "{m}");
}

/// A listener whose accept queue is full drops new connection attempts, so
/// they hang in the handshake as they would towards a firewalled host.
#[tokio::test]
async fn a_connection_that_cannot_be_made_in_time_names_the_connect_timeout() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    // Fill the queue (never accepting) until a connection no longer gets in.
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(100), connect).await {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    let mut c = config(&format!("http://{addr}"));
    c.connect_timeout = Duration::from_millis(200);
    c.retries = 1;
    let e = fails(Client::new(c).unwrap().fetch("prod").await);
    assert!(
        matches!(
            e,
            InsightsError::Timeout {
                kind: TimeoutKind::Connect,
                attempts: 2,
                ..
            }
        ),
        "{e}"
    );
    let m = message(&e);
    assert!(
        m.contains("within the 200ms connect timeout") && m.contains("--connect-timeout"),
        "{m}"
    );
    drop((fillers, listener));
}

#[tokio::test]
async fn fetch_all_runs_concurrently_within_the_bound() {
    let s = server();
    let clusters: Vec<String> = (0..16).map(|i| format!("c{i:02}")).collect();
    for c in &clusters {
        s.cluster(c, format!("# {c}\n{ONE}"));
    }
    let latency = Duration::from_millis(200);
    s.latency(latency);
    let mut c = config(&s.url);
    c.concurrency = 4;
    let started = Instant::now();
    let results = Client::new(c).unwrap().fetch_all(&clusters).await;
    let took = started.elapsed();
    // Concurrency is proven by what the server saw, not by the clock (a
    // loaded CI machine makes any upper bound on time flaky): four requests
    // were in flight at once, never more. 16 / 4 = 4 rounds of 200 ms is a
    // lower bound no scheduler can beat.
    assert_eq!(s.max_in_flight(), 4, "exactly the bound, never more");
    assert!(took >= latency * 4, "{took:?}: more than 4 at once");
    assert_eq!(results.len(), clusters.len());
    for ((name, result), expected) in results.iter().zip(&clusters) {
        assert_eq!(name, expected, "results come in the order given");
        assert_eq!(
            result.as_ref().unwrap(),
            format!("# {expected}\n{ONE}").as_bytes()
        );
    }
}

#[tokio::test]
async fn one_failing_cluster_does_not_affect_the_others() {
    let s = server();
    s.cluster("flaky", ONE)
        .fault("flaky", Fault::FailFirst(2, 502))
        .fault("down", Fault::Status(500, None))
        .fault("hung", Fault::Hang)
        .cluster("cut", TWO)
        .fault("cut", Fault::Truncate);
    let mut c = config(&s.url);
    c.request_timeout = Duration::from_millis(150);
    c.retries = 2;
    c.concurrency = 3;
    let clusters: Vec<String> = [
        "prod", "down", "staging", "missing", "hung", "empty", "flaky", "cut",
    ]
    .map(String::from)
    .to_vec();
    let results = Client::new(c).unwrap().fetch_all(&clusters).await;
    let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, clusters);
    let by = |n: &str| &results.iter().find(|(c, _)| c == n).unwrap().1;
    assert_eq!(by("prod").as_ref().unwrap(), TWO.as_bytes());
    assert_eq!(by("staging").as_ref().unwrap(), ONE.as_bytes());
    assert_eq!(by("empty").as_ref().unwrap(), b"");
    assert_eq!(by("flaky").as_ref().unwrap(), ONE.as_bytes());
    let err = |n: &str| by(n).as_ref().unwrap_err();
    assert!(matches!(
        err("down"),
        InsightsError::Status {
            status: 500,
            attempts: 3,
            ..
        }
    ));
    assert!(matches!(err("missing"), InsightsError::NotFound { .. }));
    assert!(matches!(err("hung"), InsightsError::Timeout { .. }));
    assert!(matches!(err("cut"), InsightsError::Truncated { .. }));
    for (_, r) in &results {
        if let Err(e) = r {
            message(e);
        }
    }
    assert_eq!(s.hits("flaky"), 3);
    assert_eq!(s.hits("down"), 3);
}

#[tokio::test]
async fn fetch_all_of_nothing_is_nothing() {
    let s = server();
    assert!(client(&s).fetch_all(&[]).await.is_empty());
    assert_eq!(s.requests(), 0);
}

/// The token travels in the header only: never in a request target, and
/// never in any error's message or Debug, whatever went wrong.
#[tokio::test]
async fn the_token_is_in_no_url_and_no_error() {
    let s = server();
    s.fault("forbidden", Fault::Status(403, None))
        .fault("busy", Fault::Status(429, Some(0)))
        .fault("html", Fault::Html)
        .fault("json", Fault::JsonError)
        .fault("big", Fault::Huge(2 << 20))
        .fault("hung", Fault::Hang)
        .fault("cut", Fault::Truncate)
        .fault("gone", Fault::Status(410, None));
    let mut c = config(&s.url);
    c.request_timeout = Duration::from_millis(200);
    c.retries = 1;
    c.max_body_bytes = 1 << 20;
    let clusters: Vec<String> = [
        "forbidden",
        "busy",
        "html",
        "json",
        "big",
        "hung",
        "cut",
        "gone",
        "missing",
    ]
    .map(String::from)
    .to_vec();
    let results = Client::new(c.clone()).unwrap().fetch_all(&clusters).await;
    let mut errors: Vec<InsightsError> = results.into_iter().filter_map(|(_, r)| r.err()).collect();
    assert_eq!(errors.len(), clusters.len());
    let mut wrong = c.clone();
    wrong.token = Token::new(format!("{TOKEN}-2"));
    errors.push(Client::new(wrong).unwrap().fetch("prod").await.unwrap_err());
    let held = crate::support::ports::refused_port();
    let port = held.port;
    let mut refused = c.clone();
    refused.host = format!("http://127.0.0.1:{port}");
    errors.push(
        Client::new(refused)
            .unwrap()
            .fetch("prod")
            .await
            .unwrap_err(),
    );
    for e in &errors {
        message(e);
    }
    for target in s.targets() {
        assert!(!target.contains(TOKEN), "{target}");
    }
    let client = Client::new(c.clone()).unwrap();
    for shown in [
        format!("{c:?}"),
        format!("{client:?}"),
        format!("{}", c.token),
        format!("{:?}", c.token),
    ] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }
}

#[test]
fn a_token_file_is_trimmed_and_its_content_never_quoted() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("token");
    std::fs::write(&path, format!("{TOKEN}\n\n")).unwrap();
    assert_eq!(
        Token::from_file("--token-file", &path).unwrap().expose(),
        TOKEN
    );

    let missing = tmp.path().join("no-such-token");
    let e = Token::from_file("--token-file", &missing).unwrap_err();
    assert!(message(&e).contains("no-such-token"), "{e}");

    let binary = tmp.path().join("binary-token");
    std::fs::write(&binary, [TOKEN.as_bytes(), b"\xff\xfe"].concat()).unwrap();
    let e = Token::from_file("--token-file", &binary).unwrap_err();
    assert!(message(&e).contains("binary-token"), "{e}");

    let blank = tmp.path().join("blank-token");
    std::fs::write(&blank, "  \n").unwrap();
    assert!(message(&Token::from_file("--token-file", &blank).unwrap_err()).contains("empty"));

    // Two lines are not one token; the header refuses, quoting nothing.
    let two = tmp.path().join("two-lines");
    std::fs::write(&two, format!("{TOKEN}\n{TOKEN}\n")).unwrap();
    let token = Token::from_file("--token-file", &two).unwrap();
    let e = Client::new(ClientConfig::new("https://insights.example", "acme", token)).unwrap_err();
    assert!(matches!(e, InsightsError::Config(_)));
    message(&e);
}

#[test]
fn bad_settings_are_refused_naming_the_flag() {
    let token = || Token::new(TOKEN.into());
    let e = Client::new(ClientConfig::new("insights.example", "acme", token())).unwrap_err();
    assert!(message(&e).contains("--insights-host"), "{e}");
    let e = Client::new(ClientConfig::new(
        format!("https://u:{TOKEN}@insights.example"),
        "acme",
        token(),
    ))
    .unwrap_err();
    assert!(message(&e).contains("--insights-host"), "{e}");

    let tmp = tempfile::tempdir().unwrap();
    let mut c = ClientConfig::new("https://insights.example", "acme", token());
    c.ca_file = Some(tmp.path().join("missing-ca.pem"));
    let e = Client::new(c.clone()).unwrap_err();
    let m = message(&e);
    assert!(
        m.contains("--ca-file") && m.contains("missing-ca.pem"),
        "{m}"
    );
    let bogus = tmp.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate\n").unwrap();
    c.ca_file = Some(bogus);
    let e = Client::new(c.clone()).unwrap_err();
    assert!(message(&e).contains("--ca-file"), "{e}");
    assert!(matches!(e, InsightsError::Config(_)));

    let mut c = ClientConfig::new("https://insights.example", "acme", token());
    c.request_timeout = Duration::ZERO;
    assert!(message(&Client::new(c).unwrap_err()).contains("--request-timeout"));
}

#[test]
fn the_defaults_fail_a_silent_server_within_a_minute() {
    let c = ClientConfig::new(
        "https://insights.fairwinds.com",
        "acme",
        Token::new(TOKEN.into()),
    );
    assert_eq!(c.request_timeout, Duration::from_secs(10));
    assert_eq!(c.connect_timeout, Duration::from_secs(5));
    assert_eq!((c.retries, c.concurrency), (3, 8));
    assert_eq!(c.max_body_bytes, 32 << 20);
    // Every attempt times out, and every wait is at its longest.
    let attempts = c.retries + 1;
    let worst = c.request_timeout * attempts + c.backoff_max * c.retries;
    assert!(worst < Duration::from_secs(60), "{worst:?}");
}

/// The fake works from a plain test thread too, as the CLI tests use it.
#[test]
fn the_client_runs_on_its_own_runtime_against_the_fake() {
    let s = server();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = runtime.block_on(client(&s).fetch("staging")).unwrap();
    assert_eq!(body, ONE.as_bytes());
}

/// Each response is handed on as soon as it is complete, so the caller can
/// render it while the others are still on their way: the fast cluster's
/// answer comes first although it is second in the list, and while the
/// slow one is still being answered.
#[tokio::test]
async fn fetch_each_hands_on_each_response_as_it_completes() {
    let s = server();
    s.cluster("slow", format!("# slow\n{ONE}"));
    s.cluster("fast", format!("# fast\n{ONE}"));
    s.fault("slow", Fault::Delay(Duration::from_secs(2)));
    let mut c = config(&s.url);
    c.concurrency = 2;
    let client = Client::new(c).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let clusters = ["slow".to_string(), "fast".to_string()];
    let fetching = tokio::spawn(async move { client.fetch_each(&clusters, tx).await });
    let first = tokio::task::spawn_blocking(move || {
        let first = rx.recv().unwrap();
        (first, rx)
    });
    let ((index, body), rx) = first.await.unwrap();
    assert_eq!(index, 1, "the fast cluster first");
    assert!(body.unwrap().starts_with(b"# fast"));
    assert!(
        !fetching.is_finished(),
        "the slow one is still being fetched"
    );
    fetching.await.unwrap();
    let (index, body) = rx.recv().unwrap();
    assert_eq!(index, 0);
    assert!(body.unwrap().starts_with(b"# slow"));
    assert!(rx.recv().is_err(), "each cluster once");
}
