//! Injected time, so that `max_delay` and the hourly rate limit can be
//! tested without sleeping.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the listener reads "now" from. Production uses [`Clock::system`];
/// tests use [`ManualClock`] and move time forward explicitly.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Instant + Send + Sync>);

impl Clock {
    /// The monotonic system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(Instant::now))
    }

    /// A clock that reads time from `f`.
    pub fn from_fn(f: impl Fn() -> Instant + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(f))
    }

    pub fn now(&self) -> Instant {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// A clock that only moves when told to.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<Instant>>);

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock(Arc::new(Mutex::new(Instant::now())))
    }

    pub fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }

    /// A [`Clock`] reading this manual clock.
    pub fn clock(&self) -> Clock {
        let t = self.0.clone();
        Clock::from_fn(move || *t.lock().unwrap())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let m = ManualClock::new();
        let c = m.clock();
        let a = c.now();
        assert_eq!(c.now(), a);
        m.advance(Duration::from_secs(30));
        assert_eq!(c.now() - a, Duration::from_secs(30));
    }
}
