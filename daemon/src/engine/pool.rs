//! The threads that run the listeners' workers: a fixed few for reading
//! and framing, and one more for each listener that keeps a thread busy in
//! a call that blocks (an SSH write to a slow standby, a hook that takes
//! its time), never one per file.
//!
//! Ownership. A task (one listener's [`Worker`](crate::worker::Worker))
//! belongs to no thread: between steps it sits in its slot, and one pool
//! thread at a time takes it out for one [`Task::step`] and puts it back.
//! A slot's [`State`] says who may touch the task: only the thread that
//! moved it from `Queued` to `Running`. Waking a task that is running
//! makes it run again after its step, so a wake-up is never lost.
//!
//! Threads. `base` threads always wait for work. When work is queued, no
//! thread is idle and one has been busy in a single piece of work for
//! longer than [`BUSY`], the timer thread starts one more (up to one per
//! task beyond the base), and such an extra thread ends after [`LINGER`]
//! without work. The timer thread also wakes tasks whose wait is over.
//!
//! Panics. A panic in a step is caught: the task is told
//! ([`Task::panicked`]: the worker marks its listener failed and applies
//! `on_failure`), it is never stepped again, and the engine is woken as for
//! any task that is done, so `--once` and SIGTERM still end the run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one piece of work may hold a thread before another is started.
const BUSY: Duration = Duration::from_millis(100);
/// How long an extra thread waits for work before it ends.
const LINGER: Duration = Duration::from_secs(10);
/// How often the timer thread looks for blocked threads while work waits.
const TICK: Duration = Duration::from_millis(50);

/// Not a task: ends a pool thread, or the timer thread.
const STOP: usize = usize::MAX;
/// Not a task: wakes the timer thread to look for blocked threads.
const NUDGE: usize = usize::MAX - 1;

/// What a task wants after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Step again as soon as a thread is free.
    Now,
    /// Step again after this long, or when woken, whichever comes first.
    Wait(Duration),
    /// Never step again.
    Done,
}

/// A unit of work the pool steps until it is done.
pub(crate) trait Task: Send {
    /// Does a bounded piece of work (at most one batch and one listener call).
    fn step(&mut self) -> Next;
    /// The last step panicked with `message`; the task will not be stepped again.
    fn panicked(&mut self, message: &str);
    /// Called by the timer thread when the task's wait is over, instead of
    /// a step, if it answers cheaply: `Some(wait)` when it has nothing to
    /// do (it waits that long again, no thread is woken), `None` when it
    /// must be stepped. Must not block.
    fn still_idle(&mut self) -> Option<Duration> {
        None
    }
}

/// Who may touch a slot's task; see the module header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting { until: Instant },
    Queued,
    Running { again: bool },
    Done,
}

struct Slot {
    state: Mutex<State>,
    task: Mutex<Option<Box<dyn Task>>>,
}

enum Work {
    Step(usize),
    Job(Box<dyn FnOnce() + Send>),
}

struct Threads {
    total: usize,
    idle: usize,
    /// Threads in a listener call ([`in_call`]), by number, with when the call began.
    in_call: BTreeMap<usize, Instant>,
    next_no: usize,
    handles: Vec<JoinHandle<()>>,
    /// When the timer thread looks for blocked threads next (a [`NUDGE`]
    /// is queued for then): one look at a time, not one for each time
    /// every thread became busy (thousands in a burst, each a wake-up of
    /// the timer thread).
    nudge_at: Option<Instant>,
    #[cfg(test)]
    nudges: usize,
}

struct Inner {
    /// Read for every wake-up and step, written only to add a task: a
    /// read lock, so that the engine's wake-ups and the threads' steps do
    /// not wait for each other.
    slots: RwLock<Vec<Arc<Slot>>>,
    /// Tasks done so far: a slot turns `Done` once and for good, and is
    /// counted then, so "every task is done" is one compare.
    done: AtomicUsize,
    work: Queue,
    timers: Timers,
    threads: Mutex<Threads>,
    base: usize,
    on_done: Box<dyn Fn() + Send + Sync>,
}

/// The pool; dropping it (or [`Pool::shutdown`]) ends its threads once
/// the work in hand is done.
pub(crate) struct Pool {
    inner: Arc<Inner>,
    timer: Option<JoinHandle<()>>,
}

/// A handle that queues one-off jobs (reading ahead) on the pool.
#[derive(Clone)]
pub(crate) struct Spawner {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    /// A pool of `base` threads (at least 1); `on_done` is called each time
    /// a task is done.
    pub(crate) fn new(
        base: usize,
        on_done: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<Pool> {
        let inner = Arc::new(Inner {
            slots: RwLock::new(Vec::new()),
            done: AtomicUsize::new(0),
            work: Queue {
                items: Mutex::new(Items::default()),
                ready: Condvar::new(),
                #[cfg(test)]
                woken: Default::default(),
            },
            timers: Timers::default(),
            threads: Mutex::new(Threads {
                total: 0,
                idle: 0,
                in_call: BTreeMap::new(),
                next_no: 0,
                handles: Vec::new(),
                nudge_at: None,
                #[cfg(test)]
                nudges: 0,
            }),
            base: base.max(1),
            on_done: Box::new(on_done),
        });
        for _ in 0..inner.base {
            spawn_thread(&inner, false)?;
        }
        let t = inner.clone();
        let timer = std::thread::Builder::new()
            .name("pool-timer".into())
            .spawn(move || timer_loop(&t))?;
        Ok(Pool {
            inner,
            timer: Some(timer),
        })
    }

    /// Adds a task and queues its first step. Returns its id.
    pub(crate) fn add(&self, task: Box<dyn Task>) -> usize {
        let slot = Arc::new(Slot {
            state: Mutex::new(State::Queued),
            task: Mutex::new(Some(task)),
        });
        let id = {
            let mut slots = self.inner.slots.write().unwrap_or_else(|e| e.into_inner());
            slots.push(slot);
            slots.len() - 1
        };
        self.inner.work.push(Work::Step(id));
        id
    }

    /// Steps task `id` soon (unless it is done).
    pub(crate) fn wake(&self, id: usize) {
        self.inner.wake(id);
    }

    /// Wakes every task.
    pub(crate) fn wake_all(&self) {
        let n = self.inner.read_slots().len();
        for id in 0..n {
            self.inner.wake(id);
        }
    }

    /// Whether task `id` is done.
    pub(crate) fn is_done(&self, id: usize) -> bool {
        self.inner
            .slot(id)
            .is_none_or(|s| *lock(&s.state) == State::Done)
    }

    /// Whether every task is done.
    pub(crate) fn all_done(&self) -> bool {
        // Slots are never removed, and a task counted done stays done.
        self.inner.done.load(Ordering::Acquire) == self.inner.read_slots().len()
    }

    pub(crate) fn spawner(&self) -> Spawner {
        Spawner {
            inner: self.inner.clone(),
        }
    }

    /// Threads woken for work so far.
    #[cfg(test)]
    pub(crate) fn woken(&self) -> usize {
        self.inner
            .work
            .woken
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Threads waiting for work now.
    #[cfg(test)]
    pub(crate) fn sleeping(&self) -> usize {
        lock(&self.inner.work.items).sleepers
    }

    /// Looks for blocked threads queued for the timer thread so far.
    #[cfg(test)]
    pub(crate) fn nudges(&self) -> usize {
        lock(&self.inner.threads).nudges
    }

    /// Threads the pool runs now (not counting its timer thread).
    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        lock(&self.inner.threads).total
    }

    /// Ends the threads (after the work in hand) and waits for them.
    pub(crate) fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(timer) = self.timer.take() else {
            return;
        };
        // The threads hold a receiver each; closing the senders ends them.
        self.inner.timers.add(Instant::now(), STOP);
        let _ = timer.join();
        let handles = std::mem::take(&mut lock(&self.inner.threads).handles);
        // One sentinel per thread, queued after the work in hand.
        for _ in &handles {
            self.inner.work.push(Work::Step(STOP));
        }
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Spawner {
    /// Runs `job` on a pool thread. The job must not wait for a step.
    pub(crate) fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.inner.work.push(Work::Job(Box::new(job)));
    }
}

impl Inner {
    fn read_slots(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Slot>>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(&self, id: usize) -> Option<Arc<Slot>> {
        self.read_slots().get(id).cloned()
    }

    /// Work is queued after the slot's lock is let go: the thread it wakes
    /// takes that lock first, and would otherwise wait for this one.
    /// (Once `Queued`, no one else queues the task, and no thread steps it
    /// before it is in the queue.)
    fn wake(&self, id: usize) {
        let Some(slot) = self.slot(id) else { return };
        let mut s = lock(&slot.state);
        match *s {
            State::Waiting { .. } => {
                *s = State::Queued;
                drop(s);
                self.work.push(Work::Step(id));
            }
            State::Running { .. } => *s = State::Running { again: true },
            State::Queued | State::Done => {}
        }
    }

    /// Runs one step of task `id` on this thread.
    fn step(&self, id: usize) {
        let Some(slot) = self.slot(id) else { return };
        {
            let mut s = lock(&slot.state);
            if *s != State::Queued {
                return;
            }
            *s = State::Running { again: false };
        }
        let mut task = lock(&slot.task)
            .take()
            .expect("a queued task is in its slot");
        let next = match catch_unwind(AssertUnwindSafe(|| task.step())) {
            Ok(next) => next,
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                // The task's own state may be half-way; it only records the failure.
                let _ = catch_unwind(AssertUnwindSafe(|| task.panicked(&message)));
                Next::Done
            }
        };
        if next != Next::Done {
            *lock(&slot.task) = Some(task);
        } else {
            // A task that is done lets go of what it holds (a listener's
            // instance, its files) now, not at the end of the run.
            drop(task);
        }
        let mut s = lock(&slot.state);
        let again = matches!(*s, State::Running { again: true });
        match next {
            Next::Done => {
                *s = State::Done;
                self.done.fetch_add(1, Ordering::Release);
                drop(s);
                (self.on_done)();
            }
            // This thread takes work again right after the step. (Queued
            // after the slot's lock is let go, as in `wake`.)
            Next::Now => {
                *s = State::Queued;
                drop(s);
                self.work.push_own(Work::Step(id));
            }
            Next::Wait(_) if again => {
                *s = State::Queued;
                drop(s);
                self.work.push_own(Work::Step(id));
            }
            Next::Wait(d) => {
                let until = Instant::now() + d;
                *s = State::Waiting { until };
                self.timers.add(until, id);
            }
        }
    }

    /// Whether another thread should start: work waits, no thread is idle,
    /// and fewer extra threads run than listener calls have held a thread
    /// for over [`BUSY`]. Reading and framing never add threads (a loaded
    /// machine makes them slow, not blocked); only listener calls do.
    fn needs_thread(&self) -> bool {
        if self.work.is_empty() {
            return false;
        }
        let t = lock(&self.threads);
        let blocked = t.in_call.values().filter(|s| s.elapsed() >= BUSY).count();
        t.idle == 0 && t.total < self.base + blocked
    }
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

fn spawn_thread(inner: &Arc<Inner>, extra: bool) -> std::io::Result<()> {
    let mut t = lock(&inner.threads);
    let no = t.next_no;
    t.next_no += 1;
    t.total += 1;
    let i = inner.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("pool-{no}"))
        .spawn(move || thread_loop(&i, no, extra));
    match spawned {
        Ok(h) => {
            t.handles.push(h);
            Ok(())
        }
        Err(e) => {
            t.total -= 1;
            Err(e)
        }
    }
}

thread_local! {
    /// The pool and number of the pool thread this is, if it is one.
    static THREAD: std::cell::RefCell<Option<(Arc<Inner>, usize)>> = const { std::cell::RefCell::new(None) };
}

/// Runs `call` (a listener call, which may block) and lets the pool know,
/// so that queued work gets another thread if the call takes long.
pub(crate) fn in_call<T>(call: impl FnOnce() -> T) -> T {
    let me = THREAD.with(|t| t.borrow().clone());
    let Some((inner, no)) = me else {
        return call();
    };
    lock(&inner.threads).in_call.insert(no, Instant::now());
    struct Done<'a>(&'a Inner, usize);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            lock(&self.0.threads).in_call.remove(&self.1);
        }
    }
    let _done = Done(&inner, no);
    call()
}

fn thread_loop(inner: &Arc<Inner>, no: usize, extra: bool) {
    THREAD.with(|t| *t.borrow_mut() = Some((inner.clone(), no)));
    loop {
        lock(&inner.threads).idle += 1;
        let got = inner.work.pop(extra.then_some(LINGER));
        let mut t = lock(&inner.threads);
        t.idle -= 1;
        if t.idle == 0 {
            // Every thread is busy: have the timer look for blocked ones.
            nudge(inner, &mut t, Instant::now() + BUSY);
        }
        let work = match got {
            Some(Work::Step(STOP)) | None => {
                t.total = t.total.saturating_sub(1);
                return;
            }
            Some(w) => w,
        };
        drop(t);
        match work {
            Work::Step(id) => inner.step(id),
            Work::Job(job) => {
                if let Err(p) = catch_unwind(AssertUnwindSafe(job)) {
                    tracing::error!("a read-ahead job panicked: {}", panic_message(p.as_ref()));
                }
            }
        }
    }
}

/// Has the timer thread look for blocked threads at `at`, unless a look
/// it has not taken yet comes before then (`t` is the locked [`Threads`]).
fn nudge(inner: &Inner, t: &mut Threads, at: Instant) {
    if t.nudge_at.is_some_and(|n| n <= at) {
        return;
    }
    t.nudge_at = Some(at);
    #[cfg(test)]
    {
        t.nudges += 1;
    }
    inner.timers.add(at, NUDGE);
}

/// After the timer thread looked for blocked threads: while every thread
/// is still busy, it looks again when the oldest listener call in progress
/// has held its thread for [`BUSY`] (a call that began after the last
/// time every thread became busy is looked at too).
fn nudge_again(inner: &Inner) {
    let mut t = lock(&inner.threads);
    t.nudge_at = None;
    if t.idle > 0 {
        return;
    }
    let now = Instant::now();
    if let Some(at) = t
        .in_call
        .values()
        .map(|&s| s + BUSY)
        .filter(|&at| at > now)
        .min()
    {
        nudge(inner, &mut t, at);
    }
}

mod queue;
mod timers;

use queue::{Items, Queue};
use timers::{timer_loop, Timers};

#[cfg(test)]
mod tests;
