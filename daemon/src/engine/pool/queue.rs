//! The pool's queue of work, and the threads asleep waiting for it.

use super::*;

/// The queue of work: a plain condition variable, so that a thread
/// without work sleeps in the kernel at once (no spinning: an idle daemon
/// costs nothing, and a frozen one shows its idle threads as waiting).
///
/// Wake-ups are what thousands of journals written at once cost most
/// (each one a system call and a switch of threads), so none is made
/// that no thread needs: work queued while no thread sleeps wakes none,
/// and a step queued again by the thread that ran it wakes none when it
/// is the only work (that thread takes it next, see [`Queue::push_own`]),
/// and a sleeper already woken but not yet running is not woken again:
/// the engine queues the steps of a thousand journals written at once in
/// one go, faster than a woken thread gets to the queue (see
/// [`Items::wake_one`]).
pub(super) struct Queue {
    pub(super) items: Mutex<Items>,
    pub(super) ready: Condvar,
    /// Threads woken for work so far (tests look at it).
    #[cfg(test)]
    pub(super) woken: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
pub(super) struct Items {
    pub(super) work: VecDeque<Work>,
    /// Threads waiting in [`Queue::pop`].
    pub(super) sleepers: usize,
    /// Wake-ups sent to sleepers that have not yet left their wait.
    /// Invariant: `waking <= sleepers`. It may fall short of the wake-ups
    /// really on their way (a sleeper that left by a timeout takes one),
    /// never exceed them: too low costs a wake-up too many, too high
    /// would leave work with no thread woken for it.
    pub(super) waking: usize,
}

impl Items {
    /// Whether queued work should wake a sleeper: one that no wake-up is
    /// on its way to yet. Counts the wake-up it asks for.
    pub(super) fn wake_one(&mut self) -> bool {
        let wake = self.sleepers > self.waking;
        if wake {
            self.waking += 1;
        }
        wake
    }

    /// A sleeper left its wait (woken, timed out or spuriously).
    pub(super) fn left_wait(&mut self) {
        self.sleepers -= 1;
        self.waking = self.waking.saturating_sub(1).min(self.sleepers);
    }
}

impl Queue {
    pub(super) fn push(&self, w: Work) {
        let mut items = lock(&self.items);
        items.work.push_back(w);
        let wake = items.wake_one();
        drop(items);
        if wake {
            self.notify();
        }
    }

    /// Like [`push`](Self::push), from a pool thread that takes work again
    /// right after: when the queue was empty, that thread takes `w` itself
    /// and no other is woken for it.
    pub(super) fn push_own(&self, w: Work) {
        let mut items = lock(&self.items);
        let wake = !items.work.is_empty() && items.wake_one();
        items.work.push_back(w);
        drop(items);
        if wake {
            self.notify();
        }
    }

    pub(super) fn notify(&self) {
        #[cfg(test)]
        self.woken
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.ready.notify_one();
    }

    pub(super) fn is_empty(&self) -> bool {
        lock(&self.items).work.is_empty()
    }

    /// The next work; `None` after `timeout` (if any) without work.
    pub(super) fn pop(&self, timeout: Option<Duration>) -> Option<Work> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut items = lock(&self.items);
        loop {
            if let Some(w) = items.work.pop_front() {
                return Some(w);
            }
            items.sleepers += 1;
            match deadline {
                None => items = self.ready.wait(items).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        items.left_wait();
                        return None;
                    }
                    items = self
                        .ready
                        .wait_timeout(items, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
            items.left_wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleeper_already_woken_is_not_woken_again() {
        let mut items = Items {
            sleepers: 2,
            ..Items::default()
        };
        assert!(items.wake_one(), "the first work wakes a sleeper");
        assert!(items.wake_one(), "the second work wakes the other");
        assert!(!items.wake_one(), "both are on their way: no third wake-up");
        items.left_wait();
        assert_eq!((items.sleepers, items.waking), (1, 1));
        items.left_wait();
        assert_eq!((items.sleepers, items.waking), (0, 0));
        assert!(!items.wake_one(), "nobody sleeps");
    }

    #[test]
    fn a_sleeper_that_left_by_its_timeout_leaves_no_wake_up_unsent() {
        // One sleeper woken, another leaves its wait by a timeout before
        // the woken one runs: the count may only err towards waking.
        let mut items = Items {
            sleepers: 2,
            ..Items::default()
        };
        assert!(items.wake_one());
        items.left_wait(); // the one that timed out
        assert!(items.waking <= items.sleepers);
        items.left_wait(); // the woken one
        items.sleepers = 1; // a thread waits again
        assert!(items.wake_one(), "new work wakes the new sleeper");
    }
}
