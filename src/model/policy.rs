//! A validated set of policies: the only input the renderer accepts.

use std::fmt;

use crate::model::identity::Identity;
use crate::yaml::Node;

/// Where a document came from in the stream, for messages a person can
/// follow back to the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// 1-based document index in the stream.
    pub document: usize,
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {} (line {})", self.document, self.line)
    }
}

/// One policy object, checked, cleaned and stamped with the ownership
/// annotation. Built only by [`crate::pipeline::validate::validate`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub identity: Identity,
    pub document: Node,
    pub source: Source,
}

/// Policies with unique identities, in the order received.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
    warnings: Vec<crate::pipeline::validate::Problem>,
}

impl PolicySet {
    /// Callers guarantee unique identities; `validate` is the one caller.
    pub(crate) fn new(
        policies: Vec<Policy>,
        warnings: Vec<crate::pipeline::validate::Problem>,
    ) -> Self {
        PolicySet { policies, warnings }
    }

    /// Things accepted but worth telling the user about.
    pub fn warnings(&self) -> &[crate::pipeline::validate::Problem] {
        &self.warnings
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }
}
