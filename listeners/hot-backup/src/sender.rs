//! Shipping on a thread of its own, so the host reads and frames the next
//! batch while the previous one crosses the network: catch-up is then
//! limited by the SSH channel, not by the sum of both.
//!
//! Batches are shipped strictly in order; the thread sends the next batch
//! before the answer to the previous one is read (up to
//! [`crate::standby::PIPELINE`] requests), so the channel does not idle
//! while the standby fsyncs, and it takes up to [`JOIN`] batches queued
//! behind each other at once (one request where they continue the live
//! file). At most [`QUEUED`] batches wait for the thread (memory stays
//! bounded and the host is slowed down instead) and [`MAX_IN_FLIGHT`] for
//! the standby's answer. A
//! batch counts as done only when the standby confirmed it (appended,
//! fsynced, applied); the listener acknowledges nothing beyond the oldest
//! batch not yet done. After a failure the thread skips every queued batch
//! until the listener has taken note (`Reset`): the host redelivers them.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use logdaemon_sdk::Position;

use crate::error::{fatal, Error, Result};
use crate::hold::Taken;
use crate::standby::Standby;

/// Batches not yet confirmed by the standby at most (sent or not): what
/// may be on its way while earlier requests wait for their fsync.
pub const MAX_IN_FLIGHT: usize = 8;

/// Batches queued for the thread at most: with the [`JOIN`] in hand, what
/// the listener holds in memory beside the batch it is gathering. A sent
/// batch's bytes are dropped at once; only its position waits for the
/// standby's answer.
pub const QUEUED: usize = 2;

/// Batches queued behind each other that the thread takes at once (sent as
/// one request where they continue the standby's live file, see
/// `standby::joined`). Two leave room for the next pair to queue up while
/// one pair is on its way. The thread does not wait for a batch to join:
/// the channel would stand still meanwhile, and a request costs the
/// standby little more than its bytes.
pub const JOIN: usize = 2;

enum Msg {
    Ship(Taken),
    Keepalive,
    Reset,
}

/// What the thread reports, in order.
pub enum Done {
    /// The oldest batch is on the standby.
    Shipped,
    /// The oldest batch failed at the run starting at `at`; runs before it
    /// were shipped.
    Failed { error: Error, at: Position },
    /// A batch queued after a failure, not attempted.
    Skipped,
    /// The thread has forgotten the failure.
    ResetDone,
}

/// Buffers of sent batches kept for the next batches at most: a fresh
/// buffer of megabytes costs a page fault per 4 KiB as it fills (a quarter
/// of the listener thread's time when each batch had a new one).
const SPARE: usize = 2;

pub struct Sender {
    tx: Option<SyncSender<Msg>>,
    rx: Receiver<Done>,
    /// Buffers of sent batches, emptied, for [`Sender::spare`].
    spare: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
    /// Start positions of the batches not yet reported, oldest first.
    in_flight: VecDeque<Position>,
}

impl Sender {
    pub fn spawn(mut standby: Standby) -> Sender {
        let (tx, jobs) = sync_channel::<Msg>(QUEUED);
        let (done, rx) = sync_channel::<Done>(2 * MAX_IN_FLIGHT + 4);
        let (give, spare) = sync_channel::<Vec<u8>>(SPARE);
        let thread = std::thread::Builder::new()
            .name("hot-backup".into())
            .spawn(move || run_thread(&mut standby, jobs, done, give))
            .expect("spawn the hot-backup sender thread");
        Sender {
            tx: Some(tx),
            rx,
            spare,
            thread: Some(thread),
            in_flight: Default::default(),
        }
    }

    /// An empty buffer of a sent batch, if one is back.
    pub fn spare(&self) -> Option<Vec<u8>> {
        self.spare.try_recv().ok()
    }

    /// Start of the oldest batch not yet confirmed.
    pub fn oldest(&self) -> Option<Position> {
        self.in_flight.front().copied()
    }

    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.in_flight.len() >= MAX_IN_FLIGHT
    }

    /// Queues a batch (wait with [`Sender::poll`] first while [`Sender::is_full`]).
    pub fn ship(&mut self, batch: Taken) -> Result<()> {
        let Some(start) = batch.start() else {
            return Ok(());
        };
        self.send(Msg::Ship(batch))?;
        self.in_flight.push_back(start);
        Ok(())
    }

    pub fn keepalive(&mut self) {
        if self.in_flight.is_empty() {
            let _ = self.tx.as_ref().map(|t| t.try_send(Msg::Keepalive));
        }
    }

    fn send(&self, m: Msg) -> Result<()> {
        self.tx
            .as_ref()
            .and_then(|t| t.send(m).ok())
            .ok_or_else(|| {
                fatal("the hot-backup sender thread is gone (it panicked); see the daemon's log")
            })
    }

    fn recv(&self, block: bool) -> Result<Option<Done>> {
        if block {
            self.rx.recv().map(Some).map_err(|_| {
                fatal("the hot-backup sender thread is gone (it panicked); see the daemon's log")
            })
        } else {
            match self.rx.try_recv() {
                Ok(d) => Ok(Some(d)),
                Err(std::sync::mpsc::TryRecvError::Empty) => Ok(None),
                Err(_) => Err(fatal(
                    "the hot-backup sender thread is gone (it panicked); see the daemon's log",
                )),
            }
        }
    }

    /// Takes note of finished batches; waits for the oldest one with
    /// `block`. A failure is returned with the position before which
    /// everything was shipped; the queue is then empty and the thread ready
    /// for new batches.
    pub fn poll(&mut self, block: bool) -> Result<(), (Error, Position)> {
        let mut blocking = block && !self.in_flight.is_empty();
        loop {
            let done = match self.recv(blocking) {
                Ok(Some(d)) => d,
                Ok(None) => return Ok(()),
                Err(e) => {
                    let at = self.in_flight.front().copied().unwrap_or_default();
                    self.in_flight.clear();
                    return Err((e, at));
                }
            };
            blocking = false;
            match done {
                Done::Shipped => {
                    self.in_flight.pop_front();
                }
                Done::Failed { error, at } => {
                    // Let the thread skip the rest of the queue, then forget the failure.
                    let reset = self.send(Msg::Reset).and_then(|()| loop {
                        match self.recv(true)? {
                            Some(Done::ResetDone) => return Ok(()),
                            _ => continue,
                        }
                    });
                    self.in_flight.clear();
                    return Err((reset.err().unwrap_or(error), at));
                }
                Done::Skipped | Done::ResetDone => {}
            }
            if self.in_flight.is_empty() && !block {
                return Ok(());
            }
        }
    }
}

/// The thread: sends the runs of each batch as they come, reads answers
/// while nothing new is queued, and reports batches in order.
fn run_thread(
    standby: &mut Standby,
    jobs: Receiver<Msg>,
    done: SyncSender<Done>,
    give: SyncSender<Vec<u8>>,
) {
    let mut failed = false;
    let mut next_tag: u64 = 0;
    // Batches not yet reported: their tag and how many runs are unconfirmed.
    let mut open: VecDeque<(u64, usize)> = VecDeque::new();
    let mut closing = false;
    // A message taken while gathering batches, handled next.
    let mut stash: Option<Msg> = None;
    loop {
        let msg = if let Some(m) = stash.take() {
            Some(m)
        } else if standby.has_pending() && !closing {
            match jobs.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => {
                    closing = true;
                    None
                }
            }
        } else if closing {
            if !standby.has_pending() {
                return;
            }
            None
        } else {
            match jobs.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        };
        let mut confirmed = Vec::new();
        let outcome: std::result::Result<(), (Error, Position)> = match msg {
            None => {
                let at = standby.oldest_pending().unwrap_or_default();
                match standby.settle_one() {
                    Ok(t) => {
                        confirmed.extend(t);
                        Ok(())
                    }
                    Err(e) => Err((e, at)),
                }
            }
            Some(Msg::Ship(_)) if failed => {
                if done.send(Done::Skipped).is_err() {
                    return;
                }
                continue;
            }
            Some(Msg::Ship(batch)) => {
                let mut batches = vec![batch];
                while batches.len() < JOIN && !closing {
                    match jobs.try_recv() {
                        Ok(Msg::Ship(b)) => batches.push(b),
                        Ok(other) => {
                            stash = Some(other);
                            break;
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => closing = true,
                    }
                }
                let mut runs = Vec::new();
                for b in &batches {
                    next_tag += 1;
                    open.push_back((next_tag, b.runs.len()));
                    runs.extend((0..b.runs.len()).map(|i| (b.run(i), next_tag)));
                }
                let shipped = standby.ship_all(&runs).map(|tags| confirmed.extend(tags));
                drop(runs);
                for b in batches {
                    let mut data = b.data;
                    data.clear();
                    let _ = give.try_send(data);
                }
                shipped
            }
            Some(Msg::Keepalive) => {
                if !failed && !standby.has_pending() {
                    standby.keepalive();
                }
                continue;
            }
            Some(Msg::Reset) => {
                failed = false;
                if done.send(Done::ResetDone).is_err() {
                    return;
                }
                continue;
            }
        };
        for t in confirmed {
            if let Some(job) = open.iter_mut().find(|j| j.0 == t) {
                job.1 -= 1;
            }
            while open.front().is_some_and(|j| j.1 == 0) {
                open.pop_front();
                if done.send(Done::Shipped).is_err() {
                    return;
                }
            }
        }
        if let Err((error, at)) = outcome {
            standby.reset();
            failed = true;
            open.clear();
            if done.send(Done::Failed { error, at }).is_err() {
                return;
            }
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Closing the queue ends the thread once the batch at hand is done.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
