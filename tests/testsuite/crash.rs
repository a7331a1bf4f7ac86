//! Crash safety: the real binary, killed with SIGKILL at many points of a
//! real run (no fault injection inside it), must leave the old state or the
//! new one, and the next run must finish the job without any clean-up.
//!
//! Kill points are timed from outside, as a user's kill would be: a few
//! spread over the start of a run, most after its first visible write (the
//! staging directory, or a new pack in the repository), spread over the
//! time an uninterrupted run of the same work took from there to its end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::cli::{bin, run, snapshot_dir};
use crate::support::git::{git, git_daemon};

const POLICIES: usize = 500;
const KILLS: usize = 20;
/// Of the kill points, how many are timed from spawn, before any write.
const EARLY: usize = 4;
const AUTHOR: &str = "Bot <bot@example.com>";

fn policy(name: &str, variant: &str) -> String {
    let rules: String = (0..4)
        .map(|r| {
            format!(
                "    - name: rule-{r}\n      match:\n        any:\n        - resources:\n            kinds: [Pod]\n      validate:\n        message: \"{name} rule {r} {variant}\"\n        pattern:\n          spec:\n            containers:\n            - image: \"!*:latest\"\n"
            )
        })
        .collect();
    format!("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: {name}\n  annotations:\n    policies.kyverno.io/title: Policy {name}\nspec:\n  background: true\n  rules:\n{rules}")
}

/// The old response, and the new one: every tenth policy changed, every
/// tenth removed, and a few hundred added.
fn responses() -> (String, String) {
    let old: Vec<String> = (0..POLICIES)
        .map(|i| policy(&format!("p{i}"), "v1"))
        .collect();
    let mut new = Vec::new();
    for i in 0..POLICIES {
        match i % 10 {
            0 => new.push(policy(&format!("p{i}"), "v2")),
            1 => {}
            _ => new.push(policy(&format!("p{i}"), "v1")),
        }
    }
    new.extend((0..POLICIES / 10).map(|i| policy(&format!("added{i}"), "v1")));
    (old.join("---\n"), new.join("---\n"))
}

/// When a process is killed: after spawn, or after the first write was seen.
#[derive(Debug, Clone, Copy)]
enum Kill {
    AfterSpawn(Duration),
    AfterWrite(Duration),
}

/// From an uninterrupted run: the time to its first write, and from there
/// to its end.
struct Timing {
    to_write: Duration,
    write_to_end: Duration,
}

fn kill_points(t: &Timing) -> Vec<Kill> {
    let early = (0..EARLY).map(|i| Kill::AfterSpawn(t.to_write.mul_f64(i as f64 / EARLY as f64)));
    let n = KILLS - EARLY;
    // Past the end too: a loaded machine stretches the run.
    let late = (0..n).map(|i| Kill::AfterWrite(t.write_to_end.mul_f64(1.5 * i as f64 / n as f64)));
    early.chain(late).collect()
}

/// What the kill points of one scenario hit.
#[derive(Default)]
struct Tally {
    /// Kills that found the process still running.
    killed: usize,
    saw_old: usize,
    saw_new: usize,
}

impl Tally {
    /// Reports the tally, and fails if too few kills hit a running process
    /// for the scenario to mean anything.
    fn finish(&self, timing: &Timing, extra: &str) {
        let Tally {
            killed,
            saw_old,
            saw_new,
        } = self;
        eprintln!(
            "first write after {:?}, then {:?} to the end: {killed} of {KILLS} killed while running; {saw_old} old, {saw_new} new{extra}",
            timing.to_write, timing.write_to_end
        );
        assert!(
            *killed >= KILLS / 4,
            "a good part of the kill points hit a running process"
        );
        if *saw_old == 0 || *saw_new == 0 {
            // Timing on a loaded machine; the checks above still held.
            eprintln!("note: every kill point fell on one side of the switch");
        }
    }
}

/// Runs the binary; with `kill`, kills it (SIGKILL) at that point.
/// Returns the timing seen and whether the process was still running when
/// killed.
fn run_until(args: &[&str], wrote: &dyn Fn() -> bool, kill: Option<Kill>) -> (Timing, bool) {
    let start = Instant::now();
    let mut child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    if let Some(Kill::AfterSpawn(d)) = kill {
        std::thread::sleep(d);
    } else {
        while !wrote() && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let to_write = start.elapsed();
    if let Some(Kill::AfterWrite(d)) = kill {
        std::thread::sleep(d);
    }
    let running = child.try_wait().unwrap().is_none();
    if kill.is_some() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    if kill.is_none() {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let timing = Timing {
        to_write,
        write_to_end: start.elapsed() - to_write,
    };
    (timing, running)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    all.sort();
    all
}

/// One render scenario: `old` is the directory before (None: it does not
/// exist yet).
fn render_scenario(old: Option<&str>) {
    let kubectl = crate::support::env::kubectl();
    let tmp = tempfile::tempdir().unwrap();
    let (_, new_input) = responses();
    let new_file = tmp.path().join("new.yaml");
    std::fs::write(&new_file, new_input).unwrap();
    let new_file = new_file.to_str().unwrap();

    let template = tmp.path().join("template");
    if let Some(old_input) = old {
        let file = tmp.path().join("old.yaml");
        std::fs::write(&file, old_input).unwrap();
        let r = run(&[
            "render",
            "--from-file",
            file.to_str().unwrap(),
            "--out",
            template.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        std::fs::write(template.join("README.md"), "hand written\n").unwrap();
    }
    let old_tree = old.map(|_| snapshot_dir(&template));
    let args = |out: &Path| -> Vec<String> {
        [
            "render",
            "--max-removals",
            "100%",
            "--from-file",
            new_file,
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };

    let prepare = |name: &str| -> (PathBuf, PathBuf) {
        let parent = tmp.path().join(name);
        std::fs::create_dir(&parent).unwrap();
        let out = parent.join("out");
        if old.is_some() {
            copy_tree(&template, &out);
        }
        (parent, out)
    };
    let staging_of = |parent: &Path| parent.join(".out.ipr-tmp");
    let (parent, out) = prepare("calibrate");
    let a = args(&out);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (timing, _) = run_until(&a, &|| staging_of(&parent).exists(), None);
    let new_tree = snapshot_dir(&out);
    std::fs::remove_dir_all(parent).unwrap();

    let mut tally = Tally::default();
    for (i, delay) in kill_points(&timing).into_iter().enumerate() {
        let (parent, out) = prepare(&format!("run{i}"));
        let a = args(&out);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let staging = staging_of(&parent);
        tally.killed += usize::from(run_until(&a, &|| staging.exists(), Some(delay)).1);

        let now: Option<BTreeMap<String, Vec<u8>>> = out.exists().then(|| snapshot_dir(&out));
        if now == old_tree {
            tally.saw_old += 1;
        } else if now.as_ref() == Some(&new_tree) {
            tally.saw_new += 1;
        } else {
            let now = now.unwrap_or_default();
            let differ: Vec<_> = new_tree
                .keys()
                .chain(now.keys())
                .filter(|k| now.get(*k) != new_tree.get(*k))
                .take(5)
                .collect();
            panic!("kill point {i} ({delay:?}): neither the old nor the new directory; differs from the new at {differ:?}");
        }
        if kubectl.is_some() && out.exists() && i % 7 == 0 {
            crate::support::env::kustomize_build(&out);
        }

        let r = run(&a);
        assert_eq!(r.code, 0, "rerun after kill point {i}: {}", r.stderr);
        assert!(
            snapshot_dir(&out) == new_tree,
            "rerun after kill point {i}: not the new tree"
        );
        assert_eq!(
            names(&parent),
            ["out"],
            "rerun after kill point {i} left something beside the directory"
        );
        std::fs::remove_dir_all(parent).unwrap();
    }
    tally.finish(&timing, "");
}

#[test]
fn render_into_a_new_directory_survives_sigkill() {
    render_scenario(None);
}

#[test]
fn render_update_of_a_directory_survives_sigkill() {
    let (old, _) = responses();
    render_scenario(Some(&old));
}

fn rev(repo: &Path, what: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "-q", "--verify", what])
        .current_dir(repo)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

/// A commit is "the new one" if it has the expected tree and sits directly
/// on the old commit.
fn is_new(repo: &Path, commit: &str, old: Option<&str>, tree: &str) -> bool {
    rev(repo, &format!("{commit}^{{tree}}")).as_deref() == Some(tree)
        && rev(repo, &format!("{commit}^")).as_deref() == old
}

/// One commit scenario. `seeded`: the repository already has a commit of
/// the old policies and a remote to push to; otherwise it is freshly
/// initialised, with no commit at all.
fn commit_scenario(seeded: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let (old_input, new_input) = responses();
    let new_file = tmp.path().join("new.yaml");
    std::fs::write(&new_file, new_input).unwrap();
    let new_file = new_file.to_str().unwrap().to_owned();

    let template = tmp.path().join("template");
    std::fs::create_dir(&template).unwrap();
    git(&template, &["init", "-q", "-b", "main", "repo"]);
    let repo_t = template.join("repo");
    if seeded {
        git(
            &template,
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        );
        std::fs::write(repo_t.join("README.md"), "policy repo\n").unwrap();
        git(&repo_t, &["add", "README.md"]);
        git(&repo_t, &["commit", "-q", "-m", "init"]);
        let old_file = tmp.path().join("old.yaml");
        std::fs::write(&old_file, old_input).unwrap();
        let r = run(&[
            "commit",
            "--from-file",
            old_file.to_str().unwrap(),
            "--cluster",
            "prod",
            "--repo",
            repo_t.to_str().unwrap(),
            "--author",
            AUTHOR,
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        git(&repo_t, &["remote", "add", "origin", "../remote.git"]);
        git(&repo_t, &["push", "-q", "origin", "main"]);
    }
    let old = rev(&repo_t, "HEAD");
    let prepare = |name: &str| -> (PathBuf, PathBuf) {
        let dir = tmp.path().join(name);
        copy_tree(&template, &dir);
        let repo = dir.join("repo");
        if seeded {
            let remote = dir.join("remote.git");
            git(
                &repo,
                &["remote", "set-url", "origin", remote.to_str().unwrap()],
            );
        }
        (dir, repo)
    };
    let args = |repo: &Path| -> Vec<String> {
        let mut a: Vec<String> = [
            "commit",
            "--max-removals",
            "100%",
            "--from-file",
            &new_file,
            "--cluster",
            "prod",
            "--repo",
            repo.to_str().unwrap(),
            "--author",
            AUTHOR,
        ]
        .map(String::from)
        .to_vec();
        if seeded {
            a.push("--push".into());
        }
        a
    };

    // The first write is the pack of new blobs.
    let packs = |repo: &Path| {
        std::fs::read_dir(repo.join(".git/objects/pack"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let packs_before = packs(&repo_t);
    let (dir, repo) = prepare("calibrate");
    let a = args(&repo);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (timing, _) = run_until(&a, &|| packs(&repo) > packs_before, None);
    let tree = rev(&repo, "HEAD^{tree}").unwrap();
    std::fs::remove_dir_all(dir).unwrap();

    let (mut tally, mut journaled) = (Tally::default(), 0);
    for (i, delay) in kill_points(&timing).into_iter().enumerate() {
        let (dir, repo) = prepare(&format!("run{i}"));
        let a = args(&repo);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        tally.killed += usize::from(run_until(&a, &|| packs(&repo) > packs_before, Some(delay)).1);

        git(&repo, &["fsck", "--strict", "--no-progress"]);
        // Killed between the branch move and the end of the working tree
        // update: the state the next run completes.
        journaled += usize::from(repo.join(".git/insights-policy-render/journal").exists());
        let head = rev(&repo, "HEAD");
        if head == old {
            tally.saw_old += 1;
        } else {
            assert!(
                is_new(&repo, head.as_deref().unwrap(), old.as_deref(), &tree),
                "kill point {i} ({delay:?}): HEAD is neither the old nor the new commit"
            );
            tally.saw_new += 1;
        }
        if seeded {
            let remote = dir.join("remote.git");
            git(&remote, &["fsck", "--strict", "--no-progress"]);
            let tip = rev(&remote, "main").unwrap();
            assert!(
                Some(&tip) == old.as_ref() || is_new(&remote, &tip, old.as_deref(), &tree),
                "kill point {i} ({delay:?}): the remote's main is neither the old nor the new commit"
            );
        }

        let r = run(&a);
        assert_eq!(r.code, 0, "rerun after kill point {i}: {}", r.stderr);
        let head = rev(&repo, "HEAD").unwrap();
        assert!(
            is_new(&repo, &head, old.as_deref(), &tree),
            "rerun after kill point {i}: HEAD is not one new commit with the new tree"
        );
        assert_eq!(
            git(&repo, &["status", "--porcelain", "--untracked-files=all"]),
            "",
            "rerun after kill point {i}: working tree and index follow HEAD"
        );
        assert_eq!(
            git(&repo, &["for-each-ref", "refs/insights-policy-render/"]),
            ""
        );
        assert!(!repo.join(".git/index.lock").exists());
        assert!(!repo.join(".git/insights-policy-render/journal").exists());
        if seeded {
            assert_eq!(rev(&dir.join("remote.git"), "main").unwrap(), head);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
    tally.finish(&timing, &format!(" (HEAD; {journaled} with a journal)"));
}

#[test]
fn commit_into_a_fresh_repository_survives_sigkill() {
    commit_scenario(false);
}

#[test]
fn commit_update_with_push_survives_sigkill() {
    commit_scenario(true);
}

/// The network dies in the middle of the push: the run fails, says so,
/// and leaves the local repository and the remote exactly as they were.
#[test]
fn a_push_cut_off_midway_leaves_both_repositories_as_they_were() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    git(base, &["init", "-q", "--bare", "-b", "main", "remote.git"]);
    git(base, &["clone", "-q", "remote.git", "work"]);
    let work = base.join("work");
    git(&work, &["checkout", "-q", "-b", "main"]);
    std::fs::write(work.join("README.md"), "policy repo\n").unwrap();
    git(&work, &["add", "README.md"]);
    git(&work, &["commit", "-q", "-m", "init"]);
    git(&work, &["push", "-q", "origin", "main"]);
    // A local edit elsewhere, staged and unstaged, that must survive.
    std::fs::write(work.join("README.md"), "policy repo, edited\n").unwrap();
    std::fs::write(work.join("notes.txt"), "staged\n").unwrap();
    git(&work, &["add", "notes.txt"]);

    let daemon = git_daemon(base);
    let upstream: std::net::SocketAddr = daemon
        .1
        .trim_start_matches("git://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Past the request and the ref negotiation, well inside the pack.
    let proxy = crate::support::proxy::CuttingProxy::start(upstream, 4096);
    git(
        &work,
        &[
            "remote",
            "set-url",
            "origin",
            &format!("git://{}/remote.git", proxy.addr),
        ],
    );

    let (_, input) = responses();
    let input_file = base.join("in.yaml");
    std::fs::write(&input_file, input).unwrap();
    let state = |repo: &Path| {
        (
            git(repo, &["for-each-ref"]),
            git(repo, &["symbolic-ref", "HEAD"]),
            git(repo, &["status", "--porcelain", "--untracked-files=all"]),
            std::fs::read(repo.join(".git/index")).unwrap(),
            snapshot_dir(repo)
                .into_iter()
                .filter(|(k, _)| !k.starts_with(".git/"))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let before = state(&work);
    let remote_before = git(&base.join("remote.git"), &["for-each-ref"]);

    let args = [
        "commit",
        "--from-file",
        input_file.to_str().unwrap(),
        "--cluster",
        "prod",
        "--repo",
        work.to_str().unwrap(),
        "--author",
        AUTHOR,
        "--push",
    ];
    let r = run(&args);
    assert_eq!(r.code, 1, "the push cannot have succeeded: {}", r.stderr);
    assert!(proxy.cuts() >= 1, "the proxy cut the connection");
    assert!(
        r.stderr.contains("push to origin"),
        "a clear message: {}",
        r.stderr
    );
    assert!(
        state(&work) == before,
        "the local repository is exactly as it was"
    );
    assert_eq!(
        git(&work, &["for-each-ref", "refs/insights-policy-render/"]),
        ""
    );
    assert_eq!(
        git(&base.join("remote.git"), &["for-each-ref"]),
        remote_before
    );
    git(
        &base.join("remote.git"),
        &["fsck", "--strict", "--no-progress"],
    );
    git(&work, &["fsck", "--strict", "--no-progress"]);

    // Through the direct remote the same run succeeds.
    git(&work, &["remote", "set-url", "origin", &daemon.1]);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        rev(&work, "HEAD"),
        rev(&base.join("remote.git"), "main"),
        "pushed"
    );
    assert_eq!(
        git(&work, &["status", "--porcelain", "--untracked-files=all"]),
        " M README.md\nA  notes.txt\n",
        "the local edits are still there"
    );
}
