//! How a run ended: which listeners failed, gave up or were disabled.

use super::Running;
use crate::worker::WorkerStatus;

/// `--once` listeners that gave up retrying: the run did not deliver everything.
pub(super) fn unfinished(statuses: &[WorkerStatus]) -> Option<String> {
    let why: Vec<&str> = statuses
        .iter()
        .filter_map(|s| match s {
            WorkerStatus::Unfinished(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    (!why.is_empty()).then(|| why.join("; "))
}

pub(super) fn failed(running: &[&Running]) -> Option<String> {
    running.iter().find_map(
        |r| match &r.shared.lock().unwrap_or_else(|e| e.into_inner()).status {
            WorkerStatus::Failed(m) => Some(m.clone()),
            _ => None,
        },
    )
}

/// Why a daemon that was not told to stop has nothing left to run: every
/// listener was disabled. Exiting 0 would tell a supervisor all is well.
pub(super) fn all_disabled(running: &[&Running]) -> Option<String> {
    let why: Vec<String> = running
        .iter()
        .filter_map(
            |r| match &r.shared.lock().unwrap_or_else(|e| e.into_inner()).status {
                WorkerStatus::Disabled(m) => Some(m.clone()),
                _ => None,
            },
        )
        .collect();
    if why.is_empty() || why.len() < running.len() {
        return None;
    }
    Some(format!(
        "every listener is disabled, nothing is left to deliver to: {}; their cursors are kept: fix the listeners and start the daemon again",
        why.join("; ")
    ))
}

/// `--once` with a listener disabled: the run did not deliver everything,
/// and a cron job must not read success.
pub(super) fn once_disabled(running: &[&Running]) -> Option<String> {
    let why: Vec<String> = running
        .iter()
        .filter_map(
            |r| match &r.shared.lock().unwrap_or_else(|e| e.into_inner()).status {
                WorkerStatus::Disabled(m) => Some(m.clone()),
                _ => None,
            },
        )
        .collect();
    (!why.is_empty()).then(|| {
        format!(
            "--once: {} of {} listeners ended disabled and did not get everything: {}; their cursors are kept: fix them and run again",
            why.len(),
            running.len(),
            why.join("; ")
        )
    })
}
