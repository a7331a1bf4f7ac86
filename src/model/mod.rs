//! What a policy is, independent of where it came from or where it goes:
//! the kinds the tool accepts, the identity of an object, and a policy
//! that passed validation.

pub mod cluster;
pub mod facts;
pub mod identity;
pub mod kind;
pub mod policy;
