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

/// The monotonic clock running `scale` times faster than real time from
/// the moment it is made, so that hours of the daemon's timers (retry
/// backoff up to `retry_max`, quiet periods) pass in seconds. Only the
/// timers read it: file checks (`reconcile_every`) and the checkpoint's
/// save keep real time. The daemon uses it when `LOGDAEMON_TIME_SCALE` is
/// set (see [`scale_from_env`]), for tests; it never runs by default.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    start: Instant,
    scale: u32,
}

impl ScaledClock {
    pub fn new(scale: u32) -> ScaledClock {
        ScaledClock {
            start: Instant::now(),
            scale: scale.max(1),
        }
    }

    /// The scaled time of the real instant `real`.
    fn at(&self, real: Instant) -> Instant {
        let run = real.saturating_duration_since(self.start);
        self.start
            + run
                .checked_mul(self.scale)
                .unwrap_or(Duration::from_secs(u32::MAX as u64))
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Instant {
        self.at(Instant::now())
    }
}

/// Most a clock may be sped up: an hour in 3.6 ms.
pub const MAX_TIME_SCALE: u32 = 1_000_000;

/// The value of `LOGDAEMON_TIME_SCALE`: `None` when unset (real time),
/// else a whole number from 1 to [`MAX_TIME_SCALE`].
pub fn scale_from_env(value: Option<&std::ffi::OsStr>) -> Result<Option<u32>, String> {
    let Some(v) = value else { return Ok(None) };
    match v.to_str().and_then(|s| s.trim().parse::<u32>().ok()) {
        Some(n) if (1..=MAX_TIME_SCALE).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "LOGDAEMON_TIME_SCALE={v:?}: use a whole number from 1 to {MAX_TIME_SCALE} (how many times faster than real time the retry and quiet timers run; for tests), or unset it"
        )),
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
    /// No periodic calls: one `no_data(true)` after entries, then none
    /// until more came (the listener's `DESC_QUIET_ONCE`).
    once: bool,
}

/// "Never" for a timer without periodic calls: far enough to be no
/// deadline, near enough not to overflow an `Instant`.
const NEVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

impl QuietTimer {
    pub fn new(quiet_after: Duration, now: Instant) -> QuietTimer {
        QuietTimer {
            quiet_after,
            since: now,
            had_data: false,
            due: now + quiet_after,
            once: false,
        }
    }

    /// A timer that calls `no_data` only once after entries arrived (and
    /// not at all before the first ones).
    pub fn once(mut self) -> QuietTimer {
        self.once = true;
        self.due = self.since + NEVER;
        self
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
        self.due = now + if self.once { NEVER } else { self.quiet_after };
        Some(had)
    }

    /// How long silence has lasted at `now`.
    #[cfg(test)]
    pub fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_calls_only_after_entries_and_only_once() {
        let t0 = Instant::now();
        let s = Duration::from_secs(2);
        let mut q = QuietTimer::new(s, t0).once();
        assert_eq!(
            q.poll(t0 + Duration::from_secs(3600)),
            None,
            "quiet from the start"
        );
        q.on_data(t0 + Duration::from_secs(3600));
        assert_eq!(q.poll(t0 + Duration::from_secs(3601)), None);
        assert_eq!(q.poll(t0 + Duration::from_secs(3602)), Some(true));
        assert_eq!(
            q.poll(t0 + Duration::from_secs(7200)),
            None,
            "no periodic call"
        );
        assert!(q.deadline() > t0 + Duration::from_secs(365 * 24 * 3600));
        q.on_data(t0 + Duration::from_secs(7200));
        assert_eq!(q.poll(t0 + Duration::from_secs(7202)), Some(true));
    }

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
        assert_eq!(
            q.silent_for(t0 + Duration::from_secs(10)),
            Duration::from_secs(6)
        );
    }

    #[test]
    fn a_scaled_clock_runs_faster_and_stays_monotonic() {
        let c = ScaledClock::new(3600);
        let t = c.start + Duration::from_millis(1500);
        assert_eq!(c.at(t), c.start + Duration::from_secs(5400));
        assert_eq!(
            c.at(c.start - Duration::from_millis(1)),
            c.start,
            "before its start it stands still"
        );
        let (a, b) = (c.now(), c.now());
        assert!(b >= a);
        assert_eq!(ScaledClock::new(0).scale, 1);
    }

    #[test]
    fn the_time_scale_comes_from_the_environment_or_the_start_fails() {
        use std::ffi::OsStr;
        assert_eq!(scale_from_env(None), Ok(None));
        assert_eq!(scale_from_env(Some(OsStr::new("3600"))), Ok(Some(3600)));
        for bad in ["0", "fast", "-2", "1e3", "2000000"] {
            let e = scale_from_env(Some(OsStr::new(bad))).unwrap_err();
            assert_eq!(
                e,
                format!("LOGDAEMON_TIME_SCALE={bad:?}: use a whole number from 1 to 1000000 (how many times faster than real time the retry and quiet timers run; for tests), or unset it")
            );
        }
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
