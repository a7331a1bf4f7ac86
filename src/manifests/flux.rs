//! Flux: a `Kustomization` per cluster directory (prune on, wait and
//! health checks for the policy kinds), the `GitRepository` when the
//! bootstrap source is not used, and the RBAC of its service account.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::manifests::build::*;
use crate::model::identity::{Namespace, ObjectName};
use crate::model::kind::PolicyKind;
use crate::yaml::Node;

/// `NAME` or `NAMESPACE/NAME`: a reference to a Flux object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluxRef {
    pub namespace: Option<Namespace>,
    pub name: ObjectName,
}

impl FromStr for FluxRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (namespace, name) = match s.split_once('/') {
            Some((ns, name)) => (
                Some(Namespace::new(ns).map_err(|e| format!("namespace {ns:?} {e}"))?),
                name,
            ),
            None => (None, s),
        };
        let name = ObjectName::new(name).map_err(|e| format!("name {name:?} {e}"))?;
        Ok(FluxRef { namespace, name })
    }
}

impl fmt::Display for FluxRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}", ns.as_str(), self.name.as_str()),
            None => f.write_str(self.name.as_str()),
        }
    }
}

/// A duration as Flux's API accepts it (`10m`, `1h30m`, `90s`): the CRD's
/// pattern is checked here, so a typo fails the run instead of the
/// reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluxDuration(String);

impl FromStr for FluxDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a duration like 10m, 1h30m or 90s");
        let mut rest = s;
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            let number = &rest[..digits];
            let well_formed = match number.split_once('.') {
                Some((whole, frac)) => !whole.is_empty() && !frac.is_empty() && !frac.contains('.'),
                None => !number.is_empty(),
            };
            if !well_formed {
                return Err(bad());
            }
            rest = &rest[digits..];
            let unit = ["ms", "s", "m", "h"]
                .into_iter()
                .find(|u| rest.starts_with(u))
                .ok_or_else(bad)?;
            rest = &rest[unit.len()..];
        }
        Ok(FluxDuration(s.to_owned()))
    }
}

/// What `--flux` writes for each cluster.
#[derive(Debug, Clone)]
pub struct FluxConfig {
    /// Repository path of the file; `{cluster}` is replaced.
    pub path: String,
    pub name: ObjectName,
    pub namespace: Namespace,
    /// The `GitRepository` the Kustomization reads from.
    pub source: FluxRef,
    /// When set, the `GitRepository` itself is written too, with this URL.
    pub source_url: Option<String>,
    pub source_branch: String,
    pub source_secret: Option<ObjectName>,
    /// The Kustomizations that install Kyverno (policies applied before its
    /// CRDs exist fail).
    pub depends_on: Vec<FluxRef>,
    pub interval: FluxDuration,
    pub timeout: FluxDuration,
    /// When set, the Kustomization impersonates this account and the file
    /// also holds the account and a ClusterRole granting only policy kinds.
    pub service_account: Option<ObjectName>,
}

/// `./kyverno-policies/prod`: Flux paths are relative to the source root.
pub(super) fn flux_path(policies: &str) -> String {
    format!("./{policies}")
}

pub(super) fn reference(r: &FluxRef) -> Node {
    let mut node = map([("name", s(r.name.as_str()))]);
    if let Some(ns) = &r.namespace {
        push(&mut node, "namespace", s(ns.as_str()));
    }
    node
}

pub(super) fn flux_kustomization(
    flux: &FluxConfig,
    policies: &str,
    kinds: &BTreeSet<PolicyKind>,
) -> Node {
    let mut source_ref = map([
        ("kind", s("GitRepository")),
        ("name", s(flux.source.name.as_str())),
    ]);
    if let Some(ns) = &flux.source.namespace {
        push(&mut source_ref, "namespace", s(ns.as_str()));
    }
    let mut spec = map([
        ("interval", s(&flux.interval.0)),
        ("timeout", s(&flux.timeout.0)),
        ("sourceRef", source_ref),
        ("path", s(flux_path(policies))),
        ("prune", b(true)),
        ("wait", b(true)),
    ]);
    if !flux.depends_on.is_empty() {
        push(
            &mut spec,
            "dependsOn",
            seq(flux.depends_on.iter().map(reference)),
        );
    }
    if let Some(sa) = &flux.service_account {
        push(&mut spec, "serviceAccountName", s(sa.as_str()));
    }
    let checks = health_checks(kinds);
    if !checks.is_empty() {
        push(&mut spec, "healthCheckExprs", seq(checks));
    }
    object(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        metadata(flux.name.as_str(), Some(flux.namespace.as_str())),
        Some(spec),
    )
}

/// Readiness as Kyverno reports it, for the kinds in the tree that report
/// it. Without these, kstatus sees no condition it knows and calls a policy
/// ready the moment it exists, so `wait` would pass a policy Kyverno could
/// not load. Flux matches an expression by group and kind; the version is
/// the one the published CRDs store. A missing status is "not yet", never
/// an evaluation error (`?` and `orValue`), so a fresh object waits instead
/// of failing; a policy that never becomes ready fails at `timeout`.
pub(super) fn health_checks(kinds: &BTreeSet<PolicyKind>) -> Vec<Node> {
    kinds
        .iter()
        .copied()
        .filter_map(|kind| {
            let (version, current) = match kind.group() {
                "kyverno.io" if matches!(kind, PolicyKind::ClusterPolicy | PolicyKind::Policy) => (
                    "v1",
                    "status.?conditions.orValue([]).exists(c, c.type == 'Ready' && c.status == 'True')",
                ),
                "policies.kyverno.io" if kind != PolicyKind::PoliciesPolicyException => (
                    "v1beta1",
                    "status.?conditionStatus.?ready.orValue(false) == true",
                ),
                _ => return None,
            };
            Some(map([
                ("apiVersion", s(format!("{}/{version}", kind.group()))),
                ("kind", s(kind.kind())),
                ("current", s(current)),
            ]))
        })
        .collect()
}

pub(super) fn flux_git_repository(flux: &FluxConfig) -> Node {
    let url = flux.source_url.as_deref().expect("only called with a URL");
    let mut spec = map([
        ("interval", s(&flux.interval.0)),
        ("url", s(url)),
        ("ref", map([("branch", s(&flux.source_branch))])),
    ]);
    if let Some(secret) = &flux.source_secret {
        push(&mut spec, "secretRef", map([("name", s(secret.as_str()))]));
    }
    let namespace = flux.source.namespace.as_ref().unwrap_or(&flux.namespace);
    object(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        metadata(flux.source.name.as_str(), Some(namespace.as_str())),
        Some(spec),
    )
}
