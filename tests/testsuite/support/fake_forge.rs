//! Fake GitHub and GitLab REST APIs: real HTTP/1.1 on 127.0.0.1 (port 0,
//! bound once and kept), one request per connection, that keep pull (merge)
//! requests in memory and check every request the tool makes:
//!
//! - GitHub's against its published REST description, the `@octokit/openapi`
//!   npm package (`api.github.com.deref.json`): the operation must exist for
//!   the path and method, every query parameter must be one it declares, and
//!   path parameters, query values and the JSON body must match its schemas.
//! - GitLab's against its documented merge request endpoints: the project
//!   id is the URL-encoded path, and each endpoint's parameters, required
//!   ones and types are checked.
//!
//! Anything off is recorded in [`FakeForge::violations`]; tests assert there
//! are none. A canned reply can be queued for the next matching request
//! ([`FakeForge::fail_next`]) to play a 403 or a rate limit.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Github,
    Gitlab,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Raw, still percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A pull request (or merge request) the fake holds.
#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub open: bool,
    pub draft: bool,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub team_reviewers: Vec<String>,
    pub reviewer_ids: Vec<u64>,
}

/// A canned answer for the next request whose method is `method` and
/// whose path ends with `path_suffix`.
pub struct Canned {
    pub method: &'static str,
    pub path_suffix: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

struct State {
    kind: Kind,
    token: String,
    /// `acme/policies`.
    repo: String,
    requests: Vec<Request>,
    violations: Vec<String>,
    pulls: Vec<Pull>,
    canned: VecDeque<Canned>,
}

pub struct FakeForge {
    /// `http://127.0.0.1:PORT`, for `--forge-api-url`.
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FakeForge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FakeForge {
    pub fn start(kind: Kind, repo: &str, token: &str) -> FakeForge {
        if kind == Kind::Github {
            // Fail early and clearly when the description is missing.
            github_spec();
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            kind,
            token: token.to_owned(),
            repo: repo.to_owned(),
            requests: Vec::new(),
            violations: Vec::new(),
            pulls: Vec::new(),
            canned: VecDeque::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    serve(conn, &s);
                }
            }
        });
        FakeForge {
            url: format!("http://{addr}"),
            state,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.state.lock().unwrap().pulls.clone()
    }

    pub fn fail_next(&self, canned: Canned) {
        self.state.lock().unwrap().canned.push_back(canned);
    }

    /// Asserts the tool made only requests the API documents.
    pub fn assert_valid(&self) {
        let v = self.violations();
        assert!(
            v.is_empty(),
            "requests the API does not accept:\n{}",
            v.join("\n")
        );
    }
}

fn serve(conn: TcpStream, state: &Arc<Mutex<State>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), parse_query(q)),
        None => (target.clone(), Vec::new()),
    };
    let request = Request {
        method,
        path,
        query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, extra, reply) = {
        let mut s = state.lock().unwrap();
        s.requests.push(request.clone());
        handle(&mut s, &request)
    };
    let text = reply.to_string();
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        text.len()
    );
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&text);
    let mut conn = conn;
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.flush();
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

type Reply = (u16, Vec<(String, String)>, Value);

fn handle(s: &mut State, r: &Request) -> Reply {
    let authorised = match s.kind {
        Kind::Github => r.header("authorization") == Some(&format!("Bearer {}", s.token)),
        Kind::Gitlab => r.header("private-token") == Some(s.token.as_str()),
    };
    if !authorised {
        return (401, vec![], json!({"message": "Bad credentials"}));
    }
    let problems = match s.kind {
        Kind::Github => check_github(r),
        Kind::Gitlab => check_gitlab(r, &s.repo),
    };
    if !problems.is_empty() {
        for p in &problems {
            s.violations.push(format!("{} {}: {p}", r.method, r.path));
        }
        return (400, vec![], json!({"message": problems.join("; ")}));
    }
    if let Some(at) = s
        .canned
        .iter()
        .position(|c| c.method == r.method && r.path.ends_with(&c.path_suffix))
    {
        let c = s.canned.remove(at).unwrap();
        return (c.status, c.headers, c.body);
    }
    match s.kind {
        Kind::Github => github(s, r),
        Kind::Gitlab => gitlab(s, r),
    }
}

// ---------------------------------------------------------------- GitHub

fn github_spec_path() -> std::path::PathBuf {
    match std::env::var_os("OCTOKIT_OPENAPI") {
        Some(p) => p.into(),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
            "target/octokit/node_modules/@octokit/openapi/generated/api.github.com.deref.json",
        ),
    }
}

/// GitHub's REST description, parsed once per run of the test binary.
fn github_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = github_spec_path();
        if !path.exists() && std::env::var_os("OCTOKIT_OPENAPI").is_none() {
            // A fresh clone: `cargo test` fetches it from the npm registry,
            // as .ci/run does, so the README's test command works as written.
            let prefix = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/octokit");
            let _ = std::process::Command::new("npm")
                .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
                .arg(&prefix)
                .arg("@octokit/openapi")
                .status();
        }
        let text = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "GitHub's REST description is needed at {} ({e}): run `npm install --prefix target/octokit @octokit/openapi` (as .ci/run does), or set OCTOKIT_OPENAPI",
                path.display()
            )
        });
        serde_json::from_slice(&text).expect("api.github.com.deref.json is JSON")
    })
}

/// The operation of a path and method: (template, operation).
fn github_operation(method: &str, path: &str) -> Option<(&'static str, &'static Value)> {
    let spec = github_spec();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<(usize, &str, &Value)> = None;
    for (template, item) in spec["paths"].as_object()? {
        let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        if t.len() != segments.len() {
            continue;
        }
        let mut literal = 0;
        let fits = t.iter().zip(&segments).all(|(t, s)| {
            if t.starts_with('{') {
                !s.is_empty()
            } else {
                literal += 1;
                t == s
            }
        });
        if !fits {
            continue;
        }
        if let Some(op) = item.get(method.to_ascii_lowercase()) {
            if best.is_none_or(|(l, _, _)| literal > l) {
                best = Some((literal, template, op));
            }
        }
    }
    best.map(|(_, t, op)| (t, op))
}

fn check_schema(schema: &Value, value: &Value, what: &str, problems: &mut Vec<String>) {
    match jsonschema::validator_for(schema) {
        Ok(v) => {
            for e in v.iter_errors(value) {
                problems.push(format!("{what}: {e}"));
            }
        }
        Err(e) => problems.push(format!("{what}: the schema does not compile: {e}")),
    }
}

/// A parameter's text as the JSON its schema expects.
fn typed(schema: &Value, text: &str) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => text.parse::<i64>().map(Value::from).unwrap_or(json!(text)),
        Some("boolean") => text.parse::<bool>().map(Value::from).unwrap_or(json!(text)),
        _ => json!(text),
    }
}

fn check_github(r: &Request) -> Vec<String> {
    let mut problems = Vec::new();
    let Some((template, op)) = github_operation(&r.method, &r.path) else {
        return vec!["no operation of GitHub's REST API has this path and method".into()];
    };
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
    for (t, s) in t.iter().zip(&segments) {
        if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            if let Some(p) = params
                .iter()
                .find(|p| p["name"] == name && p["in"] == "path")
            {
                check_schema(
                    &p["schema"],
                    &typed(&p["schema"], &decode(s)),
                    &format!("path parameter {name}"),
                    &mut problems,
                );
            }
        }
    }
    for (k, v) in &r.query {
        match params
            .iter()
            .find(|p| p["name"] == k.as_str() && p["in"] == "query")
        {
            Some(p) => check_schema(
                &p["schema"],
                &typed(&p["schema"], v),
                &format!("query parameter {k}"),
                &mut problems,
            ),
            None => problems.push(format!(
                "query parameter {k} is not one {} takes",
                op["operationId"]
            )),
        }
    }
    match (op.get("requestBody"), r.body.is_empty()) {
        (Some(rb), false) => match r.json() {
            Some(body) => check_schema(
                &rb["content"]["application/json"]["schema"],
                &body,
                &format!("body of {}", op["operationId"]),
                &mut problems,
            ),
            None => problems.push("the body is not JSON".into()),
        },
        (Some(rb), true) if rb["required"] == true => {
            problems.push(format!("{} needs a body", op["operationId"]))
        }
        (None, false) => problems.push(format!("{} takes no body", op["operationId"])),
        _ => {}
    }
    if !r
        .header("accept")
        .is_some_and(|a| a.contains("application/vnd.github"))
    {
        problems.push("no Accept: application/vnd.github+json".into());
    }
    problems
}

fn github_pull(s: &State, p: &Pull) -> Value {
    json!({
        "number": p.number,
        "html_url": format!("https://github.com/{}/pull/{}", s.repo, p.number),
        "state": if p.open { "open" } else { "closed" },
        "title": p.title,
        "body": p.body,
        "draft": p.draft,
        "head": {"ref": p.head, "label": format!("{}:{}", s.repo.split('/').next().unwrap(), p.head)},
        "base": {"ref": p.base},
        "labels": p.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        "requested_reviewers": p.reviewers.iter().map(|l| json!({"login": l})).collect::<Vec<_>>(),
    })
}

fn github(s: &mut State, r: &Request) -> Reply {
    let prefix = format!("/repos/{}/", s.repo);
    let Some(rest) = r.path.strip_prefix(&prefix) else {
        return (404, vec![], json!({"message": "Not Found"}));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let body = r.json().unwrap_or(Value::Null);
    let q = |k: &str| {
        r.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    match (r.method.as_str(), parts.as_slice()) {
        ("GET", ["pulls"]) => {
            let owner = s.repo.split('/').next().unwrap().to_owned();
            let list: Vec<Value> = s
                .pulls
                .iter()
                .filter(|p| match q("state").unwrap_or("open") {
                    "open" => p.open,
                    "closed" => !p.open,
                    _ => true,
                })
                .filter(|p| q("head").is_none_or(|h| h == format!("{owner}:{}", p.head)))
                .filter(|p| q("base").is_none_or(|b| b == p.base))
                .map(|p| github_pull(s, p))
                .collect();
            (200, vec![], Value::Array(list))
        }
        ("POST", ["pulls"]) => {
            let head = body["head"].as_str().unwrap_or_default().to_owned();
            let base = body["base"].as_str().unwrap_or_default().to_owned();
            if s.pulls
                .iter()
                .any(|p| p.open && p.head == head && p.base == base)
            {
                return (
                    422,
                    vec![],
                    json!({"message": "Validation Failed", "errors": [{"message": format!("A pull request already exists for {head}.")}]}),
                );
            }
            let p = Pull {
                number: s.pulls.len() as u64 + 1,
                head,
                base,
                title: body["title"].as_str().unwrap_or_default().to_owned(),
                body: body["body"].as_str().unwrap_or_default().to_owned(),
                open: true,
                draft: body["draft"].as_bool().unwrap_or(false),
                labels: vec![],
                reviewers: vec![],
                team_reviewers: vec![],
                reviewer_ids: vec![],
            };
            let v = github_pull(s, &p);
            s.pulls.push(p);
            (201, vec![], v)
        }
        (m, ["pulls", n]) if m == "PATCH" || m == "GET" => {
            let Some(p) = s.pulls.iter_mut().find(|p| p.number.to_string() == *n) else {
                return (404, vec![], json!({"message": "Not Found"}));
            };
            if let Some(t) = body["title"].as_str() {
                p.title = t.to_owned();
            }
            if let Some(b) = body["body"].as_str() {
                p.body = b.to_owned();
            }
            if let Some(st) = body["state"].as_str() {
                p.open = st == "open";
            }
            let p = p.clone();
            (200, vec![], github_pull(s, &p))
        }
        ("POST", ["issues", n, "labels"]) => {
            let Some(p) = s.pulls.iter_mut().find(|p| p.number.to_string() == *n) else {
                return (404, vec![], json!({"message": "Not Found"}));
            };
            for l in body["labels"].as_array().into_iter().flatten() {
                let l = l.as_str().unwrap_or_default().to_owned();
                if !p.labels.contains(&l) {
                    p.labels.push(l);
                }
            }
            let labels: Vec<Value> = p.labels.iter().map(|l| json!({"name": l})).collect();
            (200, vec![], Value::Array(labels))
        }
        ("POST", ["pulls", n, "requested_reviewers"]) => {
            let Some(p) = s.pulls.iter_mut().find(|p| p.number.to_string() == *n) else {
                return (404, vec![], json!({"message": "Not Found"}));
            };
            for (list, key) in [
                (&mut p.reviewers, "reviewers"),
                (&mut p.team_reviewers, "team_reviewers"),
            ] {
                for l in body[key].as_array().into_iter().flatten() {
                    list.push(l.as_str().unwrap_or_default().to_owned());
                }
            }
            let p = p.clone();
            (201, vec![], github_pull(s, &p))
        }
        _ => (404, vec![], json!({"message": "Not Found"})),
    }
}

// ---------------------------------------------------------------- GitLab

/// The documented parameters of the merge request endpoints the tool may
/// use: (name, type). `required` lists those without which GitLab answers 400.
const MR_LIST: &[(&str, &str)] = &[
    ("state", "string"),
    ("source_branch", "string"),
    ("target_branch", "string"),
    ("labels", "string"),
    ("per_page", "integer"),
    ("page", "integer"),
    ("order_by", "string"),
    ("sort", "string"),
];
const MR_CREATE: &[(&str, &str)] = &[
    ("source_branch", "string"),
    ("target_branch", "string"),
    ("title", "string"),
    ("description", "string"),
    ("labels", "string"),
    ("assignee_id", "integer"),
    ("assignee_ids", "integer[]"),
    ("reviewer_ids", "integer[]"),
    ("milestone_id", "integer"),
    ("remove_source_branch", "boolean"),
    ("squash", "boolean"),
    ("allow_collaboration", "boolean"),
    ("target_project_id", "integer"),
];
const MR_UPDATE: &[(&str, &str)] = &[
    ("title", "string"),
    ("description", "string"),
    ("state_event", "string"),
    ("labels", "string"),
    ("add_labels", "string"),
    ("remove_labels", "string"),
    ("target_branch", "string"),
    ("assignee_id", "integer"),
    ("assignee_ids", "integer[]"),
    ("reviewer_ids", "integer[]"),
    ("milestone_id", "integer"),
    ("remove_source_branch", "boolean"),
    ("squash", "boolean"),
    ("discussion_locked", "boolean"),
    ("allow_collaboration", "boolean"),
];
const USERS: &[(&str, &str)] = &[("username", "string")];

fn of_type(v: &Value, ty: &str) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => v.is_u64(),
        "boolean" => v.is_boolean(),
        "integer[]" => v.as_array().is_some_and(|a| a.iter().all(Value::is_u64)),
        _ => false,
    }
}

fn check_params(
    given: &[(String, Value)],
    allowed: &[(&str, &str)],
    required: &[&str],
    problems: &mut Vec<String>,
) {
    for (k, v) in given {
        match allowed.iter().find(|(n, _)| n == k) {
            Some((_, ty)) if of_type(v, ty) => {}
            Some((_, ty)) => problems.push(format!("{k} must be {ty}, got {v}")),
            None => problems.push(format!("{k} is not a documented parameter")),
        }
    }
    for r in required {
        if !given.iter().any(|(k, _)| k == r) {
            problems.push(format!("{r} is required"));
        }
    }
}

fn check_gitlab(r: &Request, repo: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let encoded = repo.replace('/', "%2F");
    let query: Vec<(String, Value)> = r
        .query
        .iter()
        .map(|(k, v)| {
            let allowed = MR_LIST.iter().chain(USERS).find(|(n, _)| n == k);
            let v = match allowed {
                Some((_, "integer")) => v.parse::<u64>().map(Value::from).unwrap_or(json!(v)),
                _ => json!(v),
            };
            (k.clone(), v)
        })
        .collect();
    let body: Vec<(String, Value)> = match (r.body.is_empty(), r.json()) {
        (true, _) => vec![],
        (false, Some(Value::Object(m))) => m.into_iter().collect(),
        (false, _) => {
            problems.push("the body is not a JSON object".into());
            vec![]
        }
    };
    if !r.body.is_empty() && r.header("content-type") != Some("application/json") {
        problems.push("a JSON body without Content-Type: application/json".into());
    }
    let mr_prefix = format!("/projects/{encoded}/merge_requests");
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", p) if p == mr_prefix => {
            check_params(&query, MR_LIST, &[], &mut problems);
            if !body.is_empty() {
                problems.push("GET takes no body".into());
            }
        }
        ("POST", p) if p == mr_prefix => {
            check_params(&body, MR_CREATE, &["source_branch", "target_branch", "title"], &mut problems);
            if !query.is_empty() {
                problems.push("parameters go in the body".into());
            }
        }
        ("PUT", p) if p.strip_prefix(&format!("{mr_prefix}/")).is_some_and(|iid| iid.parse::<u64>().is_ok()) => {
            check_params(&body, MR_UPDATE, &[], &mut problems);
            if body.is_empty() {
                problems.push("an update needs at least one attribute".into());
            }
            if let Some((_, v)) = body.iter().find(|(k, _)| k == "state_event") {
                if v != "close" && v != "reopen" {
                    problems.push(format!("state_event {v} is neither close nor reopen"));
                }
            }
        }
        ("GET", "/users") => check_params(&query, USERS, &["username"], &mut problems),
        (m, p) => problems.push(format!(
            "not a documented merge request endpoint (the project id must be the URL-encoded path {encoded}): {m} {p}"
        )),
    }
    problems
}

fn gitlab_mr(s: &State, p: &Pull) -> Value {
    json!({
        "id": 1000 + p.number,
        "iid": p.number,
        "web_url": format!("https://gitlab.com/{}/-/merge_requests/{}", s.repo, p.number),
        "state": if p.open { "opened" } else { "closed" },
        "title": p.title,
        "description": p.body,
        "draft": p.title.starts_with("Draft:"),
        "source_branch": p.head,
        "target_branch": p.base,
        "labels": p.labels,
        "reviewers": p.reviewer_ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
    })
}

fn gitlab(s: &mut State, r: &Request) -> Reply {
    let body = r.json().unwrap_or(Value::Null);
    let q = |k: &str| {
        r.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let labels = |v: &Value| -> Vec<String> {
        v.as_str()
            .map(|s| s.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    if r.path == "/users" {
        let name = q("username").unwrap_or_default();
        let id = name.bytes().map(u64::from).sum::<u64>();
        return (200, vec![], json!([{"id": id, "username": name}]));
    }
    let tail = r.path.rsplit("/merge_requests").next().unwrap_or_default();
    match (r.method.as_str(), tail) {
        ("GET", "") => {
            let list: Vec<Value> = s
                .pulls
                .iter()
                .filter(|p| match q("state").unwrap_or("all") {
                    "opened" => p.open,
                    "closed" => !p.open,
                    _ => true,
                })
                .filter(|p| q("source_branch").is_none_or(|b| b == p.head))
                .filter(|p| q("target_branch").is_none_or(|b| b == p.base))
                .map(|p| gitlab_mr(s, p))
                .collect();
            (200, vec![], Value::Array(list))
        }
        ("POST", "") => {
            let head = body["source_branch"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let base = body["target_branch"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if s.pulls.iter().any(|p| p.open && p.head == head) {
                return (
                    409,
                    vec![],
                    json!({"message": ["Another open merge request already exists for this source branch"]}),
                );
            }
            let p = Pull {
                number: s.pulls.len() as u64 + 1,
                head,
                base,
                title: body["title"].as_str().unwrap_or_default().to_owned(),
                body: body["description"].as_str().unwrap_or_default().to_owned(),
                open: true,
                draft: false,
                labels: labels(&body["labels"]),
                reviewers: vec![],
                team_reviewers: vec![],
                reviewer_ids: body["reviewer_ids"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default(),
            };
            let v = gitlab_mr(s, &p);
            s.pulls.push(p);
            (201, vec![], v)
        }
        ("PUT", iid) => {
            let iid = iid.trim_start_matches('/');
            let Some(p) = s.pulls.iter_mut().find(|p| p.number.to_string() == iid) else {
                return (404, vec![], json!({"message": "404 Not found"}));
            };
            if let Some(t) = body["title"].as_str() {
                p.title = t.to_owned();
            }
            if let Some(d) = body["description"].as_str() {
                p.body = d.to_owned();
            }
            for l in labels(&body["add_labels"]) {
                if !p.labels.contains(&l) {
                    p.labels.push(l);
                }
            }
            match body["state_event"].as_str() {
                Some("close") => p.open = false,
                Some("reopen") => p.open = true,
                _ => {}
            }
            let p = p.clone();
            (200, vec![], gitlab_mr(s, &p))
        }
        _ => (404, vec![], json!({"message": "404 Not found"})),
    }
}
