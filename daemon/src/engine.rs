//! `logdaemon run`: wires config, checkpoint, plugins, followers and
//! workers together, watches the files, handles signals and writes the
//! checkpoint.
//!
//! Threads: one worker per (journal, listener); this thread watches
//! (inotify through `notify`) and wakes the workers of a journal when
//! anything in its directory changes, takes SIGTERM/SIGINT, and writes the
//! checkpoint once a second when a cursor moved, and at the end. Events
//! only make the daemon prompt: with `watch = "poll"`, without a watcher
//! (none could be created) or after the kernel's event queue overflowed,
//! each worker still re-checks its files every `reconcile_every`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Sender};
use logdaemon_sdk::Position;
use logdaemon_state::{Checkpoint, Cursor, StateLock};

use crate::config::{Config, JournalConfig, Watch};
use crate::follow::{FollowError, Follower};
use crate::host::{self, Instance, OpenParams};
use crate::quiet::{self, Clock, ScaledClock, SystemClock};
use crate::streams::Streams;
use crate::worker::{Shared, Worker, WorkerStatus};

/// Options of `run`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Deliver everything available now, flush, write the checkpoint, exit.
    pub once: bool,
}

/// Why `run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    State(#[from] logdaemon_state::StateError),
    #[error(transparent)]
    Follow(#[from] FollowError),
    #[error(transparent)]
    Host(#[from] host::HostError),
    #[error("listener {listener:?} of journal {journal:?} could not start: {message}")]
    Open {
        journal: String,
        listener: String,
        message: String,
    },
    #[error("{0}")]
    Failed(String),
}

struct Running {
    journal: String,
    listener: String,
    shared: Arc<Mutex<Shared>>,
    wake: Sender<()>,
    dir: PathBuf,
    handle: JoinHandle<()>,
    /// Set by the thread when its work is done, before it wakes this loop.
    done: Arc<AtomicBool>,
}

/// Starts `work` on a thread named `name`; `done` is set once it returned,
/// then `wake` is called. The main loop looks at `done`, not at whether the
/// thread has exited: that happens a moment after the wake, and a loop that
/// checked it could go back to sleep (half a second) with every worker done.
fn spawn_worker(
    name: String,
    work: impl FnOnce() + Send + 'static,
    wake: impl FnOnce() + Send + 'static,
) -> std::io::Result<(JoinHandle<()>, Arc<AtomicBool>)> {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let handle = std::thread::Builder::new().name(name).spawn(move || {
        work();
        flag.store(true, Ordering::SeqCst);
        wake();
    })?;
    Ok((handle, done))
}

/// Runs the daemon until a signal (or, with `once`, until everything
/// available is delivered). Returns once the checkpoint is written.
pub fn run(cfg: &Config, opts: RunOptions) -> Result<(), EngineError> {
    // Signals first: one that arrives while plugins open (which can take a
    // while) is an orderly stop once they have, not death by the signal.
    let (ev_tx, ev_rx) = unbounded::<Event>();
    let stop = Arc::new(AtomicBool::new(false));
    let signals = signal_thread(ev_tx.clone(), stop.clone());
    crate::compress::set_truncated_wait(cfg.compressed_wait);
    // Before the state directory is touched: a bad value changes nothing.
    let clock: Arc<dyn Clock> = match quiet::scale_from_env(
        std::env::var_os("LOGDAEMON_TIME_SCALE").as_deref(),
    )
    .map_err(EngineError::Failed)?
    {
        None => Arc::new(SystemClock),
        Some(scale) => {
            tracing::warn!(scale, "LOGDAEMON_TIME_SCALE is set: retry backoff and quiet periods run this many times faster than real time");
            Arc::new(ScaledClock::new(scale))
        }
    };
    logdaemon_state::ensure_state_dir(&cfg.state_dir)?;
    let _lock = StateLock::acquire(&cfg.state_dir)?;
    let loaded = Checkpoint::load(&cfg.state_dir)?;
    let mut checkpoint = loaded.clone().unwrap_or_default();
    crate::retarget::check(cfg, &checkpoint).map_err(EngineError::Failed)?;

    // Everything that can fail at start fails before any thread runs.
    let mut workers = Vec::new();
    let mut pinned = false;
    let mut streams = Streams::new(cfg);
    for j in &streams.initial(cfg, &mut checkpoint) {
        let opened = open_journal(
            cfg,
            j,
            &mut checkpoint,
            &clock,
            &stop,
            opts.once,
            &mut pinned,
        )?;
        workers.extend(opened);
    }

    if pinned {
        checkpoint.save(&cfg.state_dir)?;
    }

    let mut running = Vec::new();
    for (w, tx, dir) in workers {
        running.push(spawn(w, tx, dir, &ev_tx)?);
    }

    let _watcher = watch::<notify::RecommendedWatcher>(cfg, ev_tx.clone());
    tracing::info!(
        journals = cfg.journals.len(),
        listeners = running.len(),
        once = opts.once,
        "running"
    );

    let mut versions: BTreeMap<(String, String), u64> = BTreeMap::new();
    let starter = Starter {
        cfg,
        clock: &clock,
        stop: &stop,
        ev_tx: &ev_tx,
        once: opts.once,
    };
    let mut last_write = Instant::now();
    let mut signalled = false;
    loop {
        let done = running.iter().all(|r| r.done.load(Ordering::SeqCst))
            && (opts.once || !streams.any() || stop.load(Ordering::SeqCst));
        if done {
            // A signal may have stopped the workers before this loop saw it.
            for ev in ev_rx.try_iter() {
                if let Event::Signal(sig) = ev {
                    signalled = true;
                    tracing::info!(signal = sig, "stopping");
                }
            }
            break;
        }
        match ev_rx.recv_timeout(Duration::from_millis(500)) {
            Ok(Event::Changed(dirs)) => {
                for r in &running {
                    if dirs.is_empty() || dirs.iter().any(|d| d == &r.dir) {
                        let _ = r.wake.try_send(());
                    }
                }
                update_streams(
                    &starter,
                    &mut streams,
                    Some(&dirs),
                    &mut checkpoint,
                    &mut running,
                    &mut versions,
                )?;
            }
            Ok(Event::Hangup) => {
                // No reload yet: keep running, but make the save a HUP asks for.
                save_if_changed(cfg, &mut checkpoint, &running, &mut versions)?;
                last_write = Instant::now();
                tracing::info!(
                    signal = signal_hook::consts::SIGHUP,
                    "SIGHUP: checkpoint saved; the config is not reloaded (stop and start the daemon to apply a changed config)"
                );
            }
            Ok(Event::Signal(sig)) => {
                signalled = true;
                tracing::info!(signal = sig, "stopping: finishing the batch in hand");
                stop.store(true, Ordering::SeqCst);
                for r in &running {
                    let _ = r.wake.try_send(());
                }
            }
            Err(_) => {}
        }
        if failed(&running).is_some() && !stop.load(Ordering::SeqCst) {
            stop.store(true, Ordering::SeqCst);
            for r in &running {
                let _ = r.wake.try_send(());
            }
        }
        update_streams(
            &starter,
            &mut streams,
            None,
            &mut checkpoint,
            &mut running,
            &mut versions,
        )?;
        if last_write.elapsed() >= Duration::from_secs(1) {
            save_if_changed(cfg, &mut checkpoint, &running, &mut versions)?;
            last_write = Instant::now();
        }
    }
    drop(signals);
    let failure = failed(&running).or_else(|| {
        if opts.once {
            once_disabled(&running)
        } else if signalled {
            None
        } else {
            all_disabled(&running)
        }
    });
    save_if_changed(cfg, &mut checkpoint, &running, &mut versions)?;
    let mut running_status = Vec::new();
    for r in running {
        let _ = r.handle.join();
        running_status.push(
            r.shared
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .status
                .clone(),
        );
    }
    match failure.or_else(|| unfinished(&running_status)) {
        Some(msg) => Err(EngineError::Failed(msg)),
        None => Ok(()),
    }
}

/// Opens one journal, or one stream of a glob journal (see
/// [`crate::streams`]): for each listener its plugin, follower and worker,
/// ready to run. Sets `pinned` when it wrote a start position into
/// `checkpoint` (to be saved before the workers run).
#[allow(clippy::too_many_arguments)]
fn open_journal(
    cfg: &Config,
    j: &JournalConfig,
    checkpoint: &mut Checkpoint,
    clock: &Arc<dyn Clock>,
    stop: &Arc<AtomicBool>,
    once: bool,
    pinned: &mut bool,
) -> Result<Vec<(Worker, Sender<()>, PathBuf)>, EngineError> {
    let mut workers = Vec::new();
    let mut j = j.clone();
    if once {
        // `--once` delivers what is there now; it does not wait for late writers.
        j.late_writes = Duration::ZERO;
    }
    let j = Arc::new(j);
    for l in &j.listeners {
        let path = host::resolve(&l.plugin, cfg.plugin_dir.as_deref())?;
        let plugin = host::load(&path)?;
        let saved = checkpoint
            .journals
            .get(&j.name)
            .and_then(|js| js.listeners.get(&l.name))
            .cloned();
        let history = checkpoint
            .journals
            .get(&j.name)
            .map(|js| js.finished.clone())
            .unwrap_or_default();
        let follower = Follower::open_with_history(
            j.clone(),
            saved.as_ref(),
            &history,
            Some(cfg.state_dir.clone()),
        )?;
        let cursor = match saved {
            Some(c) => c,
            // No file yet (the server has not created its journal):
            // nothing to pin; a restart starts afresh just the same.
            None if follower.position().is_none() => start_cursor(&follower),
            None => {
                // Pin the start now: a restart before the first periodic
                // save must resume here, not at the start of whatever
                // file is live by then.
                let c = start_cursor(&follower);
                let js = checkpoint.journals.entry(j.name.clone()).or_default();
                js.listeners.insert(l.name.clone(), c.clone());
                if js.reader.line == 0 {
                    js.reader = c.clone();
                }
                *pinned = true;
                c
            }
        };
        let lstate = listener_state_dir(&cfg.state_dir, &j.name, &l.name)?;
        let params = OpenParams {
            listener: &l.name,
            journal: &j.name,
            format: j.format.name(),
            journal_path: &j.path,
            config_toml: &l.config_toml,
            config_dir: &cfg.dir,
            state_dir: &lstate,
            cursor: Position {
                sequence: cursor.sequence,
                offset: cursor.offset,
                line: cursor.line,
            },
        };
        let instance = Instance::open(plugin, &params).map_err(|e| EngineError::Open {
            journal: j.name.clone(),
            listener: l.name.clone(),
            message: e.message,
        })?;
        let (tx, rx) = bounded(1);
        let w = Worker::new(
            j.clone(),
            l.clone(),
            instance,
            follower,
            cursor,
            clock.clone(),
            rx,
            stop.clone(),
            once,
            Some(cfg.state_dir.clone()),
        )
        .owe(
            checkpoint
                .journals
                .get(&j.name)
                .and_then(|js| js.pending_gaps.get(&l.name))
                .cloned(),
        );
        workers.push((
            w,
            tx,
            j.path.parent().map(Path::to_path_buf).unwrap_or_default(),
        ));
    }
    Ok(workers)
}

/// Starts the thread of worker `w`, woken through `tx` by file events in `dir`.
fn spawn(
    w: Worker,
    tx: Sender<()>,
    dir: PathBuf,
    ev_tx: &Sender<Event>,
) -> Result<Running, EngineError> {
    let shared = w.shared.clone();
    let (journal, listener) = (w.journal.name.clone(), w.listener.name.clone());
    let done_tx = ev_tx.clone();
    // Wakes the main loop: it checks whether every worker is done.
    let (handle, done) = spawn_worker(
        format!("{journal}/{listener}"),
        move || w.run(),
        move || drop(done_tx.send(Event::Changed(Vec::new()))),
    )
    .map_err(|e| EngineError::Failed(format!("cannot start a thread: {e}")))?;
    Ok(Running {
        journal,
        listener,
        shared,
        wake: tx,
        dir,
        handle,
        done,
    })
}

/// What starting a stream while the daemon runs needs.
struct Starter<'a> {
    cfg: &'a Config,
    clock: &'a Arc<dyn Clock>,
    stop: &'a Arc<AtomicBool>,
    ev_tx: &'a Sender<Event>,
    /// `--once` delivers the files there at start; it starts no stream.
    once: bool,
}

/// The one place where glob journals' streams start and end while the
/// daemon runs (see [`crate::streams`]): looks at the globs of `dirs`
/// (`None`: those due), starts the streams of new files, tells those whose
/// file was deleted to end once their last bytes are delivered, and
/// removes the ended ones from `running` and the checkpoint.
fn update_streams(
    s: &Starter<'_>,
    streams: &mut Streams,
    dirs: Option<&[PathBuf]>,
    checkpoint: &mut Checkpoint,
    running: &mut Vec<Running>,
    versions: &mut BTreeMap<(String, String), u64>,
) -> Result<(), EngineError> {
    if !streams.any() || s.once || s.stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    let changes = streams.poll(dirs);
    for name in &changes.gone {
        for r in running.iter().filter(|r| &r.journal == name) {
            r.shared.lock().unwrap_or_else(|e| e.into_inner()).retire = true;
            let _ = r.wake.try_send(());
        }
    }
    let mut save = false;
    for j in &changes.added {
        // Whoever can create files in the directory creates streams: one
        // a listener refuses (its output exists, not written by it) is
        // left out, and the others run on.
        streams.prepare(j, checkpoint);
        match open_journal(s.cfg, j, checkpoint, s.clock, s.stop, false, &mut save) {
            Ok(workers) => {
                for (w, tx, dir) in workers {
                    running.push(spawn(w, tx, dir, s.ev_tx)?);
                }
            }
            Err(e) => {
                checkpoint.journals.remove(&j.name);
                tracing::error!(stream = %j.name, error = %e, "the new file is not followed (until the daemon is started again)");
            }
        }
    }
    save |= end_streams(streams, checkpoint, running, versions);
    if save {
        checkpoint.save(&s.cfg.state_dir)?;
    }
    Ok(())
}

/// Removes from `running` and from the checkpoint the streams told to end
/// whose workers have all ended; returns whether any did (save then).
fn end_streams(
    streams: &mut Streams,
    checkpoint: &mut Checkpoint,
    running: &mut Vec<Running>,
    versions: &mut BTreeMap<(String, String), u64>,
) -> bool {
    let mut ended_any = false;
    let ended = |r: &Running| {
        r.done.load(Ordering::SeqCst) && {
            let sh = r.shared.lock().unwrap_or_else(|e| e.into_inner());
            sh.retire && sh.status == WorkerStatus::Done
        }
    };
    let mut names: Vec<String> = running
        .iter()
        .filter(|r| ended(r))
        .map(|r| r.journal.clone())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        if running.iter().any(|r| r.journal == name && !ended(r)) {
            continue;
        }
        let (gone, keep): (Vec<Running>, Vec<Running>) =
            running.drain(..).partition(|r| r.journal == name);
        *running = keep;
        let mut last = 0;
        for r in gone {
            let _ = r.handle.join();
            let sh = r.shared.lock().unwrap_or_else(|e| e.into_inner());
            last = last.max(sh.cursor.sequence);
            drop(sh);
            versions.remove(&(r.journal, r.listener));
        }
        checkpoint.journals.remove(&name);
        streams.ended(&name, last);
        tracing::info!(stream = %name, "stream ended: its file was deleted and its last entries delivered");
        ended_any = true;
    }
    ended_any
}

/// `--once` listeners that gave up retrying: the run did not deliver everything.
fn unfinished(statuses: &[WorkerStatus]) -> Option<String> {
    let why: Vec<&str> = statuses
        .iter()
        .filter_map(|s| match s {
            WorkerStatus::Unfinished(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    (!why.is_empty()).then(|| why.join("; "))
}

fn failed(running: &[Running]) -> Option<String> {
    running.iter().find_map(
        |r| match &r.shared.lock().unwrap_or_else(|e| e.into_inner()).status {
            WorkerStatus::Failed(m) => Some(m.clone()),
            _ => None,
        },
    )
}

/// Why a daemon that was not told to stop has nothing left to run: every
/// listener was disabled. Exiting 0 would tell a supervisor all is well.
fn all_disabled(running: &[Running]) -> Option<String> {
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
fn once_disabled(running: &[Running]) -> Option<String> {
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

/// Where a listener with no checkpoint starts: the follower's first position.
fn start_cursor(f: &Follower) -> Cursor {
    let pos = f.position().unwrap_or(Position {
        sequence: 1,
        offset: 0,
        line: 1,
    });
    Cursor {
        sequence: pos.sequence,
        offset: pos.offset,
        line: pos.line.max(1),
        identity: f.identity_at(pos),
    }
}

/// `STATE/listeners/JOURNAL/LISTENER`, mode 0700.
pub fn listener_state_dir(
    state: &Path,
    journal: &str,
    listener: &str,
) -> Result<PathBuf, logdaemon_state::StateError> {
    let d = state.join("listeners").join(journal).join(listener);
    logdaemon_state::ensure_state_dir(&d)?;
    Ok(d)
}

fn save_if_changed(
    cfg: &Config,
    checkpoint: &mut Checkpoint,
    running: &[Running],
    versions: &mut BTreeMap<(String, String), u64>,
) -> Result<(), EngineError> {
    let mut changed = false;
    for r in running {
        let s = r.shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let key = (r.journal.clone(), r.listener.clone());
        if versions.get(&key) == Some(&s.version) || s.version == 0 {
            continue;
        }
        versions.insert(key, s.version);
        let js = checkpoint.journals.entry(r.journal.clone()).or_default();
        js.listeners.insert(r.listener.clone(), s.cursor);
        if s.owed_reported {
            js.pending_gaps.remove(&r.listener);
        }
        // The files finished before the cursors, by sequence, the latest few.
        for f in s.finished {
            js.finished.retain(|x| x.sequence != f.sequence);
            js.finished.push(f);
        }
        js.finished.sort_by_key(|f| f.sequence);
        let keep = js.finished.len().saturating_sub(16);
        js.finished.drain(..keep);
        changed = true;
    }
    if !changed {
        return Ok(());
    }
    // The journal's reader position: the furthest of its listeners. (Of
    // each running journal: a glob journal's streams are journals too.)
    for name in running.iter().map(|r| &r.journal) {
        if let Some(js) = checkpoint.journals.get_mut(name) {
            if let Some(max) = js
                .listeners
                .values()
                .max_by_key(|c| (c.sequence, c.offset))
                .cloned()
            {
                if (max.sequence, max.offset) >= (js.reader.sequence, js.reader.offset)
                    || js.reader.line == 0
                {
                    js.reader = max;
                }
            }
        }
    }
    crate::retarget::remember(cfg, checkpoint);
    checkpoint.save(&cfg.state_dir)?;
    tracing::debug!(state_dir = %cfg.state_dir.display(), "checkpoint written");
    Ok(())
}

enum Event {
    /// Something changed in these directories (empty: anywhere, e.g. after an overflow).
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
fn watch<W: notify::Watcher>(cfg: &Config, tx: Sender<Event>) -> Option<W> {
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
            Ok(e) => Event::Changed(
                e.paths
                    .iter()
                    .filter_map(|p| p.parent().map(Path::to_path_buf))
                    .collect(),
            ),
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
    for d in dirs {
        if let Err(e) = w.watch(&d, notify::RecursiveMode::NonRecursive) {
            // Without events the periodic reconciliation still finds everything.
            tracing::warn!(dir = %d.display(), error = %e, "cannot watch directory; falling back to periodic checks");
        }
    }
    Some(w)
}

struct SignalGuard(signal_hook::iterator::Handle);

impl Drop for SignalGuard {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Takes SIGTERM and SIGINT: raises `stop` at once (workers that have not
/// started yet then read nothing), counts the request for listeners busy in
/// a call (a second one makes a running hook be killed at once) and tells
/// the engine's loop. SIGHUP, which would otherwise kill the process without
/// a save, asks the loop for a save.
fn signal_thread(tx: Sender<Event>, stop: Arc<AtomicBool>) -> Option<SignalGuard> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .ok()?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for s in signals.forever() {
                if s == signal_hook::consts::SIGHUP {
                    let _ = tx.send(Event::Hangup);
                    continue;
                }
                stop.store(true, Ordering::SeqCst);
                host::note_stop_request();
                let _ = tx.send(Event::Signal(s));
            }
        })
        .ok()?;
    Some(SignalGuard(handle))
}

#[cfg(test)]
mod tests {
    /// The done flag is set before the wake-up, while the thread has not
    /// exited yet: here it cannot exit until the test has seen the flag.
    #[test]
    fn a_worker_is_done_when_it_wakes_the_loop_not_when_its_thread_exits() {
        let (wake_tx, wake_rx) = crossbeam_channel::unbounded::<()>();
        let (exit_tx, exit_rx) = crossbeam_channel::unbounded::<()>();
        let (handle, done) = super::spawn_worker(
            "w".into(),
            || {},
            move || {
                let _ = wake_tx.send(());
                let _ = exit_rx.recv();
            },
        )
        .unwrap();
        wake_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("woken");
        assert!(
            done.load(std::sync::atomic::Ordering::SeqCst),
            "done once woken"
        );
        assert!(!handle.is_finished(), "the thread is still there");
        exit_tx.send(()).unwrap();
        handle.join().unwrap();
    }

    use super::*;
    use std::path::Path;

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
            Event::Changed(dirs) => assert!(
                dirs.is_empty() || dirs.iter().any(|p| p == d.path()),
                "{dirs:?}"
            ),
            Event::Signal(s) => panic!("signal {s}"),
            Event::Hangup => panic!("SIGHUP"),
        }
        drop(w);
    }
}
