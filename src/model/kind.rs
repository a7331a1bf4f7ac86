//! The policy kinds a response may carry, and nothing else.
//!
//! This table is the allow-list that keeps a `ClusterRoleBinding` (or any
//! other object) out of a repository that a cluster-admin controller applies
//! with prune on. It is an enum rather than strings so that a kind outside it
//! cannot be represented at all past validation.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Cluster,
    Namespaced,
}

macro_rules! policy_kinds {
    ($($variant:ident => ($group:literal, $kind:literal, $scope:ident)),+ $(,)?) => {
        /// A (group, kind) pair from the kinds table of the product.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum PolicyKind {
            $($variant),+
        }

        impl PolicyKind {
            pub const ALL: &'static [PolicyKind] = &[$(PolicyKind::$variant),+];

            pub fn group(self) -> &'static str {
                match self { $(PolicyKind::$variant => $group),+ }
            }

            pub fn kind(self) -> &'static str {
                match self { $(PolicyKind::$variant => $kind),+ }
            }

            pub fn scope(self) -> Scope {
                match self { $(PolicyKind::$variant => Scope::$scope),+ }
            }
        }
    };
}

policy_kinds! {
    ClusterPolicy => ("kyverno.io", "ClusterPolicy", Cluster),
    Policy => ("kyverno.io", "Policy", Namespaced),
    ClusterCleanupPolicy => ("kyverno.io", "ClusterCleanupPolicy", Cluster),
    CleanupPolicy => ("kyverno.io", "CleanupPolicy", Namespaced),
    KyvernoPolicyException => ("kyverno.io", "PolicyException", Namespaced),
    ValidatingPolicy => ("policies.kyverno.io", "ValidatingPolicy", Cluster),
    ImageValidatingPolicy => ("policies.kyverno.io", "ImageValidatingPolicy", Cluster),
    MutatingPolicy => ("policies.kyverno.io", "MutatingPolicy", Cluster),
    GeneratingPolicy => ("policies.kyverno.io", "GeneratingPolicy", Cluster),
    DeletingPolicy => ("policies.kyverno.io", "DeletingPolicy", Cluster),
    NamespacedValidatingPolicy => ("policies.kyverno.io", "NamespacedValidatingPolicy", Namespaced),
    NamespacedImageValidatingPolicy => ("policies.kyverno.io", "NamespacedImageValidatingPolicy", Namespaced),
    NamespacedMutatingPolicy => ("policies.kyverno.io", "NamespacedMutatingPolicy", Namespaced),
    NamespacedGeneratingPolicy => ("policies.kyverno.io", "NamespacedGeneratingPolicy", Namespaced),
    NamespacedDeletingPolicy => ("policies.kyverno.io", "NamespacedDeletingPolicy", Namespaced),
    PoliciesPolicyException => ("policies.kyverno.io", "PolicyException", Namespaced),
    ValidatingAdmissionPolicy => ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy", Cluster),
    ValidatingAdmissionPolicyBinding => ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", Cluster),
    MutatingAdmissionPolicy => ("admissionregistration.k8s.io", "MutatingAdmissionPolicy", Cluster),
    MutatingAdmissionPolicyBinding => ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding", Cluster),
}

impl PolicyKind {
    /// Looks a kind up by its API group and kind, any version of the group.
    pub fn lookup(group: &str, kind: &str) -> Option<PolicyKind> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.group() == group && k.kind() == kind)
    }

    /// Whether a kind of this name exists in the table under another group,
    /// as `PolicyException` does: file names must then carry the group.
    pub fn kind_name_is_shared(self) -> bool {
        Self::ALL
            .iter()
            .any(|k| k.kind() == self.kind() && k.group() != self.group())
    }

    /// The groups that define a kind of this name, for "did you mean" errors.
    pub fn groups_for_kind(kind: &str) -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|k| k.kind() == kind)
            .map(|k| k.group())
            .collect()
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind(), self.group())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_exception_is_the_only_shared_kind_name() {
        let shared: Vec<_> = PolicyKind::ALL
            .iter()
            .filter(|k| k.kind_name_is_shared())
            .collect();
        assert_eq!(
            shared,
            [
                &PolicyKind::KyvernoPolicyException,
                &PolicyKind::PoliciesPolicyException
            ]
        );
    }

    #[test]
    fn lookup_requires_the_right_group() {
        assert_eq!(
            PolicyKind::lookup("kyverno.io", "ClusterPolicy"),
            Some(PolicyKind::ClusterPolicy)
        );
        assert_eq!(PolicyKind::lookup("example.com", "ClusterPolicy"), None);
        assert_eq!(
            PolicyKind::lookup("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            None
        );
    }
}
