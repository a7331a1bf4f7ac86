//! Which forge, where its API is, and which token reaches it: from the
//! command line, the environment and the remote's URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Token;

/// Which forge, from the remote's URL or `--forge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ForgeKind {
    Github,
    Gitlab,
}

impl ForgeKind {
    pub fn name(self) -> &'static str {
        match self {
            ForgeKind::Github => "GitHub",
            ForgeKind::Gitlab => "GitLab",
        }
    }

    /// What the forge calls it.
    pub fn request_word(self) -> &'static str {
        match self {
            ForgeKind::Github => "pull request",
            ForgeKind::Gitlab => "merge request",
        }
    }
}

/// Where the pull request lives and how to reach it.
#[derive(Debug, Clone)]
pub struct ForgeConfig {
    pub kind: ForgeKind,
    /// The REST API's base: `https://api.github.com`, `https://HOST/api/v3`
    /// (GHES), `https://gitlab.com/api/v4`.
    pub api_url: reqwest::Url,
    /// `OWNER/NAME` on GitHub; the project's full path on GitLab.
    pub repo: String,
    pub token: Token,
    /// Where the token came from, for error messages (never the token).
    pub token_source: String,
    pub ca_file: Option<PathBuf>,
    /// The longest a rate limit may make the run wait, in all.
    pub max_wait: Duration,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The flags or the environment do not say enough: a usage error.
    #[error("{0}")]
    Config(String),
    #[error("{forge} API: {operation}: HTTP {status}: {message}{hint}")]
    Api {
        forge: &'static str,
        operation: String,
        status: u16,
        message: String,
        hint: String,
    },
    #[error("{forge} API: {operation}: rate limited, and the limit resets in {}s, past the {}s this run may wait: run again later", wait.as_secs(), max_wait.as_secs())]
    RateLimited {
        forge: &'static str,
        operation: String,
        wait: Duration,
        max_wait: Duration,
    },
    #[error("{forge} API: {operation}: {message}")]
    Transport {
        forge: &'static str,
        operation: String,
        message: String,
    },
    #[error("{forge} API: {operation}: the response is not what the API documents: {message}")]
    Response {
        forge: &'static str,
        operation: String,
        message: String,
    },
}

impl ForgeError {
    pub fn is_usage(&self) -> bool {
        matches!(self, ForgeError::Config(_))
    }
}

/// What the command line says about the forge (see `cli::ForgeArgs`).
#[derive(Debug, Clone, Default)]
pub struct Settings<'a> {
    pub kind: Option<ForgeKind>,
    pub api_url: Option<&'a str>,
    pub repo: Option<&'a str>,
    pub token_file: Option<&'a Path>,
    pub ca_file: Option<&'a Path>,
    pub max_wait: Duration,
    pub timeout: Duration,
}

/// The host and path of a git remote URL: `https://[user@]host[:port]/path`,
/// `ssh://git@host[:port]/path`, or scp-like `git@host:path`. The path has
/// no leading slash and no `.git`. Credentials in the URL are dropped.
pub fn parse_remote(url: &str) -> Option<(String, Option<u16>, String)> {
    let url = url.trim();
    let (host, port, path) = if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/')?;
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
                (h, p.parse().ok())
            }
            _ => (authority, None),
        };
        // An SSH port says nothing about the API's.
        let port = if scheme.starts_with("http") {
            port
        } else {
            None
        };
        (host.to_owned(), port, path.to_owned())
    } else {
        let (authority, path) = url.split_once(':')?;
        if authority.contains('/') {
            return None; // a local path
        }
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        (host.to_owned(), None, path.to_owned())
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).to_owned();
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some((host.to_ascii_lowercase(), port, path))
}

impl ForgeConfig {
    /// The configuration from the flags, the environment (`GITHUB_TOKEN`,
    /// `GITLAB_TOKEN`, `GIT_TOKEN`) and the push remote's URL. `env` is the
    /// environment lookup (tests pass their own).
    pub fn resolve(
        settings: &Settings,
        remote_url: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ForgeConfig, ForgeError> {
        let remote = remote_url.and_then(parse_remote);
        let kind = match (settings.kind, &remote) {
            (Some(kind), _) => kind,
            (None, Some((host, _, _))) if host == "github.com" => ForgeKind::Github,
            (None, Some((host, _, _))) if host == "gitlab.com" => ForgeKind::Gitlab,
            (None, Some((host, _, _))) => {
                return Err(ForgeError::Config(format!(
                    "--pull-request: the remote's host {host} is neither github.com nor gitlab.com; say which forge it is with --forge github|gitlab (and --forge-api-url if its API is not at the usual place)"
                )))
            }
            (None, None) => {
                return Err(ForgeError::Config(
                    "--pull-request: the remote's URL does not name a forge; pass --forge github|gitlab, --forge-api-url and --forge-repo".into(),
                ))
            }
        };
        let api_url = match settings.api_url {
            Some(url) => url.to_owned(),
            None => match (kind, &remote) {
                (ForgeKind::Github, Some((host, _, _))) if host == "github.com" => {
                    "https://api.github.com".into()
                }
                (ForgeKind::Github, Some((host, port, _))) => {
                    format!("https://{host}{}/api/v3", port_suffix(*port))
                }
                (ForgeKind::Gitlab, Some((host, port, _))) => {
                    format!("https://{host}{}/api/v4", port_suffix(*port))
                }
                (ForgeKind::Github, None) => "https://api.github.com".into(),
                (ForgeKind::Gitlab, None) => "https://gitlab.com/api/v4".into(),
            },
        };
        let api_url = reqwest::Url::parse(api_url.trim_end_matches('/'))
            .map_err(|e| ForgeError::Config(format!("--forge-api-url is not a URL: {e}")))?;
        if !matches!(api_url.scheme(), "http" | "https")
            || !api_url.username().is_empty()
            || api_url.password().is_some()
        {
            return Err(ForgeError::Config(
                "--forge-api-url must be an http(s) URL without credentials".into(),
            ));
        }
        let repo = match (settings.repo, &remote) {
            (Some(repo), _) => repo.trim_matches('/').to_owned(),
            (None, Some((_, _, path))) => path.clone(),
            (None, None) => {
                return Err(ForgeError::Config(
                    "--pull-request: cannot tell the repository from the remote's URL; pass --forge-repo OWNER/NAME (or the GitLab project's path)".into(),
                ))
            }
        };
        let segments: Vec<&str> = repo.split('/').collect();
        let valid = segments.iter().all(|s| {
            !s.is_empty()
                && *s != "."
                && *s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
        let shape = match kind {
            ForgeKind::Github => segments.len() == 2,
            ForgeKind::Gitlab => segments.len() >= 2,
        };
        if !valid || !shape {
            return Err(ForgeError::Config(format!(
                "--forge-repo {repo:?} is not {}",
                match kind {
                    ForgeKind::Github => "OWNER/NAME",
                    ForgeKind::Gitlab => "a project path (GROUP/[SUBGROUP/...]PROJECT)",
                }
            )));
        }
        let forge_var = match kind {
            ForgeKind::Github => "GITHUB_TOKEN",
            ForgeKind::Gitlab => "GITLAB_TOKEN",
        };
        let (token, token_source) = match settings.token_file {
            Some(path) => (
                Token::from_file("--forge-token-file", path).map_err(ForgeError::Config)?,
                format!("--forge-token-file {}", path.display()),
            ),
            None => {
                let found = [forge_var, "GIT_TOKEN"].into_iter().find_map(|var| {
                    env(var)
                        .map(|v| v.trim().to_owned())
                        .filter(|v| !v.is_empty())
                        .map(|v| (Token::new(v), var.to_owned()))
                });
                found.ok_or_else(|| {
                    ForgeError::Config(format!(
                        "--pull-request needs a {} token: set {forge_var} (or GIT_TOKEN), or pass --forge-token-file",
                        kind.name()
                    ))
                })?
            }
        };
        Ok(ForgeConfig {
            kind,
            api_url,
            repo,
            token,
            token_source,
            ca_file: settings.ca_file.map(Path::to_owned),
            max_wait: settings.max_wait,
            timeout: settings.timeout,
        })
    }
}

fn port_suffix(port: Option<u16>) -> String {
    port.map(|p| format!(":{p}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls() {
        for (url, want) in [
            (
                "https://github.com/acme/policies.git",
                Some(("github.com", None, "acme/policies")),
            ),
            (
                "https://x-access-token:SECRET@github.com/acme/policies",
                Some(("github.com", None, "acme/policies")),
            ),
            (
                "git@github.com:acme/policies.git",
                Some(("github.com", None, "acme/policies")),
            ),
            (
                "ssh://git@gitlab.com:22/group/sub/project.git",
                Some(("gitlab.com", None, "group/sub/project")),
            ),
            (
                "https://git.example.com:8443/group/project/",
                Some(("git.example.com", Some(8443), "group/project")),
            ),
            ("/srv/git/policies.git", None),
            ("./relative", None),
        ] {
            let got = parse_remote(url);
            let got = got
                .as_ref()
                .map(|(h, p, path)| (h.as_str(), *p, path.as_str()));
            assert_eq!(got, want, "{url}");
        }
    }

    fn settings() -> Settings<'static> {
        Settings {
            max_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
            ..Settings::default()
        }
    }

    #[test]
    fn forge_api_and_token_from_the_remote() {
        let env = |var: &str| match var {
            "GITLAB_TOKEN" => Some("gl".to_owned()),
            "GIT_TOKEN" => Some("git".to_owned()),
            _ => None,
        };
        let c = ForgeConfig::resolve(&settings(), Some("git@github.com:acme/p.git"), &env).unwrap();
        assert_eq!(
            (c.kind, c.api_url.as_str(), c.repo.as_str()),
            (ForgeKind::Github, "https://api.github.com/", "acme/p")
        );
        assert_eq!(
            (c.token.expose(), c.token_source.as_str()),
            ("git", "GIT_TOKEN")
        );
        let c =
            ForgeConfig::resolve(&settings(), Some("https://gitlab.com/g/s/p.git"), &env).unwrap();
        assert_eq!(
            (
                c.kind,
                c.api_url.as_str(),
                c.repo.as_str(),
                c.token.expose()
            ),
            (
                ForgeKind::Gitlab,
                "https://gitlab.com/api/v4",
                "g/s/p",
                "gl"
            )
        );
        let ghes = Settings {
            kind: Some(ForgeKind::Github),
            ..settings()
        };
        let c =
            ForgeConfig::resolve(&ghes, Some("https://github.acme.internal/o/r"), &env).unwrap();
        assert_eq!(c.api_url.as_str(), "https://github.acme.internal/api/v3");
        let e = ForgeConfig::resolve(&settings(), Some("https://git.acme.internal/o/r"), &env)
            .unwrap_err();
        assert!(e.to_string().contains("--forge github|gitlab"), "{e}");
        let e = ForgeConfig::resolve(&settings(), Some("https://github.com/o/r"), &|_| None)
            .unwrap_err();
        assert!(e.to_string().contains("GITHUB_TOKEN"), "{e}");
        let bad = Settings {
            repo: Some("o/../r"),
            ..settings()
        };
        assert!(ForgeConfig::resolve(&bad, Some("https://github.com/o/r"), &env).is_err());
    }
}
