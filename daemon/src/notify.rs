//! Telling systemd how `run` is doing (`Type=notify`): `READY=1` once every
//! listener is open and every cursor located, a one-line `STATUS=` whenever
//! the listeners' states change, `WATCHDOG=1` from the engine's loop while
//! it turns (when the unit sets `WatchdogSec=`), and `STOPPING=1` at the end.
//!
//! Without `NOTIFY_SOCKET` (not started by systemd) every call does
//! nothing. A notification that cannot be sent is logged once and never
//! stops the daemon: delivery matters more than the service manager's view.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::worker::{Shared, WorkerStatus};

/// The engine's side of the notification socket.
pub(crate) struct Notifier {
    /// Beat at this interval (half of `WATCHDOG_USEC`), if systemd asks for beats.
    beat_every: Option<Duration>,
    last_beat: Instant,
    /// The last `STATUS=` sent.
    status: String,
    /// A send failed once: logged, not again.
    warned: bool,
}

impl Notifier {
    /// Sends `READY=1` with the first status line. Call it once every
    /// listener is open and every cursor located.
    pub(crate) fn ready<'a>(shared: impl IntoIterator<Item = &'a Arc<Mutex<Shared>>>) -> Notifier {
        let beat_every = sd_notify::watchdog_enabled()
            .filter(|d| !d.is_zero())
            .map(|d| d / 2);
        let mut n = Notifier {
            beat_every,
            last_beat: Instant::now(),
            status: summary(shared),
            warned: false,
        };
        let status = n.status.clone();
        n.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
        if let Some(every) = beat_every {
            tracing::info!(
                every_ms = every.as_millis() as u64,
                "systemd watchdog: beating from the engine's loop"
            );
        }
        n
    }

    /// From each turn of the engine's loop: a watchdog beat when one is
    /// due, and the status line when it changed. `moved`: whether a
    /// worker's state may have changed since the last turn (see
    /// [`crate::worker::changes`]); if not, the workers are not looked at.
    pub(crate) fn tick<'a>(
        &mut self,
        moved: bool,
        shared: impl IntoIterator<Item = &'a Arc<Mutex<Shared>>>,
    ) {
        if self
            .beat_every
            .is_some_and(|e| self.last_beat.elapsed() >= e)
        {
            self.last_beat = Instant::now();
            self.send(&[NotifyState::Watchdog]);
        }
        if !moved {
            return;
        }
        let status = summary(shared);
        if status != self.status {
            self.send(&[NotifyState::Status(&status)]);
            self.status = status;
        }
    }

    /// `STOPPING=1`: the loop ended, the checkpoint is being written.
    pub(crate) fn stopping(&mut self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    fn send(&mut self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            if !self.warned {
                self.warned = true;
                tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET); going on without");
            }
        }
    }
}

/// One line: how many listeners are running, and which are not.
pub(crate) fn summary<'a>(shared: impl IntoIterator<Item = &'a Arc<Mutex<Shared>>>) -> String {
    let (mut total, mut running, mut done, mut off) = (0, 0, 0, Vec::new());
    for s in shared {
        total += 1;
        match &s.lock().unwrap_or_else(|e| e.into_inner()).status {
            WorkerStatus::Running => running += 1,
            WorkerStatus::Done => done += 1,
            WorkerStatus::Disabled(_) => off.push("disabled"),
            WorkerStatus::Failed(_) => off.push("failed"),
            WorkerStatus::Unfinished(_) => off.push("gave up retrying"),
        }
    }
    let mut line = format!("{running} of {total} listeners running");
    if done > 0 {
        line.push_str(&format!(", {done} done"));
    }
    for what in ["disabled", "failed", "gave up retrying"] {
        let n = off.iter().filter(|&&w| w == what).count();
        if n > 0 {
            line.push_str(&format!(", {n} {what}"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use logdaemon_state::Cursor;

    fn shared(status: WorkerStatus) -> Arc<Mutex<Shared>> {
        let mut s = Shared::new(Cursor::default());
        s.status = status;
        Arc::new(Mutex::new(s))
    }

    #[test]
    fn the_summary_counts_running_listeners_and_names_each_other_state() {
        let all = [
            shared(WorkerStatus::Running),
            shared(WorkerStatus::Running),
            shared(WorkerStatus::Disabled("x".into())),
            shared(WorkerStatus::Failed("y".into())),
            shared(WorkerStatus::Disabled("z".into())),
        ];
        assert_eq!(
            summary(&all),
            "2 of 5 listeners running, 2 disabled, 1 failed"
        );
        assert_eq!(summary(&all[..1]), "1 of 1 listeners running");
    }
}
