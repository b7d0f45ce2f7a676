//! The logdaemon engine: journal formats, following, rotation, the listener
//! host and delivery. The binary in `main.rs` is a thin CLI over this crate.

mod ack;
pub mod checkpoint_cmd;
pub mod compress;
pub mod config;
pub mod dump;
pub mod engine;
pub mod follow;
pub mod format;
// The fuzz targets' bodies: built for `cargo fuzz` (`--cfg fuzzing`) and
// for the unit tests that replay the regressions, never into the daemon.
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod identity;
pub mod init;
pub mod quiet;
pub mod readahead;
pub mod rotation;
pub mod segment;
pub mod worker;
