//! What a listener was handed, counted for the progress line
//! ([`crate::progress`]): the entries of each batch whose `listen` call
//! succeeded, acknowledged at once or held for later (a listener such as
//! hot-backup acknowledges a batch in a later call). A batch handed again
//! after a failure counts again: the line says what was delivered, the lag
//! beside it what is not yet acknowledged.

use super::Worker;

impl Worker {
    /// Adds the batch in hand, which the listener took.
    pub(super) fn count_delivered(&self) {
        let batch = self.cur();
        let n = batch.entries.len() as u64;
        if n == 0 {
            return;
        }
        let bytes = batch.size() as u64;
        let mut s = self.shared_mut();
        s.delivered_entries += n;
        s.delivered_bytes += bytes;
    }
}
