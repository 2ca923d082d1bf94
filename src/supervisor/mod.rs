//! The supervisor. (skeleton)
pub mod policy;
