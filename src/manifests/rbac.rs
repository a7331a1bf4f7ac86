//! Least-privilege RBAC, derived from the kinds table: exactly the policy
//! kinds, in their groups, with the verbs applying and pruning need.

use std::collections::BTreeMap;

use crate::manifests::build::*;
use crate::model::identity::{Namespace, ObjectName};
use crate::model::kind::{PolicyKind, Scope};
use crate::yaml::Node;

/// The plural resource name of a kind, as its CRD (or the built-in API)
/// declares it.
pub(super) fn resource(kind: PolicyKind) -> String {
    let lower = kind.kind().to_ascii_lowercase();
    match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    }
}

/// Kinds by API group, in the table's order of groups.
pub(super) fn kinds_by_group(scope: Option<Scope>) -> BTreeMap<&'static str, Vec<PolicyKind>> {
    let mut groups: BTreeMap<&'static str, Vec<PolicyKind>> = BTreeMap::new();
    for &kind in PolicyKind::ALL {
        if scope.is_none_or(|s| s == kind.scope()) {
            groups.entry(kind.group()).or_default().push(kind);
        }
    }
    groups
}

/// What kustomize-controller needs, impersonating the account, to apply,
/// prune and health-check the policy kinds, and nothing else: no other
/// group, no other resource, no `escalate`, `bind` or `*`.
pub(super) fn cluster_role_rules() -> Vec<Node> {
    kinds_by_group(None)
        .into_iter()
        .map(|(group, kinds)| {
            let mut resources: Vec<String> = kinds.into_iter().map(resource).collect();
            resources.sort();
            map([
                ("apiGroups", seq([s(group)])),
                ("resources", seq(resources.into_iter().map(s))),
                (
                    "verbs",
                    seq([
                        "create", "delete", "get", "list", "patch", "update", "watch",
                    ]
                    .map(s)),
                ),
            ])
        })
        .collect()
}

pub(super) fn least_privilege_rbac(account: &ObjectName, namespace: &Namespace) -> [Node; 3] {
    let name = account.as_str();
    let subject = map([
        ("kind", s("ServiceAccount")),
        ("name", s(name)),
        ("namespace", s(namespace.as_str())),
    ]);
    let mut role = object(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        metadata(name, None),
        None,
    );
    push(&mut role, "rules", seq(cluster_role_rules()));
    let mut binding = object(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        metadata(name, None),
        None,
    );
    push(
        &mut binding,
        "roleRef",
        map([
            ("apiGroup", s("rbac.authorization.k8s.io")),
            ("kind", s("ClusterRole")),
            ("name", s(name)),
        ]),
    );
    push(&mut binding, "subjects", seq([subject]));
    [
        object(
            "v1",
            "ServiceAccount",
            metadata(name, Some(namespace.as_str())),
            None,
        ),
        role,
        binding,
    ]
}
