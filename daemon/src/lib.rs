//! The logdaemon engine: journal formats, following, rotation, the listener
//! host and delivery. The binary in `main.rs` is a thin CLI over this crate.

mod ack;
pub(crate) mod bufpool;
mod check_state;
pub mod checkpoint_cmd;
pub(crate) mod compress;
pub mod config;
pub mod dump;
pub mod engine;
pub(crate) mod follow;
pub mod format;
// The fuzz targets' bodies: built for `cargo fuzz` (`--cfg fuzzing`) and
// for the unit tests that replay the regressions, never into the daemon.
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod host;
pub(crate) mod identity;
pub mod init;
pub(crate) mod notify;
pub(crate) mod progress;
pub(crate) mod quiet;
pub(crate) mod readahead;
pub mod replay;
mod retarget;
pub(crate) mod rotation;
pub(crate) mod segment;
pub(crate) mod stamp;
pub mod status;
mod streams;
pub(crate) mod tap;
pub(crate) mod worker;
