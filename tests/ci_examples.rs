//! The pipelines in `examples/ci` call the tool with flags it has: every
//! invocation in them is parsed by the real command line, so a renamed or
//! mistyped flag fails here rather than in a user's 3 a.m. pipeline. (Their
//! schemas are checked in `.ci/run` with check-jsonschema.)

use std::path::PathBuf;

use clap::Parser;
use insights_policy_render::cli::{Cli, Command};

fn ci_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/ci")
}

/// Splits a command line into words the way a shell would for these
/// files: whitespace separates, double and single quotes group.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// Every `insights-policy-render SUBCOMMAND ...` in the strings of a YAML file.
fn invocations(file: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(ci_dir().join(file)).unwrap();
    let mut found = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                serde_yaml::Value::String(s) => {
                    for line in s.lines() {
                        if let Some(at) = line.find("insights-policy-render ") {
                            let args = words(&line[at..]);
                            if matches!(
                                args.get(1).map(String::as_str),
                                Some("render" | "commit" | "diff")
                            ) {
                                found.push(args);
                            }
                        }
                    }
                }
                serde_yaml::Value::Sequence(items) => stack.extend(items),
                serde_yaml::Value::Mapping(m) => {
                    for (key, value) in m {
                        // A container's `args` is one invocation of its command.
                        let args: Option<Vec<String>> = (key.as_str() == Some("args"))
                            .then(|| value.as_sequence())
                            .flatten()
                            .and_then(|s| {
                                s.iter().map(|i| i.as_str().map(str::to_owned)).collect()
                            });
                        match args {
                            Some(args) => {
                                let mut call = vec!["insights-policy-render".to_owned()];
                                call.extend(args);
                                found.push(call);
                            }
                            None => stack.push(value),
                        }
                    }
                }
                _ => {}
            }
        }
    }
    found
}

#[test]
fn every_pipeline_calls_the_tool_with_flags_it_has() {
    for file in ["github-actions.yaml", "gitlab-ci.yml", "cronjob.yaml"] {
        let calls = invocations(file);
        assert_eq!(calls.len(), 1, "{file}: {calls:?}");
        for args in calls {
            let cli =
                Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{file}: {args:?}\n{e}"));
            let Command::Commit(commit) = cli.command else {
                panic!("{file}: the pipelines commit");
            };
            // What makes it a scheduled bot: its own branch, pushed, with
            // a pull request description, and Flux manifests that check.
            assert!(commit.push, "{file}");
            assert!(commit.branch.is_some(), "{file}: a bot branch");
            assert!(
                commit.forge.pull_request,
                "{file}: the tool opens the pull request, not shell"
            );
            assert!(
                commit.author.is_some(),
                "{file}: CI machines have no git identity"
            );
            commit
                .consumers
                .consumers()
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}

#[test]
fn the_cronjob_keeps_tokens_in_a_secret_and_runs_unprivileged() {
    let text = std::fs::read_to_string(ci_dir().join("cronjob.yaml")).unwrap();
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ServiceAccount", "CronJob"]);
    let pod = &docs[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(docs[1]["spec"]["concurrencyPolicy"], "Forbid");
    let containers = pod["initContainers"]
        .as_sequence()
        .unwrap()
        .iter()
        .chain(pod["containers"].as_sequence().unwrap());
    for c in containers {
        for env in c["env"].as_sequence().unwrap() {
            let name = env["name"].as_str().unwrap();
            if name.ends_with("TOKEN") {
                assert!(env.get("value").is_none(), "{name} inline");
                assert_eq!(env["valueFrom"]["secretKeyRef"]["key"], name);
            }
        }
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    }
}
