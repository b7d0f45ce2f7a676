//! Delivery to one listener: its follower, its cursor, its retries.
//!
//! A worker is a task of the engine's pool ([`Worker::step`]): it holds no
//! thread between steps, and a step never sleeps (waits go back to the
//! pool as [`Next::Wait`]).
//!
//! Each listener has its own worker. It takes the batches of its
//! journal's one reader ([`crate::tap`]) while it keeps up, or reads with
//! a follower of its own ([`joined`]), so a slow or failing listener never
//! holds back the others and never makes the daemon buffer more than the
//! shared window: after failures the worker backs off and re-reads from
//! disk, starting at the listener's acknowledged position. While the
//! listener handles a full batch, the next one is read on another pool
//! thread ([`ahead`], or the tap's read-ahead).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logdaemon_sdk::Position;
use logdaemon_state::Cursor;

use crate::ack::Held;
use crate::config::{JournalConfig, ListenerConfig};
use crate::engine::pool::{in_call, Next, Spawner};
use crate::follow::{Batch, Fill, Follower};
use crate::host::Instance;
use crate::quiet::{Clock, QuietTimer};
use crate::tap::{Shot, Tap};

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

impl Shared {
    /// A running worker's state at `cursor`, nothing delivered yet.
    pub(crate) fn new(cursor: Cursor) -> Shared {
        Shared {
            cursor,
            finished: Vec::new(),
            status: WorkerStatus::Running,
            version: 0,
            owed_reported: false,
            delivered_entries: 0,
            delivered_bytes: 0,
            stats: Default::default(),
            retire: false,
        }
    }
}

pub struct Worker {
    pub journal: Arc<JournalConfig>,
    pub listener: Arc<ListenerConfig>,
    pub instance: Instance,
    /// `Some` when solo (see [`joined`]), except while it reads ahead on
    /// the reader thread; `None` when joined. Boxed: a joined worker (most
    /// of them, thousands of journals) does not carry room for one.
    follower: Option<Box<Follower>>,
    /// The journal's reader that listeners share; `None`: always solo.
    tap: Option<Arc<Tap>>,
    /// Its membership of `tap` while joined.
    joined: Option<Joined>,
    /// The shot in hand while joined (its batch is the one delivered).
    shot: Option<Arc<Shot>>,
    /// The serial of the shot after the last one wholly handed over.
    delivered_serial: Option<u64>,
    /// It was joined once (a later join is a rejoin).
    was_joined: bool,
    /// Until its first try to join: the tap's first shots wait for it.
    expected: Option<Expected>,
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
mod calls;
mod changes;
mod count;
mod deliver;
mod entries;
mod idle;
mod joined;
mod owed;
mod task;

use ahead::ReadAhead;
pub(crate) use changes::{changes, note_change, status_changes};
use entries::Entries;
pub use joined::Reading;
use joined::{Expected, Joined};
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
        listener: Arc<ListenerConfig>,
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
        let mut quiet = QuietTimer::new(journal.quiet_after, clock.now());
        if instance.plugin().api.quiet_once {
            quiet = quiet.once();
        }
        let span =
            tracing::info_span!("listener", journal = %journal.name, listener = %listener.name);
        let shared = Arc::new(Mutex::new(Shared::new(cursor)));
        Worker {
            journal,
            listener,
            instance,
            follower: Some(Box::new(follower)),
            tap: None,
            joined: None,
            shot: None,
            delivered_serial: None,
            was_joined: false,
            expected: None,
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

    /// Shares the batches of `tap`, its journal's reader, with the other
    /// listeners of the journal whenever it can (see [`joined`]).
    pub fn with_tap(mut self, tap: Arc<Tap>) -> Worker {
        self.expected = Some(Expected::new(tap.clone()));
        self.tap = Some(tap);
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
        self.shared_mut().status = s;
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
        self.try_join();
        // Read before the fill: a fill begun after the file's deletion
        // was seen reads its last bytes.
        let retiring = self.shared.lock().unwrap_or_else(|e| e.into_inner()).retire;
        if !retiring && self.idle_unchanged() {
            // Nothing to read: only a `no_data` may be due. The buffers go
            // back, as after a fill that found nothing (which may have been
            // another listener's, see `Tap::take`).
            self.release_buffers();
            return self.idle(false);
        }
        if self.give_way() {
            return Next::Wait(GIVE_WAY);
        }
        let fill = match self.ahead.fill.take() {
            Some(fill) => {
                std::mem::swap(&mut self.batch, &mut self.ahead.batch);
                fill.map_err(|e| self.stream_error(e))
            }
            None => match self.take_shot() {
                Some(fill) => fill,
                None => {
                    self.batch.clear();
                    let max = self.journal.batch_bytes;
                    let f = self.follower.as_mut().expect("follower");
                    f.fill(&mut self.batch, max)
                        .map_err(|e| self.stream_error(e))
                }
            },
        };
        let flow = match fill {
            Err(msg) => return self.end(WorkerStatus::Failed(msg)),
            Ok(Fill::Gap(g)) => {
                let preset = self.read_position().unwrap_or(g.to);
                let r = in_call(|| self.instance.gap(g.from, g.to, g.cause, &g.detail, preset));
                self.after_call(r, preset, Call::Gap(g.from, g.to))
            }
            Ok(f) => {
                if self.cur().is_empty() {
                    self.note_crossing();
                    self.book_shot(true);
                }
                if !self.cur().is_empty() {
                    // A batch that ended full: more is there to read now.
                    let flow = self.deliver(matches!(f, Fill::Entries));
                    self.quiet.on_data(self.clock.now());
                    if self.ahead.found_nothing() {
                        // Reading ahead found the file's end: nothing to keep.
                        self.ahead.fill = None;
                    }
                    if self.ahead.fill.is_none() {
                        // Delivered, and nothing read ahead: the buffers go
                        // back now (those that hold nothing), not at the next
                        // step. Thousands of journals written at once would
                        // each hold theirs until then. A joined worker lets
                        // go of its shot (the window drops it once every
                        // listener passed) and of the reader's buffer if the
                        // reader is free.
                        match &self.joined {
                            Some(j) => {
                                self.shot = None;
                                j.tap.try_release_if_idle();
                            }
                            None => self.release_buffers(),
                        }
                    }
                    flow
                } else if matches!(f, Fill::Idle) {
                    self.release_buffers();
                    if self.once || retiring {
                        match self.finish_once() {
                            Flow::Go => return self.end(WorkerStatus::Done),
                            flow => flow,
                        }
                    } else {
                        // Caught up on its own: the journal's reader may be here too.
                        self.try_join();
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
            Flow::Exit => {
                self.leave_tap();
                Next::Done
            }
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
        self.leave_tap();
        Next::Done
    }

    /// An ended worker leaves its tap (the window keeps nothing for it).
    fn leave_tap(&mut self) {
        self.expected = None;
        self.shot = None;
        self.joined = None;
        self.tap = None;
    }

    fn stream_error(&self, e: impl std::fmt::Display) -> String {
        let msg = e.to_string();
        tracing::error!(journal = %self.journal.name, listener = %self.listener.name, "{msg}");
        msg
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

/// How long a joined worker at the head of a full window lets the
/// listeners behind it take their shots before it fills the next one
/// (see [`Tap::should_give_way`]).
const GIVE_WAY: Duration = Duration::from_millis(2);

/// Whether `c` is at the start of a file with a proof of nothing (the file
/// was empty). A cursor without a proof (set by hand) is trusted as it is.
fn empty_proof_at_start(c: &Cursor) -> bool {
    c.offset == 0 && c.identity.as_ref().is_some_and(|id| id.head_len == 0)
}

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
