//! The daemon's configuration: a TOML file read in two stages.
//!
//! Stage one ([`raw`]) is plain serde. Stage two ([`Config::load`]) checks
//! every value and turns it into the types the engine uses, so that an error
//! names the file, the line, the key and why, before anything runs. Paths in
//! the file are relative to the file's own directory.

mod ctx;
pub mod glob;
pub mod http;
mod journal;
mod outputs;
pub mod raw;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::format::Format;
use crate::replay::timestamp::{Preset, TimestampSpec};
use crate::rotation::Scheme;
use ctx::{table_line, Ctx};
use journal::{journal, timestamp};
use raw::{RawConfig, RawJournal, RawListener, RawTimestamp};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself.
    pub file: PathBuf,
    /// Its directory: relative paths in the file resolve here.
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    /// Where built-in plugins are looked up (default: next to the binary).
    pub plugin_dir: Option<PathBuf>,
    /// How changes to the journals' files are noticed.
    pub watch: Watch,
    /// How long a compressed rotated file that ends too soon may stay
    /// unchanged before it is called truncated (it may still be being
    /// written by its compressor). Zero: at once.
    pub compressed_wait: Duration,
    /// How often `run` logs a progress line per journal (delivered, lag); zero: never.
    pub log_progress_every: Duration,
    pub journals: Vec<std::sync::Arc<JournalConfig>>,
    /// Per journal name, its `timestamp` setting (line logs; used by replay).
    pub timestamps: std::collections::BTreeMap<String, TimestampSpec>,
    /// `[http]`: the status endpoint, off when absent.
    pub http: Option<http::HttpConfig>,
    /// Per journal name, the glob of a journal whose `path` has a wildcard
    /// (its files are followed as streams, see `crate::streams`).
    pub globs: BTreeMap<String, glob::GlobSpec>,
}

/// How the daemon learns that a journal's directory changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Watch {
    /// File events (inotify), plus the periodic check every
    /// `reconcile_every` for whatever events miss.
    #[default]
    Events,
    /// The periodic check alone: for file systems whose events do not come
    /// (NFS, FUSE, some container mounts) or a host short of inotify
    /// instances.
    Poll,
}

/// Where a journal with no checkpoint yet starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The first byte of the live file.
    Beginning,
    /// The current end of the live file: only new entries.
    End,
    /// The first byte of journal number N (`journal.N`, plain or compressed,
    /// or the live journal if it is N), then everything after it.
    Journal(u64),
    /// A file that appeared while the daemon ran (a glob journal's new
    /// stream): the first byte of its oldest rotated file whose name is not
    /// among these (the names in the directory at the look before), else
    /// of the live file; so a file rotated before it was seen is read whole.
    New(std::sync::Arc<std::collections::BTreeSet<String>>),
}

/// What to do when bytes we must deliver no longer exist anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnGap {
    /// Stop with an error that says what is missing and how to recover.
    Stop,
    /// Deliver a typed gap to the listeners and go on.
    Report,
}

/// What to do with a listener that fails for good (Fatal or a panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop the daemon (after writing the checkpoint).
    Stop,
    /// Disable this listener and keep the others running; its cursor stays.
    Disable,
}

#[derive(Debug, Clone)]
pub struct JournalConfig {
    pub name: String,
    /// The live file (absolute).
    pub path: PathBuf,
    pub format: Format,
    pub quiet_after: Duration,
    /// How often to re-check the file even without events.
    pub reconcile_every: Duration,
    /// `reconcile_every` was set in the config. When it was not, and file
    /// events are seen for the journal's directory, the check runs every
    /// [`EVENTS_RECONCILE`] instead: it is then only a safety net.
    pub reconcile_explicit: bool,
    pub scheme: Scheme,
    pub start: Start,
    pub on_gap: OnGap,
    /// Most bytes handed to a listener in one `listen` call.
    pub batch_bytes: usize,
    /// How long a renamed file is still watched for writers that hold it
    /// open, once the writer has moved on to the new live file.
    pub late_writes: Duration,
    pub listeners: Vec<std::sync::Arc<ListenerConfig>>,
}

/// `late_writes` when the config does not say.
pub const DEFAULT_LATE_WRITES: Duration = Duration::from_secs(2);

#[cfg(test)]
impl JournalConfig {
    /// The journal `name` at `path` as follower tests start from it: read
    /// from the beginning, stop at a gap, 1 MiB batches, no listeners, and
    /// the default rotated names of `format`.
    pub fn for_test(name: &str, path: &Path, format: Format) -> JournalConfig {
        JournalConfig {
            name: name.into(),
            path: path.to_path_buf(),
            scheme: Scheme::default_for(&format, path),
            format,
            quiet_after: Duration::from_secs(2),
            reconcile_every: Duration::from_secs(1),
            reconcile_explicit: false,
            start: Start::Beginning,
            on_gap: OnGap::Stop,
            batch_bytes: 1 << 20,
            late_writes: Duration::ZERO,
            listeners: Vec::new(),
        }
    }
}

/// How a listener's plugin is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// A built-in listener by name (`file`, `exec`, `hot-backup`, `email`, `nats`).
    Builtin(String),
    /// A shared library by path.
    Path(PathBuf),
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub plugin: PluginRef,
    pub on_failure: OnFailure,
    /// Cap of the retry backoff.
    pub retry_max: Duration,
    /// The `[journal.listener.config]` table, as TOML text for the plugin.
    pub config_toml: String,
    /// Line of the listener's `[[journal.listener]]` header (of its `name`
    /// key when no header is found above it).
    pub line: usize,
    /// Line of each top-level key of its config table, in key order (a
    /// vector: a map's first node had room for eleven, per listener).
    pub key_lines: Vec<(String, usize)>,
}

/// A config error: the file, the line (when known), the key and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {}, line {line}: {message}", path.display())]
    At {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("config {}: {message}", path.display())]
    General { path: PathBuf, message: String },
}

/// The periodic check of a journal whose directory's file events are seen,
/// unless `reconcile_every` is set: events make the daemon prompt, and the
/// check only catches what they could miss.
pub const EVENTS_RECONCILE: Duration = Duration::from_secs(10);

pub const BUILTIN_PLUGINS: &[&str] = &["file", "exec", "hot-backup", "email", "syslog", "nats"];

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Validates config text; `path` locates relative paths and names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let ctx = Ctx::new(path, text);
        let raw: RawConfig = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => ConfigError::At {
                path: path.to_path_buf(),
                line: ctx.line(span.start),
                message: e.message().to_string(),
            },
            None => ConfigError::General {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            },
        })?;
        let file = absolute(path);
        let dir = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let state_dir = match &raw.state_dir {
            Some(s) if s.get_ref().is_empty() => {
                return ctx.at(s.span(), "state_dir: must not be empty")
            }
            Some(s) => dir.join(s.get_ref()),
            None => dir.join("state"),
        };
        let plugin_dir = raw.plugin_dir.as_ref().map(|s| dir.join(s.get_ref()));
        let watch = match raw.watch.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
            None | Some(("events", _)) => Watch::Events,
            Some(("poll", _)) => Watch::Poll,
            Some((other, span)) => {
                return ctx.at(span, format!("watch {other:?}: use \"events\" (file events plus the periodic check) or \"poll\" (the periodic check every reconcile_every alone)"))
            }
        };
        let compressed_wait = match &raw.compressed_wait {
            None => crate::compress::DEFAULT_TRUNCATED_WAIT,
            Some(s) => match humantime::parse_duration(s.get_ref()) {
                Ok(d) => d,
                Err(e) => {
                    return ctx.at(s.span(), format!("compressed_wait: {:?} is not a duration ({e}); write e.g. \"60s\", \"5m\", or \"0s\" to call a short compressed file truncated at once", s.get_ref()))
                }
            },
        };
        let log_progress_every = match &raw.log_progress_every {
            None => Duration::from_secs(60),
            Some(s) => match humantime::parse_duration(s.get_ref()) {
                Ok(d) => d,
                Err(e) => {
                    return ctx.at(s.span(), format!("log_progress_every: {:?} is not a duration ({e}); write e.g. \"60s\", \"5m\", or \"0s\" for no progress lines", s.get_ref()))
                }
            },
        };
        if raw.journal.is_empty() {
            return Err(ConfigError::General {
                path: path.to_path_buf(),
                message: "no [[journal]] table: nothing to follow; add one (see `logdaemon init`)"
                    .into(),
            });
        }
        let mut journals = Vec::new();
        let mut timestamps = std::collections::BTreeMap::new();
        let mut globs = BTreeMap::new();
        for j in &raw.journal {
            let jc = journal(&ctx, &dir, j)?;
            match glob::spec(&ctx, &jc, j)? {
                Some(g) => {
                    globs.insert(jc.name.clone(), g);
                }
                None => glob::refuse_placeholder(&ctx, &jc, j)?,
            }
            if let Some(t) = &j.timestamp {
                timestamps.insert(jc.name.clone(), timestamp(&ctx, &jc, t)?);
            }
            if journals.iter().any(|o: &JournalConfig| o.name == jc.name) {
                return ctx.at(
                    j.name.span(),
                    format!(
                        "journal name {:?} is used twice; names must be unique",
                        jc.name
                    ),
                );
            }
            if let Some(o) = journals.iter().find(|o: &&JournalConfig| o.path == jc.path) {
                return ctx.at(
                    j.path.span(),
                    format!(
                        "journal {:?} follows {} which journal {:?} already follows",
                        jc.name,
                        jc.path.display(),
                        o.name
                    ),
                );
            }
            journals.push(jc);
        }
        glob::refuse_overlap(&ctx, &journals, &globs, &raw.journal)?;
        glob::refuse_glob_overlap(&ctx, &journals, &globs, &raw.journal)?;
        outputs::check(&ctx, &dir, &state_dir, &journals, &globs)?;
        let http = raw
            .http
            .as_ref()
            .map(|h| http::validate(&ctx, h))
            .transpose()?;
        Ok(Config {
            file,
            dir,
            state_dir,
            plugin_dir,
            watch,
            compressed_wait,
            log_progress_every,
            // Shared: the run, its reloads and the status take the journals
            // without copying their tables (thousands of journals).
            journals: shared(journals),
            timestamps,
            http,
            globs,
        })
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// A name that is also part of directory names under the state directory
/// (`listeners/JOURNAL@LISTENER`, see `engine::state_dirs`, and
/// `replays/JOURNAL/LISTENER`): `.` and `..` would put one listener's
/// records where another's, or the checkpoint, are; `@` is in no name, so
/// a listener's directory name splits at its last `@`.
fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn duration(
    ctx: &Ctx<'_>,
    v: &Option<toml::Spanned<String>>,
    key: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => match humantime::parse_duration(s.get_ref()) {
            Ok(d) if d > Duration::ZERO => Ok(d),
            Ok(_) => ctx.at(s.span(), format!("{key}: must be longer than zero")),
            Err(e) => ctx.at(
                s.span(),
                format!(
                    "{key}: {:?} is not a duration ({e}); write e.g. \"2s\", \"500ms\", \"1m\"",
                    s.get_ref()
                ),
            ),
        },
    }
}

/// `items` shared, in a vector of their number: collected in place, the
/// vector would keep the room of the tables it held (thousands of journals).
fn shared<T>(items: Vec<T>) -> Vec<std::sync::Arc<T>> {
    let mut v: Vec<_> = items.into_iter().map(std::sync::Arc::new).collect();
    v.shrink_to_fit();
    v
}

#[cfg(test)]
mod tests;
