//! `logdaemon replay` and `dump --config`: read a journal's history back,
//! any time range or position range, across its rotated and compressed
//! files, to standard output or into a fresh instance of a listener.
//!
//! The daemon already knows which files hold a journal's history and in
//! which order; replay lists them the same way ([`family`]), finds the
//! start of the range without reading what comes before it ([`scan`],
//! [`search`]), and hands the range's entries to a sink: the raw bytes,
//! JSON lines, or a listener with a state area of its own, so that a
//! replay never moves or disturbs the running daemon's cursors.

pub mod error;
pub mod family;
mod listener;
pub mod output;
pub mod range;
mod scan;
mod search;
pub mod select;
pub mod timestamp;

use std::io::{self, Write};
use std::path::PathBuf;

pub use error::ReplayError;
pub use output::OutputFormat;
pub use select::{Bounds, Pos};

use crate::config::Config;
use crate::format::{Format, Record};
use family::Member;
use scan::{Scan, Sink};
use select::Selector;

/// Where the entries go.
#[derive(Debug, Clone)]
pub enum Target {
    Stdout(OutputFormat),
    /// A fresh instance of the journal's listener of this name.
    Listener(String),
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub journal: String,
    pub bounds: Bounds,
    pub target: Target,
    /// A progress line on stderr (the CLI sets it on a terminal).
    pub progress: bool,
    /// Device and inode of the output when it is a file: refused when it
    /// is one of the journal's files (an output may never be an input).
    pub output_file: Option<(u64, u64)>,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub entries: u64,
    /// Entries whose own time was before the previous timed entry's.
    pub backwards: u64,
    /// A listener replay's state area.
    pub state: Option<PathBuf>,
}

/// Replays the range of `opts` from the journal's history on disk.
/// Entries written before an error stay written; a closed output
/// (`EPIPE`) ends the replay quietly.
pub fn replay(
    cfg: &Config,
    opts: &ReplayOptions,
    out: &mut dyn Write,
) -> Result<Summary, ReplayError> {
    // A glob journal's history is its streams', one per file (`NAME/FILE`).
    let stream = crate::streams::config_of(cfg, &opts.journal);
    let journal = cfg
        .journals
        .iter()
        .find(|j| j.name == opts.journal && !cfg.globs.contains_key(&j.name))
        .map(|j| &**j)
        .or(stream.as_ref())
        .ok_or_else(|| ReplayError::NoJournal {
            name: opts.journal.clone(),
            config: cfg.file.clone(),
            known: cfg
                .journals
                .iter()
                .map(|j| match crate::streams::files_now(cfg, &j.name) {
                    Some(files) => format!("{}/FILE (FILE one of: {})", j.name, files.join(", ")),
                    None => j.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let base = journal.name.split('/').next().unwrap_or_default();
    let spec = cfg.timestamps.get(base);
    let by_time = opts.bounds.since.is_some() || opts.bounds.until.is_some();
    if by_time && matches!(journal.format, Format::Lines { .. }) && spec.is_none() {
        return Err(ReplayError::NoTimestamp {
            journal: journal.name.clone(),
        });
    }
    let members = family::open(journal)?;
    refuse_output_as_input(&members, opts.output_file)?;
    let mut w = io::BufWriter::with_capacity(256 * 1024, out);
    let mut summary = Summary::default();
    let result = match &opts.target {
        Target::Stdout(f) => {
            let mut sink = output::Output::new(*f, &journal.format, &mut w);
            let mut progress = Progress::new(&mut sink, opts.progress);
            run_scan(
                journal,
                spec,
                &members,
                &opts.bounds,
                &mut progress,
                &mut summary,
            )
        }
        Target::Listener(name) => {
            let mut sink = listener::ListenerSink::new(cfg, journal, name)?;
            summary.state = Some(sink.dir.clone());
            let mut progress = Progress::new(&mut sink, opts.progress);
            let r = run_scan(
                journal,
                spec,
                &members,
                &opts.bounds,
                &mut progress,
                &mut summary,
            );
            drop(progress);
            r.and_then(|()| sink.finish())
        }
    };
    let flushed = w.flush();
    match result {
        Err(ReplayError::Write { source }) if source.kind() == io::ErrorKind::BrokenPipe => {
            return Ok(summary)
        }
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    match flushed {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(ReplayError::Write { source: e }),
        _ => Ok(summary),
    }
}

fn refuse_output_as_input(
    members: &[Member],
    output: Option<(u64, u64)>,
) -> Result<(), ReplayError> {
    use std::os::unix::fs::MetadataExt;
    let Some(out) = output else { return Ok(()) };
    for m in members {
        let md = m.file.metadata().map_err(|e| ReplayError::Read {
            path: m.path.clone(),
            offset: 0,
            source: e,
        })?;
        if (md.dev(), md.ino()) == out {
            return Err(ReplayError::OutputIsInput {
                path: m.path.clone(),
            });
        }
    }
    Ok(())
}

fn run_scan(
    journal: &crate::config::JournalConfig,
    spec: Option<&timestamp::TimestampSpec>,
    members: &[Member],
    bounds: &Bounds,
    sink: &mut dyn Sink,
    summary: &mut Summary,
) -> Result<(), ReplayError> {
    let mut scan = Scan::new(
        &journal.format,
        spec,
        members,
        Selector::new(bounds.clone()),
        sink,
    );
    let (start, offset) = scan.locate().map_err(|e| match e {
        ReplayError::NoSequence {
            sequence,
            oldest,
            newest,
            ..
        } => ReplayError::NoSequence {
            journal: journal.name.clone(),
            sequence,
            oldest,
            newest,
        },
        e => e,
    })?;
    tracing::debug!(journal = %journal.name, start_file = start, offset, "replay starts here");
    let r = scan.run(start, offset);
    summary.entries = scan.emitted;
    summary.backwards = scan.sel.backwards;
    if scan.sel.backwards > 0 {
        tracing::warn!(journal = %journal.name, entries = scan.sel.backwards, "some entries' times were before the entry before them (a clock step or several writers); they were kept in journal order");
    }
    r
}

/// Counts what goes by and shows it on stderr.
struct Progress<'s> {
    inner: &'s mut dyn Sink,
    bar: Option<indicatif::ProgressBar>,
    n: u64,
    bytes: u64,
}

impl<'s> Progress<'s> {
    fn new(inner: &'s mut dyn Sink, show: bool) -> Progress<'s> {
        let bar = show.then(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr(),
            );
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {pos} entries, {msg} {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b
        });
        Progress {
            inner,
            bar,
            n: 0,
            bytes: 0,
        }
    }
}

impl Sink for Progress<'_> {
    fn entry(&mut self, m: &Member, rec: &Record<'_>, first: bool) -> Result<(), ReplayError> {
        self.n += 1;
        self.bytes += rec.bytes.len() as u64;
        if let Some(b) = &self.bar {
            if self.n.is_multiple_of(4096) || first {
                b.set_position(self.n);
                b.set_message(format!("{} MiB, in {}", self.bytes >> 20, m.path.display()));
            }
        }
        self.inner.entry(m, rec, first)
    }

    fn needs_lines(&self) -> bool {
        self.inner.needs_lines()
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn parse(journal: &str) -> String {
        let text = format!(
            "[[journal]]\nname = \"app\"\npath = \"app.log\"\n{journal}\n[[journal.listener]]\nname = \"c\"\nplugin = \"file\"\n"
        );
        match Config::parse(&text, Path::new("/etc/ld/cfg.toml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_bad_timestamp_setting_names_the_file_line_and_key() {
        let e = parse(
            "format = \"lines\"\n[journal.timestamp]\npreset = \"python\"\nzone = \"Mars/Olympus\"",
        );
        assert!(
            e.starts_with("config /etc/ld/cfg.toml, line 7: journal \"app\": timestamp.zone: zone \"Mars/Olympus\" is unknown"),
            "{e}"
        );
        let e = parse("format = \"lines\"\n[journal.timestamp]\nregex = '^\\S+'\nformat = \"%Y\"");
        assert!(
            e.contains("line 6") && e.contains("timestamp.regex: no capture group"),
            "{e}"
        );
        let e = parse("format = \"lines\"\n[journal.timestamp]\npreset = \"iso\"");
        assert!(
            e.contains("line 6") && e.contains("\"rfc3339\", \"syslog\""),
            "{e}"
        );
        let e = parse("format = \"p4\"\n[journal.timestamp]\npreset = \"python\"");
        assert!(
            e.contains("timestamp only applies to format = \"lines\""),
            "{e}"
        );
        assert_eq!(
            parse("format = \"lines\"\n[journal.timestamp]\npreset = \"syslog\""),
            ""
        );
    }
}
