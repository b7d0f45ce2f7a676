//! The daemon's configuration: a TOML file read in two stages.
//!
//! Stage one ([`raw`]) is plain serde. Stage two ([`Config::load`]) checks
//! every value and turns it into the types the engine uses, so that an error
//! names the file, the line, the key and why, before anything runs. Paths in
//! the file are relative to the file's own directory.

mod ctx;
pub mod glob;
pub mod http;
mod outputs;
pub mod raw;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::format::Format;
use crate::replay::timestamp::{Preset, TimestampSpec};
use crate::rotation::Scheme;
use ctx::{table_line, Ctx};
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

/// A name that is also a directory name under the state directory
/// (`listeners/JOURNAL/LISTENER`): `.` and `..` would put one listener's
/// records where another's, or the checkpoint, are.
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

fn journal(ctx: &Ctx<'_>, dir: &Path, j: &RawJournal) -> Result<JournalConfig, ConfigError> {
    let name = j.name.get_ref().clone();
    if !name_ok(&name) {
        return ctx.at(
            j.name.span(),
            format!("journal name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"),
        );
    }
    let p = j.path.get_ref();
    if p.is_empty() || p.ends_with('/') {
        return ctx.at(
            j.path.span(),
            format!("journal {name:?}: path {p:?} must name a file"),
        );
    }
    let path = dir.join(p);
    let format_name = j
        .format
        .as_ref()
        .map(|s| s.get_ref().as_str())
        .unwrap_or("p4");
    let format = match (format_name, &j.record_start) {
        ("p4", None) => Format::P4,
        ("p4", Some(rs)) => {
            return ctx.at(
                rs.span(),
                format!("journal {name:?}: record_start only applies to format = \"lines\""),
            )
        }
        ("lines", rs) => {
            let record_start = match rs {
                None => None,
                Some(s) => match regex::bytes::Regex::new(s.get_ref()) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        return ctx.at(
                            s.span(),
                            format!("journal {name:?}: record_start is not a valid regex: {e}"),
                        )
                    }
                },
            };
            Format::Lines { record_start }
        }
        (other, _) => {
            let span = j.format.as_ref().map(|s| s.span()).unwrap_or(0..0);
            return ctx.at(
                span,
                format!("journal {name:?}: format {other:?} is unknown; use \"p4\" or \"lines\""),
            );
        }
    };
    let quiet_after = duration(ctx, &j.quiet_after, "quiet_after", Duration::from_secs(2))?;
    let reconcile_every = duration(
        ctx,
        &j.reconcile_every,
        "reconcile_every",
        Duration::from_secs(1),
    )?;
    let scheme = match &j.rotated {
        None => Scheme::default_for(&format, &path),
        Some(list) => match Scheme::from_patterns(&path, list.get_ref()) {
            Ok(s) => s,
            Err(e) => return ctx.at(list.span(), format!("journal {name:?}: rotated: {e}")),
        },
    };
    let start = match &j.start {
        None => Start::Beginning,
        Some(v) => match v.get_ref() {
            toml::Value::String(s) if s == "beginning" => Start::Beginning,
            toml::Value::String(s) if s == "end" => Start::End,
            toml::Value::Integer(n) if *n >= 0 => Start::Journal(*n as u64),
            other => {
                return ctx.at(v.span(), format!("journal {name:?}: start = {other}: use \"beginning\", \"end\" or a journal number (start = 12)"))
            }
        },
    };
    let on_gap = match j.on_gap.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("stop", _)) => OnGap::Stop,
        Some(("report", _)) => OnGap::Report,
        Some((other, span)) => {
            return ctx.at(
                span,
                format!("journal {name:?}: on_gap {other:?}: use \"stop\" or \"report\""),
            )
        }
    };
    let batch_bytes = match &j.batch_bytes {
        None => 1 << 20,
        Some(b) if *b.get_ref() >= 4096 && *b.get_ref() <= 1 << 30 => *b.get_ref() as usize,
        Some(b) => {
            return ctx.at(
                b.span(),
                format!(
                    "journal {name:?}: batch_bytes {} must be between 4096 and 1 GiB",
                    b.get_ref()
                ),
            )
        }
    };
    let late_writes = match &j.late_writes {
        None => DEFAULT_LATE_WRITES,
        Some(s) => match humantime::parse_duration(s.get_ref()) {
            Ok(d) => d,
            Err(e) => {
                return ctx.at(s.span(), format!("journal {name:?}: late_writes: {:?} is not a duration ({e}); write e.g. \"2s\", \"30s\", or \"0s\" to leave a renamed file as soon as the writer has moved on", s.get_ref()))
            }
        },
    };
    let mut listeners: Vec<ListenerConfig> = Vec::new();
    for l in &j.listener {
        let lc = listener(ctx, dir, &name, l)?;
        if listeners.iter().any(|o| o.name == lc.name) {
            return ctx.at(
                l.name.span(),
                format!(
                    "journal {name:?}: listener name {:?} is used twice",
                    lc.name
                ),
            );
        }
        listeners.push(lc);
    }
    if listeners.is_empty() {
        return ctx.at(
            j.name.span(),
            format!(
                "journal {name:?} has no [[journal.listener]]: nothing would receive its entries"
            ),
        );
    }
    Ok(JournalConfig {
        name,
        path,
        format,
        quiet_after,
        reconcile_every,
        reconcile_explicit: j.reconcile_every.is_some(),
        scheme,
        start,
        on_gap,
        batch_bytes,
        late_writes,
        // Shared with each listener's worker (see `Config::journals`).
        listeners: shared(listeners),
    })
}

/// `[journal.timestamp]`: a preset or a regex and a format, and a zone.
fn timestamp(
    ctx: &Ctx<'_>,
    j: &JournalConfig,
    t: &toml::Spanned<RawTimestamp>,
) -> Result<TimestampSpec, ConfigError> {
    let name = &j.name;
    if matches!(j.format, Format::P4) {
        return ctx.at(t.span(), format!("journal {name:?}: timestamp only applies to format = \"lines\"; p4 entries take their time from the @ex@ marker of their transaction"));
    }
    let r = t.get_ref();
    let preset = match &r.preset {
        None => None,
        Some(p) => match Preset::from_name(p.get_ref()) {
            Some(p) => Some(p),
            None => {
                return ctx.at(
                    p.span(),
                    format!(
                        "journal {name:?}: timestamp.preset {:?} is unknown; use {}",
                        p.get_ref(),
                        Preset::NAMES
                    ),
                )
            }
        },
    };
    fn s(v: &Option<toml::Spanned<String>>) -> Option<&str> {
        v.as_ref().map(|v| v.get_ref().as_str())
    }
    TimestampSpec::new(preset, s(&r.regex), s(&r.format), s(&r.zone)).or_else(|e| {
        let key = match e.key {
            "zone" => &r.zone,
            "regex" => &r.regex,
            "format" => &r.format,
            _ => &r.preset,
        };
        let span = key.as_ref().map_or(t.span(), |k| k.span());
        ctx.at(
            span,
            format!("journal {name:?}: timestamp.{}: {}", e.key, e.message),
        )
    })
}

fn listener(
    ctx: &Ctx<'_>,
    dir: &Path,
    journal: &str,
    l: &RawListener,
) -> Result<ListenerConfig, ConfigError> {
    let name = l.name.get_ref().clone();
    if !name_ok(&name) {
        return ctx.at(l.name.span(), format!("journal {journal:?}: listener name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"));
    }
    let p = l.plugin.get_ref();
    let plugin = if p.contains('/') || p.ends_with(".so") {
        PluginRef::Path(dir.join(p))
    } else if BUILTIN_PLUGINS.contains(&p.as_str()) {
        PluginRef::Builtin(p.clone())
    } else {
        return ctx.at(
            l.plugin.span(),
            format!("listener {name:?}: plugin {p:?} is neither a built-in ({}) nor a path to a .so file", BUILTIN_PLUGINS.join(", ")),
        );
    };
    let on_failure = match l
        .on_failure
        .as_ref()
        .map(|s| (s.get_ref().as_str(), s.span()))
    {
        None | Some(("stop", _)) => OnFailure::Stop,
        Some(("disable", _)) => OnFailure::Disable,
        Some((other, span)) => {
            return ctx.at(
                span,
                format!("listener {name:?}: on_failure {other:?}: use \"stop\" or \"disable\""),
            )
        }
    };
    let retry_max = duration(ctx, &l.retry_max, "retry_max", Duration::from_secs(60))?;
    let (config_toml, key_lines) = match &l.config {
        None => (String::new(), Vec::new()),
        Some(t) => {
            let table: toml::Table = t
                .iter()
                .map(|(k, v)| (k.get_ref().clone(), v.clone()))
                .collect();
            let lines: BTreeMap<String, usize> = t
                .keys()
                .map(|k| (k.get_ref().clone(), ctx.line(k.span().start)))
                .collect();
            let lines = lines.into_iter().collect();
            (toml::to_string(&table).unwrap_or_default(), lines)
        }
    };
    Ok(ListenerConfig {
        name,
        plugin,
        on_failure,
        retry_max,
        config_toml,
        line: table_line(ctx, ctx.line(l.name.span().start)),
        key_lines,
    })
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
