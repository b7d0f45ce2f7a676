//! The built-in `syslog` listener: forwards journal entries to the local
//! syslog or a remote receiver (UDP, TCP, TLS, RELP), as RFC 5424 messages
//! that carry each entry's journal position, so a receiver can drop the
//! duplicates a broken connection may cause.

pub mod config;
pub mod level;
pub mod message;
pub mod stamp;

mod datagram;
mod listener;
pub mod record;
mod relp;
mod stream;
mod tls;
pub mod transport;

pub use listener::SyslogListener;

logdaemon_sdk::export_listener!(SyslogListener, "syslog");
