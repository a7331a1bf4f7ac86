//! Small builders for the manifests' YAML trees, and the bytes of a file.

use crate::pipeline::render::HEADER;
use crate::pipeline::validate::{OWNED_BY_KEY, OWNED_BY_VALUE};
use crate::yaml::{emit_document, Node, Scalar, Value};

pub(super) fn file_bytes(docs: &[Node]) -> Vec<u8> {
    let mut text = String::from(HEADER);
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            text.push_str("---\n");
        }
        emit_document(doc, &mut text);
    }
    text.into_bytes()
}

pub(super) fn s(text: impl Into<String>) -> Node {
    Node::string(text)
}

pub(super) fn b(value: bool) -> Node {
    Node::new(Value::Scalar(Scalar::Bool(value)))
}

pub(super) fn map<const N: usize>(entries: [(&str, Node); N]) -> Node {
    Node::new(Value::Map(
        entries.into_iter().map(|(k, v)| (s(k), v)).collect(),
    ))
}

pub(super) fn seq(items: impl IntoIterator<Item = Node>) -> Node {
    Node::new(Value::Seq(items.into_iter().collect()))
}

/// Adds `key: value` to a mapping node (consumer objects are built here,
/// so the node is always a mapping).
pub(super) fn push(node: &mut Node, key: &str, value: Node) {
    node.as_map_mut()
        .expect("objects are mappings")
        .push((s(key), value));
}

/// `metadata` with the ownership annotation every written object carries.
pub(super) fn metadata(name: &str, namespace: Option<&str>) -> Node {
    let mut meta = map([("name", s(name))]);
    if let Some(ns) = namespace {
        push(&mut meta, "namespace", s(ns));
    }
    push(
        &mut meta,
        "labels",
        map([("app.kubernetes.io/managed-by", s("insights-policy-render"))]),
    );
    push(
        &mut meta,
        "annotations",
        map([(OWNED_BY_KEY, s(OWNED_BY_VALUE))]),
    );
    meta
}

pub(super) fn object(api_version: &str, kind: &str, metadata: Node, spec: Option<Node>) -> Node {
    let mut obj = map([
        ("apiVersion", s(api_version)),
        ("kind", s(kind)),
        ("metadata", metadata),
    ]);
    if let Some(spec) = spec {
        push(&mut obj, "spec", spec);
    }
    obj
}
