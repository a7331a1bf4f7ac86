//! A policy that passed validation, and where it was in the response.

use std::fmt;

use crate::model::identity::Identity;
use crate::yaml::Node;

/// Where a document was in the stream, for messages a person can follow
/// back to the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based document index in the stream.
    pub document: usize,
    pub line: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {} (line {})", self.document, self.line)
    }
}

/// One policy object, checked, cleaned and stamped with the ownership
/// annotation. Only validation builds one, so holding a `Policy` means
/// holding an object the renderer may write.
#[derive(Debug, Clone)]
pub struct Policy {
    identity: Identity,
    document: Node,
}

impl Policy {
    /// For validation alone (`crate::pipeline::validate`): `document` has
    /// been checked and cleaned, and `identity` read from it.
    pub(crate) fn new(identity: Identity, document: Node) -> Policy {
        Policy { identity, document }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn document(&self) -> &Node {
        &self.document
    }

    pub fn into_document(self) -> Node {
        self.document
    }
}
