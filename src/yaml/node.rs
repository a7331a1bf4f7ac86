//! The tree: nodes that remember where they came from.

/// A position in the input, 1-based like an editor shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Mark {
    pub line: usize,
    pub col: usize,
}

/// A resolved scalar. Plain scalars are resolved with the YAML 1.2 core
/// schema; quoted and block scalars are always strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in the order received. Keys are scalars (the parser refuses
    /// complex keys) and unique (the parser refuses duplicates).
    Map(Vec<(Node, Node)>),
}

/// A node and where it started in the source. The mark takes no part in
/// equality: two trees are equal when their content is.
#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub mark: Mark,
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Node {
    pub fn new(value: Value) -> Self {
        Node {
            value,
            mark: Mark::default(),
        }
    }

    pub fn string(s: impl Into<String>) -> Self {
        Node::new(Value::Scalar(Scalar::Str(s.into())))
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Vec<(Node, Node)>> {
        match &mut self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under a string key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()?
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Removes a string key from a mapping; a no-op on anything else.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let entries = self.as_map_mut()?;
        let at = entries.iter().position(|(k, _)| k.as_str() == Some(key))?;
        Some(entries.remove(at).1)
    }

    /// A short name for the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Scalar(Scalar::Null) => "null",
            Value::Scalar(Scalar::Bool(_)) => "boolean",
            Value::Scalar(Scalar::Int(_)) => "integer",
            Value::Scalar(Scalar::Float(_)) => "number",
            Value::Scalar(Scalar::Str(_)) => "string",
            Value::Seq(_) => "sequence",
            Value::Map(_) => "mapping",
        }
    }
}
