//! What a policy is, independent of where it came from or where it goes:
//! the kinds the tool accepts ([`kind`], the one table everything else is
//! derived from), the identity of an object ([`identity`]), cluster names
//! ([`cluster`]), a policy that passed validation ([`policy`]), and what
//! later stages need to know of one ([`facts`]).
//!
//! Enters: YAML nodes. Leaves: types that cannot hold an invalid name or
//! kind. No I/O, and nothing here depends on any other stage.

pub mod cluster;
pub mod facts;
pub mod identity;
pub mod kind;
pub mod path;
pub mod policy;
