//! End-to-end tests: the real `logdaemon` binary, real files, real
//! compressors, and (where a module says so) real `logrotate`, `sshd` and an
//! SMTP server started by the test itself.
//!
//! The binary and the built-in plugins are built by the suite itself at
//! start (`cargo build --workspace` into the target directory and profile
//! these tests were built with, see `fixture::target_dir`), so a plain
//! `cargo test` never tests a stale build.

mod fixture;

mod abi;
mod bad_input;
mod chaos;
mod checkpoint_log;
mod commands;
mod correctness;
mod docs;
mod dump;
mod email;
mod glob;
mod glob_edges;
mod host;
mod hot_backup;
mod install;
mod listener_check;
mod listeners;
mod nats;
mod replay;
mod rotation;
mod safety;
mod scale;
mod service;
mod status;
mod syslog;
mod torture;
mod writer;
