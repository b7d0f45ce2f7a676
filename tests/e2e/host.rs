//! The plugin host and its delivery semantics through the real daemon, with
//! the `testkit` listener (tests/plugins/testkit) recording what it is given:
//! a listener that asks to retry for a long time loses nothing and holds
//! nobody back; panics and Fatal failures are reported and handled per
//! `on_failure` (and a daemon left with no listener says so); a lost
//! predecessor stops the daemon with both ways out, each of which works (or,
//! with `on_gap = "report"`, reaches the listeners as a gap);
//! `no_data(had_data)` follows the quiet timer; SIGTERM and SIGINT stop
//! cleanly with nothing lost or repeated.
//!
//! The helpers (in `support`) are shared with the `commands` module.

mod failures;
mod no_data;
mod predecessor;
mod retry;
mod signals;
mod support;

pub use support::*;
