//! What a change to a policy means for admission, read from the policies
//! themselves (no cluster access): which rules came and went, and old → new
//! for what decides whether a request is let through (the failure action,
//! `failurePolicy`, `background`, what the policy matches).
//!
//! Pure: bytes in, sentences out. [`crate::report::message`] puts them in the pull
//! request body, changes that start blocking requests first.

use crate::yaml::{parse_stream, Node, Scalar, Value};

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

/// A validating rule (or CEL validation) and how it fails.
#[derive(Debug, Clone, PartialEq)]
struct Rule {
    name: String,
    /// `Some("Enforce")`/`Some("Audit")` for a rule that validates; `None`
    /// for mutate, generate and the like.
    action: Option<String>,
    /// `match` and `exclude` of a kyverno.io rule.
    scope: (Option<Node>, Option<Node>),
    body: Node,
}

/// The admission-relevant facts of one object.
#[derive(Debug, Clone, Default, PartialEq)]
struct Facts {
    /// kyverno.io policies' rules, by name; CEL validations by position.
    rules: Vec<Rule>,
    /// What the word "rule" is for this kind.
    rule_word: &'static str,
    /// `spec.validationFailureAction` (kyverno.io), `validationActions`.
    actions: Option<Vec<String>>,
    /// Whether `actions` is the kind's default rather than written out.
    actions_default: bool,
    failure_policy: Option<(String, bool)>,
    background: Option<(bool, bool)>,
    /// The policy-level scope fields by name (`matchConstraints`,
    /// `matchConditions`, `matchResources`).
    scope: Vec<(&'static str, Option<Node>)>,
    /// Whether a failing validation blocks the request.
    enforcing: bool,
}

fn scalar_str(node: Option<&Node>) -> Option<String> {
    match &node?.value {
        Value::Scalar(Scalar::Str(s)) => Some(s.clone()),
        Value::Scalar(Scalar::Bool(b)) => Some(b.to_string()),
        _ => None,
    }
}

fn path<'a>(node: &'a Node, keys: &[&str]) -> Option<&'a Node> {
    keys.iter().try_fold(node, |n, k| n.get(k))
}

fn seq(node: Option<&Node>) -> &[Node] {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items,
        _ => &[],
    }
}

/// `audit`/`enforce` (the deprecated spelling) as `Audit`/`Enforce`.
fn kyverno_action(text: &str) -> String {
    match text.to_ascii_lowercase().as_str() {
        "audit" => "Audit".into(),
        "enforce" => "Enforce".into(),
        _ => text.to_owned(),
    }
}

fn failure_policy(node: Option<&Node>) -> Option<(String, bool)> {
    Some(match scalar_str(node) {
        Some(p) => (p, false),
        None => ("Fail".into(), true),
    })
}

fn bool_default_true(node: Option<&Node>) -> (bool, bool) {
    match node.map(|n| &n.value) {
        Some(Value::Scalar(Scalar::Bool(b))) => (*b, false),
        _ => (true, true),
    }
}

fn facts(root: &Node) -> Facts {
    let group = scalar_str(root.get("apiVersion"))
        .and_then(|v| v.split_once('/').map(|(g, _)| g.to_owned()))
        .unwrap_or_default();
    let kind = scalar_str(root.get("kind")).unwrap_or_default();
    let empty = Node::new(Value::Map(Vec::new()));
    let spec = root.get("spec").unwrap_or(&empty);
    let mut f = Facts {
        rule_word: "rule",
        ..Facts::default()
    };
    match (group.as_str(), kind.as_str()) {
        ("kyverno.io", "ClusterPolicy" | "Policy") => {
            let policy_action = scalar_str(spec.get("validationFailureAction"))
                .map(|a| kyverno_action(&a))
                .unwrap_or_else(|| "Audit".into());
            for rule in seq(spec.get("rules")) {
                let name = scalar_str(rule.get("name")).unwrap_or_default();
                let action = if let Some(v) = rule.get("validate") {
                    Some(
                        scalar_str(v.get("failureAction"))
                            .map(|a| kyverno_action(&a))
                            .unwrap_or_else(|| policy_action.clone()),
                    )
                } else if rule.get("verifyImages").is_some() {
                    // Any image check in Enforce blocks.
                    let actions: Vec<String> = seq(rule.get("verifyImages"))
                        .iter()
                        .map(|v| {
                            scalar_str(v.get("failureAction"))
                                .map(|a| kyverno_action(&a))
                                .unwrap_or_else(|| policy_action.clone())
                        })
                        .collect();
                    Some(if actions.iter().any(|a| a == "Enforce") {
                        "Enforce".into()
                    } else {
                        actions.into_iter().next().unwrap_or(policy_action.clone())
                    })
                } else {
                    None
                };
                f.rules.push(Rule {
                    name,
                    action,
                    scope: (rule.get("match").cloned(), rule.get("exclude").cloned()),
                    body: rule.clone(),
                });
            }
            f.enforcing = f
                .rules
                .iter()
                .any(|r| r.action.as_deref() == Some("Enforce"));
            f.actions_default = spec.get("validationFailureAction").is_none();
            f.actions = Some(vec![policy_action]);
            f.failure_policy = failure_policy(
                path(spec, &["webhookConfiguration", "failurePolicy"])
                    .or(spec.get("failurePolicy")),
            );
            f.background = Some(bool_default_true(spec.get("background")));
        }
        ("policies.kyverno.io", k) => {
            let validating = k.ends_with("ValidatingPolicy");
            if validating {
                f.rule_word = "validation";
                let written: Vec<String> = seq(spec.get("validationActions"))
                    .iter()
                    .filter_map(|a| scalar_str(Some(a)))
                    .collect();
                f.actions_default = written.is_empty();
                let actions = if written.is_empty() {
                    vec!["Deny".to_owned()]
                } else {
                    written
                };
                f.enforcing = actions.iter().any(|a| a == "Deny");
                f.actions = Some(actions);
                for (i, v) in seq(spec.get("validations")).iter().enumerate() {
                    f.rules.push(Rule {
                        name: format!("validations[{i}]"),
                        action: None,
                        scope: (None, None),
                        body: v.clone(),
                    });
                }
            }
            if !k.ends_with("DeletingPolicy") {
                f.failure_policy = failure_policy(spec.get("failurePolicy"));
                f.background = Some(bool_default_true(path(
                    spec,
                    &["evaluation", "background", "enabled"],
                )));
            }
            f.scope = vec![
                ("matchConstraints", spec.get("matchConstraints").cloned()),
                ("matchConditions", spec.get("matchConditions").cloned()),
            ];
        }
        ("admissionregistration.k8s.io", k) if k.ends_with("Binding") => {
            let actions: Vec<String> = seq(spec.get("validationActions"))
                .iter()
                .filter_map(|a| scalar_str(Some(a)))
                .collect();
            if k.starts_with("Validating") {
                f.enforcing = actions.iter().any(|a| a == "Deny");
                f.actions = Some(actions);
            }
            f.scope = vec![
                ("policyName", spec.get("policyName").cloned()),
                ("matchResources", spec.get("matchResources").cloned()),
                ("paramRef", spec.get("paramRef").cloned()),
            ];
        }
        ("admissionregistration.k8s.io", k) => {
            f.failure_policy = failure_policy(spec.get("failurePolicy"));
            let list = if k.starts_with("Validating") {
                "validations"
            } else {
                "mutations"
            };
            f.rule_word = if list == "validations" {
                "validation"
            } else {
                "mutation"
            };
            for (i, v) in seq(spec.get(list)).iter().enumerate() {
                f.rules.push(Rule {
                    name: format!("{list}[{i}]"),
                    action: None,
                    scope: (None, None),
                    body: v.clone(),
                });
            }
            f.scope = vec![
                ("matchConstraints", spec.get("matchConstraints").cloned()),
                ("matchConditions", spec.get("matchConditions").cloned()),
            ];
        }
        _ => {}
    }
    f
}

fn root_of(bytes: Option<&[u8]>) -> Option<Node> {
    parse_stream(bytes?).ok()?.into_iter().find_map(|d| d.root)
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
/// `old` and `new` are the file's content before and after.
pub fn describe(old: Option<&[u8]>, new: Option<&[u8]>) -> Admission {
    let old = root_of(old).map(|r| facts(&r));
    let new = root_of(new).map(|r| facts(&r));
    let mut notes = Vec::new();
    let action = (
        old.as_ref().and_then(action_label),
        new.as_ref().and_then(action_label),
    );
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

    fn cp(action: &str, rule_action: Option<&str>, fp: &str) -> String {
        let ra = rule_action
            .map(|a| format!("\n        failureAction: {a}"))
            .unwrap_or_default();
        format!("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\nspec:\n  validationFailureAction: {action}\n  failurePolicy: {fp}\n  rules:\n    - name: r\n      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}\n      validate:\n        message: m{ra}\n        pattern: {{}}\n")
    }

    #[test]
    fn audit_to_enforce_blocks() {
        let a = describe(
            Some(cp("Audit", None, "Ignore").as_bytes()),
            Some(cp("Enforce", None, "Fail").as_bytes()),
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
            Some(cp("Enforce", Some("Audit"), "Fail").as_bytes()),
            Some(cp("Enforce", Some("Audit"), "Fail").as_bytes()),
        );
        assert!(a.notes.is_empty(), "{a:?}");
        assert_eq!(a.action.1.as_deref(), Some("Audit"));
        let added = describe(None, Some(cp("audit", Some("Enforce"), "Fail").as_bytes()));
        assert!(added.notes[0].blocking, "{added:?}");
    }
}
