//! `logdaemon run`: wires config, checkpoint, plugins, followers and
//! workers together, watches the files, handles signals and writes the
//! checkpoint.
//!
//! Who owns what:
//! - this thread (the engine's loop) owns the checkpoint and the list of
//!   workers' shared states; it routes file events to the workers they
//!   concern ([`watch::Router`]), takes signals from the signal thread, and
//!   writes the checkpoint once a second when a cursor moved, and at the end;
//! - each (journal, listener) has a [`Worker`]: its follower, its cursor,
//!   its retries. Workers are tasks of the [`pool::Pool`]: a few threads
//!   step them in turn, and one more joins for each listener that holds a
//!   thread in a blocking call, so threads do not grow with files;
//! - the watcher (inotify through `notify`) and the signals have a thread
//!   each; the pool's timer thread wakes workers whose wait is over.
//!
//! Events only make the daemon prompt: with `watch = "poll"`, without a
//! watcher (none could be created) or after the kernel's event queue
//! overflowed, each worker still re-checks its files every `reconcile_every`.

mod outcome;
pub(crate) mod pool;
mod save;

use outcome::{all_disabled, failed, once_disabled, unfinished};
use save::save_if_changed;
mod signals;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;
use logdaemon_sdk::Position;
use logdaemon_state::{Checkpoint, Cursor, StateLock};

use crate::config::Config;
use crate::follow::{FollowError, Follower};
use crate::host::{self, Instance, OpenParams};
use crate::quiet::{self, Clock, ScaledClock, SystemClock};
use crate::worker::{Shared, Worker};
use watch::Event;

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
}

/// The text of a panic's payload.
pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    pool::panic_message(p)
}

/// Threads of the pool that read, frame and call listeners: one per core,
/// at least 2, at most 8 (more join while listeners block).
fn base_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
}

/// Runs the daemon until a signal (or, with `once`, until everything
/// available is delivered). Returns once the checkpoint is written.
pub fn run(cfg: &Config, opts: RunOptions) -> Result<(), EngineError> {
    // Signals first: one that arrives while plugins open (which can take a
    // while) is an orderly stop once they have, not death by the signal.
    let (ev_tx, ev_rx) = unbounded::<Event>();
    let stop = Arc::new(AtomicBool::new(false));
    let signals = signals::signal_thread(ev_tx.clone(), stop.clone());
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
    for j in &cfg.journals {
        let mut j = j.clone();
        if opts.once {
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
                    pinned = true;
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
            let w = Worker::new(
                j.clone(),
                l.clone(),
                instance,
                follower,
                cursor,
                clock.clone(),
                stop.clone(),
                opts.once,
                Some(cfg.state_dir.clone()),
            )
            .owe(
                checkpoint
                    .journals
                    .get(&j.name)
                    .and_then(|js| js.pending_gaps.get(&l.name))
                    .cloned(),
            );
            workers.push((w, j.path.clone()));
        }
    }

    if pinned {
        checkpoint.save(&cfg.state_dir)?;
    }

    let done_tx = ev_tx.clone();
    // Wakes the main loop: it checks whether every worker is done.
    let pool = pool::Pool::new(base_threads(), move || {
        let _ = done_tx.send(Event::Changed(Vec::new()));
    })
    .map_err(|e| EngineError::Failed(format!("cannot start a thread: {e}")))?;
    let mut running = Vec::new();
    let mut router = watch::Router::default();
    let total = workers.len().max(1);
    for (i, (w, path)) in workers.into_iter().enumerate() {
        running.push(Running {
            journal: w.journal.name.clone(),
            listener: w.listener.name.clone(),
            shared: w.shared.clone(),
        });
        let w = w.with_pool(pool.spawner(), i as f64 / total as f64);
        let id = pool.add(Box::new(w));
        router.add(&path, id);
    }

    let _watcher = watch::watch::<notify::RecommendedWatcher>(cfg, ev_tx.clone());
    tracing::info!(
        journals = cfg.journals.len(),
        listeners = running.len(),
        once = opts.once,
        "running"
    );

    let mut versions: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut last_write = Instant::now();
    let mut signalled = false;
    loop {
        if pool.all_done() {
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
            Ok(Event::Changed(paths)) if paths.is_empty() => pool.wake_all(),
            Ok(Event::Changed(paths)) => {
                for p in &paths {
                    router.route(p, |id| pool.wake(id));
                }
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
                pool.wake_all();
            }
            Err(_) => {}
        }
        if failed(&running).is_some() && !stop.load(Ordering::SeqCst) {
            stop.store(true, Ordering::SeqCst);
            pool.wake_all();
        }
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
    pool.shutdown();
    let mut running_status = Vec::new();
    for r in running {
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
