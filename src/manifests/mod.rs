//! The consumer side of a rendered directory: the Flux `Kustomization` or
//! the Argo CD `Application` that applies it with pruning on, and what they
//! need around them (a `GitRepository`, least-privilege RBAC, an
//! `AppProject` that admits only policy kinds, an `ApplicationSet`).
//!
//! Pure, like rendering: options and a rendered tree in, files out. The
//! files carry the same generated-file header as the policies, so the same
//! ownership rule protects them: a file the tool did not write is never
//! overwritten. Everything here is derived from the kinds table, so the RBAC
//! and the Argo CD whitelists can never drift from what a response may hold.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::model::identity::{Namespace, ObjectName};
use crate::model::kind::{PolicyKind, Scope};
use crate::pipeline::render::{RenderedTree, HEADER};
use crate::pipeline::validate::{OWNED_BY_KEY, OWNED_BY_VALUE};
use crate::plan::Existing;
use crate::yaml::{emit_document, Node, Scalar, Value};

/// A file of consumer manifests, at a repository-relative path. Argo CD
/// files are named like the policies, `KIND_NAME.yaml`, so an Application,
/// the AppProject and the ApplicationSet can never share a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// `NAME` or `NAMESPACE/NAME`: a reference to a Flux object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub namespace: Option<Namespace>,
    pub name: ObjectName,
}

impl FromStr for ObjectRef {
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
        Ok(ObjectRef { namespace, name })
    }
}

impl fmt::Display for ObjectRef {
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
    pub source: ObjectRef,
    /// When set, the `GitRepository` itself is written too, with this URL.
    pub source_url: Option<String>,
    pub source_branch: String,
    pub source_secret: Option<ObjectName>,
    /// The Kustomizations that install Kyverno (policies applied before its
    /// CRDs exist fail).
    pub depends_on: Vec<ObjectRef>,
    pub interval: FluxDuration,
    pub timeout: FluxDuration,
    /// When set, the Kustomization impersonates this account and the file
    /// also holds the account and a ClusterRole granting only policy kinds.
    pub service_account: Option<ObjectName>,
}

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

/// The consumer configuration of a run.
#[derive(Debug, Clone, Default)]
pub struct Consumers {
    pub flux: Option<FluxConfig>,
    pub argo: Option<ArgoConfig>,
}

impl Consumers {
    pub fn is_empty(&self) -> bool {
        self.flux.is_none() && self.argo.is_none()
    }

    /// The repository paths of a cluster's consumer files, checked like
    /// `--path` before anything is fetched.
    pub fn cluster_paths(&self, cluster: Option<&str>) -> Result<Vec<String>, String> {
        let mut paths = Vec::new();
        if let Some(flux) = &self.flux {
            paths.push(fill("--flux-path", &flux.path, cluster)?);
        }
        if let Some(argo) = &self.argo {
            if !argo.appset {
                let name = application_name(cluster)?;
                paths.push(format!("{}/application_{name}.yaml", argo.dir));
            }
        }
        Ok(paths)
    }

    /// The files that belong to one cluster. `policies` is the repository
    /// path of its rendered directory.
    pub fn cluster_files(
        &self,
        cluster: Option<&str>,
        policies: &str,
        kinds: &BTreeSet<PolicyKind>,
    ) -> Result<Vec<ConsumerFile>, String> {
        let mut files = Vec::new();
        if let Some(flux) = &self.flux {
            let mut docs = Vec::new();
            if flux.source_url.is_some() {
                docs.push(flux_git_repository(flux));
            }
            if let Some(sa) = &flux.service_account {
                docs.extend(least_privilege_rbac(sa, &flux.namespace));
            }
            docs.push(flux_kustomization(flux, policies, kinds));
            files.push(ConsumerFile {
                path: fill("--flux-path", &flux.path, cluster)?,
                bytes: file_bytes(&docs),
            });
        }
        if let Some(argo) = &self.argo {
            if !argo.appset {
                let name = application_name(cluster)?;
                files.push(ConsumerFile {
                    path: format!("{}/application_{name}.yaml", argo.dir),
                    bytes: file_bytes(&[argo_application(argo, &name, cluster, policies)]),
                });
            }
        }
        Ok(files)
    }

    /// The files shared by every cluster: the same bytes whichever clusters
    /// a run renders, so separate pipelines per cluster agree on them.
    /// `path_template` is the `--path` of the rendered directories.
    pub fn shared_files(&self, path_template: &str) -> Result<Vec<ConsumerFile>, String> {
        let mut files = Vec::new();
        if let Some(argo) = &self.argo {
            files.push(ConsumerFile {
                path: format!("{}/appproject_{}.yaml", argo.dir, argo.project.as_str()),
                bytes: file_bytes(&[argo_project(argo)]),
            });
            if argo.appset {
                files.push(ConsumerFile {
                    path: format!("{}/applicationset_kyverno-policies.yaml", argo.dir),
                    bytes: file_bytes(&[argo_application_set(argo, path_template)?]),
                });
            }
        }
        Ok(files)
    }
}

/// A rendered cluster directory, as the consumer files see it.
pub struct ClusterDir<'a> {
    pub cluster: Option<&'a str>,
    /// Repository path of the directory.
    pub path: &'a str,
    /// The kinds of its objects (they decide the readiness checks).
    pub kinds: BTreeSet<PolicyKind>,
}

impl Consumers {
    /// Checks where the files of these clusters would go, before anything
    /// is fetched: inside the repository, outside every policy directory
    /// (where they would be pruned and applied as policies), and one file
    /// per cluster.
    pub fn check_layout(
        &self,
        clusters: &[Option<String>],
        dirs: &[String],
        path_template: &str,
    ) -> Result<(), String> {
        if let Some(argo) = &self.argo {
            if clusters.len() > 1 && !argo.destination_given {
                return Err(format!(
                    "{} with {} clusters needs a destination per cluster: without one, every cluster's policies would go to Argo CD's own cluster. Give --argo-destination-name '{{cluster}}' (clusters registered in Argo CD under their Insights names) or --argo-destination-server URL ({{cluster}} is replaced in both)",
                    if argo.appset { "--argo-appset" } else { "--argo" },
                    clusters.len()
                ));
            }
        }
        let mut seen: BTreeMap<String, Option<&str>> = BTreeMap::new();
        let shared = self.shared_paths(path_template)?;
        for cluster in clusters.iter().map(Option::as_deref) {
            for path in self.cluster_paths(cluster)? {
                let path = repo_relative(&path)?;
                if let Some(other) = seen.insert(path.clone(), cluster) {
                    return Err(format!(
                        "clusters {} and {} would write the same consumer file {path}: put {{cluster}} in --flux-path",
                        other.unwrap_or("-"),
                        cluster.unwrap_or("-")
                    ));
                }
            }
        }
        for path in seen.keys().chain(&shared) {
            if !path.contains('/') {
                return Err(format!(
                    "the consumer file {path} must go in a directory of the repository, not at its root"
                ));
            }
            for dir in dirs {
                if path.starts_with(&format!("{dir}/")) {
                    return Err(format!(
                        "the consumer file {path} would be inside the rendered directory {dir}, where it would be applied as a policy and pruned: choose paths outside it"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The Argo CD files an earlier run wrote that would now clash with
    /// this run's: per-cluster Applications beside the ApplicationSet that
    /// generates Applications of the same names (after switching from
    /// `--argo` to `--argo-appset`), or that ApplicationSet beside them
    /// (after switching back). `existing` lists the files of the Argo CD
    /// directory; only files the tool wrote count. The paths returned are
    /// repository paths, sorted.
    pub fn clashing_argo_files(&self, existing: &BTreeMap<String, Existing>) -> Vec<String> {
        let Some(argo) = &self.argo else {
            return Vec::new();
        };
        existing
            .iter()
            .filter(|(_, e)| e.is_ours())
            .filter(|(name, _)| {
                if argo.appset {
                    name.starts_with("application_kyverno-policies-")
                } else {
                    name.as_str() == "applicationset_kyverno-policies.yaml"
                }
            })
            .map(|(name, _)| format!("{}/{name}", argo.dir))
            .collect()
    }

    /// [`Self::clashing_argo_files`] as an error that names the files.
    pub fn check_argo_switch(&self, existing: &BTreeMap<String, Existing>) -> Result<(), String> {
        let clashing = self.clashing_argo_files(existing);
        if clashing.is_empty() {
            return Ok(());
        }
        let appset = self.argo.as_ref().is_some_and(|a| a.appset);
        Err(format!(
            "{} would write Argo CD files that clash with those an earlier run wrote: {} {} Applications of the same names, and Argo CD would fight over them. Remove {} (git rm), then run again",
            if appset { "--argo-appset" } else { "--argo" },
            if appset {
                "the ApplicationSet generates"
            } else {
                "the Applications written now are"
            },
            if appset {
                "as these per-cluster Applications define"
            } else {
                "as the earlier ApplicationSet generates"
            },
            clashing.join(", ")
        ))
    }

    fn shared_paths(&self, path_template: &str) -> Result<Vec<String>, String> {
        Ok(self
            .shared_files(path_template)?
            .into_iter()
            .map(|f| f.path)
            .collect())
    }

    /// Every consumer file of a run, grouped by directory, as trees to plan
    /// like rendered directories (without removals).
    pub fn trees(
        &self,
        rendered: &[ClusterDir],
        path_template: &str,
    ) -> Result<Vec<(String, RenderedTree)>, String> {
        let mut files = self.shared_files(path_template)?;
        for r in rendered {
            files.extend(self.cluster_files(r.cluster, r.path, &r.kinds)?);
        }
        let mut dirs: BTreeMap<String, RenderedTree> = BTreeMap::new();
        for file in files {
            let path = repo_relative(&file.path)?;
            let (dir, name) = path
                .rsplit_once('/')
                .ok_or_else(|| format!("the consumer file {path} must go in a directory"))?;
            dirs.entry(dir.to_owned()).or_default().files.insert(
                name.to_owned(),
                crate::pipeline::render::RenderedFile::plain(file.bytes),
            );
        }
        Ok(dirs.into_iter().collect())
    }
}

/// A repository-relative, `/`-separated path that stays inside the
/// repository: no leading `/`, no `.`, `..` or `.git` part, no `\\`.
pub fn repo_relative(path: &str) -> Result<String, String> {
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
    Ok(path.to_owned())
}

fn fill(flag: &str, template: &str, cluster: Option<&str>) -> Result<String, String> {
    match cluster {
        Some(name) => Ok(template.replace("{cluster}", name)),
        None if template.contains("{cluster}") => Err(format!(
            "{flag} {template:?} needs a cluster name: with --from-file, name it with --cluster"
        )),
        None => Ok(template.to_owned()),
    }
}

fn application_name(cluster: Option<&str>) -> Result<String, String> {
    let cluster = cluster.ok_or_else(|| {
        "--argo writes one Application per cluster and needs its name: with --from-file, name it with --cluster".to_owned()
    })?;
    let name = format!("kyverno-policies-{cluster}");
    ObjectName::new(&name).map_err(|e| format!("Application name {name:?} {e}"))?;
    Ok(name)
}

fn file_bytes(docs: &[Node]) -> Vec<u8> {
    let mut text = String::from(HEADER);
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            text.push_str("---\n");
        }
        emit_document(doc, &mut text);
    }
    text.into_bytes()
}

fn s(text: impl Into<String>) -> Node {
    Node::string(text)
}

fn b(value: bool) -> Node {
    Node::new(Value::Scalar(Scalar::Bool(value)))
}

fn map<const N: usize>(entries: [(&str, Node); N]) -> Node {
    Node::new(Value::Map(
        entries.into_iter().map(|(k, v)| (s(k), v)).collect(),
    ))
}

fn seq(items: impl IntoIterator<Item = Node>) -> Node {
    Node::new(Value::Seq(items.into_iter().collect()))
}

/// Adds `key: value` to a mapping node (consumer objects are built here,
/// so the node is always a mapping).
fn push(node: &mut Node, key: &str, value: Node) {
    node.as_map_mut()
        .expect("objects are mappings")
        .push((s(key), value));
}

/// `metadata` with the ownership annotation every written object carries.
fn metadata(name: &str, namespace: Option<&str>) -> Node {
    let mut meta = map([("name", s(name))]);
    if let Some(ns) = namespace {
        push(&mut meta, "namespace", s(ns));
    }
    push(
        &mut meta,
        "labels",
        map([("app.kubernetes.io/managed-by", s("insights-policy-render"))]),
    );
    push(
        &mut meta,
        "annotations",
        map([(OWNED_BY_KEY, s(OWNED_BY_VALUE))]),
    );
    meta
}

fn object(api_version: &str, kind: &str, metadata: Node, spec: Option<Node>) -> Node {
    let mut obj = map([
        ("apiVersion", s(api_version)),
        ("kind", s(kind)),
        ("metadata", metadata),
    ]);
    if let Some(spec) = spec {
        push(&mut obj, "spec", spec);
    }
    obj
}

/// `./kyverno-policies/prod`: Flux paths are relative to the source root.
fn flux_path(policies: &str) -> String {
    format!("./{policies}")
}

fn reference(r: &ObjectRef) -> Node {
    let mut node = map([("name", s(r.name.as_str()))]);
    if let Some(ns) = &r.namespace {
        push(&mut node, "namespace", s(ns.as_str()));
    }
    node
}

fn flux_kustomization(flux: &FluxConfig, policies: &str, kinds: &BTreeSet<PolicyKind>) -> Node {
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
fn health_checks(kinds: &BTreeSet<PolicyKind>) -> Vec<Node> {
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

fn flux_git_repository(flux: &FluxConfig) -> Node {
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

/// The plural resource name of a kind, as its CRD (or the built-in API)
/// declares it.
fn resource(kind: PolicyKind) -> String {
    let lower = kind.kind().to_ascii_lowercase();
    match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    }
}

/// Kinds by API group, in the table's order of groups.
fn kinds_by_group(scope: Option<Scope>) -> BTreeMap<&'static str, Vec<PolicyKind>> {
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
fn cluster_role_rules() -> Vec<Node> {
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

fn least_privilege_rbac(account: &ObjectName, namespace: &Namespace) -> [Node; 3] {
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

/// The compare option that makes Argo CD diff against a server-side dry
/// run, so fields Kyverno's webhooks default are part of the desired state
/// rather than drift.
const SERVER_SIDE_DIFF: (&str, &str) =
    ("argocd.argoproj.io/compare-options", "ServerSideDiff=true");

fn argo_metadata(name: &str, argo: &ArgoConfig) -> Node {
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
fn application_spec(argo: &ArgoConfig, path: Node, destination: Node) -> Node {
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
fn destination(argo: &ArgoConfig, cluster: &str) -> Node {
    match &argo.destination {
        Destination::Server(url) => map([("server", s(url.replace("{cluster}", cluster)))]),
        Destination::Name(template) => map([("name", s(template.replace("{cluster}", cluster)))]),
    }
}

fn argo_application(argo: &ArgoConfig, name: &str, cluster: Option<&str>, policies: &str) -> Node {
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
fn argo_application_set(argo: &ArgoConfig, path_template: &str) -> Result<Node, String> {
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
fn argo_project(argo: &ArgoConfig) -> Node {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_durations_are_checked() {
        let r: ObjectRef = "flux-system/kyverno".parse().unwrap();
        assert_eq!(r.to_string(), "flux-system/kyverno");
        assert!("Kyverno".parse::<ObjectRef>().is_err());
        assert!("a/b/c".parse::<ObjectRef>().is_err());
        for ok in ["10m", "1h30m", "90s", "1.5h", "500ms"] {
            assert!(ok.parse::<FluxDuration>().is_ok(), "{ok}");
        }
        for bad in ["", "10", "m", "10 m", "1.h", "10d", "-5m"] {
            assert!(bad.parse::<FluxDuration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn plurals_follow_kubernetes() {
        assert_eq!(resource(PolicyKind::ClusterPolicy), "clusterpolicies");
        assert_eq!(
            resource(PolicyKind::KyvernoPolicyException),
            "policyexceptions"
        );
        assert_eq!(
            resource(PolicyKind::ValidatingAdmissionPolicyBinding),
            "validatingadmissionpolicybindings"
        );
    }
}
