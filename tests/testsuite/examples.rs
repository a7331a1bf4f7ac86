//! `examples/flux` and `examples/argo` are what the tool produces, and what
//! it produces is accepted by the consumers: the Flux and Argo CD objects
//! validate against the published CRDs, every rendered directory builds with
//! `kubectl kustomize`, and the RBAC and the AppProject admit exactly the
//! policy kinds.
//!
//! `UPDATE_EXAMPLES=1 cargo test --test testsuite examples::` rewrites the examples
//! from a fresh run instead of failing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::snapshot_dir;
use crate::support::env;
use insights_policy_render::pipeline::schema::Schemas;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// The examples' files that the tool writes (the READMEs are prose).
fn generated(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot_dir(dir)
        .into_iter()
        .filter(|(path, _)| !path.ends_with("README.md"))
        .collect()
}

#[test]
fn examples_are_exactly_what_the_tool_produces() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("bash")
        .arg(examples().join("generate.sh"))
        .arg(env!("CARGO_BIN_EXE_insights-policy-render"))
        .arg(out.path())
        .status()
        .expect("run examples/generate.sh");
    assert!(status.success(), "examples/generate.sh failed");

    for name in ["flux", "argo"] {
        let fresh = generated(&out.path().join(name));
        let committed_dir = examples().join(name);
        let committed = generated(&committed_dir);
        if std::env::var_os("UPDATE_EXAMPLES").is_some() {
            for path in committed.keys().filter(|p| !fresh.contains_key(*p)) {
                std::fs::remove_file(committed_dir.join(path)).unwrap();
            }
            for (path, bytes) in &fresh {
                let target = committed_dir.join(path);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::write(target, bytes).unwrap();
            }
            continue;
        }
        let fresh_paths: Vec<_> = fresh.keys().collect();
        let committed_paths: Vec<_> = committed.keys().collect();
        assert_eq!(
            committed_paths, fresh_paths,
            "examples/{name} has other files than the tool produces; run UPDATE_EXAMPLES=1 cargo test --test testsuite examples::"
        );
        for (path, bytes) in &fresh {
            assert!(
                committed[path] == *bytes,
                "examples/{name}/{path} differs from what the tool produces; run UPDATE_EXAMPLES=1 cargo test --test testsuite examples::"
            );
        }
    }
}

/// Every YAML document of the examples' generated files, with its file.
fn documents(name: &str) -> Vec<(String, serde_json::Value)> {
    let mut docs = Vec::new();
    for (path, bytes) in generated(&examples().join(name)) {
        let text = String::from_utf8(bytes).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
            docs.push((path.clone(), serde_json::to_value(value).unwrap()));
        }
    }
    docs
}

fn api_group(doc: &serde_json::Value) -> &str {
    let api_version = doc["apiVersion"].as_str().unwrap();
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

#[test]
fn flux_and_argo_objects_validate_against_their_crds() {
    let Some(shared) = env::shared() else { return };
    let flux = Schemas::load(&shared.join("crds/flux")).unwrap();
    let argo = Schemas::load(&shared.join("crds/argo")).unwrap();
    let kyverno = Schemas::load(&shared.join("crds/kyverno")).unwrap();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for name in ["flux", "argo"] {
        for (path, doc) in documents(name) {
            let group = api_group(&doc);
            let schemas = match group {
                g if g.ends_with(".fluxcd.io") => &flux,
                "argoproj.io" => &argo,
                "kyverno.io" | "policies.kyverno.io" => &kyverno,
                // Built-in kinds (RBAC, ServiceAccount, admission policies):
                // no CRD; the RBAC is checked by its own test below.
                _ => continue,
            };
            let problems = schemas.check_object(&doc).unwrap_or_else(|| {
                panic!(
                    "{name}/{path}: no CRD defines {} {}",
                    doc["apiVersion"], doc["kind"]
                )
            });
            assert!(problems.is_empty(), "{name}/{path}: {problems:#?}");
            *checked
                .entry(doc["kind"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    // The consumer objects of both examples were among them.
    for kind in ["Kustomization", "ApplicationSet", "AppProject"] {
        assert!(checked.contains_key(kind), "no {kind} checked: {checked:?}");
    }
    assert_eq!(checked["Kustomization"], 2, "one per cluster");
}

#[test]
fn every_rendered_directory_of_the_examples_builds() {
    if env::kubectl().is_none() {
        return;
    }
    for name in ["flux", "argo"] {
        for cluster in ["prod", "staging"] {
            let dir = examples().join(name).join("kyverno-policies").join(cluster);
            let built = env::kustomize_build(&dir);
            assert_eq!(
                built
                    .matches("insights.fairwinds.com/owned-by: Fairwinds Insights")
                    .count(),
                8,
                "{}",
                dir.display()
            );
        }
    }
}

#[test]
fn the_flux_kustomizations_point_at_their_cluster_with_prune_and_readiness() {
    for cluster in ["prod", "staging"] {
        let docs: Vec<_> = documents("flux")
            .into_iter()
            .filter(|(p, _)| *p == format!("clusters/{cluster}/kyverno-policies.yaml"))
            .map(|(_, d)| d)
            .collect();
        let ks = docs
            .iter()
            .find(|d| d["kind"] == "Kustomization")
            .expect("a Kustomization");
        let spec = &ks["spec"];
        assert_eq!(spec["path"], format!("./kyverno-policies/{cluster}"));
        assert_eq!(spec["prune"], true);
        assert_eq!(spec["wait"], true);
        assert_eq!(spec["dependsOn"][0]["name"], "kyverno");
        assert_eq!(spec["serviceAccountName"], "kyverno-policies");
        // The bootstrap's GitRepository, which has the deploy key; no
        // second GitRepository for the same repository without one.
        assert_eq!(spec["sourceRef"]["name"], "flux-system");
        // A readiness expression for every kind in the directory that
        // reports readiness, and for no other.
        let checked: BTreeSet<&str> = spec["healthCheckExprs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            checked,
            BTreeSet::from(["ClusterPolicy", "Policy", "ValidatingPolicy"])
        );
        assert!(
            !docs.iter().any(|d| d["kind"] == "GitRepository"),
            "the example writes no GitRepository"
        );
        for doc in &docs {
            assert_eq!(
                doc["metadata"]["annotations"]["insights.fairwinds.com/owned-by"],
                "Fairwinds Insights"
            );
        }
    }
}

/// (group, plural resource, scope) of every policy kind, from the
/// published Kyverno CRDs plus the four built-in admission policy kinds.
fn policy_resources(shared: &Path) -> BTreeSet<(String, String, String, String)> {
    let mut kinds = BTreeSet::new();
    for entry in std::fs::read_dir(shared.join("crds/kyverno")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let crd: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let spec = &crd["spec"];
        kinds.insert((
            spec["group"].as_str().unwrap().to_owned(),
            spec["names"]["plural"].as_str().unwrap().to_owned(),
            spec["names"]["kind"].as_str().unwrap().to_owned(),
            spec["scope"].as_str().unwrap().to_owned(),
        ));
    }
    for (plural, kind) in [
        ("validatingadmissionpolicies", "ValidatingAdmissionPolicy"),
        (
            "validatingadmissionpolicybindings",
            "ValidatingAdmissionPolicyBinding",
        ),
        ("mutatingadmissionpolicies", "MutatingAdmissionPolicy"),
        (
            "mutatingadmissionpolicybindings",
            "MutatingAdmissionPolicyBinding",
        ),
    ] {
        kinds.insert((
            "admissionregistration.k8s.io".into(),
            plural.into(),
            kind.into(),
            "Cluster".into(),
        ));
    }
    kinds
}

#[test]
fn the_cluster_role_grants_exactly_the_policy_kinds() {
    let Some(shared) = env::shared() else { return };
    let expected: BTreeSet<(String, String)> = policy_resources(&shared)
        .into_iter()
        .map(|(group, plural, _, _)| (group, plural))
        .collect();
    assert_eq!(expected.len(), 20, "the kinds table of product.md");
    for cluster in ["prod", "staging"] {
        let role = documents("flux")
            .into_iter()
            .find(|(p, d)| {
                p.starts_with(&format!("clusters/{cluster}/")) && d["kind"] == "ClusterRole"
            })
            .map(|(_, d)| d)
            .expect("a ClusterRole");
        let mut granted = BTreeSet::new();
        for rule in role["rules"].as_array().unwrap() {
            let verbs: Vec<&str> = rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert!(
                !verbs
                    .iter()
                    .any(|v| matches!(*v, "*" | "escalate" | "bind" | "impersonate")),
                "{verbs:?}"
            );
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    granted.insert((
                        group.as_str().unwrap().to_owned(),
                        resource.as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
        assert_eq!(granted, expected);
        // The in-cluster plugin's RBAC has this one wrong.
        assert!(granted.contains(&("policies.kyverno.io".into(), "validatingpolicies".into())));
        assert!(!granted.iter().any(|(g, _)| g == "wgpolicyk8s.io"));
    }
}

#[test]
fn the_app_project_admits_only_policy_kinds_at_their_scope() {
    let Some(shared) = env::shared() else { return };
    let (_, project) = documents("argo")
        .into_iter()
        .find(|(_, d)| d["kind"] == "AppProject")
        .expect("an AppProject");
    let list = |key: &str| -> BTreeSet<(String, String)> {
        project["spec"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["group"].as_str().unwrap().to_owned(),
                    e["kind"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let expected = |scope: &str| -> BTreeSet<(String, String)> {
        policy_resources(&shared)
            .into_iter()
            .filter(|(_, _, _, s)| s == scope)
            .map(|(group, _, kind, _)| (group, kind))
            .collect()
    };
    assert_eq!(list("clusterResourceWhitelist"), expected("Cluster"));
    assert_eq!(list("namespaceResourceWhitelist"), expected("Namespaced"));
    assert_eq!(
        project["spec"]["sourceRepos"],
        serde_json::json!(["https://github.com/acme/kyverno-policies.git"])
    );

    let (_, appset) = documents("argo")
        .into_iter()
        .find(|(_, d)| d["kind"] == "ApplicationSet")
        .expect("an ApplicationSet");
    let template = &appset["spec"]["template"];
    assert_eq!(
        template["metadata"]["annotations"]["argocd.argoproj.io/compare-options"],
        "ServerSideDiff=true"
    );
    let sync = &template["spec"]["syncPolicy"];
    assert_eq!(sync["automated"]["prune"], true);
    assert_eq!(sync["automated"]["selfHeal"], true);
    assert_eq!(
        sync["syncOptions"],
        serde_json::json!(["ServerSideApply=true"])
    );
    assert_eq!(template["spec"]["project"], project["metadata"]["name"]);
    // The generator finds exactly the rendered cluster directories.
    let pattern = appset["spec"]["generators"][0]["git"]["directories"][0]["path"]
        .as_str()
        .unwrap();
    assert_eq!(pattern, "kyverno-policies/*");
    let dirs: Vec<_> = std::fs::read_dir(examples().join("argo/kyverno-policies"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(dirs, ["prod", "staging"]);
}

/// The variants the examples do not show (an Application per cluster, a
/// destination by server, a GitRepository with a secret, a namespaced
/// dependency) validate as well.
#[test]
fn every_variant_of_the_consumer_objects_validates() {
    let Some(shared) = env::shared() else { return };
    let flux = Schemas::load(&shared.join("crds/flux")).unwrap();
    let argo = Schemas::load(&shared.join("crds/argo")).unwrap();
    let repo = tempfile::tempdir().unwrap();
    let status = Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .current_dir(repo.path())
        .status()
        .unwrap();
    assert!(status.success());
    let out = repo.path().join("policies/prod");
    let response = examples().join("insights/response.yaml");
    let variants: [&[&str]; 2] = [
        &[
            "--flux",
            "--flux-source",
            "infra/policies",
            "--flux-source-url",
            "ssh://git@example.com/acme/policies.git",
            "--flux-source-secret",
            "policies-deploy-key",
            "--flux-depends-on",
            "infra/kyverno",
            "--flux-depends-on",
            "kyverno-crds",
            "--flux-interval",
            "1h30m",
            "--flux-timeout",
            "90s",
            "--argo",
            "--argo-repo-url",
            "https://git.example.com/policies.git",
            "--argo-destination-server",
            "https://prod.example.com:6443",
            "--argo-revision",
            "main",
            "--argo-project",
            "policies",
        ],
        &[
            "--argo",
            "--argo-repo-url",
            "https://git.example.com/policies.git",
            "--argo-destination-name",
            "cluster-{cluster}",
            "--argo-dir",
            "deploy/argocd",
        ],
    ];
    let mut kinds = BTreeSet::new();
    for flags in variants {
        let mut args = vec![
            "render",
            "--from-file",
            response.to_str().unwrap(),
            "--cluster",
            "prod",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        let r = crate::support::cli::run(&args);
        assert_eq!(r.code, 0, "{flags:?}: {}", r.stderr);
    }
    for (path, bytes) in snapshot_dir(repo.path()) {
        if path.starts_with("policies/") || path.starts_with(".git") {
            continue;
        }
        let text = String::from_utf8(bytes).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
            let doc = serde_json::to_value(value).unwrap();
            let schemas = match api_group(&doc) {
                "argoproj.io" => &argo,
                g if g.ends_with(".fluxcd.io") => &flux,
                _ => continue,
            };
            let problems = schemas.check_object(&doc).expect("a CRD for it");
            assert!(problems.is_empty(), "{path}: {problems:#?}");
            kinds.insert(doc["kind"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        kinds,
        BTreeSet::from(
            [
                "AppProject",
                "Application",
                "GitRepository",
                "Kustomization"
            ]
            .map(String::from)
        )
    );
}
