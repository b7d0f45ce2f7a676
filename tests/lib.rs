//! Real servers for the tests, started on loopback ports by the tests
//! themselves: `sshd` for the hot-backup listener, an SMTP server for
//! the e-mail listener, `rsyslogd` for the syslog listener and
//! `nats-server` for the nats listener. Shared by the listener crates' own
//! tests and the end-to-end tests in `e2e/`.

pub mod nats;
pub mod rsyslog;
pub mod smtp;
pub mod sshd;
