//! End-to-end tests: the real `logdaemon` binary, real files, real
//! compressors, and (where a module says so) real `logrotate`, `sshd` and an
//! SMTP server started by the test itself.
//!
//! The binary and the built-in plugins are taken from the cargo target
//! directory of the profile these tests were built with; the README's test
//! command builds them first (`cargo build --workspace`).

mod fixture;

mod bad_input;
mod chaos;
mod commands;
mod correctness;
mod dump;
mod email;
mod host;
mod hot_backup;
mod listeners;
mod rotation;
mod torture;
mod writer;
