//! The pipelines in `examples/ci` call the tool with flags it has: every
//! invocation in them is parsed by the real command line, so a renamed or
//! mistyped flag fails here rather than in a user's 3 a.m. pipeline. (Their
//! schemas are checked in `.ci/run` with check-jsonschema.)

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use insights_policy_render::cli::{Cli, Command};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ci_dir() -> PathBuf {
    root().join("examples/ci")
}

fn yaml(path: &std::path::Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The Action's inputs with their defaults.
fn action_inputs() -> BTreeMap<String, String> {
    let action = yaml(&root().join("action.yml"));
    action["inputs"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let default = v["default"].as_str().unwrap_or_default().to_owned();
            (k.as_str().unwrap().to_owned(), default)
        })
        .collect()
}

/// The arguments `action/run.sh` passes the tool for these inputs (the
/// Action's defaults, overridden by `with`).
fn action_args(with: &BTreeMap<String, String>) -> Vec<String> {
    let mut inputs = action_inputs();
    for (k, v) in with {
        assert!(inputs.contains_key(k), "the Action has no input {k:?}");
        inputs.insert(k.clone(), v.clone());
    }
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(root().join("action/run.sh"))
        .env("IPR_PRINT_ARGS", "1");
    for (k, v) in &inputs {
        cmd.env(format!("IPR_IN_{}", k.to_uppercase().replace('-', "_")), v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "action/run.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut args = vec!["insights-policy-render".to_owned()];
    args.extend(
        String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_owned),
    );
    args
}

/// A workflow step's `with:`, expressions replaced: `${{ env.NAME }}` by the
/// workflow's value, any other by a stand-in.
fn step_inputs(
    with: Option<&serde_yaml::Value>,
    env: &serde_yaml::Value,
) -> BTreeMap<String, String> {
    let mut inputs = BTreeMap::new();
    let Some(with) = with.and_then(|w| w.as_mapping()) else {
        return inputs;
    };
    for (k, v) in with {
        let text = match v {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            serde_yaml::Value::Number(n) => n.to_string(),
            other => panic!("input {k:?}: {other:?}"),
        };
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("a closed expression") + start;
            let expr = rest[start + 3..end].trim();
            match expr.strip_prefix("env.") {
                Some(name) => out.push_str(env[name].as_str().expect("a workflow variable")),
                None => out.push_str("expression"),
            }
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        inputs.insert(k.as_str().unwrap().to_owned(), out);
    }
    inputs
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
        let workflow_env = value["env"].clone();
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
                serde_yaml::Value::Mapping(m)
                    if m.get("uses")
                        .and_then(|u| u.as_str())
                        .is_some_and(|u| u.contains("/insights-policy-render@")) =>
                {
                    // A step of the tool's GitHub Action: its inputs become
                    // the command line as action/run.sh builds it.
                    found.push(action_args(&step_inputs(m.get("with"), &workflow_env)));
                }
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
    assert_eq!(kinds, ["Namespace", "ServiceAccount", "CronJob"]);
    let namespace = docs[0]["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    // Least privilege: no API token at all, and nothing else in the file
    // (no Role, no binding).
    assert_eq!(docs[1]["metadata"]["namespace"], namespace);
    assert_eq!(docs[1]["automountServiceAccountToken"], false);
    assert_eq!(docs[2]["metadata"]["namespace"], namespace);
    let pod = &docs[2]["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], docs[1]["metadata"]["name"]);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(docs[2]["spec"]["concurrencyPolicy"], "Forbid");
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
        // The released image, which runs as the pod's user.
        let image = c["image"].as_str().unwrap();
        assert!(
            image.contains("/insights-policy-render:v"),
            "{image}: the released image"
        );
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    }
}

#[test]
fn the_pipelines_use_the_action_and_the_image_not_cargo_install() {
    for file in ["github-actions.yaml", "gitlab-ci.yml", "cronjob.yaml"] {
        let text = std::fs::read_to_string(ci_dir().join(file)).unwrap();
        assert!(!text.contains("cargo install"), "{file} compiles the tool");
    }
    let gitlab = yaml(&ci_dir().join("gitlab-ci.yml"));
    let image = &gitlab["kyverno-policies"]["image"];
    assert!(image["name"]
        .as_str()
        .unwrap()
        .contains("/insights-policy-render:v"));
    // The image's entrypoint is the tool; GitLab runs a shell.
    assert_eq!(
        image["entrypoint"],
        serde_yaml::Value::Sequence(vec!["".into()])
    );
}

/// The long flags of render, commit and diff (globals included), and
/// whether each takes a value.
fn tool_flags() -> BTreeMap<String, bool> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut flags = BTreeMap::new();
    for sub in ["render", "commit", "diff"] {
        for arg in cmd.find_subcommand(sub).unwrap().get_arguments() {
            if let Some(long) = arg.get_long() {
                flags.insert(long.to_owned(), arg.get_action().takes_values());
            }
        }
    }
    flags
}

/// Inputs that are not flags of the tool.
const ACTION_ONLY: [&str; 6] = [
    "command",
    "version",
    "repository",
    "token",
    "git-token",
    "args",
];
/// Flags the Action leaves out: help and version are not for pipelines, and
/// a CI log is not a terminal, so there is no progress bar to silence.
const NOT_INPUTS: [&str; 3] = ["help", "version", "quiet"];

#[test]
fn the_action_inputs_mirror_the_flags() {
    let inputs = action_inputs();
    let flags = tool_flags();
    for name in inputs.keys() {
        assert!(
            ACTION_ONLY.contains(&name.as_str()) || flags.contains_key(name),
            "input {name:?} is no flag of the tool"
        );
    }
    for flag in flags.keys() {
        assert!(
            NOT_INPUTS.contains(&flag.as_str()) || inputs.contains_key(flag),
            "--{flag} has no input in action.yml"
        );
    }

    // Every flag input reaches the tool as its flag, with its value when
    // it takes one.
    let with: BTreeMap<String, String> = inputs
        .keys()
        .filter(|n| !ACTION_ONLY.contains(&n.as_str()))
        .map(|n| {
            let value = if flags[n] {
                format!("v-{n}")
            } else {
                "true".into()
            };
            (n.clone(), value)
        })
        .collect();
    let args = action_args(&with);
    for name in with.keys() {
        let takes_value = flags[name];
        let at = args
            .iter()
            .position(|a| a == &format!("--{name}"))
            .unwrap_or_else(|| panic!("--{name} not passed: {args:?}"));
        let next = args.get(at + 1).map(String::as_str);
        if takes_value {
            assert_eq!(next, Some(format!("v-{name}").as_str()), "{args:?}");
        } else {
            assert_ne!(next, Some(format!("v-{name}").as_str()), "{args:?}");
        }
    }

    // The run step hands every input over (version and repository go to
    // the install step).
    let action = yaml(&root().join("action.yml"));
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    let run = steps.iter().find(|s| s["id"] == "run").unwrap();
    for name in inputs
        .keys()
        .filter(|n| *n != "version" && *n != "repository")
    {
        let var = format!("IPR_IN_{}", name.to_uppercase().replace('-', "_"));
        assert_eq!(
            run["env"][var.as_str()].as_str(),
            Some(format!("${{{{ inputs.{name} }}}}").as_str()),
            "{var}"
        );
    }
    // The outputs the tool writes to $GITHUB_OUTPUT in that step.
    for output in ["changed", "commit", "bot_branch", "pr_url"] {
        assert_eq!(
            action["outputs"][output]["value"].as_str(),
            Some(format!("${{{{ steps.run.outputs.{output} }}}}").as_str())
        );
    }
}

#[test]
fn the_action_splits_clusters_and_refuses_a_bad_switch() {
    let with = BTreeMap::from([
        ("cluster".to_owned(), "prod, staging\ndev".to_owned()),
        ("push".to_owned(), "true".to_owned()),
        ("org".to_owned(), "acme".to_owned()),
    ]);
    let args = action_args(&with);
    let cli = Cli::try_parse_from(&args).unwrap();
    let Command::Commit(commit) = cli.command else {
        panic!("commit is the default command")
    };
    assert_eq!(commit.source.clusters, ["prod", "staging", "dev"]);
    assert!(commit.push);

    let out = std::process::Command::new("bash")
        .arg(root().join("action/run.sh"))
        .env("IPR_PRINT_ARGS", "1")
        .env("IPR_IN_COMMAND", "commit")
        .env("IPR_IN_PUSH", "yes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("push must be true or false"));
}
