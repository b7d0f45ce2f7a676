//! Exactly once, or a precise report, in the corners a new user meets first:
//! SIGHUP, p4 journal numbers on a first start, loss messages that name the
//! missing file, NUL bytes that no truncation left, and p4 records that can
//! never close. Each test starts the real binary on real files.

mod ascending;
mod clock;
mod hangup;
mod late;
mod loss;
mod nul;
mod numbers;
mod owed;
mod reload;
mod start_end;
mod truncated;
mod unclosed;
