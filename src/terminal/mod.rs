//! The terminal.

pub mod logging;
pub mod progress;
