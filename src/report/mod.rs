//! What a run tells people.

pub mod admission;
pub mod message;
pub mod summary;
