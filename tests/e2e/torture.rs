//! The rotation-torture suite: every way a journal can be rotated,
//! truncated, compressed, crashed or starved that operators meet in the
//! field, each driven end to end against the real daemon binary, real
//! files, the real `logrotate` and real compressors.
//!
//! Every scenario ends the same way: the raw output of the `file` listener
//! is compared with the writer's own ledger and counted record by record
//! ([`tally::Tally`]): written, delivered, duplicated, reported lost. A
//! scenario passes only if every record written was delivered exactly once
//! and in order, except records that truly exist in no file any more, and
//! those must be exactly the ones the daemon reported.
//!
//! One command runs the suite and prints the table published in the
//! docs/proof.md: `scripts/torture.sh` (`--long` for the release-check mode, which
//! scales counts and durations up; see [`tally::long`]). Under
//! `cargo test` the suite runs in its bounded mode like any other module.
//!
//! Scenarios are numbered as in the table of docs/proof.md; one module per
//! family, the larger families with a file per scenario or group of them.

pub mod tally;

mod ascending;
mod compressed;
mod crash;
mod events;
mod glob;
mod identity;
mod outage;
mod rotation;
mod shared;
mod truncation;
