//! Helpers shared by the integration tests.

pub mod cli;
pub mod env;
pub mod fake_forge;
pub mod fake_insights;
pub mod git;
pub mod ports;
pub mod proxy;
pub mod servers;
