//! The worker's calls that keep its [`ListenerStats`] (one per point in
//! the delivery loop), for `status` and the HTTP endpoint.
//!
//! [`ListenerStats`]: crate::status::ListenerStats

use std::time::SystemTime;

use super::{Call, Worker};

impl Worker {
    /// A call returned without error: count what it delivered.
    pub(super) fn note_ok(&self, call: &Call) {
        let mut s = self.shared_mut();
        match *call {
            Call::Batch => {
                let batch = self.cur();
                s.stats.delivered(batch.entries.len(), batch.size() as u64);
            }
            Call::Gap(from, to) => s.stats.gap(from, to, SystemTime::now()),
            Call::Other => {}
        }
    }

    /// The acknowledged position moved on: the listener is not retrying.
    pub(super) fn note_progress(&self) {
        let mut s = self.shared_mut();
        s.stats.progressed();
    }

    /// A failed call is retried.
    pub(super) fn note_retry(&self, message: &str) {
        let mut s = self.shared_mut();
        s.stats.retry(message, SystemTime::now());
    }
}
