//! `commit --pull-request` against fake GitHub and GitLab APIs on
//! 127.0.0.1 that check every request against the published REST
//! description (GitHub) or the documented merge request endpoints (GitLab):
//! open, rerun with nothing new (no write), update, withdrawal closes,
//! labels and reviewers, the 403 of the missing Actions setting, rate
//! limits, and the token in no output. Nothing here waits on a clock: rate
//! limits say "now" or "in an hour".

use std::path::PathBuf;

use crate::support::cli::{run_env, Run};
use crate::support::fake_forge::{Canned, FakeForge, Kind};
use crate::support::git::git;
use serde_json::{json, Value};

const TOKEN: &str = "forge-tok-Zq81Wx4Kp-SECRET";
const BOT: &str = "insights/kyverno-policies";

fn policy(name: &str, action: &str) -> String {
    format!("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: {name}\n  annotations:\n    policies.kyverno.io/title: Title of {name}\n    policies.kyverno.io/severity: high\nspec:\n  validationFailureAction: {action}\n  rules:\n    - name: check\n      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}\n      validate: {{message: m, pattern: {{}}}}\n")
}

struct Setup {
    tmp: tempfile::TempDir,
    remote: PathBuf,
    work: PathBuf,
}

impl Setup {
    /// A bare remote whose main already holds the rendered `base` policies.
    fn new(base: &str) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let remote = tmp.path().join("remote.git");
        let r = remote.to_str().unwrap();
        git(tmp.path(), &["init", "-q", "--bare", "-b", "main", r]);
        let work = tmp.path().join("work");
        git(tmp.path(), &["clone", "-q", r, work.to_str().unwrap()]);
        git(&work, &["checkout", "-q", "-b", "main"]);
        git(&work, &["config", "user.name", "Policy Bot"]);
        git(&work, &["config", "user.email", "bot@example.com"]);
        git(&work, &["commit", "-q", "--allow-empty", "-m", "init"]);
        git(&work, &["push", "-q", "origin", "main"]);
        let s = Setup { tmp, remote, work };
        let input = s.input(base);
        let r = run_env(
            &[
                "commit",
                "--from-file",
                &input,
                "--cluster",
                "prod",
                "--repo",
                s.work.to_str().unwrap(),
                "--push",
                "--flux",
            ],
            &[],
            None,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        s
    }

    fn input(&self, text: &str) -> String {
        let path = self.tmp.path().join("response.yaml");
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `commit --pull-request` of `response` with the forge flags, the token
    /// in the environment; checks the token appears in no output.
    fn run(&self, forge: &FakeForge, kind: Kind, response: &str, extra: &[&str]) -> Run {
        let input = self.input(response);
        let output = self.file("github_output");
        let _ = std::fs::remove_file(&output);
        let summary = self.file("summary.json");
        let (flag, repo, var) = match kind {
            Kind::Github => ("github", "acme/policies", "GITHUB_TOKEN"),
            Kind::Gitlab => ("gitlab", "acme/platform/policies", "GITLAB_TOKEN"),
        };
        let mut args = vec![
            "commit",
            "--from-file",
            &input,
            "--cluster",
            "prod",
            "--repo",
            self.work.to_str().unwrap(),
            "--branch",
            BOT,
            "--base",
            "main",
            "--push",
            "--pull-request",
            "--forge",
            flag,
            "--forge-api-url",
            &forge.url,
            "--forge-repo",
            repo,
            "--flux",
            "--summary-file",
            summary.to_str().unwrap(),
            "--log-level",
            "trace",
        ];
        args.extend_from_slice(extra);
        let r = run_env(
            &args,
            &[(var, TOKEN), ("GITHUB_OUTPUT", output.to_str().unwrap())],
            None,
        );
        for text in [&r.stdout, &r.stderr] {
            assert!(!text.contains("Zq81Wx4Kp"), "the token leaked:\n{text}");
        }
        for file in [&output, &summary] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            assert!(
                !text.contains("Zq81Wx4Kp"),
                "the token leaked into {}",
                file.display()
            );
        }
        let log = git(&self.remote, &["log", "--all", "-p"]);
        assert!(!log.contains("Zq81Wx4Kp"), "the token leaked into a commit");
        r
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.file("github_output")).unwrap_or_default()
    }

    fn summary(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.file("summary.json")).unwrap()).unwrap()
    }

    fn remote_sha(&self, branch: &str) -> String {
        git(&self.remote, &["rev-parse", branch]).trim().to_owned()
    }
}

fn writes(forge: &FakeForge) -> Vec<String> {
    forge
        .requests()
        .iter()
        .filter(|r| r.is_write())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn github_open_rerun_update_and_close() {
    let base = policy("one", "Audit");
    let s = Setup::new(&base);
    let gh = FakeForge::start(Kind::Github, "acme/policies", TOKEN);

    // Open: Audit → Enforce and a new policy.
    let v1 = format!(
        "{}---\n{}",
        policy("one", "Enforce"),
        policy("two", "Audit")
    );
    let r = s.run(&gh, Kind::Github, &v1, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    gh.assert_valid();
    assert_eq!(writes(&gh), ["POST /repos/acme/policies/pulls"]);
    let pulls = gh.pulls();
    assert_eq!(pulls.len(), 1);
    let pr = &pulls[0];
    assert_eq!(
        (pr.head.as_str(), pr.base.as_str(), pr.open),
        (BOT, "main", true)
    );
    assert_eq!(pr.title, "Update Kyverno policies for prod");
    assert!(pr.body.contains("Starts blocking requests"), "{}", pr.body);
    assert!(pr.body.contains("Flux (`prune: true`)"), "{}", pr.body);
    let sha = s.remote_sha(BOT);
    assert_eq!(
        s.output(),
        format!("changed=true\ncommit={sha}\nbot_branch=updated\npr_url=https://github.com/acme/policies/pull/1\npr_number=1\npr_action=opened\n")
    );
    let summary = s.summary();
    assert_eq!(summary["commit"], json!(sha));
    assert_eq!(summary["branch"], json!(BOT));
    assert_eq!(
        summary["pull_request"],
        json!({"action": "opened", "number": 1, "url": "https://github.com/acme/policies/pull/1"})
    );
    assert!(
        r.stderr
            .contains("pull request opened: https://github.com/acme/policies/pull/1"),
        "{}",
        r.stderr
    );

    // Nothing new: no write at all.
    gh.clear_requests();
    let r = s.run(&gh, Kind::Github, &v1, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    gh.assert_valid();
    assert_eq!(writes(&gh), Vec::<String>::new());
    assert_eq!(gh.requests().len(), 1, "one look at the open pull requests");
    assert_eq!(s.summary()["pull_request"]["action"], "unchanged");

    // New content: the title and body are updated in place.
    gh.clear_requests();
    let v2 = format!(
        "{}---\n{}",
        policy("one", "Enforce"),
        policy("three", "Audit")
    );
    let r = s.run(&gh, Kind::Github, &v2, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    gh.assert_valid();
    assert_eq!(writes(&gh), ["PATCH /repos/acme/policies/pulls/1"]);
    assert!(gh.pulls()[0].body.contains("`three`"));
    assert_eq!(gh.pulls().len(), 1);
    assert_eq!(s.summary()["pull_request"]["action"], "updated");

    // Insights matches main again: the pull request is closed.
    gh.clear_requests();
    let r = s.run(&gh, Kind::Github, &base, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    gh.assert_valid();
    assert_eq!(writes(&gh), ["PATCH /repos/acme/policies/pulls/1"]);
    assert!(!gh.pulls()[0].open);
    assert!(s.output().contains("pr_action=closed\n"), "{}", s.output());

    // And stays closed, with nothing written.
    gh.clear_requests();
    let r = s.run(&gh, Kind::Github, &base, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(writes(&gh), Vec::<String>::new());
    assert_eq!(s.summary()["pull_request"]["action"], "none");
}

#[test]
fn github_labels_reviewers_and_draft() {
    let s = Setup::new(&policy("one", "Audit"));
    let gh = FakeForge::start(Kind::Github, "acme/policies", TOKEN);
    let flags = [
        "--pr-label",
        "kyverno",
        "--pr-label",
        "insights",
        "--pr-reviewer",
        "alice",
        "--pr-reviewer",
        "acme/platform",
        "--pr-draft",
    ];
    let r = s.run(&gh, Kind::Github, &policy("one", "Enforce"), &flags);
    assert_eq!(r.code, 0, "{}", r.stderr);
    gh.assert_valid();
    assert_eq!(
        writes(&gh),
        [
            "POST /repos/acme/policies/pulls",
            "POST /repos/acme/policies/issues/1/labels",
            "POST /repos/acme/policies/pulls/1/requested_reviewers",
        ]
    );
    let pr = &gh.pulls()[0];
    assert!(pr.draft);
    assert_eq!(pr.labels, ["kyverno", "insights"]);
    assert_eq!(pr.reviewers, ["alice"]);
    assert_eq!(pr.team_reviewers, ["platform"]);

    // A rerun writes nothing; a new label is added alone.
    gh.clear_requests();
    let r = s.run(&gh, Kind::Github, &policy("one", "Enforce"), &flags);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(writes(&gh), Vec::<String>::new());
    let mut more = flags.to_vec();
    more.extend(["--pr-label", "security"]);
    let r = s.run(&gh, Kind::Github, &policy("one", "Enforce"), &more);
    assert_eq!(r.code, 0, "{}", r.stderr);
    gh.assert_valid();
    assert_eq!(writes(&gh), ["POST /repos/acme/policies/issues/1/labels"]);
    assert_eq!(gh.pulls()[0].labels, ["kyverno", "insights", "security"]);
}

#[test]
fn github_refuses_workflows_pull_requests_then_the_next_run_opens_it() {
    let s = Setup::new(&policy("one", "Audit"));
    let gh = FakeForge::start(Kind::Github, "acme/policies", TOKEN);
    gh.fail_next(Canned {
        method: "POST",
        path_suffix: "/pulls".into(),
        status: 403,
        headers: vec![],
        body: json!({"message": "GitHub Actions is not permitted to create or approve pull requests.", "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request", "status": "403"}),
    });
    let r = s.run(&gh, Kind::Github, &policy("one", "Enforce"), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let sha = s.remote_sha(BOT);
    assert!(
        r.stderr.contains(&format!(
            "pushed {sha} to {BOT}, but the pull request failed"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("Allow GitHub Actions to create and approve pull requests"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("The next run completes it"),
        "{}",
        r.stderr
    );
    assert!(gh.pulls().is_empty());
    // The push landed and the outputs say so.
    assert_eq!(
        s.output(),
        format!("changed=true\ncommit={sha}\nbot_branch=updated\npr_action=failed\n")
    );
    assert_eq!(s.summary()["commit"], json!(sha));
    assert_eq!(s.summary()["pull_request"]["action"], "failed");
    assert!(s.summary()["pull_request"]["error"]
        .as_str()
        .unwrap()
        .contains("HTTP 403"));

    // Once the setting is on, the next run opens it, without a new commit.
    let r = s.run(&gh, Kind::Github, &policy("one", "Enforce"), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    gh.assert_valid();
    assert_eq!(s.remote_sha(BOT), sha);
    assert_eq!(gh.pulls().len(), 1);
    assert_eq!(s.summary()["pull_request"]["action"], "opened");
}

#[test]
fn github_permission_errors_name_the_permission() {
    let s = Setup::new(&policy("one", "Audit"));
    let gh = FakeForge::start(Kind::Github, "acme/policies", TOKEN);
    gh.fail_next(Canned {
        method: "POST",
        path_suffix: "/pulls".into(),
        status: 403,
        headers: vec![],
        body: json!({"message": "Resource not accessible by integration"}),
    });
    let r = s.run(&gh, Kind::Github, &policy("one", "Enforce"), &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("permissions: pull-requests: write"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("GITHUB_TOKEN"), "{}", r.stderr);
}

#[test]
fn github_rate_limits_are_waited_out_within_the_bound() {
    let s = Setup::new(&policy("one", "Audit"));
    let gh = FakeForge::start(Kind::Github, "acme/policies", TOKEN);
    // A primary limit that has already reset, then a secondary one that
    // asks for no wait: both retried, and the run succeeds.
    gh.fail_next(Canned {
        method: "GET",
        path_suffix: "/pulls".into(),
        status: 403,
        headers: vec![
            ("x-ratelimit-remaining".into(), "0".into()),
            ("x-ratelimit-reset".into(), "1".into()),
        ],
        body: json!({"message": "API rate limit exceeded for installation ID 1."}),
    });
    gh.fail_next(Canned {
        method: "POST",
        path_suffix: "/pulls".into(),
        status: 429,
        headers: vec![("retry-after".into(), "0".into())],
        body: json!({"message": "You have exceeded a secondary rate limit."}),
    });
    let r = s.run(&gh, Kind::Github, &policy("one", "Enforce"), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    gh.assert_valid();
    assert_eq!(gh.requests().len(), 4);
    assert_eq!(gh.pulls().len(), 1);

    // A limit that resets in an hour is past the bound: fail at once,
    // saying when, and leave the pull request to the next run.
    let s = Setup::new(&policy("one", "Audit"));
    let gh = FakeForge::start(Kind::Github, "acme/policies", TOKEN);
    gh.fail_next(Canned {
        method: "GET",
        path_suffix: "/pulls".into(),
        status: 429,
        headers: vec![("retry-after".into(), "3600".into())],
        body: json!({"message": "slow down"}),
    });
    let r = s.run(
        &gh,
        Kind::Github,
        &policy("one", "Enforce"),
        &["--forge-max-wait", "60s"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("rate limited, and the limit resets in 3600s, past the 60s"),
        "{}",
        r.stderr
    );
    assert_eq!(gh.requests().len(), 1);
}

#[test]
fn a_refused_token_is_named_by_its_source_never_shown() {
    let s = Setup::new(&policy("one", "Audit"));
    let gh = FakeForge::start(Kind::Github, "acme/policies", "another-token");
    let r = s.run(&gh, Kind::Github, &policy("one", "Enforce"), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("HTTP 401: Bad credentials"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("the token from GITHUB_TOKEN was refused"),
        "{}",
        r.stderr
    );

    // From a file too, and a missing token is a usage error before any
    // commit.
    let token_file = s.file("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let before = git(&s.remote, &["for-each-ref"]);
    let input = s.input(&format!(
        "{}---\n{}",
        policy("one", "Audit"),
        policy("two", "Audit")
    ));
    let r = run_env(
        &[
            "commit",
            "--from-file",
            &input,
            "--cluster",
            "prod",
            "--repo",
            s.work.to_str().unwrap(),
            "--branch",
            "other",
            "--push",
            "--pull-request",
            "--forge-repo",
            "acme/policies",
            "--forge",
            "github",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("set GITHUB_TOKEN (or GIT_TOKEN), or pass --forge-token-file"),
        "{}",
        r.stderr
    );
    assert_eq!(git(&s.remote, &["for-each-ref"]), before, "nothing pushed");
    let gh = FakeForge::start(Kind::Github, "acme/policies", TOKEN);
    let r = run_env(
        &[
            "commit",
            "--from-file",
            &input,
            "--cluster",
            "prod",
            "--repo",
            s.work.to_str().unwrap(),
            "--branch",
            "other",
            "--base",
            "main",
            "--push",
            "--pull-request",
            "--forge-repo",
            "acme/policies",
            "--forge",
            "github",
            "--forge-api-url",
            &gh.url,
            "--forge-token-file",
            token_file.to_str().unwrap(),
            "--log-level",
            "trace",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("Zq81Wx4Kp"));
    assert_eq!(gh.pulls().len(), 1);
}

#[test]
fn pull_request_needs_a_bot_branch_and_a_push() {
    let s = Setup::new(&policy("one", "Audit"));
    let input = s.input(&policy("one", "Enforce"));
    for extra in [&["--push"][..], &["--branch", BOT][..]] {
        let mut args = vec![
            "commit",
            "--from-file",
            &input,
            "--repo",
            s.work.to_str().unwrap(),
            "--pull-request",
        ];
        args.extend_from_slice(extra);
        let r = run_env(&args, &[("GITHUB_TOKEN", TOKEN)], None);
        assert_eq!(r.code, 64, "{}", r.stderr);
    }
}

#[test]
fn gitlab_open_rerun_update_and_close() {
    let base = policy("one", "Audit");
    let s = Setup::new(&base);
    let gl = FakeForge::start(Kind::Gitlab, "acme/platform/policies", TOKEN);
    let mr = "/projects/acme%2Fplatform%2Fpolicies/merge_requests";
    let flags = [
        "--pr-label",
        "kyverno",
        "--pr-label",
        "insights",
        "--pr-reviewer",
        "alice",
        "--pr-draft",
    ];

    let r = s.run(&gl, Kind::Gitlab, &policy("one", "Enforce"), &flags);
    assert_eq!(r.code, 0, "{}", r.stderr);
    gl.assert_valid();
    assert_eq!(writes(&gl), [format!("POST {mr}")]);
    let opened = &gl.pulls()[0];
    assert_eq!(opened.title, "Draft: Update Kyverno policies for prod");
    assert_eq!(opened.labels, ["kyverno", "insights"]);
    assert_eq!(opened.reviewer_ids.len(), 1);
    assert!(
        s.output().contains(
            "pr_url=https://gitlab.com/acme/platform/policies/-/merge_requests/1\npr_number=1\n"
        ),
        "{}",
        s.output()
    );
    assert!(r.stderr.contains("merge request opened"), "{}", r.stderr);

    gl.clear_requests();
    let r = s.run(&gl, Kind::Gitlab, &policy("one", "Enforce"), &flags);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(writes(&gl), Vec::<String>::new());

    gl.clear_requests();
    let v2 = format!(
        "{}---\n{}",
        policy("one", "Enforce"),
        policy("two", "Audit")
    );
    let r = s.run(&gl, Kind::Gitlab, &v2, &flags);
    assert_eq!(r.code, 0, "{}", r.stderr);
    gl.assert_valid();
    assert_eq!(writes(&gl), [format!("PUT {mr}/1")]);
    let updated = &gl.pulls()[0];
    assert!(updated.body.contains("`two`"));
    assert!(
        updated.title.starts_with("Draft: "),
        "the draft state is kept"
    );

    // Deleting a source branch does not close a merge request: the tool does.
    gl.clear_requests();
    let r = s.run(&gl, Kind::Gitlab, &base, &flags);
    assert_eq!(r.code, 0, "{}", r.stderr);
    gl.assert_valid();
    assert_eq!(writes(&gl), [format!("PUT {mr}/1")]);
    let put = gl.requests().into_iter().find(|r| r.is_write()).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&put.body).unwrap(),
        json!({"state_event": "close"})
    );
    assert!(!gl.pulls()[0].open);
}

#[test]
fn gitlab_permission_and_rate_limit() {
    let s = Setup::new(&policy("one", "Audit"));
    let gl = FakeForge::start(Kind::Gitlab, "acme/platform/policies", TOKEN);
    gl.fail_next(Canned {
        method: "GET",
        path_suffix: "/merge_requests".into(),
        status: 429,
        headers: vec![("retry-after".into(), "0".into())],
        body: json!({"message": "Retry later"}),
    });
    gl.fail_next(Canned {
        method: "POST",
        path_suffix: "/merge_requests".into(),
        status: 403,
        headers: vec![],
        body: json!({"message": "403 Forbidden"}),
    });
    let r = s.run(&gl, Kind::Gitlab, &policy("one", "Enforce"), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("needs the `api` scope and at least the Developer role"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("GITLAB_TOKEN"), "{}", r.stderr);
    gl.assert_valid();
    let r = s.run(&gl, Kind::Gitlab, &policy("one", "Enforce"), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(gl.pulls().len(), 1);
}

/// The fakes' own check: requests the APIs do not document are caught.
#[test]
fn the_fakes_catch_undocumented_requests() {
    use std::io::{Read, Write};
    let send = |url: &str, raw: String| {
        let addr = url.trim_start_matches("http://");
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(raw.as_bytes()).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    };
    let req = |method: &str, target: &str, auth: &str, body: &str| {
        format!(
            "{method} {target} HTTP/1.1\r\nHost: x\r\nAccept: application/vnd.github+json\r\n{auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let gh = FakeForge::start(Kind::Github, "acme/policies", TOKEN);
    let auth = format!("Authorization: Bearer {TOKEN}");
    send(
        &gh.url,
        req(
            "POST",
            "/repos/acme/policies/pulls",
            &auth,
            r#"{"title": 5, "head": "b", "base": "main"}"#,
        ),
    );
    send(
        &gh.url,
        req("GET", "/repos/acme/policies/pulls?colour=red", &auth, ""),
    );
    send(
        &gh.url,
        req(
            "PATCH",
            "/repos/acme/policies/pulls/1",
            &auth,
            r#"{"state": "merged"}"#,
        ),
    );
    send(
        &gh.url,
        req("PUT", "/repos/acme/policies/pulls", &auth, "{}"),
    );
    let v = gh.violations();
    assert_eq!(v.len(), 4, "{v:#?}");
    assert!(
        v[0].contains("\"pulls/create\": 5 is not of type"),
        "{v:#?}"
    );
    assert!(v[1].contains("query parameter colour"), "{v:#?}");
    assert!(v[2].contains("\"pulls/update\""), "{v:#?}");
    assert!(v[3].contains("no operation"), "{v:#?}");

    let gl = FakeForge::start(Kind::Gitlab, "acme/policies", TOKEN);
    let auth = format!("PRIVATE-TOKEN: {TOKEN}");
    send(
        &gl.url,
        req(
            "POST",
            "/projects/acme/policies/merge_requests",
            &auth,
            "{}",
        ),
    );
    send(
        &gl.url,
        req(
            "POST",
            "/projects/acme%2Fpolicies/merge_requests",
            &auth,
            r#"{"source_branch": "b", "title": "t"}"#,
        ),
    );
    send(
        &gl.url,
        req(
            "PUT",
            "/projects/acme%2Fpolicies/merge_requests/1",
            &auth,
            r#"{"state_event": "merge"}"#,
        ),
    );
    let v = gl.violations();
    assert_eq!(v.len(), 3, "{v:#?}");
    assert!(v[0].contains("URL-encoded"), "{v:#?}");
    assert!(v[1].contains("target_branch is required"), "{v:#?}");
    assert!(v[2].contains("neither close nor reopen"), "{v:#?}");
}
