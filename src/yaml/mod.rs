//! The YAML document model shared by parsing, validation and rendering.
//!
//! We keep our own small tree instead of `serde_yaml::Value` or
//! `yaml_rust2::Yaml` because the renderer needs three things neither gives:
//! the line each node came from (so an error can point at it), mappings that
//! keep their received order *and* reject duplicate keys, and a scalar type
//! that is resolved exactly once, under one schema (YAML 1.2 core), so that the
//! emitter can decide what must be quoted for YAML 1.1 readers.
//!
//! Enters: bytes of a YAML stream. Leaves: [`Document`]s of [`Node`]s, or a
//! [`ParseError`] with document, line and column; and, the other way, the
//! bytes of a node ([`emit_document`]). Knows nothing of Kubernetes.

pub mod emit;
pub mod node;
pub mod parse;
pub(crate) mod split;

pub use emit::emit_document;
pub use node::{Mark, Node, Scalar, Value};
pub use parse::{
    parse_stream, parse_stream_each, parse_stream_each_recovering, Document, ParseError,
    ParseErrorKind,
};
