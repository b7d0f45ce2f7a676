//! Delivery to one listener: its follower, its cursor, its retries.
//!
//! A worker is a task of the engine's pool ([`Worker::step`]): it holds no
//! thread between steps, and a step never sleeps (waits go back to the
//! pool as [`Next::Wait`]).
//!
//! Each listener has its own worker and its own follower over the journal,
//! so a slow or failing listener never holds back the others and never
//! makes the daemon buffer: after a failure the worker backs off and
//! re-reads from disk, starting at the listener's acknowledged position.
//! While the listener handles a full batch, the next one is read on
//! another pool thread ([`ahead`]).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logdaemon_sdk::abi::{Bytes, RawEntry, Status};
use logdaemon_sdk::Position;
use logdaemon_state::Cursor;

use crate::ack::{self, Held, Known};
use crate::config::{JournalConfig, ListenerConfig, OnFailure};
use crate::engine::pool::{in_call, Next, Spawner};
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
    /// Bumped at every change of `cursor` (and of `owed_reported`).
    pub version: u64,
    /// The gap owed from the checkpoint was reported: remove it.
    pub owed_reported: bool,
    /// Entries (and their bytes) handed to the listener in calls that succeeded.
    pub delivered_entries: u64,
    pub delivered_bytes: u64,
    /// Counters for `status` and the HTTP endpoint.
    pub stats: crate::status::ListenerStats,
    /// Set by the engine: the stream's file was deleted; deliver what is
    /// left, flush and end (see `crate::streams`).
    pub retire: bool,
}

pub struct Worker {
    pub journal: Arc<JournalConfig>,
    pub listener: ListenerConfig,
    pub instance: Instance,
    /// Always `Some`, except while it reads ahead on the reader thread.
    follower: Option<Follower>,
    pub shared: Arc<Mutex<Shared>>,
    pub clock: Arc<dyn Clock>,
    pub stop: Arc<AtomicBool>,
    pub once: bool,
    pub state_dir: Option<PathBuf>,
    acked: Position,
    delivered: Position,
    quiet: QuietTimer,
    batch: Batch,
    ahead: ReadAhead,
    entries: Entries,
    failures: u32,
    /// When the current run of failed calls began.
    failing_since: Option<std::time::Instant>,
    /// The sequence of the last acknowledgement (the finished list changes with it).
    finished_seen: u64,
    /// The cursor is at the start of a file that was empty when it was
    /// acknowledged: its proof is empty until [`Worker::prove_start`].
    unproven_start: bool,
    /// A gap owed from the checkpoint, reported before the first entry.
    owed: Option<logdaemon_state::PendingGap>,
    /// Record boundaries of entries the listener holds (delivered, not acknowledged).
    held: Held,
    /// A failed call is retried (re-read from the acknowledged position) at this time.
    retry_at: Option<std::time::Instant>,
    /// The fraction of `reconcile_every` of the first idle wait.
    spread: Option<f64>,
    /// Stops this worker alone, after the batch in hand (a reload removed
    /// or changed its listener). Not `Shared::retire`, which lets a glob
    /// stream's worker deliver what is left first.
    halt: Arc<AtomicBool>,
    /// Every step and read-ahead of this worker logs within it, so each
    /// line names its journal and listener.
    pub(crate) span: tracing::Span,
}

/// What a call handed out, for checking the acknowledgement it returns.
enum Call {
    /// `listen` with the current batch.
    Batch,
    /// `gap` from one position to another.
    Gap(Position, Position),
    /// `no_data` or `flush`.
    Other,
}

mod ahead;
mod count;
mod owed;
mod task;

use ahead::ReadAhead;
mod stats;

enum Flow {
    Go,
    Rewind,
    /// Re-read from the acknowledged position after this long.
    Backoff(Duration),
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
        stop: Arc<AtomicBool>,
        once: bool,
        state_dir: Option<PathBuf>,
    ) -> Worker {
        let pos = Position {
            sequence: cursor.sequence,
            offset: cursor.offset,
            line: cursor.line,
        };
        let unproven_start = empty_proof_at_start(&cursor);
        let quiet = QuietTimer::new(journal.quiet_after, clock.now());
        let span =
            tracing::info_span!("listener", journal = %journal.name, listener = %listener.name);
        let shared = Arc::new(Mutex::new(Shared {
            cursor,
            finished: Vec::new(),
            status: WorkerStatus::Running,
            version: 0,
            owed_reported: false,
            delivered_entries: 0,
            delivered_bytes: 0,
            stats: Default::default(),
            retire: false,
        }));
        Worker {
            journal,
            listener,
            instance,
            follower: Some(follower),
            shared,
            clock,
            stop,
            once,
            state_dir,
            acked: pos,
            delivered: pos,
            quiet,
            batch: Batch::default(),
            ahead: ReadAhead::default(),
            entries: Entries::default(),
            failures: 0,
            failing_since: None,
            finished_seen: 0,
            unproven_start,
            owed: None,
            held: Held::default(),
            retry_at: None,
            spread: None,
            halt: Arc::new(AtomicBool::new(false)),
            span,
        }
    }

    /// Reads ahead on `spawner`'s threads while the listener handles a
    /// full batch, and spreads the first periodic check by `fraction` of
    /// `reconcile_every`.
    pub fn with_pool(mut self, spawner: Spawner, fraction: f64) -> Worker {
        self.ahead.spawner = Some(spawner);
        self.spread = Some(fraction.clamp(0.0, 1.0));
        self
    }

    /// A gap the checkpoint says this listener is owed (see [`owed`]).
    pub fn owe(mut self, gap: Option<logdaemon_state::PendingGap>) -> Worker {
        self.owed = gap;
        self
    }

    fn follower(&self) -> &Follower {
        self.follower
            .as_ref()
            .expect("the follower is back from reading ahead")
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.halt.load(Ordering::SeqCst)
    }

    /// The flag that stops this worker alone (after the batch in hand).
    pub fn halt_flag(&self) -> Arc<AtomicBool> {
        self.halt.clone()
    }

    fn set_status(&self, s: WorkerStatus) {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).status = s;
    }

    /// Does one bounded piece of work: at most one batch read and one
    /// listener call. Never sleeps: a wait (idle, retry backoff) is
    /// returned to the pool, which steps the worker again when the time is
    /// up or when it is woken (a file event, a signal).
    pub fn step(&mut self) -> Next {
        if let Some(next) = self.backing_off() {
            return next;
        }
        if self.stopping() {
            self.finish();
            return self.end(WorkerStatus::Done);
        }
        if self.unproven_start {
            self.prove_start();
        }
        if let Some(flow) = self.report_owed() {
            return self.after_flow(flow);
        }
        // Read before the fill: a fill begun after the file's deletion
        // was seen reads its last bytes.
        let retiring = self.shared.lock().unwrap_or_else(|e| e.into_inner()).retire;
        if !retiring && self.idle_unchanged() {
            // Nothing to read: only a `no_data` may be due.
            return self.idle(false);
        }
        let fill = match self.ahead.fill.take() {
            Some(fill) => {
                std::mem::swap(&mut self.batch, &mut self.ahead.batch);
                fill
            }
            None => {
                self.batch.clear();
                let max = self.journal.batch_bytes;
                self.follower
                    .as_mut()
                    .expect("follower")
                    .fill(&mut self.batch, max)
            }
        };
        let flow = match fill {
            Err(e) => {
                let msg = self.stream_error(e);
                return self.end(WorkerStatus::Failed(msg));
            }
            Ok(Fill::Gap(g)) => {
                let preset = self.follower().position().unwrap_or(g.to);
                let r = in_call(|| self.instance.gap(g.from, g.to, g.cause, &g.detail, preset));
                self.after_call(r, preset, Call::Gap(g.from, g.to))
            }
            Ok(f) => {
                if self.batch.is_empty() {
                    self.note_crossing();
                }
                if !self.batch.is_empty() {
                    // A batch that ended full: more is there to read now.
                    let flow = self.deliver(matches!(f, Fill::Entries));
                    self.quiet.on_data(self.clock.now());
                    flow
                } else if matches!(f, Fill::Idle) {
                    self.release_buffers();
                    if self.once || retiring {
                        match self.finish_once() {
                            Flow::Go => return self.end(WorkerStatus::Done),
                            flow => flow,
                        }
                    } else {
                        return self.idle(true);
                    }
                } else {
                    Flow::Go
                }
            }
        };
        self.after_flow(flow)
    }

    /// The next step after `flow`.
    fn after_flow(&mut self, flow: Flow) -> Next {
        match flow {
            Flow::Go => Next::Now,
            Flow::Rewind => match self.rewind() {
                Ok(()) => Next::Now,
                Err(e) => {
                    let msg = self.stream_error(e);
                    self.end(WorkerStatus::Failed(msg))
                }
            },
            Flow::Backoff(d) => {
                self.retry_at = Some(self.clock.now() + d);
                self.backing_off().unwrap_or(Next::Now)
            }
            // The status was set where the decision was made.
            Flow::Exit => Next::Done,
        }
    }

    /// While a retry waits: the wait, or (once it is over, or on a stop)
    /// the re-read from the acknowledged position. `None` when no retry waits.
    fn backing_off(&mut self) -> Option<Next> {
        let at = self.retry_at?;
        let now = self.clock.now();
        if now < at && !self.stopping() {
            // Real time passes at the pool; the clock may run faster (tests).
            return Some(Next::Wait((at - now).min(Duration::from_millis(200))));
        }
        self.retry_at = None;
        Some(self.after_flow(Flow::Rewind))
    }

    fn end(&mut self, status: WorkerStatus) -> Next {
        self.set_status(status);
        Next::Done
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

    /// Waits until woken, the next reconciliation, or a `no_data` is due.
    /// `stamp`: the follower just found nothing to read (take its stamp).
    fn idle(&mut self, stamp: bool) -> Next {
        let now = self.clock.now();
        if let Some(had) = self.quiet.poll(now) {
            let preset = self.delivered;
            let r = in_call(|| self.instance.no_data(had, preset));
            let flow = self.after_call(r, preset, Call::Other);
            return self.after_flow(flow);
        }
        if stamp {
            self.follower.as_mut().expect("follower").note_idle();
        }
        self.idle_wait()
    }

    /// The wait of an idle worker: until the next `no_data` is due or the
    /// next periodic check. The first periodic check of each worker is
    /// spread over `reconcile_every`, so that thousands of journals are not
    /// all checked in the same instant.
    fn idle_wait(&mut self) -> Next {
        let now = self.clock.now();
        let until_quiet = self.quiet.deadline().saturating_duration_since(now);
        let every = match self.spread.take() {
            Some(fraction) => self.journal.reconcile_every.mul_f64(fraction),
            None => self.journal.reconcile_every,
        };
        Next::Wait(until_quiet.min(every))
    }

    /// Whether an idle worker, stepped again, may skip reading: the files
    /// are as they were when it last found nothing to read (see
    /// [`Follower::idle_unchanged`]).
    fn idle_unchanged(&mut self) -> bool {
        if self.once || !self.batch.is_empty() || self.ahead.fill.is_some() {
            return false;
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
        match self.idle_wait() {
            Next::Wait(d) => Some(d),
            _ => None,
        }
    }

    /// Gives back the buffers of an idle worker: an idle journal costs a
    /// few KiB, not a batch.
    fn release_buffers(&mut self) {
        self.batch.release();
        self.ahead.batch.release();
        if let Some(f) = self.follower.as_mut() {
            f.release_buffers();
        }
    }

    /// Hands the batch to the listener; with `read_ahead`, reads the next
    /// batch meanwhile.
    fn deliver(&mut self, read_ahead: bool) -> Flow {
        let preset = self.batch.end.expect("non-empty batch");
        let p4 =
            matches!(self.journal.format, Format::P4) && self.instance.plugin().api.wants_fields;
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
                let (op, rest) = if n > 0 {
                    (slices[start], &slices[start + 1..start + n])
                } else {
                    (Bytes::EMPTY, &slices[0..0])
                };
                let mut e = raw_entry(journal, m, self.batch.raw(m), self.batch.chunk(m));
                e.op = op;
                if !rest.is_empty() {
                    e.fields = rest.as_ptr();
                    e.n_fields = rest.len();
                }
                handled.push(e);
            }
        } else {
            handled.extend(
                self.batch
                    .entries
                    .iter()
                    .map(|m| raw_entry(journal, m, self.batch.raw(m), self.batch.chunk(m))),
            );
        }
        if filters {
            handled.retain(|e| self.instance.is_handled(e));
        }
        let holding = self.acked < self.delivered;
        let r = if handled.is_empty() {
            Ok(if holding { self.acked } else { preset })
        } else if read_ahead && self.ahead.start(&mut self.follower, &self.journal) {
            let r = in_call(|| self.instance.listen(&handled, preset));
            self.ahead
                .finish(&mut self.follower, &self.journal.name, &self.listener.name);
            r
        } else {
            in_call(|| self.instance.listen(&handled, preset))
        };
        // The entries point into the batch and the fields: none is kept.
        handled.clear();
        if handled.capacity() <= KEEP_ENTRIES {
            self.entries = Entries(handled);
        }
        drop(slices);
        drop(fields);
        self.after_call(r, preset, Call::Batch)
    }

    /// Books the outcome of a call that delivered up to `preset`.
    fn after_call(&mut self, r: Result<Position, CallError>, preset: Position, call: Call) -> Flow {
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
                        self.held.keep(&self.batch.entries, self.acked);
                    } else {
                        self.held.forget(self.acked);
                    }
                } else {
                    self.held.clear();
                }
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

    /// Refuses an acknowledgement that is not on a record boundary: it is
    /// logged, never recorded, and the call counts as failed (`Error`), so
    /// everything after the last good acknowledgement comes again.
    fn check_ack(
        &self,
        r: Result<Position, CallError>,
        preset: Position,
        call: &Call,
    ) -> Result<Position, CallError> {
        let (batch, also): (&[_], Vec<Position>) = match *call {
            Call::Batch => (&self.batch.entries, Vec::new()),
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

    fn set_ack(&mut self, ack: Position) {
        if ack <= self.acked {
            return;
        }
        self.acked = ack;
        let identity = self.follower().identity_at(ack);
        let crossed = ack.sequence != self.finished_seen;
        let finished = if crossed {
            Some(self.follower().finished())
        } else {
            None
        };
        self.finished_seen = ack.sequence;
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
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
        self.unproven_start = empty_proof_at_start(&s.cursor);
    }

    /// A cursor at the start of a file that was empty when it was
    /// acknowledged proves nothing by content: after a restart every file
    /// matches it, and a file rotated and compressed several times meanwhile
    /// cannot be told from newer ones. Once that file has bytes (the same
    /// file: the follower holds it open), its first bytes prove it, and the
    /// cursor takes that proof for the next checkpoint.
    fn prove_start(&mut self) {
        let Some(id) = self
            .follower
            .as_ref()
            .and_then(|f| f.identity_at(self.acked))
        else {
            return;
        };
        if id.head_len == 0 {
            return;
        }
        self.unproven_start = false;
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if (s.cursor.sequence, s.cursor.offset) != (self.acked.sequence, self.acked.offset)
            || !empty_proof_at_start(&s.cursor)
        {
            return;
        }
        tracing::debug!(journal = %self.journal.name, listener = %self.listener.name, sequence = self.acked.sequence, head_len = id.head_len, "the file at the cursor has bytes now: they prove it");
        s.cursor.identity = Some(id);
        s.version += 1;
    }

    fn failed(&mut self, e: CallError) -> Flow {
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

    /// Re-reads from the acknowledged position.
    fn rewind(&mut self) -> Result<(), FollowError> {
        let cursor = self
            .shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cursor
            .clone();
        let history = self.follower().finished();
        self.follower = Some(Follower::open_with_history(
            self.journal.clone(),
            Some(&cursor),
            &history,
            self.state_dir.clone(),
        )?);
        self.delivered = self.acked;
        self.held.clear();
        // What was read ahead came from the old follower: read again.
        self.ahead.fill = None;
        Ok(())
    }

    /// `--once`: the final flush is a call like any other. A failure is
    /// retried (the entries are delivered again) until `retry_max` gives
    /// up, and a fatal one ends the listener, so the run cannot exit 0 with
    /// entries the listener did not take.
    fn finish_once(&mut self) -> Flow {
        if self.unproven_start {
            self.prove_start();
        }
        let preset = self.delivered;
        let r = in_call(|| self.instance.flush(preset));
        self.after_call(r, preset, Call::Other)
    }

    /// Lets the listener make everything durable before the checkpoint.
    fn finish(&mut self) {
        if self.unproven_start {
            self.prove_start();
        }
        let preset = self.delivered;
        let r = in_call(|| self.instance.flush(preset));
        match self.check_ack(r, preset, &Call::Other) {
            Ok(ack) => self.set_ack(ack),
            Err(e) => {
                tracing::warn!(journal = %self.journal.name, listener = %self.listener.name, "flush failed: {e}")
            }
        }
    }
}

/// Whether `c` is at the start of a file with a proof of nothing (the file
/// was empty). A cursor without a proof (set by hand) is trusted as it is.
fn empty_proof_at_start(c: &Cursor) -> bool {
    c.offset == 0 && c.identity.as_ref().is_some_and(|id| id.head_len == 0)
}

/// The ABI entry for `m` (no op, no fields); `raw` lies within `chunk`.
#[inline]
fn raw_entry(journal: Bytes, m: &Meta, raw: &[u8], chunk: &[u8]) -> RawEntry {
    RawEntry {
        struct_size: RawEntry::SIZE,
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
        chunk: Bytes::new(chunk),
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
