//! Where a plan is carried out.

pub mod dir;
pub mod fsutil;
pub mod git;
