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
/// and kept for the rest of the run: a response uses a few of the Kyverno
/// CRDs' thirty-odd versions, and reading one means parsing its whole CRD
/// file (1.4 MB of YAML for `ClusterPolicy`).
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
        let schema = read_schema(path, *position, version)?;
        let validator = compile(schema).map_err(|e| {
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

/// The `openAPIV3Schema` of `version` in the CRD at `position` in `path`,
/// as JSON Schema. Only that version's schema is built as a value: a CRD
/// repeats its whole schema in each of its versions (two or three in
/// Kyverno's), and the others are only skipped over.
fn read_schema(
    path: &Path,
    position: usize,
    version: &str,
) -> Result<serde_json::Value, SchemaError> {
    let text = std::fs::read_to_string(path).map_err(|e| read_err(path, e.to_string()))?;
    let doc = serde_yaml::Deserializer::from_str(&text)
        .nth(position)
        .ok_or_else(|| read_err(path, "the file changed while it was read".into()))?;
    let seed = Field("spec", Field("versions", Versions(version)));
    let mut schema = serde::de::DeserializeSeed::deserialize(seed, doc)
        .map_err(|e| read_err(path, e.to_string()))?
        .flatten()
        .flatten()
        .ok_or_else(|| read_err(path, "the file changed while it was read".into()))?;
    crd_schema_to_json_schema(&mut schema);
    Ok(schema)
}

/// Reads the value of one key of a map with `S`, skipping the others;
/// `None` when the key is missing or the value is no map.
#[derive(Clone, Copy)]
struct Field<S>(&'static str, S);

impl<'de, S: serde::de::DeserializeSeed<'de> + Copy> serde::de::DeserializeSeed<'de> for Field<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: serde::de::DeserializeSeed<'de> + Copy> serde::de::Visitor<'de> for Field<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a map")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.0 {
                // The last of repeated keys wins, as in a `serde_json::Value`.
                found = Some(map.next_value_seed(self.1)?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    // Anything else (null, a string...) is not what is looked for.
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// `spec.versions`: the `openAPIV3Schema` of the first entry named so.
#[derive(Clone, Copy)]
struct Versions<'v>(&'v str);

impl<'de> serde::de::DeserializeSeed<'de> for Versions<'_> {
    type Value = Option<serde_json::Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Versions<'_> {
    type Value = Option<serde_json::Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a list of versions")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(schema) = seq.next_element_seed(Version(self.0))? {
            if found.is_none() {
                found = schema;
            }
        }
        Ok(found)
    }
}

/// One entry of `spec.versions`: its `schema.openAPIV3Schema` if it is
/// named so. `name` comes before `schema` in the CRDs `controller-gen`
/// writes, so the schema of another version is skipped without being
/// built; when it comes after, the schema is built and then dropped.
#[derive(Clone, Copy)]
struct Version<'v>(&'v str);

impl<'de> serde::de::DeserializeSeed<'de> for Version<'_> {
    type Value = Option<serde_json::Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Version<'_> {
    type Value = Option<serde_json::Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a version")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut name: Option<serde_json::Value> = None;
        let mut schema = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => name = Some(map.next_value()?),
                "schema" if name.as_ref().is_some_and(|n| n != self.0) => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                "schema" => {
                    let seed = Field("openAPIV3Schema", std::marker::PhantomData);
                    schema = map.next_value_seed(seed)?;
                }
                _ => drop(map.next_value::<serde::de::IgnoredAny>()?),
            }
        }
        Ok(schema.filter(|_| name.is_some_and(|n| n == self.0)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Compiles a CRD's schema (already through [`crd_schema_to_json_schema`])
/// as JSON Schema draft 4: OpenAPI 3.0's schema object is draft 4 with
/// extensions (`exclusiveMaximum` is a boolean there, as in draft 4).
///
/// The schema is compiled as the target of a `$ref` rather than as the root,
/// which skips one step: checking the schema itself against the draft 4
/// meta-schema. That check, not the compiled tree, was the cost of
/// `--crd-dir`: `jsonschema` checks with one process-wide meta-schema
/// validator whose recursive `$ref`s are compiled lazily, one more copy for
/// each new shape of nesting they meet, and never freed; the ClusterPolicy
/// v1 schema left 128 MB there and took most of the time, while compiled it
/// takes 2 MB (BENCHMARKS.md). The tree compiled and the errors an object
/// gets are the same either way (the tests below compare them); what the
/// meta-schema would add about the CRD itself, the API server checked when
/// it accepted the CRD, and a keyword the compiler cannot use (a `pattern`
/// that is no regex, a `minLength` that is no integer) still fails here.
fn compile(schema: serde_json::Value) -> Result<jsonschema::Validator, String> {
    const URI: &str = "urn:insights-policy-render:crd";
    jsonschema::draft4::options()
        .with_resource(URI, jsonschema::Draft::Draft4.create_resource(schema))
        .build(&serde_json::json!({ "$ref": URI }))
        .map_err(|e| e.to_string())
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

    /// `../shared/crds/kyverno`, or `None` (and a note) outside CI when it
    /// is missing.
    fn kyverno_crds() -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/crds/kyverno");
        if dir.is_dir() {
            return Some(dir);
        }
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("{} is required in CI", dir.display());
        }
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {} is missing", dir.display());
        None
    }

    /// The schemas of `--crd-dir` compiled the way they were before
    /// `compile` (`jsonschema::draft4::new` on the schema itself, after the
    /// meta-schema check), for comparison.
    struct Before<'a>(&'a Schemas, BTreeMap<Key, jsonschema::Validator>);

    fn key_of(doc: &serde_json::Value) -> Key {
        let (group, version) = doc["apiVersion"].as_str().unwrap().split_once('/').unwrap();
        let kind = doc["kind"].as_str().unwrap();
        (group.to_owned(), version.to_owned(), kind.to_owned())
    }

    impl Before<'_> {
        /// What `doc` gets from the compiled schema of its kind, as `check`
        /// reports it (field, message), next to what it got before: they
        /// must agree exactly, in content and order.
        fn errors_now_and_before(&mut self, doc: &serde_json::Value) -> [Vec<String>; 2] {
            let key = key_of(doc);
            let now = self.0.validator(&key).unwrap().expect("a CRD for it");
            let before = self.1.entry(key.clone()).or_insert_with(|| {
                let (path, position) = &self.0.index[&key];
                jsonschema::draft4::new(&read_schema(path, *position, &key.1).unwrap())
                    .expect("compiles as it did")
            });
            let list = |v: &jsonschema::Validator| -> Vec<String> {
                v.iter_errors(doc)
                    .map(|e| format!("{}: {e}", e.instance_path))
                    .collect()
            };
            [list(&now), list(before)]
        }

        /// How many of `docs` get errors, after checking that each gets
        /// the ones it got before.
        fn with_errors(&mut self, docs: &[serde_json::Value]) -> usize {
            docs.iter()
                .filter(|d| {
                    let [now, before] = self.errors_now_and_before(d);
                    assert_eq!(now, before, "{d}");
                    !now.is_empty()
                })
                .count()
        }
    }

    /// Every policy of the published library, and policies broken on
    /// purpose in each way a CRD schema can refuse one, get the same errors
    /// as before the schema was compiled through a `$ref`.
    #[test]
    fn objects_get_the_errors_they_got_before() {
        let Some(dir) = kyverno_crds() else { return };
        let schemas = Schemas::load(&dir).unwrap();
        let library = std::fs::read_to_string(dir.join("../../corpus/insights/library.yaml"))
            .expect("the library beside the CRDs");
        let mut docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&library)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|d| schemas.index.contains_key(&key_of(d)))
            .collect();
        assert!(docs.len() > 500, "the whole library");
        let mut before = Before(&schemas, BTreeMap::new());
        assert_eq!(before.with_errors(&docs), 1, "schedule-based-quotas only");

        let base = docs.swap_remove(0);
        assert_eq!(base["kind"], "ClusterPolicy");
        assert_eq!(before.with_errors(std::slice::from_ref(&base)), 0);
        let broken = |path: &str, value: Option<serde_json::Value>| {
            let mut doc = base.clone();
            let (parent, last) = path.rsplit_once('/').unwrap();
            let parent = doc.pointer_mut(parent).unwrap_or_else(|| panic!("{path}"));
            match (value, parent) {
                (Some(v), serde_json::Value::Object(m)) => drop(m.insert(last.into(), v)),
                (None, serde_json::Value::Object(m)) => drop(m.remove(last)),
                (Some(v), serde_json::Value::Array(a)) => a[last.parse::<usize>().unwrap()] = v,
                _ => panic!("{path}"),
            }
            doc
        };
        use serde_json::json;
        let broken = [
            // A required field missing (`required`).
            broken("/spec/rules/0/name", None),
            // A wrong type deep in a rule (`type`).
            broken(
                "/spec/rules/0/match/any/0/resources/kinds",
                Some(json!("Pod")),
            ),
            broken(
                "/spec/rules/0/context",
                Some(json!([{"name": "v", "variable": "x"}])),
            ),
            broken("/spec/background", Some(json!("yes"))),
            // A value outside an `enum`.
            broken("/spec/validationFailureAction", Some(json!("Warn"))),
            // `not`, whose message quotes the schema: both `any` and `all`.
            broken("/spec/rules/0/match/all", Some(json!([]))),
            // `oneOf`: no context source, and two.
            broken("/spec/rules/0/context", Some(json!([{"name": "v"}]))),
            broken(
                "/spec/rules/0/context",
                Some(json!([{"name": "v", "variable": {}, "apiCall": {}}])),
            ),
            // A field the schema does not know (no `additionalProperties:
            // false` in the Kyverno CRDs, so no error in either).
            broken("/spec/rules/0/unknown", Some(json!(1))),
        ];
        assert_eq!(before.with_errors(&broken), broken.len() - 1);
    }

    /// The keywords the Kyverno CRDs do not use, on a CRD made up for it:
    /// `additionalProperties` (false, and a schema), `nullable`, `pattern`,
    /// bounds, `allOf`/`anyOf`.
    #[test]
    fn a_made_up_crd_refuses_what_it_refused_before() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("crd.yaml"),
            r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  group: example.com
  names: {kind: Widget}
  versions:
  - name: v1
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            additionalProperties: false
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 10}
              name: {type: string, pattern: '^[a-z]+$', nullable: true}
              labels:
                type: object
                additionalProperties: {type: string, maxLength: 3}
              parts:
                type: array
                items:
                  type: object
                  additionalProperties: false
                  properties:
                    id: {type: string}
                    weight: {type: number}
                  anyOf: [{required: [id]}, {required: [weight]}]
                  allOf: [{not: {required: [id, weight]}}]
"#,
        )
        .unwrap();
        let schemas = Schemas::load(dir.path()).unwrap();
        let doc = |spec: serde_json::Value| serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": spec});
        use serde_json::json;
        let docs = [
            doc(json!({"size": 3, "name": null, "labels": {"a": "b"}, "parts": [{"id": "x"}]})),
            doc(json!({"size": 3, "colour": "red"})),
            doc(json!({"name": "x"})),
            doc(json!({"size": 0, "name": "X1"})),
            doc(json!({"size": 3, "labels": {"a": "long", "b": 1}})),
            doc(
                json!({"size": 3, "parts": [{"id": "x", "extra": 1}, {}, {"id": "x", "weight": 1}]}),
            ),
            json!({"apiVersion": "example.com/v1", "kind": "Widget"}),
        ];
        let mut before = Before(&schemas, BTreeMap::new());
        assert_eq!(before.with_errors(&docs[..1]), 0);
        assert_eq!(before.with_errors(&docs[1..]), docs.len() - 1);
    }

    /// Reading one version's schema gives what reading the whole CRD and
    /// taking that version from it gives: for every version of the Kyverno
    /// CRDs, and for a made-up file of two CRDs, some of whose versions
    /// give their name after their schema.
    #[test]
    fn one_version_reads_as_from_the_whole_crd() {
        fn from_the_whole(path: &Path, position: usize, version: &str) -> serde_json::Value {
            let text = std::fs::read_to_string(path).unwrap();
            let doc = serde_yaml::Deserializer::from_str(&text)
                .nth(position)
                .unwrap();
            let crd: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            let mut schema = crd["spec"]["versions"]
                .as_array()
                .and_then(|versions| versions.iter().find(|v| v["name"] == version))
                .map(|v| v["schema"]["openAPIV3Schema"].clone())
                .unwrap();
            crd_schema_to_json_schema(&mut schema);
            schema
        }
        let same_for_all = |schemas: &Schemas| {
            for ((_, version, _), (path, position)) in &schemas.index {
                let one = read_schema(path, *position, version).unwrap();
                assert_eq!(one, from_the_whole(path, *position, version), "{version}");
            }
        };
        if let Some(dir) = kyverno_crds() {
            let schemas = Schemas::load(&dir).unwrap();
            assert!(schemas.index.len() > 30);
            same_for_all(&schemas);
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("crds.yaml"),
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-crd}
---
kind: CustomResourceDefinition
spec:
  versions:
  - schema: {openAPIV3Schema: {type: object, properties: {a: {type: string}}}}
    name: v1
  - schema: {openAPIV3Schema: {type: object, properties: {b: {type: integer}}}}
    name: v2
  group: example.com
  names: {kind: Widget}
---
kind: CustomResourceDefinition
spec:
  group: example.com
  names: {kind: Gadget}
  versions:
  - name: v1
    schema: {openAPIV3Schema: {type: object, properties: {c: {type: string, nullable: true}}}}
  - schema: {openAPIV3Schema: {type: object, properties: {d: {type: integer}}}}
    served: true
    name: v3
  - {name: v4}
"#,
        )
        .unwrap();
        let schemas = Schemas::load(dir.path()).unwrap();
        let keys: Vec<String> = schemas
            .index
            .keys()
            .map(|(_, v, k)| format!("{k} {v}"))
            .collect();
        assert_eq!(keys, ["Gadget v1", "Widget v1", "Widget v2", "Gadget v3"]);
        same_for_all(&schemas);
    }
}
