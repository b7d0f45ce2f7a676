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
/// is the only work (that thread takes it next, see [`Queue::push_own`]).
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
}

impl Queue {
    pub(super) fn push(&self, w: Work) {
        let mut items = lock(&self.items);
        items.work.push_back(w);
        let wake = items.sleepers > 0;
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
        let wake = items.sleepers > 0 && !items.work.is_empty();
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
            items.sleepers -= 1;
        }
    }
}
