//! Reading through the journal's [`Tap`] (joined) or from disk on its own
//! (solo).
//!
//! A joined worker has no follower: it takes the tap's shots in order, the
//! same `Arc`'d batches as every other joined listener of the journal. A
//! solo worker has its own follower (the path of a listener that fell
//! behind the window, or whose re-read starts where no shot does). A solo
//! worker joins at the start of a step when nothing is read ahead, the
//! listener holds nothing, and its follower stands exactly (position and
//! file) where a shot of the window starts or at the tap's head; it falls
//! out when its next shot was dropped for room, reopening at what it
//! delivered.
//!
//! Rewinding: `delivered_serial` is the shot after the last one wholly
//! handed to the listener; while the listener holds nothing, the re-read
//! after a failed call is a re-read from that shot, in the window if it
//! is still there. After a second failure in a row, or when the shot is
//! gone, the worker reads from disk on its own (solo) as before.

use std::sync::Arc;

use logdaemon_sdk::Position;
use logdaemon_state::{Cursor, Finished, Identity};

use super::Worker;
use crate::follow::{Batch, Fill, FollowError, Follower};
use crate::tap::{Shot, ShotError, Take, Tap};

/// Membership of a tap; leaving it when dropped.
pub(super) struct Joined {
    pub(super) tap: Arc<Tap>,
    pub(super) id: u64,
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.tap.leave(self.id);
    }
}

/// A worker that has not tried to join its tap yet: the tap's first shots
/// wait for it (see [`Tap::expect`]) until it tries, or ends.
pub(super) struct Expected(pub(super) Arc<Tap>);

impl Expected {
    pub(super) fn new(tap: Arc<Tap>) -> Expected {
        tap.expect();
        Expected(tap)
    }
}

impl Drop for Expected {
    fn drop(&mut self) {
        self.0.settled();
    }
}

/// How a worker reads, for the status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// It takes its journal's shared batches (else it reads on its own).
    pub shared: bool,
    /// Times it left the shared batches to read on its own: it fell
    /// behind the window, or its listener failed twice in a row.
    pub fell_out: u64,
    /// Times it joined again after reading on its own.
    pub rejoined: u64,
}

impl Worker {
    /// The batch in hand: the shot's when joined.
    pub(super) fn cur(&self) -> &Batch {
        match &self.shot {
            Some(s) => &s.batch,
            None => &self.batch,
        }
    }

    /// Joins the tap when this solo worker may (see the module header).
    pub(super) fn try_join(&mut self) {
        // The first try, joined or not, lets the tap's first shots go.
        let _tried = self.expected.take();
        if self.joined.is_some() || self.ahead.fill.is_some() || self.acked != self.delivered {
            return;
        }
        let Some(tap) = self.tap.clone() else { return };
        if self.follower.as_ref().and_then(|f| f.position()) != Some(self.delivered) {
            return;
        }
        if let Some((id, at)) = tap.join(&mut self.follower) {
            self.joined = Some(Joined { tap, id });
            self.delivered_serial = Some(at);
            self.batch.release();
            self.ahead.batch.release();
            let mut s = self.shared_mut();
            s.stats.reading.shared = true;
            if self.was_joined {
                s.stats.reading.rejoined += 1;
                tracing::info!(journal = %self.journal.name, listener = %self.listener.name, sequence = self.delivered.sequence, offset = self.delivered.offset, "caught up: reading the journal's shared batches again");
            }
            drop(s);
            self.was_joined = true;
        }
    }

    /// Whether this solo worker, idle, would join the tap now (never
    /// waits: a busy tap says no).
    pub(super) fn could_join(&self) -> bool {
        let (None, Some(tap), Some(f)) = (&self.joined, &self.tap, &self.follower) else {
            return false;
        };
        f.at_rest() && f.mark().is_some_and(|m| tap.could_join(m))
    }

    /// Whether this joined worker, with nothing read ahead and nothing in
    /// hand, should let the listeners behind it take their shots before
    /// it fills the next one (see [`Tap::should_give_way`]).
    pub(super) fn give_way(&self) -> bool {
        let Some(j) = &self.joined else { return false };
        self.ahead.fill.is_none() && !self.stopping() && j.tap.should_give_way(j.id)
    }

    /// The next batch through the tap, as a fill: `None` when not joined,
    /// or when the worker just fell out (then it reads on its own).
    pub(super) fn take_shot(&mut self) -> Option<Result<Fill, String>> {
        let j = self.joined.as_ref()?;
        self.shot = None;
        match j.tap.take(j.id) {
            Take::Shot(s) => Some(self.hold(s)),
            Take::Idle => Some(Ok(Fill::Idle)),
            Take::Evicted => match self.fall_out() {
                Ok(()) => None,
                Err(e) => Some(Err(self.stream_error(e))),
            },
        }
    }

    fn hold(&mut self, s: Arc<Shot>) -> Result<Fill, String> {
        let fill = match &s.fill {
            Ok(f) => Ok(f.clone()),
            Err(ShotError::Stream(m)) => Err(self.stream_error(m)),
            Err(ShotError::Panic(m)) => panic!(
                "journal {:?}, listener {:?}: reading panicked: {m}",
                self.journal.name, self.listener.name
            ),
        };
        self.shot = Some(s);
        fill
    }

    /// The window moved on without this worker: it reads on its own from
    /// what it delivered.
    fn fall_out(&mut self) -> Result<(), FollowError> {
        let j = self.joined.as_ref().expect("joined");
        let at = self.delivered;
        let cursor = Cursor {
            sequence: at.sequence,
            offset: at.offset,
            line: at.line.max(1),
            identity: j.tap.identity_at(at),
        };
        let history = j.tap.finished_before(at.sequence);
        tracing::info!(journal = %self.journal.name, listener = %self.listener.name, sequence = at.sequence, offset = at.offset, "fell behind the shared batches: reading on its own until it catches up");
        self.go_solo(&cursor, &history)
    }

    /// Opens this worker's own follower at `cursor` (leaving the tap if
    /// it was joined: it fell out).
    pub(super) fn go_solo(
        &mut self,
        cursor: &Cursor,
        history: &[Finished],
    ) -> Result<(), FollowError> {
        if self.joined.take().is_some() {
            let mut s = self.shared_mut();
            s.stats.reading.shared = false;
            s.stats.reading.fell_out += 1;
        }
        self.shot = None;
        self.delivered_serial = None;
        self.follower = Some(Box::new(Follower::open_with_history(
            self.journal.clone(),
            Some(cursor),
            history,
            self.state_dir.clone(),
        )?));
        Ok(())
    }

    /// A joined worker re-reads from the acknowledged position within the
    /// window after one failed call; false when it cannot (the listener
    /// holds entries, or the shot is gone) and after a second one in a
    /// row: a listener that keeps failing reads from disk on its own, as
    /// it always did, and holds no shot back while it is down.
    pub(super) fn rewind_joined(&mut self) -> bool {
        let Some(j) = self.joined.as_ref() else {
            return false;
        };
        if self.failures > 1 {
            return false;
        }
        let Some(at) = self
            .delivered_serial
            .filter(|_| self.acked == self.delivered)
        else {
            return false;
        };
        if !j.tap.rewind(j.id, at) {
            return false;
        }
        self.shot = None;
        true
    }

    /// After the shot in hand was handed over (`ok`) or moved past: the
    /// shot after it is where a re-read starts, and the window keeps it.
    pub(super) fn book_shot(&mut self, ok: bool) {
        let (Some(j), Some(s)) = (&self.joined, &self.shot) else {
            return;
        };
        if ok {
            self.delivered_serial = Some(s.serial + 1);
        }
        let keep = self
            .delivered_serial
            .filter(|_| self.acked == self.delivered);
        j.tap.keep(j.id, keep);
    }

    /// The identity proving `pos`, from whichever follower reads.
    pub(super) fn identity_at(&self, pos: Position) -> Option<Identity> {
        match &self.joined {
            Some(j) => j.tap.identity_at(pos),
            None => self.follower.as_ref()?.identity_at(pos),
        }
    }

    /// Like [`identity_at`](Self::identity_at), as the files are now.
    pub(super) fn identity_now(&self, pos: Position) -> Option<Identity> {
        match &self.joined {
            Some(j) => j.tap.identity_now(pos),
            None => self.follower.as_ref()?.identity_at(pos),
        }
    }

    /// The files finished before file `sequence` (the checkpoint's list).
    pub(super) fn finished_before(&self, sequence: u64) -> Vec<Finished> {
        match &self.joined {
            Some(j) => j.tap.finished_before(sequence),
            None => self.follower().finished(),
        }
    }

    /// The follower's position after the batch in hand.
    pub(super) fn read_position(&self) -> Option<Position> {
        match &self.shot {
            Some(s) => s.end.map(|m| m.pos),
            None => self.follower.as_ref()?.position(),
        }
    }
}
