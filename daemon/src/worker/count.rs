//! What a listener acknowledged, counted for the progress line
//! ([`crate::progress`]): the entries of a batch up to the position the
//! listen call acknowledged. Entries a listener holds and acknowledges in
//! a later call are not counted; a batch delivered again after a failure
//! counts only what is acknowledged then.

use logdaemon_sdk::Position;

use super::Worker;

impl Worker {
    /// Adds the entries of the batch in hand that end at or before `ack`.
    pub(super) fn count_acked(&self, ack: Position) {
        let (mut n, mut bytes) = (0u64, 0u64);
        for m in self.batch.entries.iter().take_while(|m| m.end() <= ack) {
            n += 1;
            bytes += m.len;
        }
        if n == 0 {
            return;
        }
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        s.delivered_entries += n;
        s.delivered_bytes += bytes;
    }
}
