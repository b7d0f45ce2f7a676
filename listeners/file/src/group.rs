//! Group commit with `fsync = true`: one sync for several large batches.
//!
//! Syncing after every batch makes the disk and the writer take turns:
//! the writer copies a batch into the page cache while the disk is idle,
//! then waits while the disk writes it. On a disk file system a catch-up
//! so synced ran at 0.7 of `cat > copy && sync copy`. Writing a few batches
//! with their disk writes started at once (see [`crate::writeback`]) and
//! syncing once for all of them keeps the disk busy while the writer copies.
//!
//! The promise is unchanged: nothing is acknowledged before it is synced.
//! A deferred batch is acknowledged up to the last sync only
//! ([`Ack::Upto`](logdaemon_sdk::Ack::Upto)), and the host holds the rest
//! until a later call syncs it: the batch that brings the bytes waiting to
//! [`SYNC_EVERY`] or their age to [`MAX_AGE`], a small batch (a live
//! journal's few lines are synced as they come, as before), a gap, the
//! quiet journal's `no_data`, or `flush`. A crash before that sync loses
//! nothing: the record on disk still says where the synced output ends,
//! the next open cuts off what lies past it, and the host delivers it
//! again from its last acknowledgement.

use std::time::{Duration, Instant};

/// A batch of at least this many bytes may wait for a later sync: a
/// catch-up's batches, not a live journal's few lines.
pub(crate) const DEFER_MIN: u64 = 256 << 10;
/// Bytes written since the last sync that make the next batch sync them.
pub(crate) const SYNC_EVERY: u64 = 8 << 20;
/// How long written bytes may wait for their sync, at most, while batches
/// keep coming.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(1);

/// The bytes written since the last sync.
#[derive(Debug, Default)]
pub(crate) struct Group {
    bytes: u64,
    since: Option<Instant>,
}

impl Group {
    /// A batch of `bytes` was just written at `now`: whether its sync may
    /// wait for a later batch's. When it may, the bytes are counted as
    /// waiting; when not, the caller syncs them all and calls
    /// [`Group::synced`].
    pub(crate) fn defer(&mut self, bytes: u64, now: Instant) -> bool {
        let young = self
            .since
            .is_none_or(|s| now.saturating_duration_since(s) < MAX_AGE);
        if bytes < DEFER_MIN || self.bytes + bytes >= SYNC_EVERY || !young {
            return false;
        }
        self.bytes += bytes;
        self.since.get_or_insert(now);
        true
    }

    /// Everything written is synced (or was cut off after a failure).
    pub(crate) fn synced(&mut self) {
        *self = Group::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_batches_are_synced_at_once() {
        let mut g = Group::default();
        assert!(!g.defer(DEFER_MIN - 1, Instant::now()));
        assert!(g.since.is_none());
    }

    #[test]
    fn large_batches_wait_until_sync_every_bytes() {
        let mut g = Group::default();
        let now = Instant::now();
        let per = 1 << 20;
        let waits = (0..16).take_while(|_| g.defer(per, now)).count() as u64;
        assert_eq!(
            waits,
            SYNC_EVERY / per - 1,
            "the batch reaching SYNC_EVERY syncs"
        );
        assert!(g.since.is_some());
        g.synced();
        assert!(g.since.is_none());
        assert!(g.defer(per, now), "counting starts over after a sync");
    }

    #[test]
    fn bytes_wait_no_longer_than_max_age() {
        let mut g = Group::default();
        let t0 = Instant::now();
        assert!(g.defer(DEFER_MIN, t0));
        assert!(g.defer(DEFER_MIN, t0 + MAX_AGE / 2));
        assert!(
            !g.defer(DEFER_MIN, t0 + MAX_AGE),
            "the oldest waited MAX_AGE"
        );
    }
}
