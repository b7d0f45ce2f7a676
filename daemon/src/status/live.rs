//! The running daemon's side of the status: a thread of its own that
//! keeps `STATE/status.json` and the lag history, and the HTTP endpoint
//! when `[http]` is configured.
//!
//! Every second the thread builds a [`Snapshot`] from the workers' shared
//! state and the files (every [`SETTLED_EVERY`] while every listener is
//! caught up and no worker's state changed), records each listener's lag in a bounded history
//! (every [`HISTORY_EVERY`], the last [`HISTORY_POINTS`]), and writes the
//! snapshot to `STATE/status.json` atomically (a temporary file renamed
//! over it, mode 0600), so that `logdaemon status` can show the live states
//! without asking the daemon anything. The workers are never waited on:
//! the thread only takes each one's lock for a copy of its state.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{bounded, Sender};

use super::{Context, Input, Run, Snapshot};
use crate::config::Config;
use crate::worker::{Shared, WorkerStatus};

/// The file the daemon keeps its live status in, in the state directory.
pub const FILE_NAME: &str = "status.json";
/// How often the status file is written: every second, and with more than
/// 2,000 listeners every half millisecond per listener (5 s for 10,000 and
/// more), so that keeping it costs about the same share of a core however
/// many journals are followed. `status` trusts a file up to 10 s old.
const WRITE_EVERY: Duration = Duration::from_secs(1);
const WRITE_EVERY_MAX: Duration = Duration::from_secs(5);

fn write_every(listeners: usize) -> Duration {
    Duration::from_micros(listeners as u64 * 500).clamp(WRITE_EVERY, WRITE_EVERY_MAX)
}
/// How often a settled status is built and written again when nothing it
/// shows has changed (see [`settled`]): often enough that `status`, which
/// trusts a file up to [`super::cmd::STALE_AFTER`], still trusts it, and
/// that a file grown under a listener busy in a long call shows it behind.
const SETTLED_EVERY: Duration = WRITE_EVERY_MAX;

/// Whether nothing in `snap` moves by itself while no worker's state
/// changes: every listener is caught up, disabled or stopped. A behind or
/// retrying listener's lag grows with time and the files.
fn settled(snap: &Snapshot) -> bool {
    snap.listeners().all(|(_, l)| {
        matches!(
            l.state,
            super::State::CaughtUp | super::State::Disabled | super::State::Stopped
        )
    })
}

/// When the status thread builds and writes the snapshot again.
struct Due {
    /// The workers' change count the last snapshot was taken after, when
    /// it was taken, and whether it was settled.
    last: Option<(u64, std::time::Instant, bool)>,
}

impl Due {
    /// A snapshot is due unless the last one was settled, no worker's
    /// state changed since (see [`crate::worker::changes`]), and it is
    /// younger than [`SETTLED_EVERY`].
    fn now(&self, changes: u64) -> bool {
        match self.last {
            None => true,
            Some((seen, at, settled)) => {
                !settled || seen != changes || at.elapsed() >= SETTLED_EVERY
            }
        }
    }
}
/// How often a point is added to each listener's lag history.
const HISTORY_EVERY: Duration = Duration::from_secs(2);
/// Points kept per listener (ten minutes).
const HISTORY_POINTS: usize = 300;

/// Per (journal, listener): `(seconds since the epoch, lag in bytes)`, oldest first.
type History = BTreeMap<(String, String), VecDeque<(u64, u64)>>;

/// A worker as the status sees it: journal, listener, shared state.
pub(crate) type Listed = (String, String, Arc<Mutex<Shared>>);

/// The workers' states, as the status thread and the endpoint read them.
pub(crate) struct Live {
    /// The config as it runs: reloaded, with a glob journal's streams as
    /// journals of their own (see [`StatusGuard::update`]).
    cfg: Mutex<Arc<Config>>,
    /// The state directory and the endpoint's settings (fixed at start).
    state_dir: PathBuf,
    http: Option<crate::config::http::HttpConfig>,
    listeners: Mutex<Vec<Listed>>,
    start_sequences: BTreeMap<String, u64>,
    history: Mutex<History>,
    /// Journal statuses that may serve again (see [`super::Reuse`]).
    reuse: Mutex<super::Reuse>,
}

impl Live {
    fn inputs(&self) -> Vec<Input> {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        listeners
            .iter()
            .map(|(journal, listener, shared)| {
                let s = shared.lock().unwrap_or_else(|e| e.into_inner());
                let run = match &s.status {
                    WorkerStatus::Disabled(m) => Run::Disabled(m.clone()),
                    WorkerStatus::Failed(m) | WorkerStatus::Unfinished(m) => {
                        Run::Stopped(m.clone())
                    }
                    WorkerStatus::Running | WorkerStatus::Done => Run::Running,
                };
                Input {
                    journal: journal.clone(),
                    listener: listener.clone(),
                    cursor: Some(s.cursor.clone()),
                    run,
                    stats: s.stats.clone(),
                    history: history
                        .get(&(journal.clone(), listener.clone()))
                        .cloned()
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The snapshot now.
    pub fn snapshot(&self) -> Snapshot {
        let cfg = self.cfg.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let ctx = Context {
            cfg: &cfg,
            running: true,
            pid: Some(std::process::id()),
            start_sequences: &self.start_sequences,
            now: SystemTime::now(),
        };
        let inputs = self.inputs();
        let mut reuse = self.reuse.lock().unwrap_or_else(|e| e.into_inner());
        super::collect_reusing(&ctx, &inputs, &mut reuse)
    }

    pub fn http(&self) -> Option<&crate::config::http::HttpConfig> {
        self.http.as_ref()
    }

    fn remember(&self, snap: &Snapshot) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        for (j, l) in snap.listeners() {
            let Some(bytes) = l.lag_bytes else { continue };
            let h = history.entry((j.name.clone(), l.name.clone())).or_default();
            let n = h.len();
            // A run of equal values keeps its first and last points: an
            // idle listener's history stays two points, not three hundred.
            if n >= 2 && h[n - 1].1 == bytes && h[n - 2].1 == bytes {
                h[n - 1].0 = snap.generated_at;
                continue;
            }
            if n == HISTORY_POINTS {
                h.pop_front();
            }
            h.push_back((snap.generated_at, bytes));
        }
    }
}

/// Stops the status thread and the endpoint when dropped, after a last
/// write of the status file (with the workers' final states).
pub(crate) struct StatusGuard {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    http: Option<super::http::Server>,
    live: Arc<Live>,
}

impl Drop for StatusGuard {
    fn drop(&mut self) {
        self.http.take();
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        write(&self.live.state_dir, &self.live.snapshot(), &mut true);
    }
}

impl StatusGuard {
    /// The workers and the config changed (a reload, a glob journal's
    /// stream started or ended): the status follows them.
    pub(crate) fn update(&self, cfg: Config, listeners: Vec<Listed>) {
        *self.live.cfg.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
        *self
            .live
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = listeners;
        crate::worker::note_change();
    }
}

/// Starts the status thread (and the endpoint, when configured) over the
/// workers' shared states: `(journal, listener, state)` in config order.
pub(crate) fn start(
    cfg: &Config,
    listeners: Vec<(String, String, Arc<Mutex<Shared>>)>,
) -> Result<StatusGuard, String> {
    let mut start_sequences = BTreeMap::new();
    for (j, _, s) in &listeners {
        let seq = s.lock().unwrap_or_else(|e| e.into_inner()).cursor.sequence;
        let e = start_sequences.entry(j.clone()).or_insert(seq);
        *e = (*e).max(seq);
    }
    let live = Arc::new(Live {
        cfg: Mutex::new(Arc::new(cfg.clone())),
        state_dir: cfg.state_dir.clone(),
        http: cfg.http.clone(),
        listeners: Mutex::new(listeners),
        start_sequences,
        history: Mutex::new(BTreeMap::new()),
        reuse: Mutex::new(Default::default()),
    });
    let http = match &cfg.http {
        Some(h) => Some(super::http::serve(h, &cfg.file, live.clone())?),
        None => None,
    };
    let (stop, stopped) = bounded::<()>(0);
    let l = live.clone();
    let thread = std::thread::Builder::new()
        .name("status".into())
        .spawn(move || {
            let mut last_point: Option<std::time::Instant> = None;
            let mut failing = false;
            let mut due = Due { last: None };
            loop {
                // Loaded before the workers are read (see `changes`).
                let changes = crate::worker::changes();
                if due.now(changes) {
                    let snap = l.snapshot();
                    if last_point.is_none_or(|t| t.elapsed() >= HISTORY_EVERY) {
                        l.remember(&snap);
                        last_point = Some(std::time::Instant::now());
                    }
                    write(&l.state_dir, &snap, &mut failing);
                    due.last = Some((changes, std::time::Instant::now(), settled(&snap)));
                }
                let every =
                    write_every(l.listeners.lock().unwrap_or_else(|e| e.into_inner()).len());
                if !matches!(
                    stopped.recv_timeout(every),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout)
                ) {
                    return;
                }
            }
        })
        .map_err(|e| format!("cannot start the status thread: {e}"))?;
    Ok(StatusGuard {
        stop: Some(stop),
        thread: Some(thread),
        http,
        live,
    })
}

/// Writes `snap` to `STATE/status.json` atomically. A failure (a full or
/// read-only state directory) leaves no temporary file behind to take the
/// checkpoint's room, and is logged once until a write succeeds again: the
/// status is a view, never a reason to stop delivering.
fn write(state_dir: &Path, snap: &Snapshot, failing: &mut bool) {
    let path = state_dir.join(FILE_NAME);
    let tmp = state_dir.join(format!("{FILE_NAME}.tmp"));
    let r = (|| -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // One write: the snapshot of thousands of listeners written through
        // serde's many small writes cost more than taking it.
        let mut bytes = serde_json::to_vec(snap)?;
        bytes.push(b'\n');
        f.write_all(&bytes)?;
        std::fs::rename(&tmp, &path)
    })();
    match r {
        Ok(()) => *failing = false,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            if !*failing {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the status file; `logdaemon status` will say it cannot tell until it can");
            }
            *failing = true;
        }
    }
}

/// The status file of `state_dir`, with how old it is.
pub(crate) fn read(state_dir: &Path) -> Option<(Snapshot, Duration)> {
    let path: PathBuf = state_dir.join(FILE_NAME);
    let text = std::fs::read_to_string(path).ok()?;
    let snap: Snapshot = serde_json::from_str(&text).ok()?;
    let written = SystemTime::UNIX_EPOCH + Duration::from_secs(snap.generated_at);
    let age = SystemTime::now()
        .duration_since(written)
        .unwrap_or(Duration::ZERO);
    Some((snap, age))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_settled_status_is_built_again_only_on_a_change_or_when_it_ages() {
        assert!(Due { last: None }.now(0), "the first snapshot is due");
        let fresh = Due {
            last: Some((7, Instant::now(), true)),
        };
        assert!(!fresh.now(7), "settled, unchanged and young: skipped");
        assert!(fresh.now(8), "a worker's state changed");
        let moving = Due {
            last: Some((7, Instant::now(), false)),
        };
        assert!(moving.now(7), "a behind or retrying listener: every time");
        let old = Due {
            last: Some((7, Instant::now() - SETTLED_EVERY, true)),
        };
        assert!(
            old.now(7),
            "written again before `status` stops trusting it"
        );
        assert!(SETTLED_EVERY < crate::status::cmd::STALE_AFTER);
    }
}
