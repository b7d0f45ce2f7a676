//! The arrays of ABI entries handed to listeners, pooled.
//!
//! A worker builds one [`RawEntry`] per record of the batch it hands
//! over (about 130 bytes each: a 1,000-line batch is an array of 130 KiB).
//! A busy worker keeps its array from one batch to the next; an idle one
//! gives it back, so that thousands of quiet journals hold none. Given
//! back to the allocator, such arrays are returned to the system by the
//! pool threads' arenas and faulted in again, page by page and zeroed, by
//! the next batch of every journal written at once: with two listeners
//! per journal that was a fifth of the daemon's CPU time. So an idle
//! worker's array goes to this pool instead, and the next worker to
//! deliver takes it: the arrays in use at once (about one per pool
//! thread) are reused.

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

/// The array of entries handed to the listener: kept by a busy worker
/// between batches, given to the pool when it goes idle. Empty between
/// calls.
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

    /// Keeps `handled` for the worker's next batch, cleared (its entries
    /// point into a batch that goes), unless one batch grew it too large.
    pub(super) fn keep(&mut self, mut handled: Vec<RawEntry>) {
        handled.clear();
        if handled.capacity() <= KEEP_ENTRIES {
            self.0 = handled;
        }
    }

    /// The worker goes idle: its array goes to the pool (or back to the
    /// allocator, when the pool is full or the array large).
    pub(super) fn release(&mut self) {
        let mut v = std::mem::take(&mut self.0);
        if v.capacity() == 0 || v.capacity() > KEEP_BELOW {
            return;
        }
        v.clear();
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < KEEP {
            pool.push(Empty(v));
        }
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
    fn a_busy_worker_keeps_its_array_and_a_huge_one_is_not_kept() {
        let mut e = with_capacity(100);
        let p = e.0.as_ptr();
        let v = e.take();
        assert_eq!(v.as_ptr(), p, "its own array, not the pool's");
        e.keep(v);
        assert_eq!(e.0.as_ptr(), p);
        drop(e.take());
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
