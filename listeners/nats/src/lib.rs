//! The built-in `nats` listener: publishes every entry of a journal into a
//! NATS JetStream stream, one message per entry, exactly once and in order,
//! across daemon crashes, broker restarts and cluster failover, with no
//! time window.
//!
//! Exactly once rests on two things: the stream itself is the listener's
//! record (on open and after any uncertain publish it reads the last
//! message on its subject and skips what the stream already holds), and
//! every message is published with JetStream's expected-last-sequence
//! checks ([`publish`]), so a replay or a second writer can never append
//! out of order or twice. Only what JetStream acknowledged is acknowledged
//! to the host.
//!
//! ```toml
//! [[journal.listener]]
//! name = "fleet"
//! plugin = "nats"
//! [journal.listener.config]
//! servers = ["nats://127.0.0.1:4222"]
//! subject = "journal.{host}.{journal}"
//! stream = "JOURNALS"
//! ```

mod config;
mod conn;
mod listener;
mod message;
mod publish;
mod secret;
mod writer;

pub use listener::NatsListener;

logdaemon_sdk::export_listener!(NatsListener, "nats");
