//! The logdaemon engine: journal formats, following, rotation, the listener
//! host and delivery. The binary in `main.rs` is a thin CLI over this crate.

pub mod compress;
pub mod dump;
pub mod format;
