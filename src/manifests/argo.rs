//! Argo CD: an `Application` per cluster directory (automated sync with
//! prune, server-side diff), or one `ApplicationSet` for them all, and an
//! `AppProject` that admits only the policy kinds.

use crate::manifests::build::*;
use crate::manifests::rbac::kinds_by_group;
use crate::model::identity::{Namespace, ObjectName};
use crate::model::kind::Scope;
use crate::pipeline::validate::{OWNED_BY_KEY, OWNED_BY_VALUE};
use crate::yaml::{Node, Scalar, Value};

/// Where the Argo CD `Application`s send the policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An API server URL (`https://kubernetes.default.svc` is Argo CD's own
    /// cluster); `{cluster}` is replaced.
    Server(String),
    /// A cluster registered in Argo CD, by name; `{cluster}` is replaced.
    Name(String),
}

/// What `--argo` writes.
#[derive(Debug, Clone)]
pub struct ArgoConfig {
    /// Repository directory of the Argo CD files.
    pub dir: String,
    /// One `ApplicationSet` over every cluster directory instead of one
    /// `Application` per cluster.
    pub appset: bool,
    pub repo_url: String,
    pub revision: String,
    pub namespace: Namespace,
    pub project: ObjectName,
    pub destination: Destination,
    /// Whether the destination was given (`--argo-destination-server` or
    /// `--argo-destination-name`) rather than defaulted to Argo CD's own
    /// cluster, which is no default for several clusters.
    pub destination_given: bool,
}

/// The compare option that makes Argo CD diff against a server-side dry
/// run, so fields Kyverno's webhooks default are part of the desired state
/// rather than drift.
pub(super) const SERVER_SIDE_DIFF: (&str, &str) =
    ("argocd.argoproj.io/compare-options", "ServerSideDiff=true");

pub(super) fn argo_metadata(name: &str, argo: &ArgoConfig) -> Node {
    let mut meta = metadata(name, Some(argo.namespace.as_str()));
    meta.get_mut("annotations")
        .and_then(Node::as_map_mut)
        .expect("metadata has annotations")
        .push((s(SERVER_SIDE_DIFF.0), s(SERVER_SIDE_DIFF.1)));
    meta
}

/// `spec` of an Application: automated sync with prune and self-heal,
/// server-side apply, and retries so a first sync that races Kyverno's CRDs
/// is tried again. No finalizer: deleting the Application leaves the
/// policies in place rather than deleting every one of them.
pub(super) fn application_spec(argo: &ArgoConfig, path: Node, destination: Node) -> Node {
    map([
        ("project", s(argo.project.as_str())),
        (
            "source",
            map([
                ("repoURL", s(&argo.repo_url)),
                ("targetRevision", s(&argo.revision)),
                ("path", path),
            ]),
        ),
        ("destination", destination),
        (
            "syncPolicy",
            map([
                (
                    "automated",
                    map([("prune", b(true)), ("selfHeal", b(true))]),
                ),
                ("syncOptions", seq([s("ServerSideApply=true")])),
                (
                    "retry",
                    map([
                        ("limit", Node::new(Value::Scalar(Scalar::Int(5)))),
                        (
                            "backoff",
                            map([
                                ("duration", s("30s")),
                                ("factor", Node::new(Value::Scalar(Scalar::Int(2)))),
                                ("maxDuration", s("10m")),
                            ]),
                        ),
                    ]),
                ),
            ]),
        ),
    ])
}

/// The destination of one cluster's Application: `{cluster}` in the
/// server or name replaced by `cluster` (a name, or the ApplicationSet's
/// template expression).
pub(super) fn destination(argo: &ArgoConfig, cluster: &str) -> Node {
    match &argo.destination {
        Destination::Server(url) => map([("server", s(url.replace("{cluster}", cluster)))]),
        Destination::Name(template) => map([("name", s(template.replace("{cluster}", cluster)))]),
    }
}

pub(super) fn argo_application(
    argo: &ArgoConfig,
    name: &str,
    cluster: Option<&str>,
    policies: &str,
) -> Node {
    object(
        "argoproj.io/v1alpha1",
        "Application",
        argo_metadata(name, argo),
        Some(application_spec(
            argo,
            s(policies),
            destination(argo, cluster.unwrap_or_default()),
        )),
    )
}

/// An `ApplicationSet` whose git directory generator finds every rendered
/// cluster directory of `--path`, and makes one Application of each.
pub(super) fn argo_application_set(argo: &ArgoConfig, path_template: &str) -> Result<Node, String> {
    let segments: Vec<&str> = path_template.trim_end_matches('/').split('/').collect();
    let at = segments
        .iter()
        .position(|seg| *seg == "{cluster}")
        .ok_or_else(|| {
            format!("--argo-appset needs --path with {{cluster}} as a whole path segment (it is {path_template:?})")
        })?;
    let pattern = segments
        .iter()
        .map(|seg| if *seg == "{cluster}" { "*" } else { seg })
        .collect::<Vec<_>>()
        .join("/");
    let cluster = format!("{{{{ index .path.segments {at} }}}}");
    let template = map([
        (
            "metadata",
            map([
                ("name", s(format!("kyverno-policies-{cluster}"))),
                ("namespace", s(argo.namespace.as_str())),
                (
                    "labels",
                    map([("app.kubernetes.io/managed-by", s("insights-policy-render"))]),
                ),
                (
                    "annotations",
                    map([
                        (OWNED_BY_KEY, s(OWNED_BY_VALUE)),
                        (SERVER_SIDE_DIFF.0, s(SERVER_SIDE_DIFF.1)),
                    ]),
                ),
            ]),
        ),
        (
            "spec",
            application_spec(argo, s("{{ .path.path }}"), destination(argo, &cluster)),
        ),
    ]);
    let generator = map([(
        "git",
        map([
            ("repoURL", s(&argo.repo_url)),
            ("revision", s(&argo.revision)),
            ("directories", seq([map([("path", s(pattern))])])),
        ]),
    )]);
    let spec = map([
        ("goTemplate", b(true)),
        ("goTemplateOptions", seq([s("missingkey=error")])),
        ("generators", seq([generator])),
        ("template", template),
    ]);
    Ok(object(
        "argoproj.io/v1alpha1",
        "ApplicationSet",
        metadata("kyverno-policies", Some(argo.namespace.as_str())),
        Some(spec),
    ))
}

/// An `AppProject` that lets its Applications create the policy kinds and
/// nothing else, from the policy repository only. A response can only hold
/// policy kinds, but this makes Argo CD refuse anything else on its own.
pub(super) fn argo_project(argo: &ArgoConfig) -> Node {
    let whitelist = |scope| {
        seq(kinds_by_group(Some(scope))
            .into_iter()
            .flat_map(|(group, kinds)| {
                kinds
                    .into_iter()
                    .map(move |k| map([("group", s(group)), ("kind", s(k.kind()))]))
            }))
    };
    let destination = match &argo.destination {
        // The project is shared by every cluster: `{cluster}` in a server
        // URL becomes a glob, which AppProject destinations accept.
        Destination::Server(url) => map([
            ("server", s(url.replace("{cluster}", "*"))),
            ("namespace", s("*")),
        ]),
        Destination::Name(_) => map([("name", s("*")), ("namespace", s("*"))]),
    };
    let spec = map([
        (
            "description",
            s("Kyverno policies from Fairwinds Insights, rendered by insights-policy-render"),
        ),
        ("sourceRepos", seq([s(&argo.repo_url)])),
        ("destinations", seq([destination])),
        ("clusterResourceWhitelist", whitelist(Scope::Cluster)),
        ("namespaceResourceWhitelist", whitelist(Scope::Namespaced)),
    ]);
    object(
        "argoproj.io/v1alpha1",
        "AppProject",
        metadata(argo.project.as_str(), Some(argo.namespace.as_str())),
        Some(spec),
    )
}
