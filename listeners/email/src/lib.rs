//! `email`: a logdaemon listener that mails review digests of selected
//! journal entries over SMTP, without losing or repeating a message.
//!
//! Entries chosen by rules (or the `p4-changes` preset, one mail per
//! submitted change with its full description) are held in a digest and
//! acknowledged to the host only once the SMTP server has accepted the
//! message carrying them. See docs/email.md for the configuration and the
//! delivery guarantees.

mod changes;
pub mod clock;
pub mod config;
mod digest;
mod listener;
mod rate;
pub mod rules;
mod send;
pub mod state;
mod template;

pub use clock::{Clock, ManualClock};
pub use listener::{EmailListener, Options};

logdaemon_sdk::export_listener!(EmailListener, "email");
