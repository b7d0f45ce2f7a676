//! The timer thread: tasks whose wait is over are woken (or, still idle,
//! wait again without a step), and threads are started when work is blocked.

use super::*;

/// Timers of waiting tasks: a heap under a lock and a condition variable
/// (no channel that spins: thousands of idle tasks re-arm a timer each
/// second). Deadlines are rounded up to [`SLACK`], so that the tasks due
/// within the same few milliseconds are woken by one pass of the timer
/// thread.
#[derive(Default)]
pub(super) struct Timers {
    pub(super) heap: Mutex<BinaryHeap<Reverse<(Instant, usize)>>>,
    pub(super) changed: Condvar,
}

/// How much later than asked a waiting task may be woken.
pub(super) const SLACK: Duration = Duration::from_millis(5);
/// Waits of at least [`COARSE_FROM`] (an idle journal's periodic check,
/// a retry's backoff) end on a grid of [`COARSE`] steps instead: the
/// checks of thousands of idle journals, spread over `reconcile_every`,
/// then wake the timer thread a few times a second, not once per journal.
/// A task is never woken before its time, and at most `COARSE` after it.
pub(super) const COARSE: Duration = Duration::from_millis(250);
pub(super) const COARSE_FROM: Duration = Duration::from_secs(1);

/// When the timer thread wakes a task that asked to wait until `at`.
pub(super) fn deadline(at: Instant, now: Instant) -> Instant {
    if at.saturating_duration_since(now) < COARSE_FROM {
        return at + SLACK;
    }
    static GRID: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let origin = *GRID.get_or_init(|| now);
    let step = COARSE.as_nanos();
    let steps = at
        .saturating_duration_since(origin)
        .as_nanos()
        .div_ceil(step);
    let on_grid = origin + Duration::from_nanos((steps * step).min(u64::MAX as u128) as u64);
    on_grid.max(at)
}

impl Timers {
    pub(super) fn add(&self, at: Instant, id: usize) {
        let mut heap = lock(&self.heap);
        let earliest = heap.peek().map(|Reverse((t, _))| *t);
        let at = if id == STOP {
            at
        } else {
            deadline(at, Instant::now())
        };
        heap.push(Reverse((at, id)));
        // The timer thread sleeps until the earliest deadline: wake it only
        // when this one comes before.
        if earliest.is_none_or(|e| at < e) {
            self.changed.notify_one();
        }
    }
}

/// Wakes tasks whose wait is over, and starts threads when work is blocked.
pub(super) fn timer_loop(inner: &Arc<Inner>) {
    let mut heap = lock(&inner.timers.heap);
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        let mut nudged = false;
        while let Some(&Reverse((at, id))) = heap.peek() {
            if at > now {
                break;
            }
            heap.pop();
            match id {
                STOP => return,
                NUDGE => nudged = true,
                _ => due.push(id),
            }
        }
        drop(heap);
        let mut again = Vec::new();
        for id in due {
            if let Some(slot) = inner.slot(id) {
                let mut s = lock(&slot.state);
                if matches!(*s, State::Waiting { until } if until <= now + SLACK) {
                    // A task that is still idle waits again without a step:
                    // thousands of idle journals cost a `stat` each, not a
                    // thread's wake-up each.
                    let idle = slot.task.try_lock().ok().and_then(|mut t| {
                        let t = t.as_mut()?;
                        catch_unwind(AssertUnwindSafe(|| t.still_idle()))
                            .ok()
                            .flatten()
                    });
                    match idle {
                        Some(d) => {
                            let now = Instant::now();
                            let until = now + d;
                            *s = State::Waiting { until };
                            again.push((deadline(until, now), id));
                        }
                        None => {
                            // Queued after the slot's lock is let go (see `Inner::wake`).
                            *s = State::Queued;
                            drop(s);
                            inner.work.push(Work::Step(id));
                        }
                    }
                }
            }
        }
        if inner.needs_thread() {
            if let Err(e) = spawn_thread(inner, true) {
                tracing::warn!(error = %e, "cannot start another thread; the queued work waits for one");
            }
        }
        if nudged {
            nudge_again(inner);
        }
        heap = lock(&inner.timers.heap);
        for (at, id) in again {
            heap.push(Reverse((at, id)));
        }
        let now = Instant::now();
        let mut wait = heap
            .peek()
            .map_or(Duration::from_secs(3600), |Reverse((at, _))| {
                at.saturating_duration_since(now)
            });
        // Look for blocked threads only while work waits.
        if !inner.work.is_empty() {
            wait = wait.min(TICK);
        }
        if !wait.is_zero() {
            heap = inner
                .timers
                .changed
                .wait_timeout(heap, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
