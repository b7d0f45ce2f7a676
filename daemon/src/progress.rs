//! The periodic progress line of `run`: every `log_progress_every`, one
//! info line per journal where something moved since its last line, with what its listeners were delivered since the
//! last line and how far behind the slowest is, so that an operator
//! reading the log (or a collector reading `--log-format json`) sees the
//! daemon keeping up without asking it.
//!
//! The lag here is measured cheaply from the files, not exactly: the bytes
//! of the live file after the listener's acknowledged position, and, when
//! the cursor is still in a rotated file, that file's rest plus the whole
//! live file (rotated files in between are not counted: `rotated = true`
//! says the figure is a lower bound).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logdaemon_state::Cursor;

use crate::config::Config;
use crate::worker::Shared;

/// Bytes behind, and whether the cursor is in a rotated file (a lower bound then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Lag {
    pub bytes: u64,
    pub rotated: bool,
}

/// The engine's progress reporter: call [`Progress::tick`] from its loop.
pub(crate) struct Progress {
    every: Duration,
    last: Instant,
    /// (journal, listener) → (entries, bytes) delivered and the lag at the
    /// last line.
    seen: HashMap<(String, String), (u64, u64, Lag)>,
}

/// A listener's figures for one line: name, entries and bytes taken since
/// the last line, lag now, and whether nothing changed since that line.
type Figures<'a> = (&'a str, u64, u64, Lag, bool);

impl Progress {
    pub(crate) fn new(cfg: &Config) -> Progress {
        Progress {
            every: cfg.log_progress_every,
            last: Instant::now(),
            seen: HashMap::new(),
        }
    }

    /// Logs the lines when they are due: one per journal, except a journal
    /// whose listeners took nothing and whose lag did not change since its
    /// last line (an idle journal is logged once, not every minute).
    pub(crate) fn tick<'a>(
        &mut self,
        cfg: &Config,
        running: impl IntoIterator<Item = (&'a str, &'a str, &'a Arc<Mutex<Shared>>)>,
    ) {
        if self.every.is_zero() || self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        let paths: HashMap<&str, &Path> = cfg
            .journals
            .iter()
            .map(|j| (j.name.as_str(), j.path.as_path()))
            .collect();
        let mut per_journal: BTreeMap<&str, Vec<Figures<'a>>> = BTreeMap::new();
        for (journal, listener, shared) in running {
            let (cursor, now) = {
                let s = shared.lock().unwrap_or_else(|e| e.into_inner());
                (s.cursor.clone(), (s.delivered_entries, s.delivered_bytes))
            };
            let lag = paths
                .get(journal)
                .map(|p| lag(&cursor, p))
                .unwrap_or_default();
            let before = self.seen.insert(
                (journal.to_string(), listener.to_string()),
                (now.0, now.1, lag),
            );
            let quiet = before.is_some_and(|(n, _, l)| n == now.0 && l == lag);
            let (n, b, _) = before.unwrap_or_default();
            per_journal.entry(journal).or_default().push((
                listener,
                now.0 - n,
                now.1 - b,
                lag,
                quiet,
            ));
        }
        for (journal, listeners) in per_journal {
            if worth_a_line(&listeners) {
                line(journal, &listeners, self.every);
            }
        }
    }
}

/// Whether a journal gets a line: something moved since its last one.
fn worth_a_line(listeners: &[Figures<'_>]) -> bool {
    !listeners.iter().all(|l| l.4)
}

/// One journal's line: the sums, the slowest listener, and each listener's lag.
fn line(journal: &str, listeners: &[Figures<'_>], every: Duration) {
    let entries: u64 = listeners.iter().map(|l| l.1).sum();
    let bytes: u64 = listeners.iter().map(|l| l.2).sum();
    let (slowest, _, _, lag, _) = listeners
        .iter()
        .max_by_key(|l| (l.3.rotated, l.3.bytes))
        .copied()
        .unwrap_or(("", 0, 0, Lag::default(), true));
    let each: Vec<String> = listeners
        .iter()
        .map(|(l, n, _, lag, _)| {
            let more = if lag.rotated { "+" } else { "" };
            format!("{l}: {n} entries, {}{more} bytes behind", lag.bytes)
        })
        .collect();
    tracing::info!(
        journal,
        entries,
        bytes,
        lag_bytes = lag.bytes,
        lag_in_rotated = lag.rotated,
        slowest,
        "progress over the last {}: {}",
        humantime::format_duration(every),
        each.join("; ")
    );
}

/// How far `cursor` is behind the end of the journal at `live`.
pub(crate) fn lag(cursor: &Cursor, live: &Path) -> Lag {
    let live_md = std::fs::metadata(live).ok();
    let live_size = live_md.as_ref().map_or(0, |m| m.len());
    let in_live = match (&cursor.identity, &live_md) {
        (Some(id), Some(md)) => id.dev == md.dev() && id.inode == md.ino(),
        // No proof: only a cursor in the current file makes sense of the offset.
        (None, Some(_)) => true,
        (_, None) => false,
    };
    if in_live {
        return Lag {
            bytes: live_size.saturating_sub(cursor.offset),
            rotated: false,
        };
    }
    let rest = cursor
        .identity
        .as_ref()
        .filter(|id| !id.path.is_empty())
        .and_then(|id| {
            std::fs::metadata(&id.path)
                .ok()
                .filter(|m| m.ino() == id.inode)
        })
        .map_or(0, |m| m.len().saturating_sub(cursor.offset));
    Lag {
        bytes: rest + live_size,
        rotated: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logdaemon_state::Identity;

    fn cursor_in(path: &Path, offset: u64) -> Cursor {
        let md = std::fs::metadata(path).unwrap();
        Cursor {
            sequence: 1,
            offset,
            line: 1,
            identity: Some(Identity {
                path: path.display().to_string(),
                dev: md.dev(),
                inode: md.ino(),
                ..Identity::default()
            }),
        }
    }

    #[test]
    fn a_journal_gets_a_line_when_something_moved_since_its_last_one() {
        let lag = |bytes| Lag {
            bytes,
            rotated: false,
        };
        // First line, or entries taken, or the lag changed: a line.
        assert!(worth_a_line(&[("a", 0, 0, lag(0), false)]));
        assert!(worth_a_line(&[
            ("a", 0, 0, lag(0), true),
            ("b", 3, 90, lag(0), false)
        ]));
        // Every listener idle and its lag unchanged: none.
        assert!(!worth_a_line(&[
            ("a", 0, 0, lag(0), true),
            ("b", 0, 0, lag(7), true)
        ]));
    }

    #[test]
    fn the_lag_is_the_rest_of_the_live_file_or_a_lower_bound_from_a_rotated_one() {
        let d = tempfile::tempdir().unwrap();
        let live = d.path().join("journal");
        std::fs::write(&live, vec![b'x'; 100]).unwrap();
        let c = cursor_in(&live, 40);
        assert_eq!(
            lag(&c, &live),
            Lag {
                bytes: 60,
                rotated: false
            }
        );
        // Rotated: the old file's rest (30) and the new live file (10).
        let old = d.path().join("journal.1");
        std::fs::rename(&live, &old).unwrap();
        std::fs::write(&live, vec![b'y'; 10]).unwrap();
        let mut c = cursor_in(&old, 70);
        c.identity.as_mut().unwrap().path = old.display().to_string();
        assert_eq!(
            lag(&c, &live),
            Lag {
                bytes: 40,
                rotated: true
            }
        );
        // No live file (between a rename and the new file): the old file's rest.
        assert_eq!(lag(&c, &d.path().join("none")).bytes, 30);
    }
}
