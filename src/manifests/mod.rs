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
//!
//! Enters: [`Consumers`] (from the flags) and the rendered clusters'
//! directories and kinds ([`ClusterDir`]). Leaves: [`RenderedTree`]s of
//! manifest files by repository directory, planned like the policies but
//! never pruned, or a usage error naming the flag.

pub mod argo;
mod build;
pub mod flux;
mod rbac;

use std::collections::{BTreeMap, BTreeSet};

use crate::model::identity::ObjectName;
use crate::model::kind::PolicyKind;
use crate::model::path::RepoPath;
use crate::pipeline::render::RenderedTree;
use crate::plan::Existing;

use crate::manifests::argo::*;
pub use crate::manifests::argo::{ArgoConfig, Destination};
use crate::manifests::build::*;
use crate::manifests::flux::*;
pub use crate::manifests::flux::{FluxConfig, FluxDuration, FluxRef};
use crate::manifests::rbac::least_privilege_rbac;

/// A file of consumer manifests, at a repository-relative path. Argo CD
/// files are named like the policies, `KIND_NAME.yaml`, so an Application,
/// the AppProject and the ApplicationSet can never share a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerFile {
    pub path: String,
    pub bytes: Vec<u8>,
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
        dirs: &[RepoPath],
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
                let path = String::from(RepoPath::new(&path)?);
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
                if dir.holds(path) {
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
    ) -> Result<Vec<(RepoPath, RenderedTree)>, String> {
        let mut files = self.shared_files(path_template)?;
        for r in rendered {
            files.extend(self.cluster_files(r.cluster, r.path, &r.kinds)?);
        }
        let mut dirs: BTreeMap<RepoPath, RenderedTree> = BTreeMap::new();
        for file in files {
            let path = RepoPath::new(&file.path)?;
            let (dir, name) = path
                .rsplit_once('/')
                .ok_or_else(|| format!("the consumer file {path} must go in a directory"))?;
            dirs.entry(RepoPath::new(dir)?).or_default().files.insert(
                name.to_owned(),
                crate::pipeline::render::RenderedFile::plain(file.bytes),
            );
        }
        Ok(dirs.into_iter().collect())
    }
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

#[cfg(test)]
mod tests {
    use super::rbac::resource;
    use super::*;

    #[test]
    fn references_and_durations_are_checked() {
        let r: FluxRef = "flux-system/kyverno".parse().unwrap();
        assert_eq!(r.to_string(), "flux-system/kyverno");
        assert!("Kyverno".parse::<FluxRef>().is_err());
        assert!("a/b/c".parse::<FluxRef>().is_err());
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
