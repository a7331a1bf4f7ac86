//! From a parsed document to a [`Policy`]: every document checked against
//! the kinds table, names made safe, exported-cluster fields stripped, and the
//! ownership annotation stamped.
//!
//! Validation reports every problem it finds, not only the first, because a
//! person fixing a response upstream wants the whole list at once.

use std::collections::HashMap;
use std::fmt;

use crate::model::identity::{Identity, NameError, Namespace, ObjectName};
use crate::model::kind::{PolicyKind, Scope};
use crate::model::policy::{Policy, Position};
use crate::yaml::{Document, Node, Value};

/// The annotation every rendered object carries. A label cannot hold this
/// value (label values allow no spaces), hence an annotation.
pub const OWNED_BY_KEY: &str = "insights.fairwinds.com/owned-by";
pub const OWNED_BY_VALUE: &str = "Fairwinds Insights";

/// Fields the API server adds to an object; they describe one cluster's copy,
/// and applying them elsewhere fails or fights the server.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
];
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// One thing wrong with one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub position: Position,
    /// The field at fault, as a dotted path (`metadata.name`), or empty when
    /// the document as a whole is at fault.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.position)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.reason)
    }
}

/// Every problem of a stream that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every problem, however many: the person fixing the response
        // upstream needs the whole list, and a cut list would hide some.
        let n = self.problems.len();
        write!(
            f,
            "the response was refused ({n} problem{}); nothing was written:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Validation one document at a time, for callers that render each policy
/// as it arrives instead of holding every tree.
///
/// A namespace on a cluster-scoped kind is the one thing dropped with a
/// warning instead of refused: the API server ignores it, and published
/// policies (the Kyverno library's `add-volume`) carry one.
#[derive(Debug, Default)]
pub struct Validator {
    seen: HashMap<Identity, Position>,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

/// One document checked on its own: everything but the stream-wide check
/// for duplicates, so documents can be checked on several threads and
/// admitted in stream order. `T` is the policy, or what was made of it.
#[derive(Debug)]
pub struct Checked<T> {
    pub position: Position,
    /// Warnings about this document, even when it was refused.
    pub warnings: Vec<Problem>,
    pub result: Result<T, Problem>,
}

impl<T> Checked<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Checked<U> {
        Checked {
            position: self.position,
            warnings: self.warnings,
            result: self.result.map(f),
        }
    }

    /// Moves the document numbers on by `documents` (for a document that
    /// was numbered within a piece of the stream). `T`'s own numbers, if
    /// any, are the caller's to move.
    pub fn shift_documents(&mut self, documents: usize) {
        self.position.document += documents;
        for w in &mut self.warnings {
            w.position.document += documents;
        }
        if let Err(p) = &mut self.result {
            p.position.document += documents;
        }
    }
}

/// Checks and cleans one document; `None` for an empty one.
pub fn check(doc: Document) -> Option<Checked<Policy>> {
    if let Some(error) = doc.error {
        // Well-formed YAML that we refuse (a duplicate key, a custom tag):
        // one problem of this document, beside those of the others.
        let position = Position {
            document: doc.index,
            line: error.mark.line,
        };
        return Some(Checked {
            position,
            warnings: Vec::new(),
            result: Err(Problem {
                position,
                field: String::new(),
                reason: error.kind.to_string(),
            }),
        });
    }
    let root = doc.root?;
    let position = Position {
        document: doc.index,
        line: root.mark.line,
    };
    let mut warnings = Vec::new();
    let result = check_document(root, position, &mut warnings);
    Some(Checked {
        position,
        warnings,
        result,
    })
}

impl Validator {
    /// Takes a checked document in stream order: its warnings and problem
    /// are kept, and a valid one is refused if an earlier document already
    /// defined the same object.
    pub fn admit<T>(
        &mut self,
        checked: Checked<T>,
        identity: impl FnOnce(&T) -> &Identity,
    ) -> Option<T> {
        let Checked {
            position,
            mut warnings,
            result,
        } = checked;
        self.warnings.append(&mut warnings);
        match result {
            Ok(item) => {
                let id = identity(&item);
                if let Some(first) = self.seen.get(id) {
                    self.problems.push(Problem {
                        position,
                        field: String::new(),
                        reason: format!(
                            "{id} is already defined by {first}; an object may appear only once"
                        ),
                    });
                    None
                } else {
                    self.seen.insert(id.clone(), position);
                    Some(item)
                }
            }
            Err(p) => {
                self.problems.push(p);
                None
            }
        }
    }

    /// Whether every document so far was valid.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The warnings of a valid stream, or every problem of an invalid one.
    pub fn finish(self) -> Result<Vec<Problem>, ValidationError> {
        if self.problems.is_empty() {
            Ok(self.warnings)
        } else {
            Err(ValidationError {
                problems: self.problems,
            })
        }
    }
}

fn check_document(
    mut root: Node,
    position: Position,
    warnings: &mut Vec<Problem>,
) -> Result<Policy, Problem> {
    let problem = |field: &str, reason: String| Problem {
        position,
        field: field.to_owned(),
        reason,
    };
    if root.as_map().is_none() {
        return Err(problem(
            "",
            format!(
                "the document is a {}; expected a mapping (a Kubernetes object)",
                root.type_name()
            ),
        ));
    }
    let api_version = required_string(&root, "apiVersion").map_err(|r| problem("apiVersion", r))?;
    let kind = required_string(&root, "kind").map_err(|r| problem("kind", r))?;
    let group = match api_version.split_once('/') {
        Some((group, version))
            if !group.is_empty() && !version.is_empty() && !version.contains('/') =>
        {
            group
        }
        None if !api_version.is_empty() => "",
        _ => {
            return Err(problem(
                "apiVersion",
                format!("{api_version:?} is not of the form GROUP/VERSION"),
            ))
        }
    };
    let policy_kind = PolicyKind::lookup(group, kind).ok_or_else(|| {
        let groups = PolicyKind::groups_for_kind(kind);
        let reason = if kind.ends_with("List") {
            format!(
                "a {kind} ({api_version}) is not accepted: send each policy as its own document"
            )
        } else if groups.is_empty() {
            format!(
                "kind {kind} ({api_version}) is not a policy kind; only Kyverno and admission policy kinds are rendered"
            )
        } else {
            format!(
                "kind {kind} belongs to API group {}, not {:?}",
                groups.join(" or "),
                group
            )
        };
        problem(if groups.is_empty() { "kind" } else { "apiVersion" }, reason)
    })?;

    let metadata = match root.get("metadata") {
        None => return Err(problem("metadata", "required".into())),
        Some(m) if m.as_map().is_none() => {
            return Err(problem(
                "metadata",
                format!("must be a mapping, not a {}", m.type_name()),
            ))
        }
        Some(m) => m,
    };
    let name_text = required_string(metadata, "name").map_err(|r| problem("metadata.name", r))?;
    let name = ObjectName::new(name_text)
        .map_err(|e| problem("metadata.name", name_reason(name_text, e)))?;
    let namespace = match (policy_kind.scope(), metadata.get("namespace")) {
        (Scope::Namespaced, None) => {
            return Err(problem(
                "metadata.namespace",
                format!("required: {} is a namespaced kind", policy_kind.kind()),
            ))
        }
        (Scope::Namespaced, Some(ns)) => {
            let text = ns.as_str().ok_or_else(|| {
                problem(
                    "metadata.namespace",
                    format!("must be a string, not a {}", ns.type_name()),
                )
            })?;
            Some(
                Namespace::new(text)
                    .map_err(|e| problem("metadata.namespace", name_reason(text, e)))?,
            )
        }
        (Scope::Cluster, Some(_)) => {
            warnings.push(problem(
                "metadata.namespace",
                format!(
                    "ignored: {} is cluster-scoped, and the API server drops a namespace on it",
                    policy_kind.kind()
                ),
            ));
            None
        }
        (Scope::Cluster, None) => None,
    };
    if let Some(a) = metadata.get("annotations") {
        if !matches!(
            a.value,
            Value::Map(_) | Value::Scalar(crate::yaml::Scalar::Null)
        ) {
            return Err(problem(
                "metadata.annotations",
                format!("must be a mapping, not a {}", a.type_name()),
            ));
        }
    }

    if namespace.is_none() {
        if let Some(metadata) = root.get_mut("metadata") {
            metadata.remove("namespace");
        }
    }
    if let Some((field, node)) = unreadable_node(&root) {
        let reason = match &node.value {
            Value::Scalar(crate::yaml::Scalar::Float(f)) => non_finite_reason(*f),
            _ => overlong_key_reason(node.as_str().unwrap_or_default()),
        };
        return Err(Problem {
            position: Position {
                line: node.mark.line,
                ..position
            },
            field,
            reason,
        });
    }
    strip_server_fields(&mut root);
    stamp_ownership(&mut root);
    Ok(Policy::new(
        Identity {
            kind: policy_kind,
            namespace,
            name,
        },
        root,
    ))
}

/// The longest key a consumer can read, in characters of its JSON form
/// with the quotes. kustomize and kubectl turn each object into JSON and
/// read that back with go-yaml, which (like every YAML reader) refuses an
/// implicit key longer than 1024 characters: measured against kubectl
/// kustomize v5.5.0, a key of 1022 characters builds and one of 1023 fails.
const MAX_KEY_JSON_CHARS: usize = 1024;

/// Characters of `s` as Go's `encoding/json` writes it, quotes included:
/// `<`, `>` and `&` are escaped for HTML, control characters as `\u00XX`
/// (`\b` and `\f` too, as Go before 1.22 did, to be safe either way).
fn go_json_chars(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' => 2,
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => 6,
            c if (c as u32) < 0x20 => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// One step from a document's root to a node.
enum Step<'a> {
    Key(&'a Node),
    Index(usize),
}

/// The first node, depth first, that no consumer could read back: a
/// mapping key too long (with the dotted path of the mapping that holds it)
/// or a value that is not a finite number (`.inf`, `-.Inf`, `.nan`, or a
/// number too large for a float, with its own path). The path is built
/// only for a node found: this walks every node of every policy.
fn unreadable_node(root: &Node) -> Option<(String, &Node)> {
    /// On a find the trail is left as it is: it is the path.
    fn descend<'a>(step: Step<'a>, node: &'a Node, trail: &mut Vec<Step<'a>>) -> Option<&'a Node> {
        trail.push(step);
        let found = walk(node, trail);
        if found.is_none() {
            trail.pop();
        }
        found
    }
    fn walk<'a>(node: &'a Node, trail: &mut Vec<Step<'a>>) -> Option<&'a Node> {
        match &node.value {
            Value::Map(entries) => entries.iter().find_map(|(key, value)| {
                // A key within 170 bytes fits even if every character is
                // escaped to six.
                let long = key.as_str().is_some_and(|text| {
                    text.len() > (MAX_KEY_JSON_CHARS - 2) / 6
                        && go_json_chars(text) > MAX_KEY_JSON_CHARS
                });
                if long {
                    return Some(key);
                }
                descend(Step::Key(key), value, trail)
            }),
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| descend(Step::Index(i), item, trail)),
            Value::Scalar(crate::yaml::Scalar::Float(f)) if !f.is_finite() => Some(node),
            Value::Scalar(_) => None,
        }
    }
    let mut trail = Vec::new();
    let key = walk(root, &mut trail)?;
    let mut path = String::new();
    for step in &trail {
        match step {
            Step::Key(k) => {
                if !path.is_empty() {
                    path.push('.');
                }
                match &k.value {
                    Value::Scalar(crate::yaml::Scalar::Str(s)) => path.push_str(s),
                    Value::Scalar(crate::yaml::Scalar::Int(i)) => path.push_str(&i.to_string()),
                    _ => path.push_str(k.type_name()),
                }
            }
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    Some((path, key))
}

/// kubectl and kustomize turn every object into JSON, which has no
/// infinity and no NaN: `kubectl kustomize` fails on the whole directory
/// ("json: unsupported value: +Inf"), and Flux with it.
fn non_finite_reason(f: f64) -> String {
    let shown = if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "infinity"
    } else {
        "minus infinity"
    };
    format!(
        "not a finite number (it reads as {shown}, {}): JSON cannot hold it, so kubectl and kustomize cannot read this object back; quote the value if a string is meant",
        crate::yaml::emit::format_float(f)
    )
}

fn overlong_key_reason(key: &str) -> String {
    let shown: String = key.chars().take(40).collect();
    format!(
        "the key {shown:?}... is {} characters long written as JSON; kubectl and kustomize read keys of at most {MAX_KEY_JSON_CHARS}",
        go_json_chars(key)
    )
}

fn required_string<'a>(node: &'a Node, key: &str) -> Result<&'a str, String> {
    match node.get(key) {
        None => Err("required".into()),
        Some(v) => match v.as_str() {
            Some("") => Err("must not be empty".into()),
            Some(s) => Ok(s),
            None => Err(format!("must be a string, not a {}", v.type_name())),
        },
    }
}

/// Names are quoted with `{:?}` so control characters and look-alike
/// letters show up escaped instead of rendering invisibly in a terminal.
fn name_reason(text: &str, e: NameError) -> String {
    let shown: String = if text.chars().count() > 80 {
        text.chars().take(80).collect::<String>() + "..."
    } else {
        text.to_owned()
    };
    format!("{shown:?} is not a valid name: it {e}")
}

fn strip_server_fields(root: &mut Node) {
    root.remove("status");
    let Some(metadata) = root.get_mut("metadata") else {
        return;
    };
    for field in SERVER_METADATA {
        metadata.remove(field);
    }
    if let Some(annotations) = metadata.get_mut("annotations") {
        annotations.remove(LAST_APPLIED);
    }
}

/// Sets the ownership annotation, keeping every other annotation and its
/// position; an existing value (whatever it was) is replaced in place.
fn stamp_ownership(root: &mut Node) {
    let metadata = root
        .get_mut("metadata")
        .expect("checked to be a mapping before stamping");
    if metadata
        .get("annotations")
        .is_none_or(|a| a.as_map().is_none())
    {
        metadata.remove("annotations");
        metadata
            .as_map_mut()
            .expect("checked to be a mapping before stamping")
            .push((
                Node::string("annotations"),
                Node::new(Value::Map(Vec::new())),
            ));
    }
    let annotations = metadata
        .get_mut("annotations")
        .expect("inserted above when missing");
    match annotations.get_mut(OWNED_BY_KEY) {
        Some(existing) => *existing = Node::string(OWNED_BY_VALUE),
        None => annotations
            .as_map_mut()
            .expect("ensured to be a mapping above")
            .push((Node::string(OWNED_BY_KEY), Node::string(OWNED_BY_VALUE))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_stream;

    /// The policies of a stream as the pipeline admits them, and the
    /// warnings.
    #[derive(Debug)]
    struct Admitted(Vec<Policy>, Vec<Problem>);

    impl std::ops::Deref for Admitted {
        type Target = [Policy];
        fn deref(&self) -> &[Policy] {
            &self.0
        }
    }

    impl Admitted {
        fn warnings(&self) -> &[Problem] {
            &self.1
        }
    }

    fn run(input: &str) -> Result<Admitted, ValidationError> {
        let mut validator = Validator::default();
        let policies: Vec<Policy> = parse_stream(input.as_bytes())
            .unwrap()
            .into_iter()
            .filter_map(check)
            .filter_map(|c| validator.admit(c, Policy::identity))
            .collect();
        let warnings = validator.finish()?;
        Ok(Admitted(policies, warnings))
    }

    fn only_problem(input: &str) -> Problem {
        let mut problems = run(input).unwrap_err().problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems.remove(0)
    }

    #[test]
    fn strips_server_fields_and_stamps_ownership() {
        let set = run(
            "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\n  uid: x\n  resourceVersion: '1'\n  generation: 2\n  creationTimestamp: null\n  managedFields: []\n  selfLink: /x\n  labels: {a: b}\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{}'\n    keep: me\nspec: {}\nstatus: {ready: true}\n",
        )
        .unwrap();
        let doc = &set[0].document();
        assert!(doc.get("status").is_none());
        let md = doc.get("metadata").unwrap();
        let keys: Vec<_> = md
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap())
            .collect();
        assert_eq!(keys, ["name", "labels", "annotations"]);
        let ann: Vec<_> = md
            .get("annotations")
            .unwrap()
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str().unwrap(), v.as_str().unwrap()))
            .collect();
        assert_eq!(ann, [("keep", "me"), (OWNED_BY_KEY, OWNED_BY_VALUE)]);
    }

    #[test]
    fn an_existing_owner_annotation_is_overwritten_in_place() {
        let set = run("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\n  annotations:\n    insights.fairwinds.com/owned-by: someone\n    b: c\n").unwrap();
        let ann = set[0]
            .document()
            .get("metadata")
            .unwrap()
            .get("annotations")
            .unwrap();
        assert_eq!(ann.as_map().unwrap()[0].1.as_str(), Some(OWNED_BY_VALUE));
        assert_eq!(ann.as_map().unwrap().len(), 2);
    }

    #[test]
    fn scope_rules() {
        let p = only_problem("apiVersion: kyverno.io/v1\nkind: Policy\nmetadata:\n  name: p\n");
        assert_eq!(p.field, "metadata.namespace");
        assert!(p.reason.starts_with("required"));
        // The published library has one such policy; the API server drops
        // the namespace, so we do too, and say so.
        let set = run("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\n  namespace: x\n").unwrap();
        assert!(set[0]
            .document()
            .get("metadata")
            .unwrap()
            .get("namespace")
            .is_none());
        assert_eq!(set[0].identity().namespace, None);
        assert_eq!(set.warnings()[0].field, "metadata.namespace");
        assert!(set.warnings()[0].reason.contains("cluster-scoped"));
    }

    #[test]
    fn foreign_kinds_and_groups_are_refused() {
        let p = only_problem("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: p\n");
        assert_eq!(p.field, "kind");
        let p = only_problem(
            "apiVersion: evil.example.com/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\n",
        );
        assert_eq!(p.field, "apiVersion");
        assert!(p.reason.contains("kyverno.io"), "{}", p.reason);
        let p = only_problem("apiVersion: v1\nkind: List\nitems: []\n");
        assert!(p.reason.contains("List"));
    }

    #[test]
    fn duplicates_name_both_documents() {
        let p = only_problem("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\n---\napiVersion: kyverno.io/v2\nkind: ClusterPolicy\nmetadata: {name: p}\n");
        assert_eq!(p.position.document, 2);
        assert!(p.to_string().contains("document 1 (line 1)"), "{p}");
    }

    #[test]
    fn same_name_in_two_groups_or_namespaces_is_fine() {
        let set = run("apiVersion: kyverno.io/v2\nkind: PolicyException\nmetadata: {name: e, namespace: a}\n---\napiVersion: policies.kyverno.io/v1\nkind: PolicyException\nmetadata: {name: e, namespace: a}\n---\napiVersion: kyverno.io/v2\nkind: PolicyException\nmetadata: {name: e, namespace: b}\n").unwrap();
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn non_finite_numbers_are_refused_with_their_path_and_line() {
        for spelling in [
            ".inf",
            ".Inf",
            ".INF",
            "+.inf",
            "+.Inf",
            "-.inf",
            "-.INF",
            ".nan",
            ".NaN",
            ".NAN",
            "!!float .inf",
            "1e400",
            "-1e400",
        ] {
            let p = only_problem(&format!(
                "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\nspec:\n  rules:\n    - name: r\n      x:\n        y: {spelling}\n"
            ));
            assert_eq!(p.field, "spec.rules[0].x.y", "{spelling}");
            assert_eq!((p.position.document, p.position.line), (1, 9), "{spelling}");
            assert!(p.reason.contains("JSON cannot hold"), "{}", p.reason);
        }
        // Quoted, it is a string; and a finite float is fine.
        run("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\nspec:\n  a: '.inf'\n  b: \".nan\"\n  c: 1.5e300\n  d: [x, .inf2]\n").unwrap();
        let p = only_problem("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\nspec:\n  list: [1, -.inf]\n");
        assert_eq!(p.field, "spec.list[1]");
    }

    #[test]
    fn every_problem_is_reported() {
        let err = run("- a\n---\nkind: ClusterPolicy\n---\napiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: Bad_Name}\n").unwrap_err();
        let fields: Vec<_> = err.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["", "apiVersion", "metadata.name"]);
    }
}
