//! The hourly message budget (`max_messages_per_hour`).
//!
//! When the budget is spent the listener does not drop anything: it keeps
//! folding entries into the digest it holds and sends that one digest once
//! the budget allows again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

/// A sliding one-hour window of send times. In memory only: after a restart
/// the budget starts full again.
#[derive(Debug)]
pub struct RateLimit {
    max: Option<u32>,
    sent: VecDeque<Instant>,
}

impl RateLimit {
    /// `None` means no limit.
    pub fn new(max: Option<u32>) -> RateLimit {
        RateLimit {
            max,
            sent: VecDeque::new(),
        }
    }

    /// Whether one more message may go out at `now`.
    pub fn allows(&mut self, now: Instant) -> bool {
        let Some(max) = self.max else { return true };
        while let Some(&t) = self.sent.front() {
            if now.saturating_duration_since(t) >= HOUR {
                self.sent.pop_front();
            } else {
                break;
            }
        }
        self.sent.len() < max as usize
    }

    /// Records a message sent at `now`.
    pub fn record(&mut self, now: Instant) {
        if self.max.is_some() {
            self.sent.push_back(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refills_after_an_hour() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(Some(2));
        assert!(r.allows(t0));
        r.record(t0);
        r.record(t0 + Duration::from_secs(10));
        assert!(!r.allows(t0 + Duration::from_secs(20)));
        assert!(!r.allows(t0 + HOUR - Duration::from_secs(1)));
        assert!(r.allows(t0 + HOUR));
        let mut none = RateLimit::new(None);
        for _ in 0..1000 {
            none.record(t0);
        }
        assert!(none.allows(t0));
    }
}
