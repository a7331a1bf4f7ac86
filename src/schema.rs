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

use crate::identity::Identity;
use crate::render::RenderedTree;

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

/// Compiled schemas by (group, version, kind).
pub struct Schemas {
    validators: BTreeMap<Key, jsonschema::Validator>,
    groups: Vec<String>,
}

impl Schemas {
    /// Reads every `.yaml`/`.yml`/`.json` file of `dir` and keeps the CRDs in it.
    pub fn load(dir: &Path) -> Result<Schemas, SchemaError> {
        let read_err = |path: &Path, message: String| SchemaError::Read {
            path: path.to_owned(),
            message,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| read_err(dir, e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            })
            .collect();
        files.sort();
        let mut validators = BTreeMap::new();
        let mut groups = Vec::new();
        for path in files {
            let text =
                std::fs::read_to_string(&path).map_err(|e| read_err(&path, e.to_string()))?;
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value: serde_json::Value = serde::Deserialize::deserialize(doc)
                    .map_err(|e| read_err(&path, e.to_string()))?;
                if value["kind"] != "CustomResourceDefinition" {
                    continue;
                }
                let spec = &value["spec"];
                let (Some(group), Some(kind)) =
                    (spec["group"].as_str(), spec["names"]["kind"].as_str())
                else {
                    continue;
                };
                for version in spec["versions"].as_array().into_iter().flatten() {
                    let (Some(name), Some(schema)) = (
                        version["name"].as_str(),
                        version["schema"].get("openAPIV3Schema"),
                    ) else {
                        continue;
                    };
                    let mut schema = schema.clone();
                    crd_schema_to_json_schema(&mut schema);
                    let validator = jsonschema::validator_for(&schema).map_err(|e| {
                        read_err(
                            &path,
                            format!("the schema of {kind} {group}/{name} does not compile: {e}"),
                        )
                    })?;
                    validators.insert(
                        (group.to_owned(), name.to_owned(), kind.to_owned()),
                        validator,
                    );
                    if !groups.iter().any(|g| g == group) {
                        groups.push(group.to_owned());
                    }
                }
            }
        }
        if validators.is_empty() {
            return Err(SchemaError::Empty {
                path: dir.to_owned(),
            });
        }
        Ok(Schemas { validators, groups })
    }

    /// Every object of `tree` whose group has CRDs here is checked; kinds
    /// of other groups (the built-in admission policies) are the API
    /// server's own and pass. A version the CRDs do not serve is an error.
    pub fn check(&self, tree: &RenderedTree) -> Result<(), SchemaError> {
        let mut problems = Vec::new();
        for (file, rendered) in &tree.files {
            let Some(identity) = &rendered.identity else {
                continue;
            };
            if !self.groups.iter().any(|g| g == identity.kind.group()) {
                continue;
            }
            let doc: serde_json::Value =
                match serde_yaml::from_slice::<serde_yaml::Value>(&rendered.bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string()))
                {
                    Ok(v) => v,
                    Err(e) => {
                        problems.push(format!(
                            "{}: cannot be read back: {e}",
                            describe(identity, file)
                        ));
                        continue;
                    }
                };
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
            let Some(validator) = self.validators.get(&key) else {
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
            const SHOWN: usize = 20;
            let mut list: String = problems
                .iter()
                .take(SHOWN)
                .map(|p| format!("\n  {p}"))
                .collect();
            if problems.len() > SHOWN {
                list.push_str(&format!("\n  ... and {} more", problems.len() - SHOWN));
            }
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
        let validator = self.validators.get(&key)?;
        Some(
            validator
                .iter_errors(doc)
                .map(|e| format!("{}: {e}", e.instance_path))
                .collect(),
        )
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
