//! Replay to standard output: the raw bytes, or one JSON object per entry
//! (the `dump` object with the entry's `sequence` and `file` first).

use std::io::Write;

use super::error::ReplayError;
use super::family::Member;
use super::scan::Sink;
use crate::format::{Format, Record};

/// How entries are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// The bytes exactly as in the journal.
    Raw,
    /// `{"sequence":…,"file":…,"offset":…,"len":…,"line":…,…}` per line.
    Jsonl,
}

/// Writes entries to a byte stream.
pub struct Output<'w> {
    pub format: OutputFormat,
    pub p4: bool,
    out: &'w mut dyn Write,
    scratch: Vec<u8>,
    /// The first entry is flushed at once: whoever waits sees it.
    flushed_first: bool,
}

impl<'w> Output<'w> {
    pub fn new(format: OutputFormat, journal: &Format, out: &'w mut dyn Write) -> Output<'w> {
        Output {
            format,
            p4: matches!(journal, Format::P4),
            out,
            scratch: Vec::with_capacity(4096),
            flushed_first: false,
        }
    }
}

impl Sink for Output<'_> {
    fn entry(&mut self, m: &Member, rec: &Record<'_>, _first: bool) -> Result<(), ReplayError> {
        let w = |source| ReplayError::Write { source };
        self.write(m, rec).map_err(w)?;
        if !self.flushed_first {
            self.flushed_first = true;
            self.out.flush().map_err(w)?;
        }
        Ok(())
    }

    fn needs_lines(&self) -> bool {
        self.format == OutputFormat::Jsonl
    }
}

impl Output<'_> {
    fn write(&mut self, m: &Member, rec: &Record<'_>) -> std::io::Result<()> {
        match self.format {
            OutputFormat::Raw => self.out.write_all(rec.bytes),
            OutputFormat::Jsonl => {
                let s = &mut self.scratch;
                s.clear();
                s.extend_from_slice(b"{\"sequence\":");
                crate::dump::write_u64(s, m.sequence)?;
                s.extend_from_slice(b",\"file\":");
                crate::dump::write_str(s, m.path.as_os_str().as_encoded_bytes())?;
                s.push(b',');
                let at = s.len();
                crate::dump::write_record(rec, self.p4, s)?;
                s.remove(at); // the record object's own `{`
                self.out.write_all(s)
            }
        }
    }
}
