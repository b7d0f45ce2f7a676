//! `logdaemon status`: the snapshot with the daemon running or not, as
//! text or JSON, and an exit status a cron job or a monitoring check can
//! act on.
//!
//! Running (the state directory's lock file names a live `logdaemon`
//! process): the daemon's own `STATE/status.json`, written every second,
//! is shown as it is; one older than [`STALE_AFTER`] means the daemon
//! cannot be told about (exit 5). Not running: the positions come from the
//! checkpoint, the lag from the files now, and a listener the last run
//! ended as disabled or stopped is shown so.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{collect, live, Context, Input, Run, Snapshot, State};
use crate::config::Config;

/// Every listener caught up or behind.
pub const EXIT_OK: u8 = 0;
/// A listener's calls fail and are retried.
pub const EXIT_RETRYING: u8 = 3;
/// A listener is disabled or stopped.
pub const EXIT_GIVEN_UP: u8 = 4;
/// The state cannot be told (also: the config or checkpoint cannot be read).
pub const EXIT_UNKNOWN: u8 = 5;

/// A status file older than this, from a daemon that runs, is not trusted.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// The status of `cfg`'s daemon now.
pub fn status(cfg: &Config) -> Result<Snapshot, String> {
    let pid = running_pid(&cfg.state_dir);
    let last = live::read(&cfg.state_dir);
    if let (Some(pid), Some((snap, age))) = (pid, &last) {
        if snap.daemon.pid == Some(pid) && age <= &STALE_AFTER {
            return Ok(snap.clone());
        }
    }
    let checkpoint = logdaemon_state::Checkpoint::load(&cfg.state_dir)
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let mut inputs = Vec::new();
    for j in &cfg.journals {
        for l in &j.listeners {
            let cursor = checkpoint
                .journals
                .get(&j.name)
                .and_then(|js| js.listeners.get(&l.name))
                .cloned();
            let ended = last.as_ref().and_then(|(s, _)| {
                s.listeners()
                    .find(|(sj, sl)| sj.name == j.name && sl.name == l.name)
                    .map(|(_, sl)| sl.clone())
            });
            let run = match (pid, &cursor, ended) {
                (Some(pid), _, _) => Run::Unknown(format!(
                    "the daemon (pid {pid}) runs but has not written {} in the last {} s",
                    cfg.state_dir.join(live::FILE_NAME).display(),
                    STALE_AFTER.as_secs()
                )),
                (None, None, _) => Run::Unknown(
                    "no position in the checkpoint yet: the daemon has not run with this listener"
                        .into(),
                ),
                (None, Some(_), Some(e)) if e.state == State::Disabled => {
                    Run::Disabled(e.last_error.unwrap_or_default())
                }
                (None, Some(_), Some(e)) if e.state == State::Stopped => {
                    Run::Stopped(e.last_error.unwrap_or_default())
                }
                _ => Run::Running,
            };
            inputs.push(Input {
                journal: j.name.clone(),
                listener: l.name.clone(),
                cursor,
                run,
                stats: Default::default(),
                history: Default::default(),
            });
        }
    }
    let ctx = Context {
        cfg,
        running: pid.is_some(),
        pid,
        start_sequences: &Default::default(),
        now: SystemTime::now(),
    };
    Ok(collect(&ctx, &inputs))
}

/// The pid in the state directory's lock file, when that process is a
/// `logdaemon` that runs now (the file stays behind after a stop).
fn running_pid(state_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(state_dir.join(logdaemon_state::LOCK_FILE_NAME)).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == "logdaemon").then_some(pid)
}

/// The exit status for `snap`: given up (4) before retrying (3) before
/// cannot tell (5); 0 when every listener is caught up or behind.
pub fn exit_code(snap: &Snapshot) -> u8 {
    let states: Vec<State> = snap.listeners().map(|(_, l)| l.state).collect();
    if states
        .iter()
        .any(|s| matches!(s, State::Disabled | State::Stopped))
    {
        EXIT_GIVEN_UP
    } else if states.contains(&State::Retrying) {
        EXIT_RETRYING
    } else if states.contains(&State::Unknown) {
        EXIT_UNKNOWN
    } else {
        EXIT_OK
    }
}

/// `snap` for a terminal.
pub fn text(snap: &Snapshot) -> String {
    let mut s = String::new();
    let d = &snap.daemon;
    let _ = writeln!(
        s,
        "daemon: {}{}",
        match d.pid {
            Some(p) if d.running => format!("running (pid {p})"),
            _ => "not running".into(),
        },
        d.checkpoint_age_seconds
            .map(|a| format!(", checkpoint written {a:.0} s ago"))
            .unwrap_or_else(|| ", no checkpoint".into())
    );
    for j in &snap.journals {
        let size = j
            .size
            .map_or("no live file".into(), |n| format!("{n} bytes"));
        let _ = writeln!(
            s,
            "journal {}: {} ({size}), {} rotated files, {} rotations seen",
            j.name, j.path, j.rotated_files, j.rotations_seen
        );
        if let Some(e) = &j.error {
            let _ = writeln!(s, "  cannot list its files: {e}");
        }
        for l in &j.listeners {
            let lag = match (l.lag_bytes, l.lag_seconds) {
                (Some(b), Some(t)) => format!("lag {b} bytes, {t:.0} s"),
                _ => "lag unknown".into(),
            };
            let _ = writeln!(
                s,
                "  listener {}: {}, at sequence {} offset {} line {}, {lag}, {} entries delivered, {} retries, {} gaps ({} bytes)",
                l.name,
                l.state.name(),
                l.sequence,
                l.offset,
                l.line,
                l.delivered_entries,
                l.retries,
                l.gaps,
                l.gap_bytes
            );
            if let Some(since) = l.since {
                let _ = writeln!(s, "    retrying since {}", timestamp(since));
            }
            if let Some(e) = &l.last_error {
                let _ = writeln!(s, "    last error: {e}");
            }
        }
    }
    s
}

fn timestamp(secs: u64) -> String {
    jiff::Timestamp::from_second(secs as i64)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::sample;

    #[test]
    fn exit_codes_rank_given_up_then_retrying_then_cannot_tell() {
        use State::*;
        let code = |states: &[State]| {
            let v: Vec<(State, Option<u64>)> = states.iter().map(|&s| (s, Some(0))).collect();
            exit_code(&sample(&v))
        };
        assert_eq!(code(&[CaughtUp, Behind]), EXIT_OK);
        assert_eq!(code(&[CaughtUp, Retrying]), EXIT_RETRYING);
        assert_eq!(code(&[Unknown, CaughtUp]), EXIT_UNKNOWN);
        assert_eq!(code(&[Retrying, Unknown]), EXIT_RETRYING);
        assert_eq!(code(&[Retrying, Disabled]), EXIT_GIVEN_UP);
        assert_eq!(code(&[Stopped, Unknown]), EXIT_GIVEN_UP);
    }
}
