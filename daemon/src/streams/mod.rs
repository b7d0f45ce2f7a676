//! The streams of glob journals: which files a `path = "/dir/*.log"`
//! journal follows now, found at start and again whenever its directory
//! changes.
//!
//! Each matching live file is a stream that behaves exactly like a journal
//! of its own named `NAME/FILE` (FILE: the file name in the glob's
//! directory): its own follower, listener instances, cursor and `finished`
//! list. So the listener ABI does not change (an acknowledgement is a
//! position in one stream), and a listener sees which file an entry came
//! from in the journal name it was opened with and in `entry.journal`.
//!
//! What is a live file: a regular file (not a link) whose name the glob matches and no
//! `exclude` pattern does, and which is not a rotated name of another
//! stream's file (under the journal's `rotated` patterns): `app.log.1` is
//! where `app.log`'s bytes went, not a new journal, even while `app.log`
//! itself is missing between a rename and its re-creation.
//!
//! A file that two glob journals of one directory match (an overlap the
//! config check could not show) is followed by one of them only: the one
//! that followed it first; the other leaves it and warns once.
//!
//! When a stream is gone: its name no longer leads to a file, and it has no
//! rotated file either. A file that was rotated is waited for, as a plain
//! journal's live file is: between logrotate's rename and its `create`, or
//! until an application without `create` writes again; polls may come
//! seconds apart, after several rotations, so only names can tell. The engine then lets its listeners take the last bytes and
//! retires it: its checkpoint entry goes, and a file created later under
//! the same name is read whole as the stream's next sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use logdaemon_state::Checkpoint;

use crate::config::glob::{with_file, GlobSpec};
use crate::config::{Config, JournalConfig, Start};
use crate::rotation::Scheme;

#[cfg(test)]
mod tests;

/// The shortest time between two listings of a glob's directory.
const MIN_GAP: std::time::Duration = std::time::Duration::from_millis(100);

/// What changed in the glob journals since the last look.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Streams to start (a file that appeared).
    pub added: Vec<JournalConfig>,
    /// Streams to retire once their last bytes are delivered (by name).
    pub gone: Vec<String>,
}

/// One glob journal and its streams.
struct Glob {
    journal: Arc<JournalConfig>,
    spec: GlobSpec,
    /// Live streams by file name.
    live: BTreeSet<String>,
    /// Streams told gone, until the engine says they have ended.
    retiring: BTreeSet<String>,
    /// Streams were started before (now or in an earlier run): new files
    /// are read from their beginning, whatever `start` says.
    seen_before: bool,
    /// When the directory was last looked at.
    last: Instant,
    /// Every name in the directory at that look.
    names: Arc<BTreeSet<String>>,
    /// An event came for the directory since, too soon after a look.
    dirty: bool,
    /// Matching files another glob journal of the directory follows,
    /// warned about once (until they no longer match).
    declined: BTreeSet<String>,
}

/// The glob journals of a config and their streams.
pub(crate) struct Streams {
    globs: Vec<Glob>,
    /// Streams that ended in this run, by name: the sequence a file
    /// created under the name again starts at (the next generation, so
    /// that listeners that keep their own record of what they wrote, the
    /// `file` listener's output, append to it rather than take the new
    /// file's entries for ones they already have).
    next: BTreeMap<String, u64>,
}

impl Streams {
    pub(crate) fn new(cfg: &Config) -> Streams {
        let globs = cfg
            .journals
            .iter()
            .filter_map(|j| {
                let spec = cfg.globs.get(&j.name)?.clone();
                Some(Glob {
                    journal: j.clone(),
                    spec,
                    live: BTreeSet::new(),
                    retiring: BTreeSet::new(),
                    seen_before: false,
                    last: Instant::now(),
                    names: Default::default(),
                    dirty: false,
                    declined: BTreeSet::new(),
                })
            })
            .collect();
        Streams {
            globs,
            next: BTreeMap::new(),
        }
    }

    /// Whether the config has glob journals (a daemon with none of their
    /// streams running still waits for files to appear).
    pub(crate) fn any(&self) -> bool {
        !self.globs.is_empty()
    }

    /// The journals to run at start: the plain ones, and each glob's
    /// streams: the files it matches now, and the streams of the
    /// checkpoint whose file was rotated away meanwhile. A checkpoint stream
    /// whose file is in no name any more is dropped, with a warning.
    pub(crate) fn initial(
        &mut self,
        cfg: &Config,
        checkpoint: &mut Checkpoint,
    ) -> Vec<Arc<JournalConfig>> {
        let mut out: Vec<Arc<JournalConfig>> = cfg
            .journals
            .iter()
            .filter(|j| !cfg.globs.contains_key(&j.name))
            .cloned()
            .collect();
        // Each glob's streams of the checkpoint first: a file two globs
        // match stays with the one that followed it.
        let mut found = Vec::new();
        for g in &mut self.globs {
            let prefix = format!("{}/", g.journal.name);
            let saved: Vec<String> = checkpoint
                .journals
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix).map(String::from))
                .collect();
            g.seen_before = !saved.is_empty();
            let now = g.matching(&saved);
            for file in &saved {
                if now.contains(file) || g.rotated_exists(file) {
                    g.live.insert(file.clone());
                } else {
                    tracing::warn!(journal = %g.journal.name, file = %g.spec.dir.join(file).display(), "a followed file was deleted while the daemon was stopped; its stream ends (bytes written after the last checkpoint and before the deletion were not delivered)");
                    checkpoint.journals.remove(&format!("{prefix}{file}"));
                    // Its listeners' own records too: a file created under
                    // the name is read from sequence 1 again.
                    let stream = format!("{prefix}{file}");
                    for l in &g.journal.listeners {
                        let state =
                            crate::engine::state_dirs::path(&cfg.state_dir, &stream, &l.name);
                        let _ = std::fs::remove_dir_all(state);
                    }
                    // And the earlier layout's, never moved (`state_dirs`).
                    let _ = std::fs::remove_dir_all(cfg.state_dir.join("listeners").join(&stream));
                }
            }
            found.push(now);
        }
        for (i, now) in found.into_iter().enumerate() {
            let now = self.not_taken(i, now);
            let g = &mut self.globs[i];
            g.live.extend(now);
            // Files that appeared while the daemon was stopped are read
            // whole, from the rotated files they may have made meanwhile.
            let start = if g.seen_before {
                Start::New(Arc::default())
            } else {
                g.journal.start.clone()
            };
            for file in &g.live {
                out.push(Arc::new(g.stream(file, start.clone())));
            }
            g.seen_before = true;
        }
        out
    }

    /// Looks again at the globs whose directory is among `dirs` (empty:
    /// all of them; `None`: those not looked at for `reconcile_every`, for
    /// the events that never come, and those an event came for too soon
    /// after a look). A directory is listed at most every [`MIN_GAP`]: a
    /// busy log directory sends an event per write.
    pub(crate) fn poll(&mut self, dirs: Option<&[PathBuf]>) -> Changes {
        let mut changes = Changes::default();
        for i in 0..self.globs.len() {
            let g = &mut self.globs[i];
            let since = g.last.elapsed();
            let look = match dirs {
                None => since >= g.journal.reconcile_every || (g.dirty && since >= MIN_GAP),
                Some(d) if d.is_empty() || d.iter().any(|d| d == &g.spec.dir) => {
                    g.dirty = since < MIN_GAP;
                    !g.dirty
                }
                Some(_) => false,
            };
            if !look {
                continue;
            }
            g.last = Instant::now();
            g.dirty = false;
            let known: Vec<String> = g.live.iter().cloned().collect();
            let before = g.names.clone();
            let now = g.matching(&known);
            let gone: Vec<String> = g
                .live
                .iter()
                .filter(|f| !now.contains(*f) && !g.retiring.contains(*f) && !g.rotated_exists(f))
                .cloned()
                .collect();
            for file in gone {
                tracing::info!(journal = %g.journal.name, file = %g.spec.dir.join(&file).display(), "file deleted: its stream ends once its last bytes are delivered");
                g.retiring.insert(file.clone());
                changes.gone.push(format!("{}/{file}", g.journal.name));
            }
            let now = self.not_taken(i, now);
            let g = &mut self.globs[i];
            for file in now {
                if g.live.contains(&file) {
                    continue;
                }
                tracing::info!(journal = %g.journal.name, file = %g.spec.dir.join(&file).display(), "new file: following it");
                g.live.insert(file.clone());
                changes
                    .added
                    .push(g.stream(&file, Start::New(before.clone())));
            }
        }
        changes
    }

    /// The stream `name` (told gone) has ended at sequence `last`: a file
    /// created under its name from now on is its next generation.
    pub(crate) fn ended(&mut self, name: &str, last: u64) {
        self.next.insert(name.to_string(), last + 1);
        for g in &mut self.globs {
            let Some(file) = name.strip_prefix(&format!("{}/", g.journal.name)) else {
                continue;
            };
            if g.retiring.remove(file) {
                g.live.remove(file);
            }
        }
    }
}

impl Streams {
    /// The files of `found` (matched by glob `i` now) less those another
    /// glob journal of the same directory follows: a file is followed by
    /// one journal only. Warns once per file and journal that leaves one.
    fn not_taken(&mut self, i: usize, mut found: BTreeSet<String>) -> BTreeSet<String> {
        let dir = &self.globs[i].spec.dir;
        let mut taken: Vec<(String, String)> = Vec::new();
        for (k, o) in self.globs.iter().enumerate() {
            if k == i || &o.spec.dir != dir {
                continue;
            }
            for f in found.iter().filter(|f| o.live.contains(*f)) {
                taken.push((f.clone(), o.journal.name.clone()));
            }
        }
        let g = &mut self.globs[i];
        g.declined.retain(|f| found.contains(f));
        for (file, other) in taken {
            if g.live.contains(&file) || !found.remove(&file) {
                continue;
            }
            if g.declined.insert(file.clone()) {
                tracing::warn!(journal = %g.journal.name, other = %other, file = %g.spec.dir.join(&file).display(), "the file matches the patterns of two journals; journal {other:?} follows it, journal {:?} leaves it: give the journals patterns that do not overlap (an exclude list)", g.journal.name);
            }
        }
        found
    }

    /// Before stream `j` starts: if a stream of its name ended in this
    /// run, its listeners start at the first byte of the next sequence (a
    /// position trusted as set, as `checkpoint set --force` does).
    pub(crate) fn prepare(&mut self, j: &JournalConfig, checkpoint: &mut Checkpoint) {
        let Some(sequence) = self.next.remove(&j.name) else {
            return;
        };
        let c = logdaemon_state::Cursor {
            sequence,
            offset: 0,
            line: 1,
            identity: None,
        };
        let js = checkpoint.journals.entry(j.name.clone()).or_default();
        for l in &j.listeners {
            js.listeners.insert(l.name.clone(), c.clone());
        }
        js.reader = c;
    }
}

impl Glob {
    fn stream(&self, file: &str, start: Start) -> JournalConfig {
        let mut j = stream_of(&self.journal, &self.spec, file);
        j.start = start;
        j
    }

    /// The rotated names of the stream of `file`.
    fn journal_scheme(&self, file: &str) -> Scheme {
        scheme_of(&self.journal, &self.spec, file)
    }

    /// Whether a rotated name of `file`'s stream exists.
    fn rotated_exists(&self, file: &str) -> bool {
        self.journal_scheme(file)
            .candidates()
            .is_ok_and(|c| !c.is_empty())
    }

    /// The live files the glob matches now: regular
    /// files whose names match, less rotated names of another of them or
    /// of a `known` stream.
    /// Keeps every name of the directory as `names`.
    fn matching(&mut self, known: &[String]) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut names = BTreeSet::new();
        let Ok(rd) = std::fs::read_dir(&self.spec.dir) else {
            return found;
        };
        for ent in rd.flatten() {
            let Ok(name) = ent.file_name().into_string() else {
                continue;
            };
            names.insert(name.clone());
            if !self.spec.matches(&name) {
                continue;
            }
            // Not through a link: whoever can create files here must not
            // make the daemon read a file elsewhere (`/etc/shadow`).
            if ent.file_type().is_ok_and(|t| t.is_file()) {
                found.insert(name);
            }
        }
        let lives: BTreeSet<&str> = found
            .iter()
            .map(String::as_str)
            .chain(known.iter().map(String::as_str))
            .collect();
        let rotated: Vec<String> = found
            .iter()
            .filter(|n| {
                lives
                    .iter()
                    .any(|l| *l != n.as_str() && self.rotated_of(l, n))
            })
            .cloned()
            .collect();
        for r in rotated {
            found.remove(&r);
        }
        self.names = Arc::new(names);
        found
    }

    /// Whether `name` is a rotated name of the stream of `live`.
    fn rotated_of(&self, live: &str, name: &str) -> bool {
        // Patterns that begin with the live file's name only match names
        // that begin with it: skip the regex for the others.
        let by_name = self
            .journal
            .scheme
            .patterns()
            .all(|p| p.starts_with("{name}"));
        if by_name && !name.starts_with(live) {
            return false;
        }
        self.journal_scheme(live).is_rotated_name(name)
    }
}

/// The config of the stream of `file` of glob journal `j`: the journal's,
/// under the name `NAME/FILE`, at the file, with its own rotated names,
/// and `{file}` in its listeners' `path` replaced.
fn stream_of(j: &JournalConfig, spec: &GlobSpec, file: &str) -> JournalConfig {
    let mut s = j.clone();
    s.name = format!("{}/{file}", j.name);
    s.path = spec.dir.join(file);
    s.scheme = scheme_of(j, spec, file);
    for l in &mut s.listeners {
        std::sync::Arc::make_mut(l).config_toml = with_file(&l.config_toml, file);
    }
    s
}

/// The rotated names of the stream of `file`.
fn scheme_of(j: &JournalConfig, spec: &GlobSpec, file: &str) -> Scheme {
    let patterns: Vec<String> = j.scheme.patterns().map(String::from).collect();
    Scheme::from_patterns(&spec.dir.join(file), &patterns)
        .expect("patterns validated with the config")
}

/// The config of the stream named `name` (`NAME/FILE`) of a glob journal
/// of `cfg`, for the commands that name one (`checkpoint set`, `dump`,
/// `replay`); `None` if `name` is no such stream.
pub(crate) fn config_of(cfg: &Config, name: &str) -> Option<JournalConfig> {
    let (journal, file) = name.split_once('/')?;
    let spec = cfg.globs.get(journal)?;
    let j = cfg.journals.iter().find(|j| j.name == journal)?;
    spec.matches(file).then(|| stream_of(j, spec, file))
}

/// The files glob journal `journal` of `cfg` matches now (its streams, as
/// `logdaemon check` lists them); `None` if it is not a glob journal.
pub(crate) fn files_now(cfg: &Config, journal: &str) -> Option<Vec<String>> {
    let spec = cfg.globs.get(journal)?.clone();
    let j = cfg.journals.iter().find(|j| j.name == journal)?.clone();
    let mut g = Glob {
        journal: j,
        spec,
        live: BTreeSet::new(),
        retiring: BTreeSet::new(),
        seen_before: false,
        last: Instant::now(),
        names: Default::default(),
        dirty: false,
        declined: BTreeSet::new(),
    };
    Some(g.matching(&[]).into_iter().collect())
}
