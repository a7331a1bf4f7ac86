//! What a change to a policy means for admission, read from the policies
//! themselves (no cluster access): which rules came and went, and old → new
//! for what decides whether a request is let through (the failure action,
//! `failurePolicy`, `background`, what the policy matches).
//!
//! Pure: facts in, sentences out. [`crate::report::message`] puts them in the pull
//! request body, changes that start blocking requests first.

use crate::model::facts::{Facts, Rule};

/// One fact a reviewer reads, and whether it makes the cluster start
/// refusing requests it let through before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Markdown; names are in code spans, values as they are in the policy.
    pub text: String,
    pub blocking: bool,
}

/// What one added, updated or removed object changes for admission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// The failure action before and after (`Audit`, `Enforce`,
    /// `Deny, Audit`...), `None` for a kind that has none.
    pub action: (Option<String>, Option<String>),
    pub notes: Vec<Note>,
}

impl Admission {
    pub fn blocking(&self) -> impl Iterator<Item = &Note> {
        self.notes.iter().filter(|n| n.blocking)
    }
}

/// A name in a code span that cannot break out of it or out of a table.
pub fn code(text: &str) -> String {
    format!(
        "`{}`",
        text.replace('`', "'")
            .replace('|', "\\|")
            .replace(['\n', '\r'], " ")
    )
}

fn join_codes(names: &[&str]) -> String {
    names.iter().map(|n| code(n)).collect::<Vec<_>>().join(", ")
}

/// How the failure action reads in a table: one word, or per rule when the
/// rules differ.
fn action_label(f: &Facts) -> Option<String> {
    let actions = f.actions.as_ref()?;
    if !f.rules.iter().any(|r| r.action.is_some()) {
        return Some(actions.join(", "));
    }
    let mut seen: Vec<&str> = Vec::new();
    for r in &f.rules {
        if let Some(a) = &r.action {
            if !seen.contains(&a.as_str()) {
                seen.push(a);
            }
        }
    }
    Some(match seen.as_slice() {
        [one] => (*one).to_owned(),
        _ => {
            seen.sort_unstable();
            format!("{} (per rule)", seen.join(" / "))
        }
    })
}

/// The kyverno.io failure actions, or `validationActions`, that block.
fn blocks(action: &str) -> bool {
    action == "Enforce" || action == "Deny"
}

fn actions_text(actions: &[String], default: bool) -> String {
    let text = if actions.is_empty() {
        "(none)".to_owned()
    } else {
        actions.join(", ")
    };
    if default {
        format!("{text} (default)")
    } else {
        text
    }
}

/// What adding, updating or removing this object changes for admission.
/// `old` and `new` are its facts before and after.
pub fn describe(old: Option<&Facts>, new: Option<&Facts>) -> Admission {
    let mut notes = Vec::new();
    let action = (old.and_then(action_label), new.and_then(action_label));
    match (&old, &new) {
        (None, Some(n)) => {
            if n.enforcing {
                let what = match action_label(n) {
                    Some(a) => a,
                    None => "blocking mode".into(),
                };
                let rules: Vec<&str> = n
                    .rules
                    .iter()
                    .filter(|r| r.action.as_deref().is_some_and(blocks))
                    .map(|r| r.name.as_str())
                    .collect();
                notes.push(Note {
                    text: if rules.is_empty() {
                        format!("in enforcing mode ({what}): requests that fail it are denied")
                    } else {
                        format!(
                            "in enforcing mode: {} {} {} requests that fail {}",
                            plural(rules.len(), n.rule_word),
                            join_codes(&rules),
                            if rules.len() == 1 { "denies" } else { "deny" },
                            if rules.len() == 1 { "it" } else { "them" }
                        )
                    },
                    blocking: true,
                });
            }
            if let Some((p, false)) = &n.failure_policy {
                if p == "Ignore" {
                    notes.push(Note {
                        text: "added with `failurePolicy: Ignore`: requests are let through when the policy cannot be evaluated".into(),
                        blocking: false,
                    });
                }
            }
        }
        (Some(_), None) => {
            let o = old.as_ref().expect("matched");
            if o.enforcing {
                notes.push(Note {
                    text: "removed: the requests it denied are let through".into(),
                    blocking: false,
                });
            }
        }
        (Some(o), Some(n)) => compare(o, n, &mut notes),
        (None, None) => {}
    }
    // Blocking changes first.
    notes.sort_by_key(|n| !n.blocking);
    Admission { action, notes }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

fn compare(o: &Facts, n: &Facts, notes: &mut Vec<Note>) {
    let word = n.rule_word;
    // Rules by name.
    let added: Vec<&Rule> = n
        .rules
        .iter()
        .filter(|r| !o.rules.iter().any(|x| x.name == r.name))
        .collect();
    let removed: Vec<&str> = o
        .rules
        .iter()
        .filter(|r| !n.rules.iter().any(|x| x.name == r.name))
        .map(|r| r.name.as_str())
        .collect();
    let mut changed = Vec::new();
    let mut scope_changed = Vec::new();
    for r in &n.rules {
        let Some(before) = o.rules.iter().find(|x| x.name == r.name) else {
            continue;
        };
        if before.body != r.body {
            changed.push(r.name.as_str());
        }
        if before.scope != r.scope {
            scope_changed.push(r.name.as_str());
        }
        match (&before.action, &r.action) {
            (Some(a), Some(b)) if a != b => notes.push(Note {
                text: format!("{word} {}: failure action {a} → {b}", code(&r.name)),
                blocking: !blocks(a) && blocks(b),
            }),
            (None, Some(b)) if blocks(b) => notes.push(Note {
                text: format!("{word} {} now validates in {b}", code(&r.name)),
                blocking: true,
            }),
            _ => {}
        }
    }
    let enforcing_added: Vec<&str> = added
        .iter()
        .filter(|r| r.action.as_deref().is_some_and(blocks))
        .map(|r| r.name.as_str())
        .collect();
    if !enforcing_added.is_empty() {
        notes.push(Note {
            text: format!(
                "{} added in Enforce: {}",
                plural(enforcing_added.len(), word),
                join_codes(&enforcing_added)
            ),
            blocking: true,
        });
    }
    let others: Vec<&str> = added
        .iter()
        .filter(|r| !r.action.as_deref().is_some_and(blocks))
        .map(|r| r.name.as_str())
        .collect();
    if !others.is_empty() {
        notes.push(Note {
            text: format!(
                "{} added: {}",
                plural(others.len(), word),
                join_codes(&others)
            ),
            blocking: false,
        });
    }
    if !removed.is_empty() {
        notes.push(Note {
            text: format!(
                "{} removed: {}",
                plural(removed.len(), word),
                join_codes(&removed)
            ),
            blocking: false,
        });
    }
    if !changed.is_empty() {
        notes.push(Note {
            text: format!(
                "{} changed: {}",
                plural(changed.len(), word),
                join_codes(&changed)
            ),
            blocking: false,
        });
    }
    if !scope_changed.is_empty() {
        notes.push(Note {
            text: format!(
                "`match`/`exclude` changed in {} {}",
                plural(scope_changed.len(), word),
                join_codes(&scope_changed)
            ),
            blocking: false,
        });
    }
    // The policy-level action.
    if let (Some(a), Some(b)) = (&o.actions, &n.actions) {
        if a != b || (o.actions_default != n.actions_default && !o.rules.is_empty()) {
            let field = if o.rules.iter().any(|r| r.action.is_some())
                || n.rules.iter().any(|r| r.action.is_some())
            {
                "validationFailureAction"
            } else {
                "validationActions"
            };
            if a != b {
                let was = a.iter().any(|x| blocks(x));
                let now = b.iter().any(|x| blocks(x));
                // For kyverno.io policies what blocks is the rules' own
                // action, reported above; the policy default is context.
                let blocking = field == "validationActions" && !was && now;
                notes.push(Note {
                    text: format!(
                        "`{field}`: {} → {}",
                        actions_text(a, o.actions_default),
                        actions_text(b, n.actions_default)
                    ),
                    blocking,
                });
            }
        }
    }
    if let (Some((a, ad)), Some((b, bd))) = (&o.failure_policy, &n.failure_policy) {
        if a != b {
            let show = |p: &str, d: bool| {
                if d {
                    format!("{p} (default)")
                } else {
                    p.to_owned()
                }
            };
            notes.push(Note {
                text: format!(
                    "`failurePolicy`: {} → {}: {}",
                    show(a, *ad),
                    show(b, *bd),
                    if b == "Fail" {
                        "requests are denied when the policy cannot be evaluated"
                    } else {
                        "requests are let through when the policy cannot be evaluated"
                    }
                ),
                blocking: a == "Ignore" && b == "Fail",
            });
        }
    }
    if let (Some((a, _)), Some((b, _))) = (o.background, n.background) {
        if a != b {
            notes.push(Note {
                text: format!("`background`: {a} → {b}"),
                blocking: false,
            });
        }
    }
    let scope: Vec<&str> = n
        .scope
        .iter()
        .filter(|(field, value)| {
            o.scope
                .iter()
                .find(|(f, _)| f == field)
                .map_or(value.is_some(), |(_, v)| v != value)
        })
        .map(|(field, _)| *field)
        .collect();
    if !scope.is_empty() {
        notes.push(Note {
            text: format!(
                "{} changed: what the policy applies to is different",
                scope
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            blocking: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::facts::facts;
    use crate::yaml::parse_stream;

    fn read(text: &str) -> Facts {
        let doc = parse_stream(text.as_bytes()).unwrap().remove(0);
        facts(&doc.root.unwrap())
    }

    fn cp(action: &str, rule_action: Option<&str>, fp: &str) -> String {
        let ra = rule_action
            .map(|a| format!("\n        failureAction: {a}"))
            .unwrap_or_default();
        format!("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\nspec:\n  validationFailureAction: {action}\n  failurePolicy: {fp}\n  rules:\n    - name: r\n      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}\n      validate:\n        message: m{ra}\n        pattern: {{}}\n")
    }

    #[test]
    fn audit_to_enforce_blocks() {
        let a = describe(
            Some(&read(&cp("Audit", None, "Ignore"))),
            Some(&read(&cp("Enforce", None, "Fail"))),
        );
        assert_eq!(a.action, (Some("Audit".into()), Some("Enforce".into())));
        let blocking: Vec<_> = a.blocking().map(|n| n.text.as_str()).collect();
        assert_eq!(blocking.len(), 2, "{a:?}");
        assert!(blocking[0].contains("Audit → Enforce"), "{a:?}");
        assert!(blocking[1].contains("Ignore → Fail"), "{a:?}");
    }

    #[test]
    fn a_rule_override_wins_over_the_policy() {
        let a = describe(
            Some(&read(&cp("Enforce", Some("Audit"), "Fail"))),
            Some(&read(&cp("Enforce", Some("Audit"), "Fail"))),
        );
        assert!(a.notes.is_empty(), "{a:?}");
        assert_eq!(a.action.1.as_deref(), Some("Audit"));
        let added = describe(None, Some(&read(&cp("audit", Some("Enforce"), "Fail"))));
        assert!(added.notes[0].blocking, "{added:?}");
    }
}
