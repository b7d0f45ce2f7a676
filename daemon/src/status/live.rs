//! The running daemon's side of the status: a thread of its own that
//! keeps `STATE/status.json` and the lag history, and the HTTP endpoint
//! when `[http]` is configured.
//!
//! Every second the thread builds a [`Snapshot`] from the workers' shared
//! state and the files (every [`SETTLED_EVERY`] while every listener is
//! caught up and no worker's state changed, and then from the last build's
//! journals with a new time, built whole every [`REBUILD_EVERY`]), records
//! each listener's lag in a bounded history
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
/// How often a settled status is built whole even though no worker's state
/// changed. In between, a settled status that is due only by its age is
/// written again from the journals' JSON of the last build, with the new
/// time and checkpoint age ([`Written`]): rebuilding the status of 10,000
/// idle journals took most of an idle daemon's CPU. What can change without
/// a worker noticing (a rotated file deleted) shows within this.
const REBUILD_EVERY: Duration = Duration::from_secs(60);

/// The journals of the last status built, as written, and when it was built.
struct Written {
    journals: Vec<u8>,
    built: std::time::Instant,
}

impl Written {
    /// Whether the status due now may be `self` again with a new time:
    /// the last one was settled, no worker's state changed since, and it
    /// was built less than [`REBUILD_EVERY`] ago.
    fn reusable(&self, due: &Due, changes: u64) -> bool {
        due.last
            .is_some_and(|(seen, _, settled)| settled && seen == changes)
            && self.built.elapsed() < REBUILD_EVERY
    }
}

/// The status file's bytes: `snap` with its journals taken from `journals`
/// (already JSON), byte for byte what serializing it whole gives.
fn encode(head: &Snapshot, journals: &[u8]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Head<'a> {
        version: &'a str,
        generated_at: u64,
        daemon: &'a super::Daemon,
    }
    let mut out = serde_json::to_vec(&Head {
        version: &head.version,
        generated_at: head.generated_at,
        daemon: &head.daemon,
    })
    .expect("a status head serializes");
    out.pop(); // its closing brace
    out.extend_from_slice(b",\"journals\":");
    out.extend_from_slice(journals);
    out.extend_from_slice(b"}\n");
    out
}

/// How often a point is added to each listener's lag history.
const HISTORY_EVERY: Duration = Duration::from_secs(2);
/// Points kept per listener (ten minutes).
const HISTORY_POINTS: usize = 300;

/// Per (journal, listener): `(seconds since the epoch, lag in bytes)`, oldest first.
/// By journal, by listener (looked up by `&str`, with no key made).
type History = BTreeMap<String, BTreeMap<String, VecDeque<(u64, u64)>>>;

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
                        .get(journal.as_str())
                        .and_then(|h| h.get(listener.as_str()))
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

    /// A snapshot without journals, taken now: what a status written again
    /// from the last one's journals shows new (see [`Written`]).
    fn head(&self) -> Snapshot {
        let now = SystemTime::now();
        Snapshot {
            version: env!("CARGO_PKG_VERSION").to_string(),
            generated_at: super::stats::unix(now),
            daemon: super::Daemon {
                running: true,
                pid: Some(std::process::id()),
                checkpoint_age_seconds: super::checkpoint_age(&self.state_dir, now),
            },
            journals: Vec::new(),
        }
    }

    pub fn http(&self) -> Option<&crate::config::http::HttpConfig> {
        self.http.as_ref()
    }

    fn remember(&self, snap: &Snapshot) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        for (j, l) in snap.listeners() {
            let Some(bytes) = l.lag_bytes else { continue };
            let by_listener = match history.get_mut(j.name.as_str()) {
                Some(h) => h,
                None => history.entry(j.name.clone()).or_default(),
            };
            let h = match by_listener.get_mut(l.name.as_str()) {
                Some(h) => h,
                None => by_listener.entry(l.name.clone()).or_default(),
            };
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
        let snap = self.live.snapshot();
        let journals = serde_json::to_vec(&snap.journals).unwrap_or_default();
        write(&self.live.state_dir, &encode(&snap, &journals), &mut true);
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
            let mut written: Option<Written> = None;
            loop {
                // Loaded before the workers are read (see `changes`).
                let changes = crate::worker::changes();
                if due.now(changes) {
                    let again = written.as_ref().filter(|w| w.reusable(&due, changes));
                    let settled = match again {
                        Some(w) => {
                            write(&l.state_dir, &encode(&l.head(), &w.journals), &mut failing);
                            true
                        }
                        None => {
                            let snap = l.snapshot();
                            if last_point.is_none_or(|t| t.elapsed() >= HISTORY_EVERY) {
                                l.remember(&snap);
                                last_point = Some(std::time::Instant::now());
                            }
                            let journals = serde_json::to_vec(&snap.journals).unwrap_or_default();
                            write(&l.state_dir, &encode(&snap, &journals), &mut failing);
                            written = Some(Written {
                                journals,
                                built: std::time::Instant::now(),
                            });
                            settled(&snap)
                        }
                    };
                    due.last = Some((changes, std::time::Instant::now(), settled));
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

/// Writes `bytes` (see [`encode`]) to `STATE/status.json` atomically. A failure (a full or
/// read-only state directory) leaves no temporary file behind to take the
/// checkpoint's room, and is logged once until a write succeeds again: the
/// status is a view, never a reason to stop delivering.
fn write(state_dir: &Path, bytes: &[u8], failing: &mut bool) {
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
        f.write_all(bytes)?;
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

    /// A status of one journal, as the daemon writes it.
    const ONE: &str = r#"{"version":"0.1.0","generated_at":1796663095,"daemon":{"running":true,"pid":3343,"checkpoint_age_seconds":54.928227457},"journals":[{"name":"app","path":"/l/app.log","size":40,"rotated_files":0,"rotations_seen":0,"error":null,"listeners":[{"name":"copy","state":"caught_up","since":null,"last_error":null,"sequence":1,"offset":40,"line":2,"file":"/l/app.log","lag_bytes":0,"lag_seconds":0.0,"delivered_entries":1,"delivered_bytes":40,"retries":0,"gaps":0,"gap_bytes":0,"recent_gaps":[],"history":[[1796663037,40],[1796663090,0]],"shared":true,"fell_out":0,"rejoined":0}]}]}"#;

    #[test]
    fn a_status_written_from_its_journals_json_is_the_status_serialized_whole() {
        let snap: Snapshot = serde_json::from_str(ONE).unwrap();
        let journals = serde_json::to_vec(&snap.journals).unwrap();
        let mut whole = serde_json::to_vec(&snap).unwrap();
        whole.push(b'\n');
        assert_eq!(
            String::from_utf8(encode(&snap, &journals)).unwrap(),
            String::from_utf8(whole).unwrap()
        );
        // Written again with a new head: the journals as they were.
        let mut later = snap.clone();
        later.generated_at += 5;
        later.daemon.checkpoint_age_seconds = Some(1.5);
        let again: Snapshot = serde_json::from_slice(&encode(&later, &journals)).unwrap();
        assert_eq!(again.generated_at, snap.generated_at + 5);
        assert_eq!(again.daemon.checkpoint_age_seconds, Some(1.5));
        assert_eq!(again.journals, snap.journals);
    }

    #[test]
    fn the_last_journals_are_written_again_only_while_settled_unchanged_and_recent() {
        let w = Written {
            journals: Vec::new(),
            built: Instant::now(),
        };
        let due = |changes, settled| Due {
            last: Some((changes, Instant::now() - SETTLED_EVERY, settled)),
        };
        assert!(w.reusable(&due(7, true), 7), "settled and nothing changed");
        assert!(!w.reusable(&due(7, true), 8), "a worker's state changed");
        assert!(
            !w.reusable(&due(7, false), 7),
            "a listener behind or retrying"
        );
        assert!(!w.reusable(&Due { last: None }, 7), "nothing written yet");
        let old = Written {
            journals: Vec::new(),
            built: Instant::now() - REBUILD_EVERY,
        };
        assert!(
            !old.reusable(&due(7, true), 7),
            "built whole again now and then"
        );
    }

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
