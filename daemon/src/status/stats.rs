//! What a worker counts for `status` and `/metrics`, kept in its
//! [`Shared`](crate::worker::Shared) state.
//!
//! The worker sets these through one small call at each point (a call that
//! returned, a retry, progress after failures); everything else the status
//! shows (lag, caught up or behind) is read from the files and the cursor,
//! so the delivery path carries no more than a few additions under a lock
//! it takes anyway.

use std::collections::VecDeque;
use std::time::SystemTime;

use logdaemon_sdk::Position;
use serde::{Deserialize, Serialize};

/// Most recent gaps kept per listener.
pub const RECENT_GAPS: usize = 10;

/// Counters and the current failure of one listener.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListenerStats {
    /// Entries handed to the listener in calls that returned without error.
    pub delivered_entries: u64,
    /// Their bytes.
    pub delivered_bytes: u64,
    /// Calls that failed and were retried.
    pub retries: u64,
    /// Since when calls fail without progress (wall clock); `None` when
    /// the last call made progress.
    pub retrying_since: Option<SystemTime>,
    /// The message of the last failed call.
    pub last_error: Option<String>,
    /// Gaps reported to the listener.
    pub gaps: u64,
    /// The bytes those gaps are known to span (at least; see [`gap_bytes`]).
    pub gap_bytes: u64,
    pub recent_gaps: VecDeque<GapNote>,
    /// Whether it takes its journal's shared batches, and how often it
    /// fell behind them and joined again.
    pub reading: crate::worker::Reading,
}

/// One gap reported to a listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapNote {
    /// Seconds since the epoch when it was reported.
    pub at: u64,
    /// `SEQUENCE:OFFSET`.
    pub from: String,
    pub to: String,
    pub bytes: u64,
}

impl ListenerStats {
    pub fn delivered(&mut self, entries: usize, bytes: u64) {
        self.delivered_entries += entries as u64;
        self.delivered_bytes += bytes;
    }

    pub fn progressed(&mut self) {
        self.retrying_since = None;
    }

    pub fn retry(&mut self, message: &str, now: SystemTime) {
        self.retries += 1;
        self.retrying_since.get_or_insert(now);
        self.last_error = Some(message.to_string());
    }

    pub fn gap(&mut self, from: Position, to: Position, now: SystemTime) {
        let bytes = gap_bytes(from, to);
        self.gaps += 1;
        self.gap_bytes += bytes;
        if self.recent_gaps.len() == RECENT_GAPS {
            self.recent_gaps.pop_front();
        }
        self.recent_gaps.push_back(GapNote {
            at: unix(now),
            from: format!("{}:{}", from.sequence, from.offset),
            to: format!("{}:{}", to.sequence, to.offset),
            bytes,
        });
    }
}

/// The bytes a gap is known to span: the distance within one file; across
/// files, the bytes of the last file before `to` (the files in between are
/// gone, their sizes unknown).
pub fn gap_bytes(from: Position, to: Position) -> u64 {
    if from.sequence == to.sequence {
        to.offset.saturating_sub(from.offset)
    } else {
        to.offset
    }
}

pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(sequence: u64, offset: u64) -> Position {
        Position {
            sequence,
            offset,
            line: 1,
        }
    }

    #[test]
    fn retrying_since_is_the_first_failure_and_progress_clears_it() {
        let mut s = ListenerStats::default();
        let t0 = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100);
        s.retry("down", t0);
        s.retry("still down", t0 + std::time::Duration::from_secs(5));
        assert_eq!(s.retries, 2);
        assert_eq!(s.retrying_since, Some(t0));
        assert_eq!(s.last_error.as_deref(), Some("still down"));
        s.progressed();
        assert_eq!(s.retrying_since, None);
        assert_eq!(
            s.last_error.as_deref(),
            Some("still down"),
            "kept for the page"
        );
    }

    #[test]
    fn gaps_are_counted_and_the_recent_ones_kept_bounded() {
        let mut s = ListenerStats::default();
        for i in 0..15 {
            s.gap(pos(3, 10), pos(3, 110 + i), SystemTime::UNIX_EPOCH);
        }
        s.gap(pos(3, 10), pos(5, 40), SystemTime::UNIX_EPOCH);
        assert_eq!(s.gaps, 16);
        assert_eq!(s.gap_bytes, (0..15).map(|i| 100 + i).sum::<u64>() + 40);
        assert_eq!(s.recent_gaps.len(), RECENT_GAPS);
        assert_eq!(s.recent_gaps.back().unwrap().to, "5:40");
    }
}
