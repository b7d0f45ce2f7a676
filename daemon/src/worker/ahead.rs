//! Reading the next batch while the listener handles the current one.
//!
//! Catching up, reading and framing overlap with the listener's own work:
//! the follower and a spare batch go to a pool thread as a one-off job and
//! come back after the listener's call. The follower is used by one thread
//! at a time (whoever holds it in the job's state), and a batch read ahead
//! is dropped, not delivered, when the listener fails (the worker re-reads
//! from the acknowledged position as always).

use std::sync::{Arc, Mutex};

use crate::config::JournalConfig;
use crate::engine::pool::Spawner;
use crate::follow::{Batch, Fill, FollowError, Follower};

/// The batch read while the listener handled the previous one.
#[derive(Default)]
pub(super) struct ReadAhead {
    pub(super) batch: Batch,
    /// What `fill` said of `batch`; `None`: nothing was read ahead.
    pub(super) fill: Option<Result<Fill, FollowError>>,
    /// Where reading ahead runs; none: the worker reads in turn.
    pub(super) spawner: Option<Spawner>,
    /// The job in flight, between [`ReadAhead::start`] and [`ReadAhead::finish`].
    job: Option<Arc<JobSlot>>,
}

/// A read-ahead job and its state, shared by the worker and the pool thread
/// that runs it. The follower is owned by whoever holds it in `state`.
struct JobSlot {
    state: Mutex<JobState>,
    done: std::sync::Condvar,
}

enum JobState {
    /// Queued; the worker may take it back unrun.
    Pending(Job),
    /// A pool thread is filling the batch.
    Running,
    Done(Done),
    /// The fill panicked (the follower is lost with it).
    Panicked(String),
    /// Taken back by the worker.
    Taken,
}

impl ReadAhead {
    /// The batch read ahead is empty: the file had nothing more (no entry,
    /// no crossing to the next file, no gap).
    pub(super) fn found_nothing(&self) -> bool {
        matches!(self.fill, Some(Ok(Fill::Idle)))
            && self.batch.is_empty()
            && self.batch.end.is_none()
    }

    /// Hands the follower and the spare batch to a pool thread to read the
    /// next batch. False if there is no pool.
    pub(super) fn start(
        &mut self,
        follower: &mut Option<Box<Follower>>,
        journal: &JournalConfig,
    ) -> bool {
        let Some(spawner) = self.spawner.as_ref() else {
            return false;
        };
        let slot = Arc::new(JobSlot {
            state: Mutex::new(JobState::Pending(Job {
                follower: follower.take().expect("follower"),
                batch: std::mem::take(&mut self.batch),
                max: journal.batch_bytes,
            })),
            done: std::sync::Condvar::new(),
        });
        let job = slot.clone();
        let span = tracing::Span::current();
        spawner.spawn(move || span.in_scope(|| run_job(&job)));
        self.job = Some(slot);
        true
    }

    /// Makes the listener's `call`, with the next batch read from disk on
    /// a pool thread meanwhile when `read` is set (and there is a pool).
    pub(super) fn around<T>(
        &mut self,
        read: bool,
        follower: &mut Option<Box<Follower>>,
        journal: &JournalConfig,
        listener: &str,
        call: impl FnOnce() -> T,
    ) -> T {
        let started = read && self.start(follower, journal);
        let r = call();
        if started {
            self.finish(follower, &journal.name, listener);
        }
        r
    }

    /// Takes the follower back, with the batch it read if the job ran. A
    /// job still queued is taken back unrun (no thread waits for another
    /// that may never come); one running is waited for.
    pub(super) fn finish(
        &mut self,
        follower: &mut Option<Box<Follower>>,
        journal: &str,
        listener: &str,
    ) {
        let slot = self.job.take().expect("reading ahead");
        let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match std::mem::replace(&mut *st, JobState::Taken) {
                JobState::Pending(job) => {
                    *follower = Some(job.follower);
                    self.batch = job.batch;
                    self.fill = None;
                    return;
                }
                JobState::Running => {
                    *st = JobState::Running;
                    st = slot.done.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                JobState::Done(Done {
                    follower: f,
                    batch,
                    fill,
                }) => {
                    *follower = Some(f);
                    self.batch = batch;
                    self.fill = Some(fill);
                    return;
                }
                JobState::Panicked(m) => {
                    panic!(
                        "journal {journal:?}, listener {listener:?}: reading ahead panicked: {m}"
                    )
                }
                JobState::Taken => unreachable!("one finish per start"),
            }
        }
    }
}

/// Runs a read-ahead job on a pool thread (unless it was taken back).
fn run_job(slot: &JobSlot) {
    let job = {
        let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *st, JobState::Running) {
            JobState::Pending(job) => job,
            other => {
                *st = other;
                return;
            }
        }
    };
    let Job {
        mut follower,
        mut batch,
        max,
    } = job;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        batch.clear();
        let fill = follower.fill(&mut batch, max);
        Done {
            follower,
            batch,
            fill,
        }
    }));
    let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
    *st = match r {
        Ok(done) => JobState::Done(done),
        Err(p) => JobState::Panicked(crate::engine::panic_text(p.as_ref())),
    };
    slot.done.notify_all();
}

/// A follower and a batch to fill, sent to a pool thread.
struct Job {
    follower: Box<Follower>,
    batch: Batch,
    max: usize,
}

/// What the pool thread hands back.
struct Done {
    follower: Box<Follower>,
    batch: Batch,
    fill: Result<Fill, FollowError>,
}
