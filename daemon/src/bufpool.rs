//! Read buffers shared by every follower.
//!
//! A follower needs a buffer while it reads and none while it waits. With
//! thousands of followers that mostly wait, each one allocating and
//! freeing its own buffer leaves the allocator's arenas full of holes:
//! the memory is freed but stays resident. Followers take buffers from
//! this pool instead and give them back when idle, so that the buffers in
//! use at once (a few per pool thread) are reused, zeroed once.

use std::sync::Mutex;

/// Buffers kept for reuse, at most.
const KEEP: usize = 32;
/// Buffers larger than this are not kept (grown for a huge record).
const KEEP_BELOW: usize = 4 << 20;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A buffer of length at least `len` (zeroed where new), from the pool if
/// one is there.
pub(crate) fn take(len: usize) -> Vec<u8> {
    let got = POOL.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut buf = got.unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, 0);
    }
    buf
}

/// Gives `buf` back for reuse (its contents are not cleared: whoever takes
/// it reads into it before looking at it).
pub(crate) fn give(buf: Vec<u8>) {
    if buf.is_empty() || buf.len() >= KEEP_BELOW {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < KEEP {
        pool.push(buf);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_buffer_given_back_is_taken_again_and_kept_at_its_length() {
        let b = super::take(1000);
        assert!(b.len() >= 1000);
        let p = b.as_ptr();
        super::give(b);
        // Other tests share the pool: look for ours among what is taken.
        let mut taken = Vec::new();
        let mut found = false;
        for _ in 0..super::KEEP + 1 {
            let t = super::take(10);
            found |= t.as_ptr() == p;
            taken.push(t);
            if found {
                break;
            }
        }
        assert!(found, "the buffer came back");
        taken.into_iter().for_each(super::give);
    }
}
