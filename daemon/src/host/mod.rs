//! The listener host: finding, vetting and loading plugin libraries, and
//! calling into them through the C ABI of `logdaemon-sdk`.
//!
//! A plugin runs with the daemon's privileges, so a library (or its
//! directory) that anyone else can write is refused before it is loaded.
//! Libraries are never unloaded: a plugin's threads or TLS destructors may
//! still point into its code.

mod instance;
mod plugin;

pub use instance::{check, note_stop_request, CallError, Checked, Instance, OpenParams};
pub use plugin::{load, resolve, HostError, Plugin};
