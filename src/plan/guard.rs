//! The mass-removal guard. With `prune: true`, whatever leaves a rendered
//! directory is deleted from the cluster by a controller that usually runs
//! as cluster-admin, so a run that would remove much more than a policy
//! change normally does is refused: an Insights outage answering an empty
//! 200, or a truncated stream, must never become "delete every policy".

use std::fmt;
use std::str::FromStr;

use crate::plan::change::{ChangeKind, Plan};

/// How many removals one run may make per cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxRemovals {
    Count(usize),
    /// Of the objects the directory held before the run.
    Percent(f64),
}

impl Default for MaxRemovals {
    /// Half. Real policy changes remove a few policies at a time; losing
    /// more than half of a cluster's policies in one run is far likelier to
    /// be an upstream fault than an intent, and the flag makes the intent
    /// one word to state.
    fn default() -> Self {
        MaxRemovals::Percent(50.0)
    }
}

impl FromStr for MaxRemovals {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a count (10) or a percentage (50%)");
        match s.trim().strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.trim().parse().map_err(|_| bad())?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(bad());
                }
                Ok(MaxRemovals::Percent(p))
            }
            None => s.trim().parse().map(MaxRemovals::Count).map_err(|_| bad()),
        }
    }
}

impl fmt::Display for MaxRemovals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxRemovals::Count(n) => write!(f, "{n}"),
            MaxRemovals::Percent(p) => write!(f, "{p}%"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub max_removals: MaxRemovals,
    pub allow_empty: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GuardError {
    #[error("the response has no policies, but {existing} are rendered now; refusing to remove them all (an Insights outage can answer an empty 200). If the cluster really has no policies any more, rerun with --allow-empty")]
    Empty { existing: usize },
    #[error("this run would remove {removed} of {existing} policies, more than --max-removals {limit}; refusing. If that is intended, rerun with a higher --max-removals (for example {removed} or 100%)")]
    TooMany {
        removed: usize,
        existing: usize,
        limit: MaxRemovals,
    },
}

/// Checks one cluster's plan against the limits.
pub fn check(plan: &Plan, limits: &Limits) -> Result<(), GuardError> {
    let removed = plan.objects(ChangeKind::Remove).count();
    if removed == 0 {
        return Ok(());
    }
    let existing = removed + plan.objects(ChangeKind::Update).count() + plan.unchanged;
    let remaining = existing - removed + plan.objects(ChangeKind::Add).count();
    if remaining == 0 {
        return if limits.allow_empty {
            Ok(())
        } else {
            Err(GuardError::Empty { existing })
        };
    }
    let allowed = match limits.max_removals {
        MaxRemovals::Count(n) => removed <= n,
        MaxRemovals::Percent(p) => removed as f64 <= existing as f64 * p / 100.0,
    };
    if allowed {
        Ok(())
    } else {
        Err(GuardError::TooMany {
            removed,
            existing,
            limit: limits.max_removals,
        })
    }
}
