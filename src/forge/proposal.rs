//! What the run wants of the pull request, and what became of it.

/// What became of the bot branch in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchState {
    /// A new commit was pushed to it.
    Updated,
    /// It already held these changes (nothing pushed, or the same commit).
    Unchanged,
    /// Insights matches the base again: the branch is (or may be) gone and
    /// any open pull request for it is closed.
    Deleted,
}

/// The pull request the run wants.
#[derive(Debug, Clone)]
pub struct Proposal<'a> {
    /// The bot branch (short name).
    pub head: &'a str,
    /// The branch it merges into (short name).
    pub base: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub labels: &'a [String],
    /// Users, or `org/team` for a GitHub team.
    pub reviewers: &'a [String],
    pub draft: bool,
    pub state: BranchState,
}

/// What [`crate::forge::sync`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Opened,
    Updated,
    Unchanged,
    Closed,
    /// Nothing open and nothing to propose.
    None,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Opened => "opened",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Closed => "closed",
            Action::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub action: Action,
    pub number: Option<u64>,
    pub url: Option<String>,
}

/// Bodies as the forges give them back: line endings and trailing space
/// may differ from what was sent.
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace("\r\n", "\n").trim_end().to_owned();
    norm(a) == norm(b)
}
