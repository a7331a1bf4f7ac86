//! Paths inside the policy repository.

use std::fmt;
use std::ops::Deref;

/// A repository-relative, `/`-separated directory or file path that stays
/// inside the repository: no leading `/`, no `.`, `..` or `.git` part, no
/// `\\`, no trailing `/`. The only way to join a file name to one is
/// [`RepoPath::join`], so a path is never glued together by hand.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoPath(String);

impl RepoPath {
    pub fn new(path: &str) -> Result<RepoPath, String> {
        let path = path.trim_end_matches('/');
        let bad = path.is_empty()
            || path.starts_with('/')
            || path.contains('\\')
            || path
                .split('/')
                .any(|part| matches!(part, "" | "." | ".." | ".git"));
        if bad {
            return Err(format!(
                "{path:?} must be a relative path inside the repository, without '.', '..' or '.git' parts"
            ));
        }
        Ok(RepoPath(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path of `name` (a file name, no `/`) in this directory.
    pub fn join(&self, name: &str) -> String {
        format!("{}/{name}", self.0)
    }

    /// Whether `path` is inside this directory.
    pub fn holds(&self, path: &str) -> bool {
        path.strip_prefix(self.0.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl Deref for RepoPath {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<RepoPath> for String {
    fn from(p: RepoPath) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_repository() {
        assert_eq!(RepoPath::new("a/b/").unwrap().as_str(), "a/b");
        for bad in ["", "/a", "a/../b", "./a", "a/.git/b", "a\\b", "a//b"] {
            assert!(RepoPath::new(bad).is_err(), "{bad}");
        }
        let p = RepoPath::new("kyverno-policies/prod").unwrap();
        assert_eq!(p.join("x.yaml"), "kyverno-policies/prod/x.yaml");
        assert!(p.holds("kyverno-policies/prod/x.yaml"));
        assert!(!p.holds("kyverno-policies/production/x.yaml"));
    }
}
