//! A count of the changes to every worker's [`Shared`] state, so that the
//! status thread can tell in one load that nothing it shows has moved and
//! skip rebuilding the status of thousands of idle journals.
//!
//! Invariant: every change of a worker's `Shared` is made through
//! [`SharedMut`], which bumps the count when it is dropped, after the
//! change and while the lock is still held. A reader that loads the count
//! and then locks each worker therefore sees every change made before the
//! load, and a change it missed bumps the count after its load.
//!
//! A second count, [`status_changes`], moves only when a worker's
//! [`WorkerStatus`] changes (running, done, disabled, failed), under the
//! same invariant: the engine's looks for a failed listener, and the
//! summary it sends to systemd, are taken when it moved, not every time
//! a cursor moves in one of thousands of journals.

use std::mem::{discriminant, Discriminant};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::MutexGuard;

use super::{Shared, Worker, WorkerStatus};

static CHANGES: AtomicU64 = AtomicU64::new(0);
static STATUS_CHANGES: AtomicU64 = AtomicU64::new(0);

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

/// The number of changes made so far to any worker's status (see the
/// module's invariant).
pub(crate) fn status_changes() -> u64 {
    STATUS_CHANGES.load(Ordering::Acquire)
}

/// A worker's shared state, locked to be changed, and the kind of status
/// it had when locked.
pub(crate) struct SharedMut<'a>(MutexGuard<'a, Shared>, Discriminant<WorkerStatus>);

impl<'a> SharedMut<'a> {
    fn new(guard: MutexGuard<'a, Shared>) -> SharedMut<'a> {
        let was = discriminant(&guard.status);
        SharedMut(guard, was)
    }
}

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
        if discriminant(&self.0.status) != self.1 {
            STATUS_CHANGES.fetch_add(1, Ordering::Release);
        }
        note_change();
    }
}

impl Worker {
    /// The worker's shared state, to change it (counted in [`changes`],
    /// and in [`status_changes`] when its status changes).
    pub(super) fn shared_mut(&self) -> SharedMut<'_> {
        SharedMut::new(self.shared.lock().unwrap_or_else(|e| e.into_inner()))
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
        SharedMut::new(m.lock().unwrap()).version += 1;
        assert!(changes() > before);
        assert_eq!(m.lock().unwrap().version, 1);
    }

    #[test]
    fn a_status_change_is_counted_and_a_cursor_move_is_not() {
        let m = Mutex::new(Shared::new(Default::default()));
        // Other tests change statuses at the same time: only "moved" and
        // "did not move" across this test's own changes can be told.
        let mut moved_on_cursor = true;
        for _ in 0..20 {
            let before = status_changes();
            SharedMut::new(m.lock().unwrap()).cursor.offset += 1;
            if status_changes() == before {
                moved_on_cursor = false;
                break;
            }
        }
        assert!(!moved_on_cursor, "a cursor move counted as a status change");
        let before = status_changes();
        SharedMut::new(m.lock().unwrap()).status = WorkerStatus::Failed("x".into());
        assert!(status_changes() > before);
        let before = changes();
        SharedMut::new(m.lock().unwrap()).status = WorkerStatus::Failed("y".into());
        assert!(changes() > before, "every change is still counted");
    }
}
