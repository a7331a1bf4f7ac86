//! The terminal: log lines (human or JSON, every stderr line one object)
//! and the progress bar over several clusters' fetches.
//!
//! Enters: messages and counts from the commands. Leaves: lines on stderr.
//! Nothing else writes to stderr.

pub mod logging;
pub mod progress;
