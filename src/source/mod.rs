//! Where responses come from: a file, stdin, or the Insights API. All of
//! them end as the same thing, an [`Input`] per cluster, so the rest of the
//! pipeline does not know or care which was used.

pub mod insights;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cli::SourceArgs;
use crate::error::Error;
use crate::source::insights::{Client, ClientConfig, Token};

/// One response, or why it could not be had.
pub struct Input {
    /// The cluster it belongs to; `None` for `--from-file`.
    pub cluster: Option<String>,
    /// How to name it in messages: a file name, `stdin`, or `cluster NAME`.
    pub origin: String,
    pub bytes: Result<Vec<u8>, Error>,
}

/// A source, checked but not yet read.
pub enum Source {
    File(PathBuf),
    Insights {
        config: ClientConfig,
        clusters: Vec<String>,
    },
}

impl Source {
    /// Checks the flags. `--from-file` wins over the API settings, which may
    /// come from the insights-agent's environment variables.
    pub fn from_args(args: &SourceArgs) -> Result<Source, Error> {
        if let Some(path) = &args.from_file {
            // A file is one response, named by the one --cluster: with
            // several, which cluster it belongs to would be a guess (and
            // the others would silently get nothing).
            let mut named: Vec<&str> = Vec::new();
            for c in args
                .clusters
                .iter()
                .map(|c| c.trim())
                .filter(|c| !c.is_empty())
            {
                if !named.contains(&c) {
                    named.push(c);
                }
            }
            if named.len() > 1 {
                return Err(Error::Usage(format!(
                    "--from-file reads one response, for one cluster, but {} clusters are named ({}; from --cluster or FAIRWINDS_CLUSTER): name only the cluster the file belongs to",
                    named.len(),
                    named.join(", ")
                )));
            }
            return Ok(Source::File(path.clone()));
        }
        let org = args.org.as_deref().filter(|o| !o.is_empty()).ok_or_else(|| {
            Error::Usage(
                "say where the policies come from: --from-file PATH, or --org ORG and --cluster CLUSTER (or FAIRWINDS_ORG and FAIRWINDS_CLUSTER)".into(),
            )
        })?;
        let mut clusters: Vec<String> = Vec::new();
        for c in args
            .clusters
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
        {
            if !clusters.iter().any(|seen| seen == c) {
                clusters.push(c.to_owned());
            }
        }
        if clusters.is_empty() {
            return Err(Error::Usage(
                "name at least one cluster: --cluster CLUSTER (repeatable, or comma-separated), or FAIRWINDS_CLUSTER".into(),
            ));
        }
        let token = match &args.token_file {
            Some(path) => Token::from_file(path).map_err(Error::Fetch)?,
            None => match std::env::var("FAIRWINDS_TOKEN") {
                Ok(t) if !t.trim().is_empty() => Token::new(t.trim().to_owned()),
                _ => {
                    return Err(Error::Usage(
                        "no API token: set FAIRWINDS_TOKEN or pass --token-file PATH".into(),
                    ))
                }
            },
        };
        let mut config = ClientConfig::new(args.insights_host.clone(), org, token);
        config.connect_timeout = args.connect_timeout;
        config.request_timeout = args.request_timeout;
        config.retries = args.retries;
        config.backoff_min = args.retry_min_backoff;
        config.backoff_max = args.retry_max_backoff.max(args.retry_min_backoff);
        config.max_body_bytes = args.max_body_size;
        config.ca_file = args.ca_file.clone();
        config.concurrency = usize::from(args.concurrency);
        Ok(Source::Insights { config, clusters })
    }

    /// The clusters this source will produce, `None` for a file.
    pub fn clusters(&self) -> Vec<Option<String>> {
        match self {
            Source::File(_) => vec![None],
            Source::Insights { clusters, .. } => clusters.iter().cloned().map(Some).collect(),
        }
    }

    /// Reads every response. Per-cluster failures are returned in place,
    /// so the caller decides between all-or-nothing and `--keep-going`.
    pub fn read(self) -> Result<Vec<Input>, Error> {
        self.read_each(|input| input)
    }

    /// Reads every response and hands each to `each` as soon as it is
    /// there (from the API, in the order they complete, while the others
    /// are still being fetched); returns what `each` made of them in the
    /// order of the clusters. Per-cluster failures reach `each` in place.
    pub fn read_each<T>(self, mut each: impl FnMut(Input) -> T) -> Result<Vec<T>, Error> {
        match self {
            Source::File(path) => Ok(vec![each(read_file(&path))]),
            Source::Insights { config, clusters } => {
                let client = Client::new(config).map_err(Error::Fetch)?;
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
                let (tx, rx) = std::sync::mpsc::channel();
                let mut made: Vec<Option<T>> = clusters.iter().map(|_| None).collect();
                let bar = crate::terminal::progress::Bar::clusters(clusters.len());
                std::thread::scope(|scope| {
                    let fetcher =
                        scope.spawn(|| runtime.block_on(client.fetch_each(&clusters, tx)));
                    for (i, result) in rx {
                        let cluster = clusters[i].clone();
                        bar.done(&cluster);
                        made[i] = Some(each(Input {
                            origin: format!("cluster {cluster:?}"),
                            cluster: Some(cluster),
                            bytes: result.map_err(Error::Fetch),
                        }));
                    }
                    if let Err(panic) = fetcher.join() {
                        std::panic::resume_unwind(panic);
                    }
                });
                bar.finish();
                Ok(made
                    .into_iter()
                    .map(|m| m.expect("every cluster is fetched once"))
                    .collect())
            }
        }
    }
}

fn read_file(path: &Path) -> Input {
    let read_err = |source| Error::ReadInput {
        path: path.to_owned(),
        source,
    };
    let (origin, bytes) = if path == Path::new("-") {
        let mut bytes = Vec::new();
        let result = std::io::stdin()
            .read_to_end(&mut bytes)
            .map(|_| bytes)
            .map_err(read_err);
        ("stdin".to_string(), result)
    } else {
        (
            path.display().to_string(),
            std::fs::read(path).map_err(read_err),
        )
    };
    Input {
        cluster: None,
        origin,
        bytes,
    }
}

/// A cluster name becomes a directory under `--out`; refuse anything that
/// could be read as a path rather than a name.
pub fn check_cluster_dir_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.len() > 200
        || name
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
    if bad {
        return Err(Error::Usage(format!(
            "cluster name {name:?} cannot be a directory under --out: use letters, digits, '-', '_' and '.', not starting with '.'"
        )));
    }
    Ok(())
}
