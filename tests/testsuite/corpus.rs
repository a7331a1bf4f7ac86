//! The real corpus in `../shared/corpus/`: every response renders, every
//! object survives the trip unchanged (checked by two independent YAML
//! parsers), `kubectl kustomize` builds the directory into the same objects,
//! and every Kyverno object validates against its published CRD schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::cli::{run, snapshot_dir};
use crate::support::env;
use insights_policy_render::pipeline::validate::{OWNED_BY_KEY, OWNED_BY_VALUE};
use serde_yaml::Value;

type Key = (String, String, String, String);

/// The fields the renderer promises to drop from `metadata` (issue: render core).
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
];

/// The namespaced kinds (product.md); a namespace on any other kind is dropped.
const NAMESPACED: &[&str] = &[
    "Policy",
    "CleanupPolicy",
    "PolicyException",
    "NamespacedValidatingPolicy",
    "NamespacedImageValidatingPolicy",
    "NamespacedMutatingPolicy",
    "NamespacedGeneratingPolicy",
    "NamespacedDeletingPolicy",
];

fn responses(shared: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(shared.join("corpus/insights"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected the three corpus responses, found {files:?}"
    );
    files
}

fn key_of(v: &Value) -> Key {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let api = s(v.get("apiVersion"));
    let group = api
        .rsplit_once('/')
        .map_or(String::new(), |(g, _)| g.to_string());
    let md = v.get("metadata");
    (
        group,
        s(v.get("kind")),
        s(md.and_then(|m| m.get("namespace"))),
        s(md.and_then(|m| m.get("name"))),
    )
}

/// What the renderer promises to do to a source document, done here
/// independently on serde_yaml's tree.
fn expected(mut v: Value) -> Value {
    let cluster_scoped = !NAMESPACED.contains(&v["kind"].as_str().unwrap());
    let map = v.as_mapping_mut().unwrap();
    map.remove("status");
    let md = map.get_mut("metadata").unwrap().as_mapping_mut().unwrap();
    for f in SERVER_METADATA {
        md.remove(*f);
    }
    if cluster_scoped {
        md.remove("namespace");
    }
    if !md.get("annotations").is_some_and(Value::is_mapping) {
        md.insert("annotations".into(), Value::Mapping(Default::default()));
    }
    let ann = md.get_mut("annotations").unwrap().as_mapping_mut().unwrap();
    ann.remove("kubectl.kubernetes.io/last-applied-configuration");
    ann.insert(OWNED_BY_KEY.into(), OWNED_BY_VALUE.into());
    v
}

fn serde_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn by_key(docs: Vec<Value>) -> BTreeMap<Key, Value> {
    docs.into_iter().map(|d| (key_of(&d), d)).collect()
}

fn rendered_objects(files: &BTreeMap<String, Vec<u8>>) -> Vec<(String, String)> {
    files
        .iter()
        .filter(|(name, _)| *name != "kustomization.yaml")
        .map(|(name, bytes)| (name.clone(), String::from_utf8(bytes.clone()).unwrap()))
        .collect()
}

fn render_dir(input: &Path, out: &Path) -> BTreeMap<String, Vec<u8>> {
    let r = run(&[
        "render",
        "--from-file",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}: {}", input.display(), r.stderr);
    snapshot_dir(out)
}

#[test]
fn every_object_round_trips_through_serde_yaml() {
    let Some(shared) = env::shared() else { return };
    for response in responses(&shared) {
        let tmp = tempfile::tempdir().unwrap();
        let files = render_dir(&response, &tmp.path().join("out"));
        let source = serde_docs(&std::fs::read_to_string(&response).unwrap());
        let source = by_key(source.into_iter().map(expected).collect());
        let rendered = by_key(
            rendered_objects(&files)
                .iter()
                .flat_map(|(_, t)| serde_docs(t))
                .collect(),
        );
        assert_eq!(source.len(), rendered.len(), "{}", response.display());
        for (key, doc) in source {
            assert_eq!(
                rendered.get(&key),
                Some(&doc),
                "{key:?} in {}",
                response.display()
            );
        }
    }
}

/// yaml-rust2's maps keep order and compare in order, so this also checks
/// that every key stays where it was received.
mod order {
    use yaml_rust2::{Yaml, YamlLoader};

    use super::*;

    #[derive(Debug, PartialEq)]
    pub enum Norm {
        Null,
        Bool(bool),
        Int(i64),
        Float(u64),
        Str(String),
        Seq(Vec<Norm>),
        Map(Vec<(Norm, Norm)>),
    }

    fn float(s: &str) -> u64 {
        let f = match s.trim_start_matches('+').to_ascii_lowercase().as_str() {
            ".inf" => f64::INFINITY,
            "-.inf" => f64::NEG_INFINITY,
            ".nan" => f64::NAN,
            other => other.parse().unwrap(),
        };
        if f.is_nan() {
            u64::MAX
        } else {
            f.to_bits()
        }
    }

    pub fn norm(y: &Yaml) -> Norm {
        match y {
            Yaml::Null => Norm::Null,
            Yaml::Boolean(b) => Norm::Bool(*b),
            Yaml::Integer(i) => Norm::Int(*i),
            Yaml::Real(s) => Norm::Float(float(s)),
            Yaml::String(s) => Norm::Str(s.clone()),
            Yaml::Array(a) => Norm::Seq(a.iter().map(norm).collect()),
            Yaml::Hash(h) => Norm::Map(h.iter().map(|(k, v)| (norm(k), norm(v))).collect()),
            other => panic!("unexpected node {other:?}"),
        }
    }

    pub fn expected(mut y: Yaml) -> Yaml {
        let kind = y["kind"].as_str().unwrap().to_string();
        let Yaml::Hash(map) = &mut y else {
            panic!("not a mapping")
        };
        map.remove(&Yaml::String("status".into()));
        let Some(Yaml::Hash(md)) = map.get_mut(&Yaml::String("metadata".into())) else {
            panic!("no metadata")
        };
        for f in SERVER_METADATA {
            md.remove(&Yaml::String((*f).into()));
        }
        if !NAMESPACED.contains(&kind.as_str()) {
            md.remove(&Yaml::String("namespace".into()));
        }
        let ann_key = Yaml::String("annotations".into());
        if !matches!(md.get(&ann_key), Some(Yaml::Hash(_))) {
            md.remove(&ann_key);
            md.insert(ann_key.clone(), Yaml::Hash(Default::default()));
        }
        let Some(Yaml::Hash(ann)) = md.get_mut(&ann_key) else {
            unreachable!()
        };
        ann.remove(&Yaml::String(
            "kubectl.kubernetes.io/last-applied-configuration".into(),
        ));
        let owner = Yaml::String(OWNED_BY_KEY.into());
        match ann.get_mut(&owner) {
            Some(v) => *v = Yaml::String(OWNED_BY_VALUE.into()),
            None => {
                ann.insert(owner, Yaml::String(OWNED_BY_VALUE.into()));
            }
        }
        y
    }

    pub fn docs(text: &str) -> Vec<Yaml> {
        YamlLoader::load_from_str(text)
            .unwrap()
            .into_iter()
            .filter(|y| !y.is_null())
            .collect()
    }
}

#[test]
fn every_object_round_trips_through_yaml_rust2_in_order() {
    let Some(shared) = env::shared() else { return };
    for response in responses(&shared) {
        let tmp = tempfile::tempdir().unwrap();
        let files = render_dir(&response, &tmp.path().join("out"));
        let source_text = std::fs::read_to_string(&response).unwrap();
        let mut source: Vec<order::Norm> = order::docs(&source_text)
            .into_iter()
            .map(|y| order::norm(&order::expected(y)))
            .collect();
        let mut rendered: Vec<order::Norm> = rendered_objects(&files)
            .iter()
            .flat_map(|(_, t)| order::docs(t))
            .map(|y| order::norm(&y))
            .collect();
        assert_eq!(source.len(), rendered.len());
        // Files are sorted by name, the response is not: compare as multisets.
        let key = |n: &order::Norm| format!("{n:?}");
        source.sort_by_key(key);
        rendered.sort_by_key(key);
        for (s, r) in source.iter().zip(&rendered) {
            assert_eq!(s, r, "in {}", response.display());
        }
    }
}

#[test]
fn kubectl_kustomize_builds_the_same_objects() {
    let Some(shared) = env::shared() else { return };
    let Some(_) = env::kubectl() else { return };
    for response in responses(&shared) {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let files = render_dir(&response, &out);
        let built = by_key(serde_docs(&env::kustomize_build(&out)));
        let rendered = by_key(
            rendered_objects(&files)
                .iter()
                .flat_map(|(_, t)| serde_docs(t))
                .collect(),
        );
        assert_eq!(built.len(), rendered.len(), "{}", response.display());
        assert_eq!(built, rendered, "{}", response.display());
        // And `--stdout` prints exactly those objects.
        let preview = run(&[
            "render",
            "--from-file",
            response.to_str().unwrap(),
            "--stdout",
        ]);
        assert_eq!(by_key(serde_docs(&preview.stdout)), built);
    }
}

/// The `openAPIV3Schema` of every served version of every CRD in `dir`,
/// keyed by (group, version, kind), turned into JSON Schema: the Kubernetes
/// `nullable` keyword becomes a `null` type, the `x-kubernetes-*` extensions
/// are left for the validator to ignore.
fn crd_schemas(dir: &Path) -> BTreeMap<(String, String, String), serde_json::Value> {
    let mut schemas = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for crd in serde_docs(&std::fs::read_to_string(&path).unwrap()) {
            let crd: serde_json::Value = serde_json::to_value(crd).unwrap();
            let group = crd["spec"]["group"].as_str().unwrap().to_string();
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
            for version in crd["spec"]["versions"].as_array().unwrap() {
                let mut schema = version["schema"]["openAPIV3Schema"].clone();
                insights_policy_render::pipeline::schema::crd_schema_to_json_schema(&mut schema);
                schemas.insert(
                    (
                        group.clone(),
                        version["name"].as_str().unwrap().to_string(),
                        kind.clone(),
                    ),
                    schema,
                );
            }
        }
    }
    schemas
}

#[test]
fn rendered_kyverno_objects_validate_against_their_crds() {
    let Some(shared) = env::shared() else { return };
    let schemas = crd_schemas(&shared.join("crds/kyverno"));
    assert!(
        schemas.len() >= 16,
        "expected the Kyverno CRDs, found {}",
        schemas.len()
    );
    let mut invalid = Vec::new();
    let mut checked = 0;
    for response in responses(&shared) {
        let tmp = tempfile::tempdir().unwrap();
        let files = render_dir(&response, &tmp.path().join("out"));
        for (file, text) in rendered_objects(&files) {
            let doc: serde_json::Value = serde_json::to_value(serde_docs(&text).remove(0)).unwrap();
            let (group, version) = doc["apiVersion"].as_str().unwrap().split_once('/').unwrap();
            if group == "admissionregistration.k8s.io" {
                continue; // built into the API server: no CRD to check against
            }
            let kind = doc["kind"].as_str().unwrap();
            let schema = schemas
                .get(&(group.to_string(), version.to_string(), kind.to_string()))
                .unwrap_or_else(|| panic!("no CRD schema for {group}/{version} {kind}"));
            let validator = jsonschema::validator_for(schema).unwrap();
            checked += 1;
            if !validator.is_valid(&doc) {
                invalid.push(file);
            }
        }
    }
    assert!(checked > 500, "checked only {checked} objects");
    // The one published policy the corpus README documents as invalid,
    // passed through unchanged: refusing it is the job of a schema check.
    assert_eq!(invalid, ["clusterpolicy_schedule-based-quotas.yaml"]);
}

#[test]
fn the_whole_library_as_one_response_is_refused_for_duplicates() {
    let Some(shared) = env::shared() else { return };
    let files = env::library_files(&shared);
    assert!(
        files.len() > 500,
        "found only {} library files",
        files.len()
    );
    let mut stream = String::new();
    for f in &files {
        stream.push_str("---\n");
        stream.push_str(&std::fs::read_to_string(f).unwrap());
        stream.push('\n');
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("library.yaml");
    std::fs::write(&input, stream).unwrap();
    let out = tmp.path().join("out");
    let r = run(&[
        "render",
        "--from-file",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let problems: Vec<_> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("  document"))
        .collect();
    assert!(!problems.is_empty(), "{}", r.stderr);
    assert!(
        problems
            .iter()
            .all(|l| l.contains("is already defined by document")),
        "only duplicates are wrong with the library: {}",
        r.stderr
    );
    assert!(!out.exists(), "nothing was written");
}
