//! The arrays of ABI entries handed to listeners, pooled.
//!
//! A worker builds one [`RawEntry`] per record of the batch it hands
//! over (about 130 bytes each: a 1,000-line batch is an array of 130 KiB).
//! Given back to the allocator after each batch, such arrays are returned
//! to the system by the pool threads' arenas and faulted in again, page by
//! page and zeroed, by the next batch of every journal written at once:
//! with two listeners per journal that was a fifth of the daemon's CPU
//! time. Kept by each worker, thousands of journals would hold one each.
//! So an array goes to this pool after the call, and the next worker to
//! deliver takes it: the arrays in use at once (about one per pool thread)
//! are reused. Only an array too large for the pool (a catch-up batch of
//! tiny records) stays with its worker while it is busy.

use std::sync::Mutex;

use logdaemon_sdk::abi::RawEntry;

/// Arrays kept for reuse, at most.
const KEEP: usize = 8;
/// Arrays that hold more entries than this are not kept by the pool (one
/// large catch-up batch of tiny records): the pool holds a few MiB at most.
const KEEP_BELOW: usize = 4096;
/// An array grown past this by one batch of tiny records is not kept by
/// its worker for the next batch either.
const KEEP_ENTRIES: usize = 1 << 16;

/// An empty array with room for entries.
struct Empty(Vec<RawEntry>);

// SAFETY: an `Empty` holds no entry (the vector is cleared before it is
// made), so no pointer of a batch crosses threads with it: only the
// allocation does.
unsafe impl Send for Empty {}

static POOL: Mutex<Vec<Empty>> = Mutex::new(Vec::new());

/// The array of entries handed to the listener: from the pool for each
/// batch, or kept by a busy worker when it is too large for the pool.
/// Empty between calls.
#[derive(Default)]
pub(super) struct Entries(Vec<RawEntry>);

// SAFETY: the vector is empty whenever the worker is not inside `deliver`,
// so no pointer it held is ever used from another thread.
unsafe impl Send for Entries {}

impl Entries {
    /// The worker's array for a batch, from the pool when it holds none.
    pub(super) fn take(&mut self) -> Vec<RawEntry> {
        if self.0.capacity() > 0 {
            return std::mem::take(&mut self.0);
        }
        let got = POOL.lock().unwrap_or_else(|e| e.into_inner()).pop();
        got.map(|e| e.0).unwrap_or_default()
    }

    /// After the call: `handled` (cleared: its entries point into a batch
    /// that goes) back to the pool, or kept for the worker's next batch
    /// when too large for the pool, unless one batch grew it huge.
    pub(super) fn keep(&mut self, mut handled: Vec<RawEntry>) {
        handled.clear();
        if handled.capacity() <= KEEP_BELOW {
            give(handled);
        } else if handled.capacity() <= KEEP_ENTRIES {
            self.0 = handled;
        }
    }

    /// The worker goes idle: its array, if it kept one, goes.
    pub(super) fn release(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

/// Gives `v` to the pool (or back to the allocator, when the pool is full
/// or `v` too large for it).
fn give(mut v: Vec<RawEntry>) {
    if v.capacity() == 0 || v.capacity() > KEEP_BELOW {
        return;
    }
    v.clear();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < KEEP {
        pool.push(Empty(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_capacity(n: usize) -> Entries {
        Entries(Vec::with_capacity(n))
    }

    #[test]
    fn an_idle_workers_array_is_taken_by_the_next_worker() {
        let mut idle = with_capacity(1000);
        let p = idle.0.as_ptr();
        idle.release();
        assert_eq!(idle.0.capacity(), 0, "the idle worker holds none");
        // Other tests share the pool: look for ours among what is taken.
        let mut taken = Vec::new();
        let mut found = false;
        for _ in 0..=KEEP {
            let got = Entries::default().take();
            found |= got.as_ptr() == p && got.capacity() >= 1000;
            taken.push(Entries(got));
            if found {
                break;
            }
        }
        assert!(found, "the array came back");
        taken.iter_mut().for_each(Entries::release);
    }

    #[test]
    fn an_array_goes_back_after_the_call_unless_too_large_for_the_pool() {
        let mut e = Entries::default();
        let mut v = e.take();
        v.reserve(100);
        let p = v.as_ptr();
        e.keep(v);
        assert_eq!(e.0.capacity(), 0, "a small array goes back at once");
        let mut taken = Vec::new();
        let mut found = false;
        for _ in 0..=KEEP {
            let got = Entries::default().take();
            found |= got.as_ptr() == p;
            taken.push(Entries(got));
            if found {
                break;
            }
        }
        assert!(found, "the next worker takes it");
        taken.iter_mut().for_each(Entries::release);
        // A catch-up batch's array stays with its busy worker.
        let big = Vec::with_capacity(KEEP_BELOW + 1);
        let p = big.as_ptr();
        e.keep(big);
        let own = e.take();
        assert_eq!(own.as_ptr(), p, "its own array, not the pool's");
        drop(own);
        e.keep(Vec::with_capacity(KEEP_ENTRIES + 1));
        assert_eq!(e.0.capacity(), 0, "one huge batch's array goes");
        let mut big = with_capacity(KEEP_BELOW + 1);
        let p = big.0.as_ptr();
        big.release();
        let pooled = POOL.lock().unwrap();
        assert!(pooled.len() <= KEEP);
        assert!(pooled.iter().all(|e| e.0.as_ptr() != p && e.0.is_empty()));
    }
}
