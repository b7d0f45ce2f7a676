//! What the daemon is doing: per journal its files, per listener its
//! position, lag, state and counters, as one [`Snapshot`].
//!
//! One snapshot serves everyone: `logdaemon status` (text or `--json`),
//! the HTTP endpoint's `/status`, `/metrics`, `/healthz` and its page. It
//! is built from the listeners' cursors and states ([`Input`]) and from the
//! file system (the lag, see [`lag`]), so it can be built inside the
//! running daemon (from the workers' shared state) and outside it (from
//! the checkpoint and the `status.json` the daemon keeps, see [`live`]).

pub mod cmd;
mod http;
mod lag;
mod live;
mod metrics;
mod stats;

use std::collections::VecDeque;
use std::path::Path;
use std::time::SystemTime;

use logdaemon_state::Cursor;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::stamp::FileStamp;
pub(crate) use live::{start, Listed};
pub use stats::{GapNote, ListenerStats};

/// What a listener is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Everything on disk is acknowledged.
    CaughtUp,
    /// Entries on disk are not acknowledged yet; no call is failing.
    Behind,
    /// Calls fail and are retried (`since`, `last_error`).
    Retrying,
    /// Failed for good with `on_failure = "disable"`; its cursor is kept.
    Disabled,
    /// Failed for good with `on_failure = "stop"`, or stopped at a gap.
    Stopped,
    /// Cannot tell: the cursor's file cannot be found, or the running
    /// daemon's state cannot be read.
    Unknown,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::CaughtUp => "caught up",
            State::Behind => "behind",
            State::Retrying => "retrying",
            State::Disabled => "disabled",
            State::Stopped => "stopped",
            State::Unknown => "unknown",
        }
    }

    /// `logdaemon_listener_up`: 1 unless the listener was given up on.
    pub fn up(self) -> bool {
        !matches!(self, State::Disabled | State::Stopped)
    }
}

/// How the worker itself ended, or that it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind", content = "message")]
pub enum Run {
    #[default]
    Running,
    Disabled(String),
    Stopped(String),
    /// The daemon runs, but its state could not be read.
    Unknown(String),
}

/// One listener as the snapshot is built from it.
#[derive(Debug, Clone)]
pub struct Input {
    pub journal: String,
    pub listener: String,
    /// `None`: no checkpoint yet.
    pub cursor: Option<Cursor>,
    pub run: Run,
    pub stats: ListenerStats,
    /// Lag history: `(seconds since the epoch, lag in bytes)`, oldest first.
    pub history: VecDeque<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: String,
    /// Seconds since the epoch.
    pub generated_at: u64,
    pub daemon: Daemon,
    pub journals: Vec<JournalStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Daemon {
    pub running: bool,
    pub pid: Option<u32>,
    /// Seconds since the checkpoint was last written.
    pub checkpoint_age_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalStatus {
    pub name: String,
    pub path: String,
    /// The live file's size; `None` when it does not exist.
    pub size: Option<u64>,
    pub rotated_files: usize,
    /// Rotated files the listeners passed since the daemon started.
    pub rotations_seen: u64,
    /// Why the files could not be listed.
    pub error: Option<String>,
    pub listeners: Vec<ListenerStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerStatus {
    pub name: String,
    pub state: State,
    /// Since when it retries (seconds since the epoch).
    pub since: Option<u64>,
    pub last_error: Option<String>,
    pub sequence: u64,
    pub offset: u64,
    pub line: u64,
    /// The file the cursor is in.
    pub file: Option<String>,
    pub lag_bytes: Option<u64>,
    pub lag_seconds: Option<f64>,
    pub delivered_entries: u64,
    pub delivered_bytes: u64,
    pub retries: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub recent_gaps: Vec<GapNote>,
    /// `[seconds since the epoch, lag in bytes]`, oldest first.
    pub history: Vec<(u64, u64)>,
    /// It takes its journal's shared batches (else it reads on its own).
    #[serde(default)]
    pub shared: bool,
    /// Times it fell behind the shared batches, and joined them again.
    #[serde(default)]
    pub fell_out: u64,
    #[serde(default)]
    pub rejoined: u64,
}

/// Where the daemon stands, and how each journal's rotations are counted.
pub struct Context<'a> {
    pub cfg: &'a Config,
    pub running: bool,
    pub pid: Option<u32>,
    /// Per journal, the furthest sequence when the daemon started.
    pub start_sequences: &'a std::collections::BTreeMap<String, u64>,
    pub now: SystemTime,
}

/// The snapshot of `inputs` (in config order) against the files now.
pub fn collect(ctx: &Context<'_>, inputs: &[Input]) -> Snapshot {
    collect_reusing(ctx, inputs, &mut Reuse::default())
}

/// What a journal's status was built from: its listeners' states and its
/// live file's `stat`. When neither changed and every listener was caught
/// up, the status of the second before is still true, and building it
/// again (listing, `stat` of every file, opening the cursor's file for
/// its time) is skipped: a daemon following thousands of idle journals
/// refreshes its status every second at the cost of a `stat` each.
#[derive(Default)]
pub(crate) struct Reuse {
    journals: std::collections::HashMap<String, (ReuseKey, JournalStatus)>,
}

#[derive(PartialEq)]
struct ReuseKey {
    listeners: Vec<(String, Option<Cursor>, Run, ListenerStats)>,
    live: Option<FileStamp>,
    /// The directory: rotated files come and go in it.
    dir: Option<FileStamp>,
}

/// The `stat` of a journal's directory and of its live file, taken before
/// its status is built.
type Stamps = (Option<FileStamp>, Option<FileStamp>);

impl ReuseKey {
    /// `j`'s [`Stamps`] now; each directory is looked at once per snapshot
    /// (`dirs`), however many journals live in it.
    fn stamps(
        j: &crate::config::JournalConfig,
        dirs: &mut std::collections::HashMap<std::path::PathBuf, Option<FileStamp>>,
    ) -> Stamps {
        let dir = j.path.parent().unwrap_or(Path::new("."));
        let dir = match dirs.get(dir) {
            Some(d) => *d,
            None => *dirs.entry(dir.to_path_buf()).or_insert(FileStamp::at(dir)),
        };
        (dir, FileStamp::at(&j.path))
    }

    fn of((dir, live): Stamps, inputs: &[&Input]) -> ReuseKey {
        ReuseKey {
            dir,
            live,
            listeners: inputs
                .iter()
                .map(|i| {
                    (
                        i.listener.clone(),
                        i.cursor.clone(),
                        i.run.clone(),
                        i.stats.clone(),
                    )
                })
                .collect(),
        }
    }

    /// Whether this key equals [`ReuseKey::of`] `stamps` and `inputs`,
    /// without making that copy (the common case: nothing changed).
    fn holds(&self, (dir, live): &Stamps, inputs: &[&Input]) -> bool {
        self.dir == *dir
            && self.live == *live
            && self.listeners.len() == inputs.len()
            && self.listeners.iter().zip(inputs).all(|((l, c, r, s), i)| {
                *l == i.listener && *c == i.cursor && *r == i.run && *s == i.stats
            })
    }
}

/// [`collect`], reusing from `reuse` the status of every journal that
/// cannot have changed (see [`Reuse`]), and keeping what it builds there.
pub(crate) fn collect_reusing(ctx: &Context<'_>, inputs: &[Input], reuse: &mut Reuse) -> Snapshot {
    let mut journals = Vec::new();
    // Grouped once: looking each journal's listeners up in the whole list
    // cost the square of the number of journals, every second.
    let mut by_journal: std::collections::HashMap<&str, Vec<&Input>> = Default::default();
    for i in inputs {
        by_journal.entry(i.journal.as_str()).or_default().push(i);
    }
    let mut kept = std::collections::HashMap::new();
    let mut dirs = std::collections::HashMap::new();
    for j in &ctx.cfg.journals {
        let mine: Vec<&Input> = by_journal.get(j.name.as_str()).cloned().unwrap_or_default();
        let stamps = ReuseKey::stamps(j, &mut dirs);
        if let Some((name, (k, mut js))) = reuse.journals.remove_entry(&j.name) {
            let idle =
                js.error.is_none() && js.listeners.iter().all(|l| l.state == State::CaughtUp);
            if idle && k.holds(&stamps, &mine) {
                for (l, i) in js.listeners.iter_mut().zip(&mine) {
                    l.history = i.history.iter().copied().collect();
                }
                journals.push(js.clone());
                kept.insert(name, (k, js));
                continue;
            }
        }
        let key = ReuseKey::of(stamps, &mine);
        let files = lag::Files::list(j);
        let spec = ctx.cfg.timestamps.get(&j.name);
        let mut js = JournalStatus {
            name: j.name.clone(),
            path: j.path.display().to_string(),
            size: None,
            rotated_files: 0,
            rotations_seen: 0,
            error: files.as_ref().err().cloned(),
            listeners: Vec::new(),
        };
        if let Ok(f) = &files {
            js.size = f.live().map(|(_, n)| n);
            js.rotated_files = f.rotated();
        }
        let mut furthest = 0;
        for i in by_journal.get(j.name.as_str()).into_iter().flatten() {
            let lag = match (&files, &i.cursor) {
                (Ok(f), Some(c)) => f.lag(j, spec, c, ctx.now),
                _ => None,
            };
            furthest = furthest.max(i.cursor.as_ref().map_or(0, |c| c.sequence));
            js.listeners.push(listener(i, lag));
        }
        if ctx.running {
            if let Some(s) = ctx.start_sequences.get(&j.name) {
                js.rotations_seen = furthest.saturating_sub(*s);
            }
        }
        kept.insert(j.name.clone(), (key, js.clone()));
        journals.push(js);
    }
    reuse.journals = kept;
    Snapshot {
        version: env!("CARGO_PKG_VERSION").to_string(),
        generated_at: stats::unix(ctx.now),
        daemon: Daemon {
            running: ctx.running,
            pid: ctx.pid,
            checkpoint_age_seconds: checkpoint_age(&ctx.cfg.state_dir, ctx.now),
        },
        journals,
    }
}

fn listener(i: &Input, lag: Option<lag::Lag>) -> ListenerStatus {
    let s = &i.stats;
    let (state, error) = match (&i.run, &lag) {
        (Run::Disabled(m), _) => (State::Disabled, Some(m.clone())),
        (Run::Stopped(m), _) => (State::Stopped, Some(m.clone())),
        (Run::Unknown(m), _) => (State::Unknown, Some(m.clone())),
        (Run::Running, _) if s.retrying_since.is_some() => (State::Retrying, None),
        (Run::Running, Some(l)) if l.bytes == 0 => (State::CaughtUp, None),
        (Run::Running, Some(_)) => (State::Behind, None),
        (Run::Running, None) => (State::Unknown, None),
    };
    let c = i.cursor.clone().unwrap_or(Cursor {
        sequence: 0,
        offset: 0,
        line: 0,
        identity: None,
    });
    ListenerStatus {
        name: i.listener.clone(),
        state,
        since: s.retrying_since.map(stats::unix),
        last_error: error.or_else(|| s.last_error.clone()),
        sequence: c.sequence,
        offset: c.offset,
        line: c.line,
        file: lag.as_ref().map(|l| l.file.display().to_string()),
        lag_bytes: lag.as_ref().map(|l| l.bytes),
        lag_seconds: lag.as_ref().map(|l| l.seconds),
        delivered_entries: s.delivered_entries,
        delivered_bytes: s.delivered_bytes,
        retries: s.retries,
        gaps: s.gaps,
        gap_bytes: s.gap_bytes,
        recent_gaps: s.recent_gaps.iter().cloned().collect(),
        history: i.history.iter().copied().collect(),
        shared: s.reading.shared,
        fell_out: s.reading.fell_out,
        rejoined: s.reading.rejoined,
    }
}

pub(super) fn checkpoint_age(state_dir: &Path, now: SystemTime) -> Option<f64> {
    let md = std::fs::metadata(state_dir.join(logdaemon_state::FILE_NAME)).ok()?;
    let t = md.modified().ok()?;
    Some(now.duration_since(t).map_or(0.0, |d| d.as_secs_f64()))
}

/// Every listener of the snapshot, with its journal's name.
impl Snapshot {
    pub fn listeners(&self) -> impl Iterator<Item = (&JournalStatus, &ListenerStatus)> {
        self.journals
            .iter()
            .flat_map(|j| j.listeners.iter().map(move |l| (j, l)))
    }
}

#[cfg(test)]
mod reuse_tests;

/// A snapshot of one journal `p4` with a listener `l0`, `l1`, … per
/// `(state, lag in bytes)`, for tests.
#[cfg(test)]
pub(crate) fn sample(listeners: &[(State, Option<u64>)]) -> Snapshot {
    let listeners = listeners
        .iter()
        .enumerate()
        .map(|(i, &(state, lag))| ListenerStatus {
            name: if i == 0 {
                "standby".into()
            } else {
                format!("l{i}")
            },
            state,
            since: None,
            last_error: None,
            sequence: 9,
            offset: 100,
            line: 4,
            file: None,
            lag_bytes: lag,
            lag_seconds: lag.map(|_| 2.5),
            delivered_entries: 7,
            delivered_bytes: 700,
            retries: 3,
            gaps: 1,
            gap_bytes: 40,
            recent_gaps: vec![],
            history: vec![],
            shared: true,
            fell_out: 2,
            rejoined: 1,
        })
        .collect();
    Snapshot {
        version: "1.2.3".into(),
        generated_at: 0,
        daemon: Daemon {
            running: true,
            pid: Some(1),
            checkpoint_age_seconds: Some(1.5),
        },
        journals: vec![JournalStatus {
            name: "p4".into(),
            path: "/p4/journal".into(),
            size: Some(300),
            rotated_files: 2,
            rotations_seen: 1,
            error: None,
            listeners,
        }],
    }
}
