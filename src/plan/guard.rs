//! The mass-removal guard. With `prune: true`, whatever leaves a rendered
//! directory is deleted from the cluster by a controller that usually runs
//! as cluster-admin, so a run that would remove much more than a policy
//! change normally does is refused: an Insights outage answering an empty
//! 200, or a truncated stream, must never become "delete every policy".

use std::fmt;
use std::str::FromStr;

use crate::plan::{ChangeKind, Plan};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::render_response;
    use crate::plan::{plan, Existing};

    fn policies(names: &[&str]) -> String {
        names
            .iter()
            .map(|n| format!("---\napiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {{name: {n}}}\n"))
            .collect()
    }

    fn plan_between(before: &[&str], after: &[&str]) -> Plan {
        let (old, _) = render_response(policies(before).as_bytes()).unwrap();
        let (new, _) = render_response(policies(after).as_bytes()).unwrap();
        let existing = old
            .files
            .into_iter()
            .map(|(p, f)| (p, Existing::File(f.bytes)))
            .collect();
        plan(new, existing).unwrap()
    }

    #[test]
    fn an_empty_response_never_empties_a_directory_silently() {
        let p = plan_between(&["a", "b"], &[]);
        assert_eq!(
            check(&p, &Limits::default()),
            Err(GuardError::Empty { existing: 2 })
        );
        let allow = Limits {
            allow_empty: true,
            ..Limits::default()
        };
        assert_eq!(check(&p, &allow), Ok(()));
        // Even a generous removal limit does not allow emptying.
        let generous = Limits {
            max_removals: MaxRemovals::Percent(100.0),
            allow_empty: false,
        };
        assert!(check(&p, &generous).is_err());
    }

    #[test]
    fn removals_beyond_the_limit_are_refused() {
        let p = plan_between(&["a", "b", "c", "d"], &["a"]);
        assert!(matches!(
            check(&p, &Limits::default()),
            Err(GuardError::TooMany {
                removed: 3,
                existing: 4,
                ..
            })
        ));
        let p = plan_between(&["a", "b", "c", "d"], &["a", "b"]);
        assert_eq!(check(&p, &Limits::default()), Ok(()));
        let counted = Limits {
            max_removals: MaxRemovals::Count(1),
            allow_empty: false,
        };
        assert!(check(&p, &counted).is_err());
        assert_eq!(check(&plan_between(&[], &["a"]), &counted), Ok(()));
    }

    #[test]
    fn limits_parse() {
        assert_eq!("10".parse(), Ok(MaxRemovals::Count(10)));
        assert_eq!("25%".parse(), Ok(MaxRemovals::Percent(25.0)));
        assert!("150%".parse::<MaxRemovals>().is_err());
        assert!("many".parse::<MaxRemovals>().is_err());
    }
}
