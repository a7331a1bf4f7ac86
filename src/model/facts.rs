//! What the later stages need to know of a policy, read once from its
//! document: its identity, the annotations a reviewer looks for, and the
//! facts that decide admission (rules and their failure actions,
//! `failurePolicy`, `background`, what it matches).
//!
//! Enters: a validated document ([`Node`]). Leaves: [`ObjectFacts`], small
//! enough to keep for every rendered object, so the plan and the report
//! never parse a rendered file again. Subtrees whose content only needs
//! comparing (a rule's body, its `match`) are kept as a [`Fingerprint`].

use std::hash::{Hash, Hasher};

use crate::model::identity::Identity;
use crate::yaml::{Node, Scalar, Value};

/// The Kyverno annotations a reviewer looks for.
pub const ANNOTATIONS: [&str; 3] = [
    "policies.kyverno.io/title",
    "policies.kyverno.io/category",
    "policies.kyverno.io/severity",
];

/// What the plan and the report need of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFacts {
    pub identity: Identity,
    /// The values of [`ANNOTATIONS`], empty where absent.
    pub annotations: [String; 3],
    pub admission: Facts,
}

impl ObjectFacts {
    pub fn read(identity: Identity, root: &Node) -> ObjectFacts {
        let annotations = root.get("metadata").and_then(|m| m.get("annotations"));
        ObjectFacts {
            identity,
            annotations: ANNOTATIONS.map(|key| {
                annotations
                    .and_then(|a| a.get(key)?.as_str())
                    .unwrap_or_default()
                    .to_owned()
            }),
            admission: facts(root),
        }
    }
}

/// A subtree's content, for telling whether two are equal without keeping
/// either. Computed and compared within one run only (the hasher is not
/// promised stable across Rust releases, and it is never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(u64);

impl Fingerprint {
    pub fn of(node: &Node) -> Fingerprint {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        feed(node, &mut h);
        Fingerprint(h.finish())
    }

    fn of_opt(node: Option<&Node>) -> Option<Fingerprint> {
        node.map(Fingerprint::of)
    }
}

/// Content only, as [`Node`]'s equality: the marks take no part. Every
/// part is tagged and every list length-prefixed, so different trees do
/// not feed the same sequence.
fn feed(node: &Node, h: &mut impl Hasher) {
    match &node.value {
        Value::Scalar(s) => match s {
            Scalar::Null => 0u8.hash(h),
            Scalar::Bool(b) => (1u8, b).hash(h),
            Scalar::Int(i) => (2u8, i).hash(h),
            Scalar::Float(f) => (3u8, f.to_bits()).hash(h),
            Scalar::Str(s) => (4u8, s).hash(h),
        },
        Value::Seq(items) => {
            (5u8, items.len()).hash(h);
            items.iter().for_each(|i| feed(i, h));
        }
        Value::Map(entries) => {
            (6u8, entries.len()).hash(h);
            for (k, v) in entries {
                feed(k, h);
                feed(v, h);
            }
        }
    }
}

/// A validating rule (or CEL validation) and how it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    /// `Some("Enforce")`/`Some("Audit")` for a rule that validates; `None`
    /// for mutate, generate and the like.
    pub action: Option<String>,
    /// `match` and `exclude` of a kyverno.io rule.
    pub scope: (Option<Fingerprint>, Option<Fingerprint>),
    pub body: Fingerprint,
}

/// The admission-relevant facts of one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// kyverno.io policies' rules, by name; CEL validations by position.
    pub rules: Vec<Rule>,
    /// What the word "rule" is for this kind.
    pub rule_word: &'static str,
    /// `spec.validationFailureAction` (kyverno.io), `validationActions`.
    pub actions: Option<Vec<String>>,
    /// Whether `actions` is the kind's default rather than written out.
    pub actions_default: bool,
    pub failure_policy: Option<(String, bool)>,
    pub background: Option<(bool, bool)>,
    /// The policy-level scope fields by name (`matchConstraints`,
    /// `matchConditions`, `matchResources`).
    pub scope: Vec<(&'static str, Option<Fingerprint>)>,
    /// Whether a failing validation blocks the request.
    pub enforcing: bool,
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

/// Reads the facts of one policy document.
pub fn facts(root: &Node) -> Facts {
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
                    scope: (
                        Fingerprint::of_opt(rule.get("match")),
                        Fingerprint::of_opt(rule.get("exclude")),
                    ),
                    body: Fingerprint::of(rule),
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
                        body: Fingerprint::of(v),
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
                (
                    "matchConstraints",
                    Fingerprint::of_opt(spec.get("matchConstraints")),
                ),
                (
                    "matchConditions",
                    Fingerprint::of_opt(spec.get("matchConditions")),
                ),
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
                ("policyName", Fingerprint::of_opt(spec.get("policyName"))),
                (
                    "matchResources",
                    Fingerprint::of_opt(spec.get("matchResources")),
                ),
                ("paramRef", Fingerprint::of_opt(spec.get("paramRef"))),
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
                    body: Fingerprint::of(v),
                });
            }
            f.scope = vec![
                (
                    "matchConstraints",
                    Fingerprint::of_opt(spec.get("matchConstraints")),
                ),
                (
                    "matchConditions",
                    Fingerprint::of_opt(spec.get("matchConditions")),
                ),
            ];
        }
        _ => {}
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_stream;

    fn node(text: &str) -> Node {
        parse_stream(text.as_bytes())
            .unwrap()
            .remove(0)
            .root
            .unwrap()
    }

    #[test]
    fn fingerprints_follow_content_not_position() {
        let a = node("x: {a: 1, b: [t, '2']}\n");
        let moved = node("\n\n# a comment\nx:\n  a: 1\n  b:\n    - t\n    - '2'\n");
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&moved));
        for other in [
            "x: {a: 1, b: [t, 2]}\n",      // a string became a number
            "x: {b: [t, '2'], a: 1}\n",    // order is content in YAML
            "x: {a: 1, b: [t, '2', t]}\n", // one more item
            "x: {a: 1, b: [[t, '2']]}\n",  // nested differently
            "x: {a: 1.0, b: [t, '2']}\n",  // a float is not an int
        ] {
            assert_ne!(
                Fingerprint::of(&a),
                Fingerprint::of(&node(other)),
                "{other}"
            );
        }
    }

    #[test]
    fn a_rule_body_change_is_seen_and_its_annotations_read() {
        let policy = |pattern: &str| {
            node(&format!(
                "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\n  annotations:\n    policies.kyverno.io/severity: high\nspec:\n  rules:\n    - name: r\n      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}\n      validate: {{pattern: {{x: {pattern}}}}}\n"
            ))
        };
        let id = || Identity {
            kind: crate::model::kind::PolicyKind::ClusterPolicy,
            namespace: None,
            name: crate::model::identity::ObjectName::new("p").unwrap(),
        };
        let old = ObjectFacts::read(id(), &policy("a"));
        let new = ObjectFacts::read(id(), &policy("b"));
        assert_eq!(old.annotations, ["", "", "high"]);
        assert_eq!(old.admission.rules[0].scope, new.admission.rules[0].scope);
        assert_ne!(old.admission.rules[0].body, new.admission.rules[0].body);
        assert_eq!(old, ObjectFacts::read(id(), &policy("a")));
    }
}
