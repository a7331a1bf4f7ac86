//! A progress bar over the clusters being fetched, on stderr.
//!
//! Drawn only when there are several clusters, stderr is a terminal, and
//! `--quiet` was not given: a CI log, a pipe or a file gets nothing extra.
//! Log lines written while the bar is drawn go through [`Stderr`], which
//! hides the bar for the line and draws it again after.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static QUIET: AtomicBool = AtomicBool::new(false);
/// The bar being drawn, for [`Stderr`].
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// `--quiet`: no progress bar, whatever stderr is.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// The bar over one fetch of several clusters; does nothing when hidden.
/// Cheap to clone: clones advance the same bar.
#[derive(Clone)]
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar over `count` clusters, shown when stderr is a terminal.
    pub fn clusters(count: usize) -> Bar {
        Bar::new(count, std::io::stderr().is_terminal())
    }

    fn new(count: usize, terminal: bool) -> Bar {
        if count < 2 || !terminal || QUIET.load(Ordering::Relaxed) {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(Some(count as u64), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} fetching clusters {pos}/{len} [{bar:30}] {elapsed} {wide_msg}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        Bar(Some(bar))
    }

    /// Whether anything is drawn.
    pub fn is_shown(&self) -> bool {
        self.0.is_some()
    }

    /// One cluster is done (fetched or failed).
    pub fn done(&self, cluster: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(cluster.to_owned());
            bar.inc(1);
        }
    }

    /// Clears the bar, before the run's own output goes to stderr.
    pub fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
            *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

/// stderr for the logger: a line written while a bar is drawn hides the
/// bar first, so the two do not mix.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match active {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match active {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_only_for_several_clusters_on_a_terminal_without_quiet() {
        assert!(!Bar::new(1, true).is_shown(), "one cluster");
        assert!(!Bar::new(5, false).is_shown(), "not a terminal");
        let bar = Bar::new(5, true);
        assert!(bar.is_shown());
        bar.done("prod");
        bar.finish();
        assert!(ACTIVE.lock().unwrap().is_none(), "cleared when finished");
        set_quiet(true);
        assert!(!Bar::new(5, true).is_shown(), "--quiet");
        set_quiet(false);
    }
}
