//! From a response's bytes to a rendered tree.

pub mod render;
pub mod schema;
pub mod validate;
