//! The built-in `file` listener: appends every entry of a journal to an
//! output file, exactly once, in order, across crashes and restarts.
//!
//! It is also the reference for listeners that need exactly-once output:
//! the host delivers at least once, so the listener keeps its own durable
//! [`record`] of how long its output is and which position it has reached,
//! repairs the output against that record on open, and skips entries the
//! record says are already written.
//!
//! ```toml
//! [[journal.listener]]
//! name = "copy"
//! plugin = "file"
//! [journal.listener.config]
//! path = "out/journal.raw"   # relative to the config file's directory
//! format = "raw"             # or "jsonl"
//! # encoding = "base64"      # format = "jsonl" only: "text" (default, lossy UTF-8) or "base64" (exact bytes)
//! fsync = true               # sync before acknowledging (default; a catch-up's large batches share one sync)
//! ```

pub mod config;

mod group;
mod held;
mod listener;
pub mod output;
pub mod record;
mod writeback;

pub use listener::FileListener;

logdaemon_sdk::export_listener!(FileListener, "file");
