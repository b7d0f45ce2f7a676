//! When to tell a listener that nothing is happening (`no_data`).
//!
//! The classic logDaemon contract: after `quiet_after` of silence the
//! listener hears `no_data(had_data = true)` once (a digest can go out, a
//! transaction can be shipped), then `no_data(false)` every `quiet_after`
//! for as long as it stays quiet. Time is passed in, never read here, so
//! the rules are tested without sleeping.

use std::time::{Duration, Instant};

/// A source of the current time (real in the daemon, manual in tests).
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Debug, Clone)]
pub struct QuietTimer {
    quiet_after: Duration,
    /// Start of the current silence.
    since: Instant,
    /// Entries arrived since the last `no_data`.
    had_data: bool,
    /// When the next `no_data` is due.
    due: Instant,
}

impl QuietTimer {
    pub fn new(quiet_after: Duration, now: Instant) -> QuietTimer {
        QuietTimer { quiet_after, since: now, had_data: false, due: now + quiet_after }
    }

    /// Entries were delivered at `now`: silence starts again.
    pub fn on_data(&mut self, now: Instant) {
        self.since = now;
        self.had_data = true;
        self.due = now + self.quiet_after;
    }

    /// When `poll` will next return a call.
    pub fn deadline(&self) -> Instant {
        self.due
    }

    /// `Some(had_data)` if a `no_data` call is due at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<bool> {
        if now < self.due {
            return None;
        }
        let had = std::mem::replace(&mut self.had_data, false);
        self.due = now + self.quiet_after;
        Some(had)
    }

    /// How long silence has lasted at `now`.
    pub fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_call_after_activity_says_had_data_then_periodic_false() {
        let t0 = Instant::now();
        let s = Duration::from_secs(2);
        let mut q = QuietTimer::new(s, t0);
        // Quiet from the start: a periodic call without data.
        assert_eq!(q.poll(t0 + Duration::from_millis(1999)), None);
        assert_eq!(q.poll(t0 + s), Some(false));
        // Data at 3s, more at 4s: nothing until 2s after the last entry.
        q.on_data(t0 + Duration::from_secs(3));
        q.on_data(t0 + Duration::from_secs(4));
        assert_eq!(q.poll(t0 + Duration::from_millis(5999)), None);
        assert_eq!(q.deadline(), t0 + Duration::from_secs(6));
        assert_eq!(q.poll(t0 + Duration::from_secs(6)), Some(true));
        // Then every quiet_after with had_data = false.
        assert_eq!(q.poll(t0 + Duration::from_secs(7)), None);
        assert_eq!(q.poll(t0 + Duration::from_secs(8)), Some(false));
        assert_eq!(q.poll(t0 + Duration::from_secs(10)), Some(false));
        assert_eq!(q.silent_for(t0 + Duration::from_secs(10)), Duration::from_secs(6));
    }

    #[test]
    fn a_late_poll_fires_once_not_for_every_missed_period() {
        let t0 = Instant::now();
        let mut q = QuietTimer::new(Duration::from_secs(1), t0);
        q.on_data(t0);
        assert_eq!(q.poll(t0 + Duration::from_secs(10)), Some(true));
        assert_eq!(q.poll(t0 + Duration::from_secs(10)), None);
        assert_eq!(q.poll(t0 + Duration::from_secs(11)), Some(false));
    }
}
