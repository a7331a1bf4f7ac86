//! What a plan is made of: the files found where rendered files go, and
//! the changes that turn them into the rendered tree.

use std::sync::OnceLock;

use crate::model::facts::ObjectFacts;
use crate::model::identity::Identity;
use crate::pipeline::read_back;
use crate::pipeline::render::{RenderedFile, HEADER, KUSTOMIZATION};

/// A file found where a rendered file would go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// A regular file and its content.
    File(Vec<u8>),
    /// A directory, a symlink or anything else that is not a plain file.
    /// Never ours: writing through a symlink could leave the directory.
    Other,
}

impl Existing {
    /// Files the tool wrote start with its header; only those may be
    /// overwritten or deleted.
    pub fn is_ours(&self) -> bool {
        matches!(self, Existing::File(bytes) if bytes.starts_with(HEADER.as_bytes()))
    }
}

/// A file of ours as it is before the change.
#[derive(Debug, Clone)]
pub struct OldFile {
    pub bytes: Vec<u8>,
    /// Whether it may hold an object (`kustomization.yaml` does not).
    holds_object: bool,
    /// The object it holds, read back from `bytes` the first time it is
    /// asked for (the summary asks for removed files', the pull request's
    /// body for updated ones' too), and kept.
    object: OnceLock<Option<ObjectFacts>>,
}

/// Equal when the content is: whether `object` has been read yet is not
/// part of what the file is.
impl PartialEq for OldFile {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes && self.holds_object == other.holds_object
    }
}

impl OldFile {
    pub fn new(path: &str, bytes: Vec<u8>) -> OldFile {
        OldFile {
            bytes,
            holds_object: path != KUSTOMIZATION,
            object: OnceLock::new(),
        }
    }

    /// The object it holds; `None` for `kustomization.yaml` or a file that
    /// no longer reads as one policy.
    pub fn object(&self) -> Option<&ObjectFacts> {
        self.object
            .get_or_init(|| self.holds_object.then(|| read_back(&self.bytes)).flatten())
            .as_ref()
    }
}

/// What kind of change, for counting and grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Add,
    Update,
    Remove,
}

/// One file's change, with the content each kind has. (An update holds
/// two files, so it is the largest variant; a plan is built once and never
/// moved in bulk, so boxing would only add an allocation per change.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Add {
        path: String,
        new: RenderedFile,
    },
    Update {
        path: String,
        old: OldFile,
        new: RenderedFile,
    },
    Remove {
        path: String,
        old: OldFile,
    },
}

impl Change {
    /// The file name, within the target directory.
    pub fn path(&self) -> &str {
        match self {
            Change::Add { path, .. }
            | Change::Update { path, .. }
            | Change::Remove { path, .. } => path,
        }
    }

    pub fn kind(&self) -> ChangeKind {
        match self {
            Change::Add { .. } => ChangeKind::Add,
            Change::Update { .. } => ChangeKind::Update,
            Change::Remove { .. } => ChangeKind::Remove,
        }
    }

    /// The content before (`None` for an addition).
    pub fn old(&self) -> Option<&OldFile> {
        match self {
            Change::Update { old, .. } | Change::Remove { old, .. } => Some(old),
            Change::Add { .. } => None,
        }
    }

    /// The content after (`None` for a removal).
    pub fn new_file(&self) -> Option<&RenderedFile> {
        match self {
            Change::Add { new, .. } | Change::Update { new, .. } => Some(new),
            Change::Remove { .. } => None,
        }
    }

    pub fn old_bytes(&self) -> Option<&[u8]> {
        self.old().map(|o| o.bytes.as_slice())
    }

    pub fn new_bytes(&self) -> Option<&[u8]> {
        self.new_file().map(|n| n.bytes.as_slice())
    }

    pub fn old_object(&self) -> Option<&ObjectFacts> {
        self.old()?.object()
    }

    pub fn new_object(&self) -> Option<&ObjectFacts> {
        self.new_file()?.object.as_ref()
    }

    /// The object the file holds (for a removal, the one it held).
    pub fn identity(&self) -> Option<&Identity> {
        self.new_object()
            .or_else(|| self.old_object())
            .map(|o| &o.identity)
    }
}

/// The changes that turn what exists into the rendered tree, sorted by path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Objects whose file already has the rendered bytes.
    pub unchanged: usize,
    /// `.yaml` files in the directory that the tool did not write (they lack
    /// its header): left alone, and not in `kustomization.yaml`, so
    /// kustomize does not build them and Flux or Argo CD never applies
    /// them. Sorted.
    pub foreign: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The files to write: each addition's and update's name and content.
    pub fn writes(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.changes
            .iter()
            .filter_map(|c| Some((c.path(), c.new_bytes()?)))
    }

    /// The names of the files to remove.
    pub fn removals(&self) -> impl Iterator<Item = &str> {
        self.changes
            .iter()
            .filter(|c| c.kind() == ChangeKind::Remove)
            .map(Change::path)
    }

    /// The changes of one kind that concern objects (not the kustomization).
    pub fn objects(&self, kind: ChangeKind) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(move |c| c.kind() == kind && c.path() != KUSTOMIZATION)
    }
}
