//! What a run tells people: the commit message and the pull request's
//! body ([`message`], with [`admission`] saying what each change means for
//! admission), and the summary JSON and human lines ([`summary`]).
//!
//! Enters: plans (whose changes carry each object's facts, so nothing is
//! parsed here). Leaves: text. Pure; `commands` decides where it goes.

pub mod admission;
pub mod message;
pub mod summary;
