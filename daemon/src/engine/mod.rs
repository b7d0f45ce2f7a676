//! `logdaemon run`: wires config, checkpoint, plugins, followers and
//! workers together, watches the files, handles signals and writes the
//! checkpoint.
//!
//! Who owns what:
//! - this thread (the engine's loop) owns the checkpoint and the list of
//!   workers' shared states; it routes file events to the workers they
//!   concern ([`watch::Router`]), takes signals from the signal thread, and
//!   writes the checkpoint once a second when a cursor moved, and at the end;
//! - each journal has one reader ([`crate::tap::Tap`], made in
//!   [`open`]) whose batches its listeners' workers share;
//! - each (journal, listener) has a [`Worker`]: its cursor, its retries
//!   (and its own follower while it reads on its own). Workers are tasks of the [`pool::Pool`]: a few threads
//!   step them in turn, and one more joins for each listener that holds a
//!   thread in a blocking call, so threads do not grow with files;
//! - the watcher (inotify through `notify`) and the signals have a thread
//!   each; the pool's timer thread wakes workers whose wait is over.
//!
//! Events only make the daemon prompt: with `watch = "poll"`, without a
//! watcher (none could be created) or after the kernel's event queue
//! overflowed, each worker still re-checks its files every `reconcile_every`.

mod limits;
mod open;
mod outcome;
pub(crate) mod pool;
mod reload;
mod save;

use outcome::{all_disabled, failed, once_disabled, unfinished};
use save::save_if_changed;
mod signals;
pub(crate) mod state_dirs;
mod streams;
pub(crate) mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;
use logdaemon_sdk::Position;
use logdaemon_state::{Cursor, StateLock};

use crate::config::{Config, JournalConfig, ListenerConfig};
use crate::follow::{FollowError, Follower};
use crate::host;
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
    /// The worker's task in the pool.
    id: usize,
    /// Stops this worker alone (a reload removed or changed it).
    halt: Arc<AtomicBool>,
    /// Stopped by a reload: not part of the run's outcome any more.
    retired: bool,
    /// The version of `shared` last copied into the checkpoint (0: none
    /// yet; a worker's versions start at 1). Engine thread only.
    saved: std::cell::Cell<u64>,
}

/// The running workers, the pool that runs them and the routes of file
/// events to them. Owned by the engine's loop.
struct Fleet {
    pool: pool::Pool,
    router: watch::Router,
    running: Vec<Running>,
    /// Listeners to start again once their old worker is done (a reload
    /// changed them): the new config's journal and listener, and the pool
    /// id of the old worker.
    pending: Vec<(Arc<JournalConfig>, Arc<ListenerConfig>, usize)>,
    /// Bumped whenever workers start or leave (the status follows).
    generation: u64,
}

impl Fleet {
    /// Runs `w`; `spread` is the fraction of `reconcile_every` its first
    /// periodic check waits.
    fn launch(&mut self, w: Worker, spread: f64) {
        let path = w.journal.path.clone();
        let (journal, listener) = (w.journal.name.clone(), w.listener.name.clone());
        let shared = w.shared.clone();
        let halt = w.halt_flag();
        let w = w.with_pool(self.pool.spawner(), spread);
        let id = self.pool.add(Box::new(w));
        self.router.add(&path, id);
        self.generation += 1;
        self.running.push(Running {
            journal,
            listener,
            shared,
            id,
            halt,
            retired: false,
            saved: std::cell::Cell::new(0),
        });
    }

    /// For the status: the workers that run (and the config with the
    /// journals they follow, a glob journal's streams as journals).
    fn status_view(&self, current: &Config) -> (Config, Vec<crate::status::Listed>) {
        let listed: Vec<_> = self
            .current()
            .iter()
            .map(|r| (r.journal.clone(), r.listener.clone(), r.shared.clone()))
            .collect();
        let mut cfg = current.clone();
        // In the order they run (config order, then what started since).
        let mut names: Vec<&String> = Vec::new();
        for (j, _, _) in &listed {
            if !names.contains(&j) {
                names.push(j);
            }
        }
        cfg.journals = names
            .into_iter()
            .filter_map(|n| {
                current
                    .journals
                    .iter()
                    .find(|j| &j.name == n)
                    .cloned()
                    .or_else(|| crate::streams::config_of(current, n).map(Arc::new))
            })
            .collect();
        (cfg, listed)
    }

    /// The workers that make the run's outcome.
    fn current(&self) -> Vec<&Running> {
        self.running.iter().filter(|r| !r.retired).collect()
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    pool::panic_message(p)
}

/// Gives the allocator's free memory back to the system. Opening
/// thousands of followers and listeners leaves freed buffers between the
/// small allocations that stay, resident although unused; the allocator
/// returns them only when asked.
fn trim_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator; it
    // takes no pointer and touches nothing in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How often the engine's loop looks over every worker (see `run`).
const HOUSEKEEPING: Duration = Duration::from_millis(50);

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
    if let Some((soft, hard)) = limits::raise_open_files() {
        let listeners: usize = cfg.journals.iter().map(|j| j.listeners.len()).sum();
        tracing::info!(
            open_files = soft,
            hard_limit = hard,
            journals = cfg.journals.len(),
            listeners,
            "limit of open files"
        );
    }
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
    let (mut store, loaded) = logdaemon_state::Store::open(&cfg.state_dir)?;
    let mut checkpoint = loaded.unwrap_or_default();
    crate::retarget::check(cfg, &checkpoint).map_err(EngineError::Failed)?;

    // Everything that can fail at start fails before any thread runs.
    let mut workers = Vec::new();
    let mut pinned = false;
    let ctx = open::Context {
        cfg,
        clock: clock.clone(),
        stop: stop.clone(),
        once: opts.once,
        taps: Default::default(),
    };
    let mut streams = crate::streams::Streams::new(cfg);
    let initial = streams.initial(cfg, &mut checkpoint);
    // Every listener's state directory in one go (see `ensure_state_dirs`),
    // those of the earlier layout moved into place first.
    let pairs = || {
        initial.iter().flat_map(|j| {
            j.listeners
                .iter()
                .map(|l| (j.name.as_str(), l.name.as_str()))
        })
    };
    state_dirs::migrate(&cfg.state_dir, pairs())?;
    let dirs: Vec<PathBuf> = pairs()
        .map(|(j, l)| state_dirs::path(&cfg.state_dir, j, l))
        .collect();
    logdaemon_state::ensure_state_dirs(&dirs)?;
    // Taken one by one: the workers share each journal's table, and no
    // copy of it is left behind (thousands of journals).
    for j in initial {
        let j = ctx.journal_of(j);
        for (w, pin) in ctx.workers(&j, &mut checkpoint)? {
            pinned |= pin;
            workers.push((w, j.path.clone()));
        }
    }

    if pinned {
        store.save(&checkpoint)?;
    }
    crate::retarget::remember(cfg, &mut checkpoint, None);
    store.compact(&checkpoint)?; // a version-1 file migrates, a log left by a crash folds in

    let listed = workers.iter().map(|(w, ..)| {
        (
            w.journal.name.clone(),
            w.listener.name.clone(),
            w.shared.clone(),
        )
    });
    let status = crate::status::start(cfg, listed.collect()).map_err(EngineError::Failed)?;
    let done_tx = ev_tx.clone();
    // Wakes the main loop: it checks whether every worker is done.
    let pool = pool::Pool::new(base_threads(), move || {
        let _ = done_tx.send(Event::Changed(Vec::new()));
    })
    .map_err(|e| EngineError::Failed(format!("cannot start a thread: {e}")))?;
    let mut fleet = Fleet {
        pool,
        router: watch::Router::default(),
        running: Vec::new(),
        pending: Vec::new(),
        generation: 0,
    };
    let total = workers.len().max(1);
    for (i, (w, _)) in workers.into_iter().enumerate() {
        fleet.launch(w, i as f64 / total as f64);
    }

    // `--once` delivers what is there and stops: file events would only
    // wake workers about to finish (every wait of theirs has a timer), and
    // an inotify instance costs the process 5 to 15 ms more at its exit,
    // where the kernel waits for a grace period to close it: as long as a
    // small catch-up takes.
    let mut watcher = if opts.once {
        watch::events_missed();
        None
    } else {
        watch::watch::<notify::RecommendedWatcher>(cfg, ev_tx.clone())
    };
    tracing::info!(
        journals = cfg.journals.len(),
        listeners = fleet.running.len(),
        once = opts.once,
        "running"
    );
    let mut notifier = crate::notify::Notifier::ready(fleet.running.iter().map(|r| &r.shared));
    let mut progress = crate::progress::Progress::new(cfg);

    let mut status_generation = fleet.generation;
    // The config as reloaded (its journals; the rest needs a restart).
    let mut current = cfg.clone();
    let mut snapshot =
        reload::Snapshot::of(&std::fs::read_to_string(&cfg.file).unwrap_or_default());
    let mut last_write = Instant::now();
    trim_memory();
    // The next trim 2 s after the start, once the first reads are done.
    let mut last_trim = Instant::now()
        .checked_sub(Duration::from_secs(28))
        .unwrap_or_else(Instant::now);
    let mut signalled = false;
    // The looks over every worker (done? failed? the notifier, progress)
    // are taken at most every HOUSEKEEPING, not for each event: thousands
    // of journals written at once send thousands of events.
    let mut last_housekeeping: Option<Instant> = None;
    // The workers' status change count (`worker::status_changes`) and the
    // fleet's generation at the last look over every worker's status, and
    // their change count (`worker::changes`) at the last save: while they
    // stay, thousands of workers are not looked at again.
    let (mut looked_at, mut saved_at) = (None, None);
    loop {
        let housekeeping = last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING);
        if housekeeping {
            last_housekeeping = Some(Instant::now());
        }
        fleet.restart_pending(&ctx, &current, &mut checkpoint, &mut store)?;
        // The cheap conditions first: a daemon that runs on does not look
        // at every task of the pool at each turn.
        let done = housekeeping
            && (opts.once || !streams.any() || stop.load(Ordering::SeqCst))
            && fleet.pending.is_empty()
            && fleet.pool.all_done();
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
        let first = ev_rx.recv_timeout(if housekeeping {
            Duration::from_millis(500)
        } else {
            HOUSEKEEPING
        });
        // What else is queued is taken in the same turn.
        let events: Vec<Result<Event, _>> = std::iter::once(first)
            .chain(ev_rx.try_iter().take(4096).map(Ok))
            .collect();
        let mut urgent = false;
        for ev in events {
            match ev {
                Ok(Event::Changed(paths)) if paths.is_empty() => {
                    urgent = true;
                    fleet.pool.wake_all()
                }
                Ok(Event::Changed(paths)) => {
                    for p in &paths {
                        fleet.router.route(p, |id| fleet.pool.wake(id));
                    }
                    // New files of glob journals: their directories are looked at.
                    let mut dirs: Vec<PathBuf> = paths
                        .iter()
                        .filter_map(|p| p.parent().map(Path::to_path_buf))
                        .collect();
                    dirs.dedup();
                    fleet.update_streams(
                        &ctx,
                        &mut streams,
                        Some(&dirs),
                        &mut checkpoint,
                        &mut store,
                    )?;
                }
                Ok(Event::Hangup) => {
                    urgent = true;
                    save_if_changed(&current, &mut checkpoint, &fleet.running, &mut store)?;
                    last_write = Instant::now();
                    tracing::info!(
                        signal = signal_hook::consts::SIGHUP,
                        "SIGHUP: checkpoint saved; reloading the config"
                    );
                    if !opts.once && !stop.load(Ordering::SeqCst) {
                        fleet.reload(
                            &ctx,
                            &mut current,
                            &mut snapshot,
                            &mut checkpoint,
                            &mut store,
                            watcher.as_mut(),
                        )?;
                    }
                }
                Ok(Event::Signal(sig)) => {
                    urgent = true;
                    signalled = true;
                    tracing::info!(signal = sig, "stopping: finishing the batch in hand");
                    stop.store(true, Ordering::SeqCst);
                    fleet.pool.wake_all();
                }
                Err(_) => {}
            }
        }
        if urgent {
            last_housekeeping = None;
        }
        if !housekeeping {
            continue;
        }
        // Loaded before the looks below: a change made during them moves
        // the count past it, and the next turn looks again.
        let count = crate::worker::changes();
        // Statuses (and the set of workers) are looked at when they moved:
        // a cursor moving in one of thousands of journals is no reason to
        // lock every worker 20 times a second.
        let statuses = (crate::worker::status_changes(), fleet.generation);
        let moved = looked_at != Some(statuses);
        looked_at = Some(statuses);
        if moved && failed(&fleet.current()).is_some() && !stop.load(Ordering::SeqCst) {
            stop.store(true, Ordering::SeqCst);
            fleet.pool.wake_all();
        }
        fleet.update_streams(&ctx, &mut streams, None, &mut checkpoint, &mut store)?;
        if fleet.generation != status_generation {
            status_generation = fleet.generation;
            let (c, listed) = fleet.status_view(&current);
            status.update(c, listed);
        }
        notifier.tick(moved, fleet.running.iter().map(|r| &r.shared));
        progress.tick(
            &current,
            fleet
                .running
                .iter()
                .map(|r| (r.journal.as_str(), r.listener.as_str(), &r.shared)),
        );
        if last_trim.elapsed() >= Duration::from_secs(30) {
            trim_memory();
            last_trim = Instant::now();
        }
        if last_write.elapsed() >= Duration::from_secs(1) && saved_at != Some(count) {
            saved_at = Some(count);
            save_if_changed(&current, &mut checkpoint, &fleet.running, &mut store)?;
            last_write = Instant::now();
        }
    }
    notifier.stopping();
    drop(signals);
    drop(watcher);
    let now = fleet.current();
    let failure = failed(&now).or_else(|| {
        if opts.once {
            once_disabled(&now)
        } else if signalled {
            None
        } else {
            all_disabled(&now)
        }
    });
    save_if_changed(&current, &mut checkpoint, &fleet.running, &mut store)?;
    crate::retarget::remember(&current, &mut checkpoint, None);
    store.compact(&checkpoint)?; // checkpoint.toml alone is the whole checkpoint after a stop
    let Fleet { pool, running, .. } = fleet;
    pool.shutdown();
    // A last status write, with the workers' final states.
    drop(status);
    let mut running_status = Vec::new();
    for r in running.iter().filter(|r| !r.retired) {
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

/// `STATE/listeners/JOURNAL@LISTENER`, mode 0700 (see [`state_dirs`]).
pub fn listener_state_dir(
    state: &Path,
    journal: &str,
    listener: &str,
) -> Result<PathBuf, logdaemon_state::StateError> {
    // A listener added by a reload may have a directory of the earlier layout.
    state_dirs::migrate(state, [(journal, listener)])?;
    let d = state_dirs::path(state, journal, listener);
    logdaemon_state::ensure_state_dir(&d)?;
    Ok(d)
}
