//! File events, and which workers they concern.
//!
//! The watcher (inotify through `notify`, on its own thread) reports the
//! paths that changed in the journals' directories. [`Router`] sends each
//! path to the workers of the journals it can concern: the live file
//! itself and its rotated names (which begin with the live file's name).
//! A write in a shared log directory wakes the journals of that file, not
//! every journal of the directory. Events only make the daemon prompt: each
//! worker still checks its files every `reconcile_every`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::{Config, Watch};

/// Which tasks a changed path concerns.
#[derive(Debug, Default)]
pub(super) struct Router {
    /// By directory, by live file name: the workers' task ids. A changed
    /// name is routed by looking up each of its prefixes (a rotated name
    /// begins with the live one), so an event costs a few lookups however
    /// many journals share the directory.
    by_dir: HashMap<PathBuf, HashMap<OsString, Vec<usize>>>,
}

impl Router {
    /// Routes the events of `path` (a journal's live path) to `task`.
    pub(super) fn add(&mut self, path: &Path, task: usize) {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = path.file_name().map(OsString::from).unwrap_or_default();
        self.by_dir
            .entry(dir)
            .or_default()
            .entry(name)
            .or_default()
            .push(task);
    }

    /// The tasks the change of `path` concerns: those of the journals whose
    /// live file or rotated names it is, or all in it when it is a directory
    /// of journals. Calls `wake` once per task (maybe more for a task of
    /// several matching journals).
    pub(super) fn route(&self, path: &Path, mut wake: impl FnMut(usize)) {
        if let Some(entries) = self.by_dir.get(path) {
            entries.values().flatten().for_each(|&id| wake(id));
            return;
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return;
        };
        let Some(entries) = self.by_dir.get(dir) else {
            return;
        };
        let name = name.as_bytes();
        for n in 1..=name.len() {
            let prefix = std::ffi::OsStr::from_bytes(&name[..n]);
            if let Some(ids) = entries.get(prefix) {
                ids.iter().for_each(|&id| wake(id));
            }
        }
    }
}

pub(super) enum Event {
    /// Something changed at these paths (empty: anywhere, e.g. after an
    /// overflow, or a worker is done).
    Changed(Vec<PathBuf>),
    Signal(i32),
    /// SIGHUP: save now and go on (there is no config reload).
    Hangup,
}

/// Starts the file-event watcher over the journals' directories, unless
/// the config asks for polling alone. A watcher that cannot be created (the
/// user's inotify instances used up, a kernel without inotify) is no reason
/// to refuse to start: every worker re-checks its files every
/// `reconcile_every` anyway, so the daemon warns and polls.
pub(super) fn watch<W: notify::Watcher>(cfg: &Config, tx: Sender<Event>) -> Option<W> {
    EVENTS_SEEN.store(false, Ordering::SeqCst);
    if cfg.watch == Watch::Poll {
        tracing::info!(config = %cfg.file.display(), "watch = \"poll\": no file events; every journal is checked every reconcile_every");
        return None;
    }
    let handler = move |res: notify::Result<notify::Event>| {
        let ev = match res {
            Ok(e) if e.need_rescan() => {
                tracing::warn!(
                    "file events were lost (the kernel's event queue overflowed); checking every journal now. If this repeats, raise fs.inotify.max_queued_events"
                );
                Event::Changed(Vec::new())
            }
            // Opening, reading or closing a file unwritten changes nothing
            // (the status thread and listeners open journals all the time).
            Ok(e)
                if matches!(
                    e.kind,
                    notify::EventKind::Access(
                        notify::event::AccessKind::Open(_)
                            | notify::event::AccessKind::Read
                            | notify::event::AccessKind::Close(
                                notify::event::AccessMode::Read
                                    | notify::event::AccessMode::Execute
                                    | notify::event::AccessMode::Any
                                    | notify::event::AccessMode::Other
                            )
                    )
                ) =>
            {
                return
            }
            Ok(e) => Event::Changed(e.paths),
            Err(_) => Event::Changed(Vec::new()),
        };
        let _ = tx.send(ev);
    };
    let mut w = match W::new(handler, notify::Config::default()) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "cannot watch for file events; falling back to checking every journal every reconcile_every (set watch = \"poll\" to say so in the config)"
            );
            return None;
        }
    };
    let mut dirs: Vec<PathBuf> = cfg
        .journals
        .iter()
        .filter_map(|j| j.path.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut all = true;
    for d in dirs {
        if let Err(e) = w.watch(&d, notify::RecursiveMode::NonRecursive) {
            // Without events the periodic reconciliation still finds everything.
            tracing::warn!(dir = %d.display(), error = %e, "cannot watch directory; falling back to periodic checks");
            all = false;
        }
    }
    EVENTS_SEEN.store(all, Ordering::SeqCst);
    Some(w)
}

/// Whether file events are seen for every journal's directory (see
/// [`crate::config::EVENTS_RECONCILE`]). False until the watcher watches
/// them all, and for good once one directory cannot be watched.
static EVENTS_SEEN: AtomicBool = AtomicBool::new(false);

/// The periodic check of journal `j` now: `reconcile_every` when it was
/// set or when events are not seen, else [`crate::config::EVENTS_RECONCILE`].
pub(crate) fn reconcile_every(j: &crate::config::JournalConfig) -> std::time::Duration {
    if j.reconcile_explicit || !EVENTS_SEEN.load(Ordering::SeqCst) {
        j.reconcile_every
    } else {
        crate::config::EVENTS_RECONCILE.max(j.reconcile_every)
    }
}

/// A directory added later (a reload) could not be watched.
pub(super) fn events_missed() {
    EVENTS_SEEN.store(false, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;
    use std::path::Path;
    use std::time::Duration;

    /// A watcher whose creation fails, as `inotify_init1` does once the
    /// user's instances (`fs.inotify.max_user_instances`) are used up.
    struct Exhausted;

    impl notify::Watcher for Exhausted {
        fn new<F: notify::EventHandler>(_: F, _: notify::Config) -> notify::Result<Self> {
            Err(notify::Error::io(std::io::Error::from_raw_os_error(24)))
        }
        fn watch(&mut self, _: &Path, _: notify::RecursiveMode) -> notify::Result<()> {
            unreachable!("never created")
        }
        fn unwatch(&mut self, _: &Path) -> notify::Result<()> {
            unreachable!("never created")
        }
        fn kind() -> notify::WatcherKind {
            notify::WatcherKind::NullWatcher
        }
    }

    fn config(dir: &Path, extra: &str) -> Config {
        let text = format!("{extra}\n[[journal]]\nname = \"p4\"\npath = \"journal\"\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n");
        Config::parse(&text, &dir.join("cfg.toml")).unwrap()
    }

    #[test]
    fn a_watcher_that_cannot_be_created_means_polling_not_a_failed_start() {
        let d = tempfile::tempdir().unwrap();
        let (tx, _rx) = unbounded();
        assert!(watch::<Exhausted>(&config(d.path(), ""), tx).is_none());
    }

    #[test]
    fn watch_poll_creates_no_watcher_and_events_does() {
        let d = tempfile::tempdir().unwrap();
        let (tx, rx) = unbounded();
        assert!(watch::<notify::RecommendedWatcher>(
            &config(d.path(), "watch = \"poll\""),
            tx.clone()
        )
        .is_none());
        let w = watch::<notify::RecommendedWatcher>(&config(d.path(), ""), tx)
            .expect("an inotify watcher");
        std::fs::write(d.path().join("journal"), b"x").unwrap();
        match rx
            .recv_timeout(Duration::from_secs(30))
            .expect("an event for the new file")
        {
            Event::Changed(paths) => assert!(
                paths.is_empty() || paths.iter().any(|p| p == &d.path().join("journal")),
                "{paths:?}"
            ),
            Event::Signal(s) => panic!("signal {s}"),
            Event::Hangup => panic!("SIGHUP"),
        }
        drop(w);
    }

    #[test]
    fn an_event_wakes_the_journals_of_its_file_and_rotated_names_only() {
        let mut r = Router::default();
        r.add(Path::new("/var/log/app.log"), 0);
        r.add(Path::new("/var/log/app.log"), 1);
        r.add(Path::new("/var/log/db.log"), 2);
        r.add(Path::new("/p4/root/journal"), 3);
        let woken = |p: &str| {
            let mut v = Vec::new();
            r.route(Path::new(p), |id| v.push(id));
            v.sort();
            v
        };
        assert_eq!(woken("/var/log/app.log"), [0, 1]);
        assert_eq!(woken("/var/log/app.log.1"), [0, 1]);
        assert_eq!(woken("/var/log/app.log.2.gz"), [0, 1]);
        assert_eq!(woken("/var/log/db.log"), [2]);
        assert_eq!(woken("/var/log/other.log"), Vec::<usize>::new());
        assert_eq!(woken("/p4/root/journal.17.gz"), [3]);
        assert_eq!(
            woken("/var/log"),
            [0, 1, 2],
            "the directory itself: all in it"
        );
        assert_eq!(woken("/elsewhere/app.log"), Vec::<usize>::new());
    }
}
