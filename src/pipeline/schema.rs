//! `--crd-dir`: every rendered object checked against the `openAPIV3Schema`
//! of its kind and version in the user's own CRDs (those of the Kyverno
//! version their clusters run), so an object the API server would reject
//! fails the render, not the reconciliation.
//!
//! A CRD schema is OpenAPI v3 with Kubernetes extensions; as JSON Schema it
//! needs one translation (`nullable: true` allows `null`), and the
//! `x-kubernetes-*` keywords are left to the validator to ignore, as it does
//! with any unknown keyword.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::model::identity::Identity;
use crate::pipeline::render::RenderedTree;
use crate::yaml::{Node, Scalar, Value};

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{} holds no CustomResourceDefinition with an openAPIV3Schema", path.display())]
    Empty { path: PathBuf },
    #[error(
        "the API server would reject {count} field(s) of the rendered objects (--crd-dir):{list}"
    )]
    Invalid { count: usize, list: String },
}

type Key = (String, String, String);

/// The CRDs of `--crd-dir`, indexed by (group, version, kind). A schema is
/// compiled the first time an object of its kind and version is checked,
/// and kept for the rest of the run: compiled, the Kyverno CRDs take close
/// to a gigabyte (`ClusterPolicy` alone several hundred megabytes), and a
/// response uses a few of their thirty-odd versions.
pub struct Schemas {
    /// Where each version's schema is: the file, and the CRD's position
    /// among the documents of that file.
    index: BTreeMap<Key, (PathBuf, usize)>,
    compiled: Mutex<BTreeMap<Key, Arc<jsonschema::Validator>>>,
    groups: Vec<String>,
}

/// What the index needs of a CRD; the schemas themselves are skipped
/// (`IgnoredAny`), so indexing builds no tree of them.
#[derive(serde::Deserialize)]
struct CrdHead {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    spec: Option<CrdSpec>,
}

#[derive(serde::Deserialize)]
struct CrdSpec {
    group: Option<String>,
    names: Option<CrdNames>,
    #[serde(default)]
    versions: Vec<CrdVersion>,
}

#[derive(serde::Deserialize)]
struct CrdNames {
    kind: Option<String>,
}

#[derive(serde::Deserialize)]
struct CrdVersion {
    name: Option<String>,
    schema: Option<CrdValidation>,
}

#[derive(serde::Deserialize)]
struct CrdValidation {
    #[serde(rename = "openAPIV3Schema")]
    open_api_v3_schema: Option<serde::de::IgnoredAny>,
}

fn read_err(path: &Path, message: String) -> SchemaError {
    SchemaError::Read {
        path: path.to_owned(),
        message,
    }
}

impl Schemas {
    /// Reads every `.yaml`/`.yml`/`.json` file of `dir` and indexes the CRDs
    /// in it; nothing is compiled yet.
    pub fn load(dir: &Path) -> Result<Schemas, SchemaError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| read_err(dir, e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            })
            .collect();
        files.sort();
        let mut index = BTreeMap::new();
        let mut groups = Vec::new();
        for path in files {
            let text =
                std::fs::read_to_string(&path).map_err(|e| read_err(&path, e.to_string()))?;
            for (position, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
                let head: Option<CrdHead> = serde::Deserialize::deserialize(doc)
                    .map_err(|e| read_err(&path, e.to_string()))?;
                let Some(CrdHead {
                    kind,
                    spec: Some(spec),
                }) = head
                else {
                    continue;
                };
                if kind != "CustomResourceDefinition" {
                    continue;
                }
                let (Some(group), Some(kind)) = (spec.group, spec.names.and_then(|n| n.kind))
                else {
                    continue;
                };
                for version in spec.versions {
                    let (Some(name), Some(_)) = (
                        version.name,
                        version.schema.and_then(|s| s.open_api_v3_schema),
                    ) else {
                        continue;
                    };
                    index.insert(
                        (group.clone(), name, kind.clone()),
                        (path.clone(), position),
                    );
                    if !groups.contains(&group) {
                        groups.push(group.clone());
                    }
                }
            }
        }
        if index.is_empty() {
            return Err(SchemaError::Empty {
                path: dir.to_owned(),
            });
        }
        Ok(Schemas {
            index,
            compiled: Mutex::new(BTreeMap::new()),
            groups,
        })
    }

    /// The compiled schema of `key`, compiled now if it was not yet;
    /// `Ok(None)` when these CRDs do not serve that version.
    fn validator(&self, key: &Key) -> Result<Option<Arc<jsonschema::Validator>>, SchemaError> {
        let Some((path, position)) = self.index.get(key) else {
            return Ok(None);
        };
        let mut compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = compiled.get(key) {
            return Ok(Some(Arc::clone(v)));
        }
        let (group, version, kind) = key;
        let text = std::fs::read_to_string(path).map_err(|e| read_err(path, e.to_string()))?;
        let doc = serde_yaml::Deserializer::from_str(&text)
            .nth(*position)
            .ok_or_else(|| read_err(path, "the file changed while it was read".into()))?;
        let mut crd: serde_json::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| read_err(path, e.to_string()))?;
        drop(text);
        let mut schema = crd["spec"]["versions"]
            .as_array_mut()
            .and_then(|versions| versions.iter_mut().find(|v| v["name"] == version.as_str()))
            .and_then(|v| v["schema"].get_mut("openAPIV3Schema"))
            .map(serde_json::Value::take)
            .ok_or_else(|| read_err(path, "the file changed while it was read".into()))?;
        drop(crd);
        crd_schema_to_json_schema(&mut schema);
        // Draft 4: OpenAPI 3.0's schema object is JSON Schema draft 4 with
        // extensions (`exclusiveMaximum` is a boolean there, as in draft
        // 4), and compiled as draft 4 the ClusterPolicy schema takes a
        // fifth of the memory and time it takes as draft 2020-12 (the
        // default for a schema without `$schema`): 160 MB and 0.3 s
        // against 714 MB and 1.8 s (BENCHMARKS.md).
        let validator = jsonschema::draft4::new(&schema).map_err(|e| {
            read_err(
                path,
                format!("the schema of {kind} {group}/{version} does not compile: {e}"),
            )
        })?;
        let validator = Arc::new(validator);
        compiled.insert(key.clone(), Arc::clone(&validator));
        Ok(Some(validator))
    }

    /// Every object of `tree` whose group has CRDs here is checked; kinds
    /// of other groups (the built-in admission policies) are the API
    /// server's own and pass. A version the CRDs do not serve is an error.
    pub fn check(&self, tree: &RenderedTree) -> Result<(), SchemaError> {
        let mut problems = Vec::new();
        for (file, rendered) in &tree.files {
            let Some(object) = &rendered.object else {
                continue;
            };
            let identity = &object.identity;
            if !self.groups.iter().any(|g| g == identity.kind.group()) {
                continue;
            }
            let document = rendered
                .document
                .as_ref()
                .expect("--crd-dir renders with Keep::Documents");
            let doc = to_json(document);
            let version = doc["apiVersion"]
                .as_str()
                .and_then(|a| a.split_once('/'))
                .map_or("", |(_, v)| v)
                .to_owned();
            let key = (
                identity.kind.group().to_owned(),
                version.clone(),
                identity.kind.kind().to_owned(),
            );
            let Some(validator) = self.validator(&key)? else {
                problems.push(format!(
                    "{}: apiVersion: version {version:?} of {} is not served by the CRDs in --crd-dir",
                    describe(identity, file),
                    identity.kind
                ));
                continue;
            };
            for error in validator.iter_errors(&doc) {
                let field = error.instance_path.to_string();
                let field = field.trim_start_matches('/').replace('/', ".");
                problems.push(format!(
                    "{}: {}: {}",
                    describe(identity, file),
                    if field.is_empty() {
                        "(object)".to_string()
                    } else {
                        field
                    },
                    error
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            // Every problem, however many (the README promises the list).
            let list: String = problems.iter().map(|p| format!("\n  {p}")).collect();
            Err(SchemaError::Invalid {
                count: problems.len(),
                list,
            })
        }
    }
}

impl Schemas {
    /// Checks any object (a Flux or Argo CD one, say) against the schema of
    /// its apiVersion and kind: `None` when these CRDs do not define it,
    /// else the problems found, each naming the field.
    pub fn check_object(&self, doc: &serde_json::Value) -> Option<Vec<String>> {
        let (group, version) = doc["apiVersion"].as_str()?.split_once('/')?;
        let key = (
            group.to_owned(),
            version.to_owned(),
            doc["kind"].as_str()?.to_owned(),
        );
        let validator = self.validator(&key).ok()??;
        Some(
            validator
                .iter_errors(doc)
                .map(|e| format!("{}: {e}", e.instance_path))
                .collect(),
        )
    }
}

/// A document as the API server receives it: JSON, as kubectl and
/// kustomize turn YAML into it (keys as strings; integers beyond 64 bits
/// as floats, as Go's decoder makes them).
fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as Json;
    match &node.value {
        Value::Scalar(Scalar::Null) => Json::Null,
        Value::Scalar(Scalar::Bool(b)) => Json::Bool(*b),
        Value::Scalar(Scalar::Int(i)) => i64::try_from(*i)
            .map(Json::from)
            .or_else(|_| u64::try_from(*i).map(Json::from))
            .unwrap_or_else(|_| Json::from(*i as f64)),
        Value::Scalar(Scalar::Float(f)) => Json::from(*f),
        Value::Scalar(Scalar::Str(s)) => Json::String(s.clone()),
        Value::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match (&k.value, to_json(k)) {
                        (_, Json::String(s)) => s,
                        (_, other) => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

fn describe(identity: &Identity, file: &str) -> String {
    format!("{identity} ({file})")
}

/// Turns a CRD's `openAPIV3Schema` into JSON Schema: `nullable: true`
/// becomes a `null` type; the `x-kubernetes-*` keywords are left for the
/// validator to ignore.
pub fn crd_schema_to_json_schema(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(map) => {
            if map.get("nullable") == Some(&serde_json::Value::Bool(true)) {
                if let Some(serde_json::Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), serde_json::json!([t, "null"]));
                }
            }
            map.values_mut().for_each(crd_schema_to_json_schema);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(crd_schema_to_json_schema),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiled, the Kyverno CRDs take close to a gigabyte: only the
    /// versions a response uses are compiled, once each.
    #[test]
    fn only_the_versions_in_use_are_compiled_once_each() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/crds/kyverno");
        if !dir.is_dir() {
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                panic!("{} is required in CI", dir.display());
            }
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED: {} is missing", dir.display());
            return;
        }
        let schemas = Schemas::load(&dir).unwrap();
        assert!(schemas.index.len() > 10, "every version is indexed");
        assert_eq!(
            schemas.compiled.lock().unwrap().len(),
            0,
            "none compiled yet"
        );
        let response = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: a}\nspec: {rules: []}\n---\napiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: b}\nspec: {rules: []}\n---\napiVersion: kyverno.io/v2\nkind: PolicyException\nmetadata: {name: e, namespace: x}\nspec: {exceptions: [], match: {}}\n";
        let (tree, _) = crate::pipeline::render_response_keeping(
            response.as_bytes(),
            crate::pipeline::render::Keep::Documents,
        )
        .unwrap();
        schemas.check(&tree).unwrap();
        schemas.check(&tree).unwrap();
        let compiled: Vec<Key> = schemas.compiled.lock().unwrap().keys().cloned().collect();
        assert_eq!(
            compiled,
            [
                ("kyverno.io".into(), "v1".into(), "ClusterPolicy".into()),
                ("kyverno.io".into(), "v2".into(), "PolicyException".into()),
            ]
        );
    }
}
