//! Delivery to one listener: its follower, its cursor, its retries.
//!
//! Each listener has its own worker thread and its own follower over the
//! journal, so a slow or failing listener never holds back the others and
//! never makes the daemon buffer: after a failure the worker backs off and
//! re-reads from disk, starting at the listener's acknowledged position.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Receiver;
use logdaemon_sdk::abi::{Bytes, RawEntry, Status};
use logdaemon_sdk::Position;
use logdaemon_state::Cursor;

use crate::config::{JournalConfig, ListenerConfig, OnFailure};
use crate::follow::{Batch, Fill, FollowError, Follower, Meta};
use crate::format::Format;
use crate::host::{CallError, Instance};
use crate::quiet::{Clock, QuietTimer};

/// How a worker is doing, as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerStatus {
    Running,
    /// `--once`: everything available was delivered and flushed.
    Done,
    /// Failed for good with `on_failure = "disable"`; the others go on.
    Disabled(String),
    /// Failed for good with `on_failure = "stop"`, or the stream is broken.
    Failed(String),
    /// `--once`: the listener kept asking to retry for longer than
    /// `retry_max`; its cursor is kept for the next run.
    Unfinished(String),
}

/// What the engine reads to write the checkpoint.
#[derive(Debug, Clone)]
pub struct Shared {
    pub cursor: Cursor,
    /// Files the follower finished recently (for the checkpoint's `finished` list).
    pub finished: Vec<logdaemon_state::Finished>,
    pub status: WorkerStatus,
    /// Bumped at every change of `cursor`.
    pub version: u64,
}

pub struct Worker {
    pub journal: Arc<JournalConfig>,
    pub listener: ListenerConfig,
    pub instance: Instance,
    pub follower: Follower,
    pub shared: Arc<Mutex<Shared>>,
    pub clock: Arc<dyn Clock>,
    pub wake: Receiver<()>,
    pub stop: Arc<AtomicBool>,
    pub once: bool,
    pub state_dir: Option<PathBuf>,
    acked: Position,
    delivered: Position,
    quiet: QuietTimer,
    batch: Batch,
    entries: Entries,
    failures: u32,
    /// When the current run of failed calls began.
    failing_since: Option<std::time::Instant>,
    /// The sequence of the last acknowledgement (the finished list changes with it).
    finished_seen: u64,
}

enum Flow {
    Go,
    Rewind,
    Exit,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        journal: Arc<JournalConfig>,
        listener: ListenerConfig,
        instance: Instance,
        follower: Follower,
        cursor: Cursor,
        clock: Arc<dyn Clock>,
        wake: Receiver<()>,
        stop: Arc<AtomicBool>,
        once: bool,
        state_dir: Option<PathBuf>,
    ) -> Worker {
        let pos = Position { sequence: cursor.sequence, offset: cursor.offset, line: cursor.line };
        let quiet = QuietTimer::new(journal.quiet_after, clock.now());
        let shared = Arc::new(Mutex::new(Shared { cursor, finished: Vec::new(), status: WorkerStatus::Running, version: 0 }));
        Worker {
            journal,
            listener,
            instance,
            follower,
            shared,
            clock,
            wake,
            stop,
            once,
            state_dir,
            acked: pos,
            delivered: pos,
            quiet,
            batch: Batch::default(),
            entries: Entries::default(),
            failures: 0,
            failing_since: None,
            finished_seen: 0,
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn set_status(&self, s: WorkerStatus) {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).status = s;
    }

    /// Runs until stopped, done (`--once`) or failed.
    pub fn run(mut self) {
        let status = loop {
            if self.stopping() {
                self.finish();
                break WorkerStatus::Done;
            }
            self.batch.clear();
            let fill = self.follower.fill(&mut self.batch, self.journal.batch_bytes);
            let flow = match fill {
                Err(e) => break WorkerStatus::Failed(self.stream_error(e)),
                Ok(Fill::Gap(g)) => {
                    let preset = self.follower.position().unwrap_or(g.to);
                    let r = self.instance.gap(g.from, g.to, g.cause, &g.detail, preset);
                    self.after_call(r, preset)
                }
                Ok(f) => {
                    if self.batch.is_empty() {
                        self.note_crossing();
                    }
                    if !self.batch.is_empty() {
                        let flow = self.deliver();
                        self.quiet.on_data(self.clock.now());
                        flow
                    } else if matches!(f, Fill::Idle) {
                        if self.once {
                            self.finish();
                            break WorkerStatus::Done;
                        }
                        self.idle()
                    } else {
                        Flow::Go
                    }
                }
            };
            match flow {
                Flow::Go => {}
                Flow::Rewind => {
                    if let Err(e) = self.rewind() {
                        break WorkerStatus::Failed(self.stream_error(e));
                    }
                }
                Flow::Exit => return,
            }
        };
        self.set_status(status);
    }

    fn stream_error(&self, e: FollowError) -> String {
        let msg = e.to_string();
        tracing::error!(journal = %self.journal.name, listener = %self.listener.name, "{msg}");
        msg
    }

    /// The follower finished a file and began the next one without an
    /// entry in between: nothing lies between the acknowledged position and
    /// the new one, so the cursor moves there (unless the listener holds
    /// entries), and a restart after the finished file is deleted does not
    /// look for it.
    fn note_crossing(&mut self) {
        let Some(end) = self.batch.end else { return };
        if self.acked < self.delivered || end <= self.delivered {
            return;
        }
        self.delivered = end;
        self.set_ack(end);
    }

    /// Sleeps until woken, the next reconciliation, or a `no_data` is due.
    fn idle(&mut self) -> Flow {
        let now = self.clock.now();
        if let Some(had) = self.quiet.poll(now) {
            let preset = self.delivered;
            let r = self.instance.no_data(had, preset);
            return self.after_call(r, preset);
        }
        let until_quiet = self.quiet.deadline().saturating_duration_since(now);
        let wait = until_quiet.min(self.journal.reconcile_every);
        let _ = self.wake.recv_timeout(wait);
        Flow::Go
    }

    /// Hands the batch to the listener.
    fn deliver(&mut self) -> Flow {
        let preset = self.batch.end.expect("non-empty batch");
        let p4 = matches!(self.journal.format, Format::P4) && self.instance.plugin().api.wants_fields;
        let filters = self.instance.plugin().api.filters;
        let journal = Bytes::new(self.instance.journal_bytes());
        let mut handled = std::mem::take(&mut self.entries).0;
        // Fields (they may own unquoted copies) and their slices outlive the call.
        let mut fields: Vec<Cow<'_, [u8]>> = Vec::new();
        let mut slices: Vec<Bytes> = Vec::new();
        if p4 {
            let mut counts: Vec<(usize, usize)> = Vec::with_capacity(self.batch.entries.len());
            for m in &self.batch.entries {
                let start = fields.len();
                logdaemon_sdk::p4::split_into(self.batch.raw(m), &mut fields);
                counts.push((start, fields.len() - start));
            }
            slices = fields.iter().map(|f| Bytes::new(f)).collect();
            for (m, &(start, n)) in self.batch.entries.iter().zip(&counts) {
                let (op, rest) = if n > 0 { (slices[start], &slices[start + 1..start + n]) } else { (Bytes::EMPTY, &slices[0..0]) };
                let mut e = raw_entry(journal, m, self.batch.raw(m));
                e.op = op;
                if !rest.is_empty() {
                    e.fields = rest.as_ptr();
                    e.n_fields = rest.len();
                }
                handled.push(e);
            }
        } else {
            handled.extend(self.batch.entries.iter().map(|m| raw_entry(journal, m, self.batch.raw(m))));
        }
        if filters {
            handled.retain(|e| self.instance.is_handled(e));
        }
        let holding = self.acked < self.delivered;
        let r = if handled.is_empty() {
            Ok(if holding { self.acked } else { preset })
        } else {
            self.instance.listen(&handled, preset)
        };
        // The entries point into the batch and the fields: none is kept.
        handled.clear();
        if handled.capacity() <= KEEP_ENTRIES {
            self.entries = Entries(handled);
        }
        drop(slices);
        drop(fields);
        self.after_call(r, preset)
    }

    /// Books the outcome of a call that delivered up to `preset`.
    fn after_call(&mut self, r: Result<Position, CallError>, preset: Position) -> Flow {
        match r {
            Ok(ack) => {
                self.failures = 0;
                self.failing_since = None;
                self.delivered = self.delivered.max(preset);
                self.set_ack(ack.min(self.delivered));
                Flow::Go
            }
            Err(e) => {
                if let Some(a) = e.ack {
                    self.set_ack(a.min(preset));
                }
                self.failed(e)
            }
        }
    }

    fn set_ack(&mut self, ack: Position) {
        if ack <= self.acked {
            return;
        }
        self.acked = ack;
        let identity = self.follower.identity_at(ack);
        let crossed = ack.sequence != self.finished_seen;
        let finished = if crossed { Some(self.follower.finished()) } else { None };
        self.finished_seen = ack.sequence;
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = finished {
            s.finished = f;
        }
        s.cursor = Cursor { sequence: ack.sequence, offset: ack.offset, line: ack.line.max(1), identity };
        s.version += 1;
    }

    fn failed(&mut self, e: CallError) -> Flow {
        match e.status {
            Status::Retry | Status::Error | Status::Ok => {
                self.failures += 1;
                let since = *self.failing_since.get_or_insert_with(|| self.clock.now());
                if self.once && self.clock.now().saturating_duration_since(since) >= self.listener.retry_max {
                    let msg = format!(
                        "listener {:?} of journal {:?} still fails after {:?} (retry_max): {}; its cursor is kept, the next run resumes there",
                        self.listener.name, self.journal.name, self.listener.retry_max, e.message
                    );
                    tracing::error!(journal = %self.journal.name, listener = %self.listener.name, "{msg}");
                    self.set_status(WorkerStatus::Unfinished(msg));
                    return Flow::Exit;
                }
                let backoff = backoff(self.failures, self.listener.retry_max);
                if e.status == Status::Error {
                    tracing::error!(journal = %self.journal.name, listener = %self.listener.name, attempt = self.failures, backoff_ms = backoff.as_millis() as u64, "listener failed: {}; retrying", e.message);
                } else {
                    tracing::warn!(journal = %self.journal.name, listener = %self.listener.name, attempt = self.failures, backoff_ms = backoff.as_millis() as u64, "listener asks to retry: {}", e.message);
                }
                let deadline = self.clock.now() + backoff;
                while !self.stopping() {
                    let now = self.clock.now();
                    if now >= deadline {
                        break;
                    }
                    let _ = self.wake.recv_timeout((deadline - now).min(Duration::from_millis(200)));
                }
                Flow::Rewind
            }
            Status::Fatal => {
                let msg = format!("listener {:?} of journal {:?} failed for good: {}", self.listener.name, self.journal.name, e.message);
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

    /// Re-reads from the acknowledged position.
    fn rewind(&mut self) -> Result<(), FollowError> {
        let cursor = self.shared.lock().unwrap_or_else(|e| e.into_inner()).cursor.clone();
        let history = self.follower.finished();
        self.follower = Follower::open_with_history(self.journal.clone(), Some(&cursor), &history, self.state_dir.clone())?;
        self.delivered = self.acked;
        Ok(())
    }

    /// Lets the listener make everything durable before the checkpoint.
    fn finish(&mut self) {
        let preset = self.delivered;
        match self.instance.flush(preset) {
            Ok(ack) => self.set_ack(ack),
            Err(e) => tracing::warn!(journal = %self.journal.name, listener = %self.listener.name, "flush failed: {e}"),
        }
    }
}

/// The ABI entry for `m` (no op, no fields).
#[inline]
fn raw_entry(journal: Bytes, m: &Meta, raw: &[u8]) -> RawEntry {
    RawEntry {
        journal,
        sequence: m.sequence,
        offset: m.offset,
        len: m.len,
        line: m.line,
        lines: m.lines,
        flags: m.flags,
        raw: Bytes::new(raw),
        op: Bytes::EMPTY,
        fields: std::ptr::null(),
        n_fields: 0,
    }
}

/// An array of entries grown past this by one batch of tiny records is not
/// kept for the next batch.
const KEEP_ENTRIES: usize = 1 << 16;

/// The array of entries handed to the listener, kept between batches so
/// that it is not allocated for each one. Empty between calls.
#[derive(Default)]
struct Entries(Vec<RawEntry>);

// SAFETY: the vector is empty whenever the worker is not inside `deliver`,
// so no pointer it held is ever used from another thread.
unsafe impl Send for Entries {}

/// Capped exponential backoff: 100 ms, 200 ms, 400 ms, … up to `max`.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    Duration::from_millis(ms).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let max = Duration::from_secs(5);
        assert_eq!(backoff(1, max), Duration::from_millis(100));
        assert_eq!(backoff(2, max), Duration::from_millis(200));
        assert_eq!(backoff(6, max), Duration::from_millis(3200));
        assert_eq!(backoff(7, max), max);
        assert_eq!(backoff(1000, max), max);
    }
}
