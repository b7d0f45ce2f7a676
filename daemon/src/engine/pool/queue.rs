//! The pool's queue of work, and the threads asleep waiting for it.

use super::*;

/// The queue of work: a plain condition variable, so that a thread
/// without work sleeps in the kernel at once (no spinning: an idle daemon
/// costs nothing, and a frozen one shows its idle threads as waiting).
///
/// Wake-ups are what thousands of journals written at once cost most
/// (each one a system call and a switch of threads), so none is made
/// that no thread needs: work queued while no thread sleeps wakes none,
/// work queued while every sleeping thread has been woken already (and
/// has not run yet) wakes none either (the woken ones take it: a thread
/// takes work until none is left before it sleeps), and a step queued
/// again by the thread that ran it wakes none when it is the only work
/// (that thread takes it next, see [`Queue::push_own`]).
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
    /// Of those, threads woken that have not run yet (at most `sleepers`).
    pub(super) waking: usize,
}

impl Items {
    /// Queues `w`: whether a sleeping thread must be woken for it (then
    /// it is counted as waking).
    pub(super) fn push(&mut self, w: Work) -> bool {
        self.work.push_back(w);
        self.wake_one()
    }

    /// Like [`push`](Self::push), from a pool thread that takes work again
    /// right after: it takes `w` itself when that is the only work.
    pub(super) fn push_own(&mut self, w: Work) -> bool {
        let others = !self.work.is_empty();
        self.work.push_back(w);
        others && self.wake_one()
    }

    /// Whether a sleeping thread not yet woken is to be woken (counted).
    fn wake_one(&mut self) -> bool {
        let wake = self.sleepers > self.waking;
        if wake {
            self.waking += 1;
        }
        wake
    }

    /// A sleeping thread returned from its wait (woken, or not).
    pub(super) fn woke(&mut self) {
        self.sleepers -= 1;
        self.waking = self.waking.saturating_sub(1).min(self.sleepers);
    }
}

impl Queue {
    pub(super) fn push(&self, w: Work) {
        let wake = lock(&self.items).push(w);
        if wake {
            self.notify();
        }
    }

    /// Like [`push`](Self::push), from a pool thread that takes work again
    /// right after: when the queue was empty, that thread takes `w` itself
    /// and no other is woken for it.
    pub(super) fn push_own(&self, w: Work) {
        let wake = lock(&self.items).push_own(w);
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
                        items.sleepers -= 1;
                        return None;
                    }
                    items = self
                        .ready
                        .wait_timeout(items, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
            items.woke();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> Work {
        Work::Step(0)
    }

    #[test]
    fn work_queued_while_every_sleeper_is_being_woken_wakes_no_other() {
        let mut items = Items {
            sleepers: 2,
            ..Items::default()
        };
        assert!(items.push(step()), "a sleeper is woken");
        assert!(items.push(step()), "and the other one");
        assert!(!items.push(step()), "both are being woken: they take it");
        items.woke();
        assert_eq!((items.sleepers, items.waking), (1, 1));
        // The first one sleeps again before the second has run.
        items.sleepers += 1;
        assert!(items.push(step()), "one sleeper is not being woken");
        assert!(!items.push(step()));
    }

    #[test]
    fn a_return_from_the_wait_without_a_wake_up_never_leaves_a_wake_counted() {
        let mut items = Items {
            sleepers: 1,
            ..Items::default()
        };
        items.woke(); // spurious, or a timeout
        assert_eq!((items.sleepers, items.waking), (0, 0));
        items.sleepers = 1;
        assert!(items.push(step()));
        assert!(!items.push_own(step()), "the woken one takes it");
        items.woke();
        assert_eq!((items.sleepers, items.waking), (0, 0));
        assert!(!items.push(step()), "no sleeper: no wake-up");
    }
}
