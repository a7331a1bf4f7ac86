//! Object names, namespaces and identities that are valid by construction.
//!
//! A name reaches a file path, so validity is enforced once, here, and the
//! rest of the code takes these types instead of strings.

use std::fmt;

use serde::Serialize;

use crate::model::kind::PolicyKind;

/// Why a name or namespace was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("is {len} characters long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("contains {0:?}; only lowercase letters a-z, digits 0-9, '-'{1} are allowed")]
    BadChar(char, &'static str),
    #[error("must start and end with a lowercase letter or digit{0}")]
    BadEdge(&'static str),
}

/// A DNS-1123 subdomain: what Kubernetes accepts as `metadata.name` for
/// these kinds. It can never contain `/`, `..` as a path component, `_`,
/// whitespace or anything non-ASCII, which is what makes it safe in a file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ObjectName(String);

/// A DNS-1123 label: what Kubernetes accepts as a namespace name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Namespace(String);

impl ObjectName {
    pub const MAX_LEN: usize = 253;

    pub fn new(s: &str) -> Result<Self, NameError> {
        check_length(s, Self::MAX_LEN)?;
        for label in s.split('.') {
            check_label(label, ", and '.' between parts", " (around each '.')")?;
        }
        Ok(ObjectName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Namespace {
    pub const MAX_LEN: usize = 63;

    pub fn new(s: &str) -> Result<Self, NameError> {
        check_length(s, Self::MAX_LEN)?;
        check_label(s, "", "")?;
        Ok(Namespace(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_length(s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    let len = s.chars().count();
    if len > max {
        return Err(NameError::TooLong { len, max });
    }
    Ok(())
}

fn check_label(label: &str, extra: &'static str, edge: &'static str) -> Result<(), NameError> {
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::BadChar(bad, extra));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(label.chars().next()) || !edge_ok(label.chars().last()) {
        return Err(NameError::BadEdge(edge));
    }
    Ok(())
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What makes an object unique in a cluster: group, kind, namespace, name.
/// Never the name alone (`PolicyException` exists in two groups, and a
/// namespaced name can repeat across namespaces).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    pub kind: PolicyKind,
    pub namespace: Option<Namespace>,
    pub name: ObjectName,
}

impl fmt::Display for Identity {
    /// `ClusterPolicy.kyverno.io/name` or `Policy.kyverno.io/namespace/name`,
    /// the way `kubectl` names objects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.kind)?;
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        write!(f, "{}", self.name)
    }
}

impl Serialize for Identity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Identity", 4)?;
        s.serialize_field("group", self.kind.group())?;
        s.serialize_field("kind", self.kind.kind())?;
        s.serialize_field("namespace", &self.namespace)?;
        s.serialize_field("name", &self.name)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_dns_subdomains() {
        assert!(ObjectName::new("disallow-latest-tag").is_ok());
        assert!(ObjectName::new("a.b-c.d1").is_ok());
        assert!(ObjectName::new(&"a".repeat(253)).is_ok());
        assert_eq!(
            ObjectName::new(&"a".repeat(254)),
            Err(NameError::TooLong { len: 254, max: 253 })
        );
        for bad in [
            "", "../etc", "a/b", "A", "a_b", "-a", "a-", "a..b", ".a", "a b", "pоlicy", "a\u{0}b",
            ".",
        ] {
            assert!(ObjectName::new(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn namespaces_are_dns_labels() {
        assert!(Namespace::new("team-a").is_ok());
        assert!(Namespace::new("a.b").is_err());
        assert!(Namespace::new(&"a".repeat(64)).is_err());
    }
}
