//! An idle worker: waiting for the next file event, periodic check or
//! `no_data`, cheaply (its files' stamp, no buffers kept).

use std::time::Duration;

use super::{Call, Next, Worker};

/// Past a follower's deadline by this much when woken for it.
const WAKE_MARGIN: Duration = Duration::from_millis(5);
use crate::engine::pool::in_call;

impl Worker {
    /// The follower finished a file and began the next one without an
    /// entry in between: nothing lies between the acknowledged position and
    /// the new one, so the cursor moves there (unless the listener holds
    /// entries), and a restart after the finished file is deleted does not
    /// look for it.
    pub(super) fn note_crossing(&mut self) {
        let Some(end) = self.cur().end else { return };
        if self.acked < self.delivered || end <= self.delivered {
            return;
        }
        self.delivered = end;
        self.set_ack(end);
    }

    /// Waits until woken, the next reconciliation, or a `no_data` is due.
    /// `stamp`: the follower just found nothing to read (take its stamp).
    pub(super) fn idle(&mut self, stamp: bool) -> Next {
        let now = self.clock.now();
        if let Some(had) = self.quiet.poll(now) {
            let preset = self.delivered;
            let r = in_call(|| self.instance.no_data(had, preset));
            let flow = self.after_call(r, preset, Call::Other);
            return self.after_flow(flow);
        }
        if stamp {
            match &self.joined {
                Some(j) => j.tap.note_idle(),
                None => self.follower.as_mut().expect("follower").note_idle(),
            }
        }
        self.idle_wait()
    }

    /// The wait of an idle worker: until the next `no_data` is due or the
    /// next periodic check. The first periodic check of each worker is
    /// spread over `reconcile_every`, so that thousands of journals are not
    /// all checked in the same instant.
    pub(super) fn idle_wait(&mut self) -> Next {
        let now = self.clock.now();
        let until_quiet = self.quiet.deadline().saturating_duration_since(now);
        let every = crate::engine::watch::reconcile_every(&self.journal);
        let every = match self.spread.take() {
            Some(fraction) => every.mul_f64(fraction),
            None => every,
        };
        // The follower's own deadline is in real time, as the pool's waits.
        let wake_at = match &self.joined {
            Some(j) => j.tap.wake_at(),
            None => self.follower.as_ref().and_then(|f| f.wake_at()),
        };
        let follower = wake_at.map_or(Duration::MAX, |at| {
            at.saturating_duration_since(std::time::Instant::now()) + WAKE_MARGIN
        });
        Next::Wait(until_quiet.min(every).min(follower))
    }

    /// Whether an idle worker, stepped again, may skip reading: the files
    /// are as they were when it last found nothing to read (see
    /// [`Follower::idle_unchanged`]).
    pub(super) fn idle_unchanged(&mut self) -> bool {
        if self.once || !self.cur().is_empty() || self.ahead.fill.is_some() {
            return false;
        }
        if let Some(j) = &self.joined {
            return j.tap.idle_unchanged(j.id);
        }
        self.follower.as_mut().is_some_and(|f| f.idle_unchanged())
    }

    /// For the pool's timer: the next wait when this worker has nothing to
    /// do now (not stopping, no retry or `no_data` due, nothing read ahead,
    /// its files unchanged since it found nothing to read); `None` when it
    /// must be stepped.
    pub(crate) fn still_idle(&mut self) -> Option<Duration> {
        if self.stopping() || self.retry_at.is_some() || self.unproven_start || self.owed.is_some()
        {
            return None;
        }
        if self.shared.lock().unwrap_or_else(|e| e.into_inner()).retire {
            return None;
        }
        if self.quiet.deadline() <= self.clock.now() || !self.idle_unchanged() {
            return None;
        }
        if self.could_join() {
            // A step joins the journal's reader, which stands where this one does.
            return None;
        }
        match self.idle_wait() {
            Next::Wait(d) => Some(d),
            _ => None,
        }
    }

    /// Gives back the buffers of an idle worker: an idle journal costs a
    /// few KiB, not a batch. The array of entries handed to the listener
    /// goes to the pool of such arrays (see [`super::entries`]).
    pub(super) fn release_buffers(&mut self) {
        self.batch.release();
        self.ahead.batch.release();
        self.entries.release();
        if let Some(f) = self.follower.as_mut() {
            f.release_buffers();
        }
        if let Some(j) = &self.joined {
            self.shot = None;
            j.tap.release_if_idle();
        }
    }
}
