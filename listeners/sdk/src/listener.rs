//! The safe trait a listener implements, and what it is given.

use std::path::{Path, PathBuf};

use crate::abi::{self, Bytes, HostApi};
use crate::entry::{Entry, Gap, Position};
use crate::run::Run;

/// How a call failed; see [`abi::Status`] for what the host does with each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    Retry,
    Error,
    Fatal,
}

/// How far a successful call acknowledges. See [`Listener`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ack {
    /// Everything delivered so far is durably handled.
    All,
    /// Everything before this position is durably handled; what was
    /// delivered after it is held by the listener (in memory) and comes again
    /// after a crash or a failed call.
    Upto(Position),
}

/// A failed call: what kind, why, and optionally how far it got durably
/// anyway (everything after that is delivered again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    pub ack: Option<Position>,
}

impl Failure {
    pub fn retry(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Retry,
            message: message.into(),
            ack: None,
        }
    }
    pub fn error(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Error,
            message: message.into(),
            ack: None,
        }
    }
    pub fn fatal(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Fatal,
            message: message.into(),
            ack: None,
        }
    }
    /// Records that everything before `p` was handled durably anyway.
    pub fn with_ack(mut self, p: Position) -> Failure {
        self.ack = Some(p);
        self
    }
    pub(crate) fn status(&self) -> abi::Status {
        match self.kind {
            FailureKind::Retry => abi::Status::Retry,
            FailureKind::Error => abi::Status::Error,
            FailureKind::Fatal => abi::Status::Fatal,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

/// Log levels of [`Logger`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// Logs through the daemon's logger, tagged with the listener's name.
/// Cheap to copy; valid for the plugin's lifetime.
#[derive(Clone, Copy)]
pub struct Logger {
    host: *const HostApi,
}

// SAFETY: the host guarantees its log function is thread-safe and outlives the plugin.
unsafe impl Send for Logger {}
// SAFETY: as for Send: `HostApi` is read-only and `log` may be called from any thread.
unsafe impl Sync for Logger {}

impl Logger {
    /// A logger that drops everything (for tests of a listener outside a host).
    pub fn discard() -> Logger {
        Logger {
            host: std::ptr::null(),
        }
    }

    pub fn log(&self, level: Level, msg: &str) {
        if self.host.is_null() {
            return;
        }
        let lvl = match level {
            Level::Error => abi::LEVEL_ERROR,
            Level::Warn => abi::LEVEL_WARN,
            Level::Info => abi::LEVEL_INFO,
            Level::Debug => abi::LEVEL_DEBUG,
        };
        // SAFETY: non-null host pointers come from the host's OpenArgs.
        unsafe {
            let host = &*self.host;
            (host.log)(host.ctx, lvl, Bytes::new(msg.as_bytes()));
        }
    }
    /// How many times the daemon was told to stop: 0 while it runs, 1
    /// after the first SIGTERM/SIGINT (finish or abandon the call in hand
    /// soon; what is not done is delivered again), 2 or more when the
    /// operator insists (abandon it now). Always 0 outside a host, or from
    /// a host older than this call.
    pub fn stop_requests(&self) -> u32 {
        if self.host.is_null() {
            return 0;
        }
        // SAFETY: non-null host pointers come from the host's OpenArgs. The
        // fields are read through the raw pointer (a reference would claim
        // the whole struct, which an older host's is not), and
        // `stop_requests` only when `struct_size` covers it.
        unsafe {
            let host = self.host;
            let size = std::ptr::addr_of!((*host).struct_size).read() as usize;
            let need = std::mem::offset_of!(HostApi, stop_requests)
                + std::mem::size_of::<abi::StopRequestsFn>();
            if size < need {
                return 0;
            }
            match std::ptr::addr_of!((*host).stop_requests).read() {
                Some(f) => f(std::ptr::addr_of!((*host).ctx).read()),
                None => 0,
            }
        }
    }
    pub fn error(&self, msg: &str) {
        self.log(Level::Error, msg)
    }
    pub fn warn(&self, msg: &str) {
        self.log(Level::Warn, msg)
    }
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg)
    }
    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg)
    }
}

/// Everything a listener learns when it is opened.
pub struct OpenContext<'a> {
    /// The listener's name in the config.
    pub listener: &'a str,
    /// The journal's name in the config.
    pub journal: &'a str,
    /// `p4` or `lines`.
    pub format: &'a str,
    /// The journal's live path (absolute).
    pub journal_path: &'a Path,
    /// The listener's `[journal.listener.config]` table as TOML text.
    pub config_toml: &'a str,
    /// The directory of the daemon's config file; resolve relative paths here.
    pub config_dir: &'a Path,
    /// A directory private to this listener for its own durable state;
    /// it exists and is mode 0700.
    pub state_dir: &'a Path,
    /// Where the host will resume delivering. Entries before it were
    /// acknowledged earlier; a listener that keeps its own record of what it
    /// has done may find it is *ahead* of this cursor (a crash after its work
    /// and before the host's checkpoint) and must then skip what it already did.
    pub cursor: Position,
    pub logger: Logger,
}

impl OpenContext<'_> {
    /// Resolves a path from the config against the config file's directory.
    pub fn resolve(&self, p: impl AsRef<Path>) -> PathBuf {
        let p = p.as_ref();
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.config_dir.join(p)
        }
    }
}

/// A listener: the classic logDaemon chain semantics as a Rust trait.
///
/// Contract with the host, per listener, on one thread at a time:
/// - `open` once, then any sequence of the other calls; the plugin is never
///   unloaded, but the instance is dropped on shutdown.
/// - For each entry, in journal order, `is_handled` decides whether it goes
///   to `listen`. Entries not handled still move the cursor.
/// - `listen` gets a batch of handled entries, in order, with no gaps other
///   than unhandled entries and entries reported through `gap`.
/// - Every successful call returns an [`Ack`]. `Ack::All` acknowledges
///   everything delivered so far: the host may record its cursor past it at
///   any time and will not deliver it again, even after a crash.
///   `Ack::Upto(p)` acknowledges only what lies before `p`; the listener
///   holds the rest (an unsent digest, an open transaction) and acknowledges
///   it in a later call, typically `no_data` or a later `listen`. Held
///   entries are never lost: after a crash or a failed call the host
///   delivers everything after the last acknowledgement again, re-reading
///   from disk. A listener that holds entries must therefore drop what it
///   holds when a call fails, and expect them again.
/// - A failed call (`Err(Failure)`): `Retry`/`Error` make the host back off
///   (capped exponential) and redeliver after the acknowledgement; `Fatal`
///   (and a panic) applies the listener's `on_failure` policy.
/// - Delivery is at-least-once across crashes (the host's checkpoint may lag
///   an acknowledgement); a listener that must be exactly-once keeps its own
///   record of what it did and skips entries it finds it has already handled.
/// - `no_data(had_data)` after the journal's `quiet_after` of silence:
///   `had_data` is true on the first call after entries arrived, false on
///   later periodic calls (none when [`Listener::PERIODIC_NO_DATA`] is false).
/// - `flush` before the host writes its checkpoint on shutdown and at the
///   end of `run --once`.
/// - `gap` (only with `on_gap = "report"`): bytes that can no longer be
///   delivered, in stream order with the entries.
pub trait Listener: Sized + Send + 'static {
    /// Whether the host should split p4 records into [`Entry::op`] and
    /// [`Entry::fields`] for this listener. A listener that only uses
    /// [`Entry::raw`] sets this to `false` and saves the host that work
    /// (it can still split a record itself with [`crate::p4::split`]);
    /// its entries then have an empty op and no fields.
    const WANTS_FIELDS: bool = true;

    /// Whether [`Listener::is_handled`] filters. A listener that does not
    /// override it sets this to `false`, and the host hands it every entry
    /// without asking (a saving of one call per entry).
    const FILTERS: bool = true;

    /// Whether the listener wants the periodic `no_data(false)` calls while
    /// the journal stays quiet. A listener with nothing to do then (it
    /// writes each batch as it comes) sets this to `false`: it still hears
    /// `no_data(true)` once after entries stop, and an idle journal costs
    /// the host no call at all.
    const PERIODIC_NO_DATA: bool = true;

    fn open(ctx: &OpenContext<'_>) -> Result<Self, Failure>;

    /// Validates the config as [`Listener::open`] would, for `logdaemon
    /// check`: the same refusals with the same messages, and no side
    /// effects (create no file or directory, open no connection, start no
    /// process, keep no state). The default accepts everything.
    fn check(_ctx: &OpenContext<'_>) -> Result<(), Failure> {
        Ok(())
    }

    fn is_handled(&mut self, _entry: &Entry<'_>) -> bool {
        true
    }

    fn listen(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure>;

    /// Whether this instance takes its batches as runs of whole records
    /// ([`Listener::listen_runs`]) instead of entries. Asked once, right
    /// after `open`, and honoured only when [`Listener::FILTERS`] is false.
    /// A listener that only writes the bytes it is given (a raw copy) says
    /// yes and saves the host an entry per record, which is most of the
    /// cost of a catch-up on small records.
    fn takes_runs(&self) -> bool {
        false
    }

    /// A batch as runs of whole records, in journal order, when
    /// [`Listener::takes_runs`] said yes: the host then delivers what it
    /// follows this way. `listen` must still work: a replay (`logdaemon
    /// replay`) hands entries. The contract of `listen` holds, with runs for entries: an
    /// [`Ack::Upto`] names the start or end of a run (or a record boundary
    /// within one, such as a position the listener recorded as done).
    fn listen_runs(&mut self, _runs: &[Run<'_>]) -> Result<Ack, Failure> {
        Err(Failure::fatal(
            "the host delivered runs to a listener that does not take them",
        ))
    }

    fn no_data(&mut self, _had_data: bool) -> Result<Ack, Failure> {
        Ok(Ack::All)
    }

    fn flush(&mut self) -> Result<Ack, Failure> {
        Ok(Ack::All)
    }

    fn gap(&mut self, _gap: &Gap<'_>) -> Result<Ack, Failure> {
        Ok(Ack::All)
    }
}

#[doc(hidden)]
pub fn __logger(host: *const HostApi) -> Logger {
    Logger { host }
}
