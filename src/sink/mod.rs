//! Where a plan is carried out: a directory ([`dir`]) or a git repository
//! ([`git`]).
//!
//! Enters: plans, checked and refused-or-not before anything is touched,
//! and their destination. Leaves: files on disk, or a commit (pushed, on a
//! branch or a bot branch), or a typed error naming what the user can do;
//! a run that fails part-way leaves the old state or the new one, never a
//! mix. Each sink also reads what exists, for the plan.

pub mod dir;
pub mod fsutil;
pub mod git;
