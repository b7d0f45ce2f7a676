//! A count of the changes to every worker's [`Shared`] state, so that the
//! status thread can tell in one load that nothing it shows has moved and
//! skip rebuilding the status of thousands of idle journals.
//!
//! Invariant: every change of a worker's `Shared` is made through
//! [`SharedMut`], which bumps the count when it is dropped, after the
//! change and while the lock is still held. A reader that loads the count
//! and then locks each worker therefore sees every change made before the
//! load, and a change it missed bumps the count after its load.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::MutexGuard;

use super::{Shared, Worker};

static CHANGES: AtomicU64 = AtomicU64::new(0);

/// The number of changes made so far to any worker's shared state in this
/// process (see the module's invariant).
pub(crate) fn changes() -> u64 {
    CHANGES.load(Ordering::Acquire)
}

/// Counts a change made outside the workers that the status shows (the
/// set of workers or the config changed).
pub(crate) fn note_change() {
    CHANGES.fetch_add(1, Ordering::Release);
}

/// A worker's shared state, locked to be changed.
pub(crate) struct SharedMut<'a>(MutexGuard<'a, Shared>);

impl Deref for SharedMut<'_> {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl DerefMut for SharedMut<'_> {
    fn deref_mut(&mut self) -> &mut Shared {
        &mut self.0
    }
}

impl Drop for SharedMut<'_> {
    fn drop(&mut self) {
        // Before the guard's field unlocks: after the change, under the lock.
        note_change();
    }
}

impl Worker {
    /// The worker's shared state, to change it (counted in [`changes`]).
    pub(super) fn shared_mut(&self) -> SharedMut<'_> {
        SharedMut(self.shared.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_change_is_counted_once_it_is_made() {
        let m = Mutex::new(Shared::new(Default::default()));
        let before = changes();
        SharedMut(m.lock().unwrap()).version += 1;
        assert!(changes() > before);
        assert_eq!(m.lock().unwrap().version, 1);
    }
}
