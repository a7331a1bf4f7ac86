//! Where responses come from: a file, stdin, or the Insights API. All of
//! them end as the same thing, an [`Input`] per cluster, so the rest of the
//! pipeline does not know or care which was used.
//!
//! Enters: a [`Source`] (built by `cli`). Leaves: one [`Input`] per cluster,
//! bytes or a [`SourceError`], handed over as each arrives so the pipeline
//! renders a response while the others are still being fetched. The HTTP
//! client and its retries are in [`insights`].

pub mod insights;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::source::insights::{Client, ClientConfig, InsightsError};

/// Why a response could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Fetch(#[from] InsightsError),
    /// The fetches' threads could not be started: the machine, not the
    /// user, is at fault.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// One response, or why it could not be had.
pub struct Input {
    /// The cluster it belongs to; `None` for `--from-file`.
    pub cluster: Option<String>,
    /// How to name it in messages: a file name, `stdin`, or `cluster NAME`.
    pub origin: String,
    pub bytes: Result<Vec<u8>, SourceError>,
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
    /// The clusters this source will produce, `None` for a file.
    pub fn clusters(&self) -> Vec<Option<String>> {
        match self {
            Source::File(_) => vec![None],
            Source::Insights { clusters, .. } => clusters.iter().cloned().map(Some).collect(),
        }
    }

    /// Reads every response and hands each to `each` as soon as it is
    /// there (from the API, in the order they complete, while the others
    /// are still being fetched); returns what `each` made of them in the
    /// order of the clusters. Per-cluster failures reach `each` in place.
    pub fn read_each<T>(self, mut each: impl FnMut(Input) -> T) -> Result<Vec<T>, SourceError> {
        match self {
            Source::File(path) => Ok(vec![each(read_file(&path))]),
            Source::Insights { config, clusters } => {
                let client = Client::new(config)?;
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(SourceError::Runtime)?;
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
                            bytes: result.map_err(SourceError::Fetch),
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
    let read_err = |source| SourceError::Read {
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
