//! What a listener call's outcome does: the acknowledgement checked and
//! booked, a failure retried (after a backoff) or made final by
//! `on_failure`, the re-read from the acknowledged position.

use logdaemon_sdk::abi::Status;
use logdaemon_sdk::Position;
use logdaemon_state::Cursor;

use super::{backoff, empty_proof_at_start, Call, Flow, Worker, WorkerStatus};
use crate::ack::{self, Known};
use crate::config::OnFailure;
use crate::follow::FollowError;
use crate::host::CallError;

impl Worker {
    /// Books the outcome of a call that delivered up to `preset`.
    pub(super) fn after_call(
        &mut self,
        r: Result<Position, CallError>,
        preset: Position,
        call: Call,
    ) -> Flow {
        let r = self.check_ack(r, preset, &call);
        match r {
            Ok(ack) => {
                // Only progress ends a run of failures: a listener that
                // queues work and fails on it later (hot-backup) answers
                // Ok in between, and its retries must still back off and,
                // under --once, give up after retry_max.
                if ack.min(self.delivered.max(preset)) > self.acked {
                    self.failures = 0;
                    self.failing_since = None;
                    self.note_progress();
                }
                self.note_ok(&call);
                self.delivered = self.delivered.max(preset);
                self.set_ack(ack.min(self.delivered));
                if matches!(call, Call::Batch) {
                    self.count_delivered();
                }
                if self.acked < self.delivered {
                    if matches!(call, Call::Batch) {
                        let entries = match &self.shot {
                            Some(s) => &s.batch.entries,
                            None => &self.batch.entries,
                        };
                        self.held.keep(entries, self.acked);
                    } else {
                        self.held.forget(self.acked);
                    }
                } else {
                    self.held.clear();
                }
                self.book_shot(matches!(call, Call::Batch | Call::Gap(..)));
                Flow::Go
            }
            Err(e) => {
                if let Some(a) = e.ack {
                    self.set_ack(a.min(preset));
                }
                self.book_shot(false);
                self.failed(e)
            }
        }
    }

    /// Refuses an acknowledgement that is not on a record boundary: it is
    /// logged, never recorded, and the call counts as failed (`Error`), so
    /// everything after the last good acknowledgement comes again.
    pub(super) fn check_ack(
        &self,
        r: Result<Position, CallError>,
        preset: Position,
        call: &Call,
    ) -> Result<Position, CallError> {
        let (batch, also): (&[_], Vec<Position>) = match *call {
            Call::Batch => (&self.cur().entries, Vec::new()),
            Call::Gap(from, to) => (&[], vec![from, to]),
            Call::Other => (&[], Vec::new()),
        };
        let known = Known {
            acked: self.acked,
            preset,
            batch,
            also: &also,
            held: &self.held,
        };
        let ack = match &r {
            Ok(a) => *a,
            Err(CallError { ack: Some(a), .. }) => *a,
            Err(_) => return r,
        };
        if ack::on_boundary(ack, &known) {
            return r;
        }
        tracing::error!(journal = %self.journal.name, listener = %self.listener.name, sequence = ack.sequence, offset = ack.offset, acked_sequence = self.acked.sequence, acked_offset = self.acked.offset, "the listener acknowledged {ack}, which is not on a record boundary: refused, the cursor stays at {}; this is a bug in the listener", self.acked);
        let message = match r {
            Ok(_) => format!("acknowledged {ack}, which is not on a record boundary"),
            Err(e) => format!(
                "{} (and acknowledged {ack}, which is not on a record boundary)",
                e.message
            ),
        };
        Err(CallError {
            status: Status::Error,
            message,
            ack: None,
        })
    }

    pub(super) fn set_ack(&mut self, ack: Position) {
        if ack <= self.acked {
            return;
        }
        self.acked = ack;
        let identity = self.identity_at(ack);
        let crossed = ack.sequence != self.finished_seen;
        let finished = if crossed {
            Some(self.finished_before(ack.sequence))
        } else {
            None
        };
        self.finished_seen = ack.sequence;
        let mut s = self.shared_mut();
        if let Some(f) = finished {
            s.finished = f;
        }
        s.cursor = Cursor {
            sequence: ack.sequence,
            offset: ack.offset,
            line: ack.line.max(1),
            identity,
        };
        s.version += 1;
        let unproven = empty_proof_at_start(&s.cursor);
        drop(s);
        self.unproven_start = unproven;
    }

    /// A cursor at the start of a file that was empty when it was
    /// acknowledged proves nothing by content: after a restart every file
    /// matches it, and a file rotated and compressed several times meanwhile
    /// cannot be told from newer ones. Once that file has bytes (the same
    /// file: the follower holds it open), its first bytes prove it, and the
    /// cursor takes that proof for the next checkpoint.
    pub(super) fn prove_start(&mut self) {
        let Some(id) = self.identity_now(self.acked) else {
            return;
        };
        if id.head_len == 0 {
            return;
        }
        self.unproven_start = false;
        let mut s = self.shared_mut();
        if (s.cursor.sequence, s.cursor.offset) != (self.acked.sequence, self.acked.offset)
            || !empty_proof_at_start(&s.cursor)
        {
            return;
        }
        tracing::debug!(journal = %self.journal.name, listener = %self.listener.name, sequence = self.acked.sequence, head_len = id.head_len, "the file at the cursor has bytes now: they prove it");
        s.cursor.identity = Some(id);
        s.version += 1;
    }

    pub(super) fn failed(&mut self, e: CallError) -> Flow {
        match e.status {
            Status::Retry | Status::Error | Status::Ok => {
                self.failures += 1;
                let since = *self.failing_since.get_or_insert_with(|| self.clock.now());
                if self.once
                    && self.clock.now().saturating_duration_since(since) >= self.listener.retry_max
                {
                    let msg = format!(
                        "listener {:?} of journal {:?} still fails after {:?} (retry_max): {}; its cursor is kept, the next run resumes there",
                        self.listener.name, self.journal.name, self.listener.retry_max, e.message
                    );
                    tracing::error!(journal = %self.journal.name, listener = %self.listener.name, "{msg}");
                    self.set_status(WorkerStatus::Unfinished(msg));
                    return Flow::Exit;
                }
                self.note_retry(&e.message);
                let backoff = backoff(self.failures, self.listener.retry_max);
                if e.status == Status::Error {
                    tracing::error!(journal = %self.journal.name, listener = %self.listener.name, attempt = self.failures, backoff_ms = backoff.as_millis() as u64, "listener failed: {}; retrying", e.message);
                } else {
                    tracing::warn!(journal = %self.journal.name, listener = %self.listener.name, attempt = self.failures, backoff_ms = backoff.as_millis() as u64, "listener asks to retry: {}", e.message);
                }
                Flow::Backoff(backoff)
            }
            Status::Fatal => {
                let msg = format!(
                    "listener {:?} of journal {:?} failed for good: {}",
                    self.listener.name, self.journal.name, e.message
                );
                match self.listener.on_failure {
                    OnFailure::Stop => {
                        tracing::error!(journal = %self.journal.name, listener = %self.listener.name, "{msg}; stopping (on_failure = \"stop\")");
                        self.set_status(WorkerStatus::Failed(msg));
                    }
                    OnFailure::Disable => {
                        tracing::error!(journal = %self.journal.name, listener = %self.listener.name, "{msg}; listener disabled, its cursor is kept (on_failure = \"disable\")");
                        self.set_status(WorkerStatus::Disabled(msg));
                    }
                }
                Flow::Exit
            }
        }
    }

    /// Re-reads from the acknowledged position: from the shared window
    /// when it still holds it, else from disk.
    pub(super) fn rewind(&mut self) -> Result<(), FollowError> {
        if !self.rewind_joined() {
            let cursor = self
                .shared
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .cursor
                .clone();
            let history = self.finished_before(cursor.sequence);
            self.go_solo(&cursor, &history)?;
        }
        self.delivered = self.acked;
        self.held.clear();
        // What was read ahead came from the old follower: read again.
        self.ahead.fill = None;
        Ok(())
    }
}
