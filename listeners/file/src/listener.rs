//! [`FileListener`]: the `Listener` implementation, open-time repair of the
//! output against the durable record, and the per-batch write path.
//!
//! Write path per batch: in `raw` format the listener takes runs (whole
//! records end to end in the host's buffer) and writes each straight from
//! there; in `jsonl` it renders every new entry into one reusable buffer.
//! Either goes out in positioned writes at the recorded output length and
//! is synced (with `fsync = true`); then the record is replaced. A crash between
//! the data write and the record leaves bytes past the recorded length; the
//! next open cuts them off and the host delivers those entries again.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use logdaemon_sdk::{Ack, Entry, Failure, Gap, Listener, Logger, OpenContext, Position, Run};

use crate::config::{Config, Format};
use crate::output::{self, OutputError};
use crate::record::{sync_dir, Record, RecordFile};
use crate::{group, held, writeback};
use logdaemon_sdk::json::{self as jsonl, RawForm};

/// A buffer grown past this by one huge batch is shrunk back afterwards.
const KEEP_BUFFER: usize = 16 << 20;

/// One output file (or its side file for gaps in raw format), open or
/// not (see [`crate::held`]).
struct Output {
    path: PathBuf,
    file: Option<File>,
    /// Device and inode of the file this listener writes.
    key: (u64, u64),
}

impl Output {
    fn new(path: PathBuf, file: File) -> Result<Output, std::io::Error> {
        let md = file.metadata()?;
        Ok(Output {
            path,
            key: (md.dev(), md.ino()),
            file: Some(file),
        })
    }

    /// The open output, opened again (safely, see [`output::open`]) if it
    /// was closed. The file at the path must be the one this listener
    /// wrote, at least `len` bytes long: another one put in its place, or
    /// the output cut short, is refused for good.
    fn file(&mut self, len: u64) -> Result<&File, Failure> {
        if self.file.is_none() {
            let file = output::open(&self.path).map_err(|e| match e {
                OutputError::Io { .. } => Failure::retry(format!("{e}; retrying")),
                e => Failure::fatal(e.to_string()),
            })?;
            let md = file.metadata().map_err(|e| {
                Failure::retry(format!(
                    "cannot stat output {}: {e}; retrying",
                    self.path.display()
                ))
            })?;
            if (md.dev(), md.ino()) != self.key || md.len() < len {
                return Err(Failure::fatal(format!(
                    "output {} is no longer the file this listener wrote ({} bytes; it wrote {len}): it was replaced, moved or truncated outside logdaemon. \
                     Put the file back, or move it away and remove the listener's record to write the journal again from the listener's cursor",
                    self.path.display(),
                    md.len()
                )));
            }
            self.file = Some(file);
        }
        Ok(self.file.as_ref().expect("opened above"))
    }
}

/// The `file` listener. See the crate documentation.
pub struct FileListener {
    format: Format,
    encoding: RawForm,
    fsync: bool,
    p4: bool,
    out: Output,
    /// `<path>.gaps`, opened on first use (raw format only).
    gaps: Option<Output>,
    gaps_path: PathBuf,
    record_file: RecordFile,
    /// The record on disk (see [`commit`] for how it and `written` relate).
    record: Record,
    /// What the files hold past `record`, written but not yet synced.
    written: Option<Record>,
    /// The bytes waiting for their sync (`fsync = true`).
    group: group::Group,
    /// Starts the output's disk writes as it grows.
    writeback: writeback::Pacer,
    /// Whether the files may stay open between calls.
    hold: held::Hold,
    buf: Vec<u8>,
    /// A failed write may have left bytes past the recorded lengths.
    dirty: bool,
    logger: Logger,
}

impl FileListener {
    /// Path of the output file.
    pub fn output_path(&self) -> &Path {
        &self.out.path
    }

    /// End of the last entry or gap written, as durably recorded.
    pub fn done(&self) -> Option<Position> {
        self.record.done.map(Into::into)
    }

    /// Whether the files already hold what ends at `end` (written, and
    /// maybe not yet synced).
    fn already_done(&self, end: Position) -> bool {
        self.current()
            .done
            .is_some_and(|d| end <= Position::from(d))
    }

    /// Keeps `buf` for the next batch, unless one huge batch grew it.
    fn keep_buffer(&mut self, buf: Vec<u8>) {
        if buf.capacity() <= KEEP_BUFFER {
            self.buf = buf;
        }
    }
}

/// Opens `path` and checks it against the recorded length: longer is cut
/// back (a crash after writing, before recording), shorter is refused.
fn open_checked(
    name: &str,
    path: &Path,
    recorded: u64,
    record: &Path,
    logger: &Logger,
) -> Result<File, Failure> {
    let fatal = |msg: String| Failure::fatal(format!("listener {name:?}: {msg}"));
    let file = output::open(path).map_err(|e| fatal(e.to_string()))?;
    let len = file
        .metadata()
        .map_err(|e| fatal(format!("cannot stat output {}: {e}", path.display())))?
        .len();
    if len > recorded {
        logger.warn(&format!(
            "{} is {len} bytes, {record} records {recorded}: cutting off {} bytes written before a crash; they are delivered again",
            path.display(),
            len - recorded,
            record = record.display(),
        ));
        file.set_len(recorded).map_err(|e| {
            fatal(format!(
                "cannot cut {} back to {recorded} bytes: {e}",
                path.display()
            ))
        })?;
        file.sync_all()
            .map_err(|e| fatal(format!("cannot sync {}: {e}", path.display())))?;
    } else if len < recorded {
        return Err(fatal(format!(
            "output {} is {len} bytes but {} records {recorded} bytes written: the output was truncated or replaced outside logdaemon. \
             Restore it, or move it away and remove the record to write the journal again from the listener's cursor",
            path.display(),
            record.display()
        )));
    }
    Ok(file)
}

/// The output's format as the record names it: one output never mixes
/// formats, nor the two forms of jsonl.
fn format_name(f: Format, e: RawForm) -> &'static str {
    match (f, e) {
        (Format::Raw, _) => "raw",
        (Format::Jsonl, RawForm::Text) => "jsonl",
        (Format::Jsonl, RawForm::Base64) => "jsonl-base64",
    }
}

impl Listener for FileListener {
    /// Raw output needs no fields, and jsonl splits records itself.
    const WANTS_FIELDS: bool = false;
    /// Every entry is written.
    const FILTERS: bool = false;
    /// Each batch is written as it comes, and what waits for a sync is
    /// synced at the first `no_data`: a journal that stays quiet leaves
    /// nothing to do.
    const PERIODIC_NO_DATA: bool = false;

    /// The config and the directories of the output, which `open` would
    /// create where missing: the nearest existing one and those above it
    /// must be safe. Nothing is created.
    fn check(ctx: &OpenContext<'_>) -> Result<(), Failure> {
        let name = ctx.listener;
        let fatal = |msg: String| Failure::fatal(format!("listener {name:?}: {msg}"));
        let cfg = Config::parse(ctx.config_toml).map_err(|e| fatal(e.to_string()))?;
        let path = ctx.resolve(&cfg.path);
        // The output itself when its directory exists, else the first
        // missing directory below the nearest one that exists.
        let mut probe = path.as_path();
        while let Some(dir) = probe.parent() {
            if dir.is_dir() || dir.parent().is_none() {
                break;
            }
            probe = dir;
        }
        output::check_directories(probe).map_err(|e| fatal(e.to_string()))
    }

    fn open(ctx: &OpenContext<'_>) -> Result<Self, Failure> {
        let name = ctx.listener.to_string();
        let fatal = |msg: String| Failure::fatal(format!("listener {name:?}: {msg}"));
        let cfg = Config::parse(ctx.config_toml).map_err(|e| fatal(e.to_string()))?;
        let path = ctx.resolve(&cfg.path);
        let gaps_path = {
            let mut p = path.clone().into_os_string();
            p.push(".gaps");
            PathBuf::from(p)
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| {
                fatal(format!(
                    "cannot create directory {} for the output: {e}",
                    dir.display()
                ))
            })?;
        }
        output::check_directories(&path).map_err(|e| fatal(e.to_string()))?;
        let mut record_file = RecordFile::new(ctx.state_dir);
        let rpath = record_file.path().to_path_buf();
        let record = match record_file.load().map_err(|e| fatal(e.to_string()))? {
            Some(r) => {
                if r.output != path {
                    return Err(fatal(format!(
                        "{} records output {} but config key \"path\" is now {}: move the output back, or remove the record to start a new output from the listener's cursor",
                        rpath.display(),
                        r.output.display(),
                        path.display()
                    )));
                }
                r
            }
            None => {
                for p in [&path, &gaps_path] {
                    let len = fs::symlink_metadata(p).map(|m| m.len()).unwrap_or(0);
                    if len > 0 {
                        return Err(fatal(format!(
                            "output {} already holds {len} bytes that this listener has no record of writing ({} is missing): \
                             move the file away or point config key \"path\" elsewhere",
                            p.display(),
                            rpath.display()
                        )));
                    }
                }
                let r = Record {
                    output: path.clone(),
                    format: format_name(cfg.format, cfg.encoding).into(),
                    output_len: 0,
                    gaps_len: 0,
                    done: None,
                };
                output::open(&path).map_err(|e| match e {
                    OutputError::Io { source, .. } => {
                        fatal(format!("cannot create output {}: {source}", path.display()))
                    }
                    e => fatal(e.to_string()),
                })?;
                if cfg.fsync {
                    if let Some(dir) = path.parent() {
                        sync_dir(dir).map_err(|e| {
                            fatal(format!("cannot sync directory {}: {e}", dir.display()))
                        })?;
                    }
                }
                record_file
                    .store(&r, cfg.fsync)
                    .map_err(|e| fatal(e.to_string()))?;
                r
            }
        };
        if record.format != format_name(cfg.format, cfg.encoding) {
            return Err(fatal(format!(
                "{} was written as {:?} but config key \"format\" is now {:?}: keep the format, or point config key \"path\" at a new file",
                path.display(),
                record.format,
                format_name(cfg.format, cfg.encoding)
            )));
        }
        let file = open_checked(&name, &path, record.output_len, &rpath, &ctx.logger)?;
        let stat_err =
            |p: &Path, e: std::io::Error| fatal(format!("cannot stat {}: {e}", p.display()));
        let gaps = if record.gaps_len > 0 || fs::symlink_metadata(&gaps_path).is_ok() {
            let file = open_checked(&name, &gaps_path, record.gaps_len, &rpath, &ctx.logger)?;
            Some(Output::new(gaps_path.clone(), file).map_err(|e| stat_err(&gaps_path, e))?)
        } else {
            None
        };
        if let Some(done) = record.done.map(Position::from) {
            if ctx.cursor > done {
                // Moved forward by `logdaemon checkpoint set`: the host
                // reports the range as a gap, which lands in `.gaps`.
                ctx.logger.warn(&format!(
                    "the host resumes at {} but {} was written up to {done}: the entries in between are not in the output (the checkpoint was moved past them; the host reports them as a gap)",
                    ctx.cursor,
                    path.display()
                ));
            } else if ctx.cursor < done {
                ctx.logger.info(&format!(
                    "skipping entries redelivered up to {done}, already in {}",
                    path.display()
                ));
            }
        }
        let mut l = FileListener {
            format: cfg.format,
            encoding: cfg.encoding,
            fsync: cfg.fsync,
            p4: ctx.format == "p4",
            out: Output::new(path.clone(), file).map_err(|e| stat_err(&path, e))?,
            gaps,
            gaps_path,
            record_file,
            writeback: writeback::Pacer::new(record.output_len),
            hold: held::Hold::default(),
            record,
            written: None,
            group: group::Group::default(),
            buf: Vec::new(),
            dirty: false,
            logger: ctx.logger,
        };
        // Kept open only within the budget, from the start on.
        l.after_call(false);
        Ok(l)
    }

    fn listen(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure> {
        let r = self.listen_entries(entries);
        self.after_call(false);
        r
    }

    /// Raw output is the records' bytes as they are: it takes runs.
    fn takes_runs(&self) -> bool {
        self.format == Format::Raw
    }

    fn listen_runs(&mut self, runs: &[Run<'_>]) -> Result<Ack, Failure> {
        let r = self.listen_raw_runs(runs);
        self.after_call(false);
        r
    }

    fn gap(&mut self, gap: &Gap<'_>) -> Result<Ack, Failure> {
        let r = self.write_gap(gap);
        self.after_call(false);
        r
    }

    fn flush(&mut self) -> Result<Ack, Failure> {
        let r = self.sync_all();
        self.after_call(false);
        r
    }

    /// The journal went quiet: what waits for a sync is synced, and
    /// nothing is kept open for it.
    fn no_data(&mut self, _had_data: bool) -> Result<Ack, Failure> {
        let r = self.repair().and_then(|()| self.sync_written());
        self.after_call(true);
        r.map(|()| Ack::All)
    }
}

impl FileListener {
    /// After a call: the files stay open only within the process's budget
    /// and while the journal is not quiet (see [`crate::held`]).
    fn after_call(&mut self, quiet: bool) {
        if !quiet && self.hold.take() {
            return;
        }
        self.hold.give();
        self.out.file = None;
        if let Some(g) = &mut self.gaps {
            g.file = None;
        }
        self.record_file.close();
    }

    fn listen_entries(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure> {
        self.repair()?;
        // Entries of a batch are in stream order: once one is past what the
        // record says is written, so are all after it.
        let skip = entries
            .iter()
            .position(|e| !self.already_done(e.end()))
            .unwrap_or(entries.len());
        let new = &entries[skip..];
        let Some(done) = new.last().map(Entry::end) else {
            return Ok(self.ack());
        };
        match self.format {
            Format::Raw => {
                // The host hands raw bytes that lie end to end in its read
                // buffer (the entries' chunk): written straight from there.
                let runs = contiguous_runs(new);
                self.commit_parts(false, &runs, done, true)?;
            }
            Format::Jsonl => {
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                for e in new {
                    jsonl::write_entry_as(&mut buf, e, self.p4, self.encoding);
                }
                let r = self.commit_parts(false, &[&buf], done, true);
                self.keep_buffer(buf);
                r?;
            }
        }
        Ok(self.ack())
    }

    /// Raw output of runs: each run written straight from the host's
    /// buffer, from where the record says the output is done.
    fn listen_raw_runs(&mut self, runs: &[Run<'_>]) -> Result<Ack, Failure> {
        if self.format != Format::Raw {
            return Err(Failure::fatal(
                "runs of bytes delivered to a jsonl output, which needs entries",
            ));
        }
        self.repair()?;
        let Some(done) = runs.last().map(Run::end) else {
            return Ok(self.ack());
        };
        if self.already_done(done) {
            return Ok(self.ack());
        }
        let parts: Vec<&[u8]> = match self.current().done.map(Position::from) {
            Some(d) => runs
                .iter()
                .map(|r| r.raw_from(d))
                .filter(|p| !p.is_empty())
                .collect(),
            None => runs.iter().map(Run::raw).collect(),
        };
        self.commit_parts(false, &parts, done, true)?;
        Ok(self.ack())
    }

    fn write_gap(&mut self, gap: &Gap<'_>) -> Result<Ack, Failure> {
        if self.already_done(gap.to) {
            return Ok(self.ack());
        }
        self.repair()?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        jsonl::write_gap(&mut buf, gap);
        self.logger.warn(&format!(
            "gap from {} to {} ({}): {}",
            gap.from, gap.to, gap.cause, gap.detail
        ));
        let r = self.commit_parts(self.format == Format::Raw, &[&buf], gap.to, false);
        self.keep_buffer(buf);
        r?;
        Ok(self.ack())
    }

    fn sync_all(&mut self) -> Result<Ack, Failure> {
        self.repair()?;
        self.sync_written()?;
        if !self.fsync {
            // Without per-batch syncs, make everything acknowledged so far durable now.
            let sync = |o: &mut Output, len: u64| {
                let path = o.path.clone();
                o.file(len)?.sync_all().map_err(|e| {
                    Failure::retry(format!("cannot sync {}: {e}; retrying", path.display()))
                })
            };
            sync(&mut self.out, self.record.output_len)?;
            if let Some(g) = &mut self.gaps {
                sync(g, self.record.gaps_len)?;
            }
            self.record_file
                .store(&self.record, true)
                .map_err(|e| Failure::retry(format!("{e}; retrying")))?;
        }
        Ok(Ack::All)
    }
}

/// The raw bytes of `entries` as few slices as possible: entries whose
/// bytes follow each other in the same host buffer (their chunk) are one
/// slice of that buffer. Slices of different buffers are never joined,
/// even when they happen to be adjacent in memory.
fn contiguous_runs<'a>(entries: &[Entry<'a>]) -> Vec<&'a [u8]> {
    let mut runs: Vec<&'a [u8]> = Vec::new();
    // The current run: its chunk, and where it starts and ends in it.
    let mut run: Option<(&'a [u8], usize, usize)> = None;
    for e in entries {
        let (chunk, at) = e.chunk();
        let end = at + e.raw().len();
        run = match run {
            Some((c, start, last)) if std::ptr::eq(c, chunk) && last == at => Some((c, start, end)),
            Some((c, start, last)) => {
                runs.push(&c[start..last]);
                Some((chunk, at, end))
            }
            None => Some((chunk, at, end)),
        };
    }
    if let Some((c, start, end)) = run {
        runs.push(&c[start..end]);
    }
    runs
}

mod commit;
#[cfg(test)]
mod tests;
