//! The replay driver: finds where the range starts without reading the
//! history before it, then reads on in order and hands every entry of the
//! range to a [`Sink`].
//!
//! Files whose entries are all before `--since` are skipped by the time of
//! their first entry (the first entry of the next file bounds every entry
//! of a file, as long as times do not go backwards); inside the first
//! plain file to read, [`search`](super::search) bisects. Compressed files
//! are read from their start. A p4 record's time is that of the marker
//! that closes its transaction, so while the range's start or end depends
//! on time, the records of one open transaction are held in memory until
//! its marker comes.

use std::io::{Read, Seek, SeekFrom};

use jiff::Timestamp;

use super::error::ReplayError;
use super::family::Member;
use super::search::{count_lines, Prober};
use super::select::{OffBoundary, Selector, Verdict};
use super::timestamp::{p4_marker_time, TimestampSpec, YearHint};
use crate::format::{Format, Record, RecordReader};

/// Where the entries of the range go.
pub trait Sink {
    /// One entry of the range, in order. `first_of_file`: the first entry
    /// handed over from this file, after entries of an earlier file.
    fn entry(
        &mut self,
        member: &Member,
        rec: &Record<'_>,
        first_of_file: bool,
    ) -> Result<(), ReplayError>;
    /// Whether entries need their true line numbers (counting the lines
    /// of a plain file's skipped start).
    fn needs_lines(&self) -> bool;
}

/// A record held until its transaction's marker gives it a time.
struct Held {
    member: usize,
    offset: u64,
    line: u64,
    lines: u64,
    incomplete: bool,
    bytes: std::ops::Range<usize>,
}

pub(crate) struct Scan<'a> {
    pub format: &'a Format,
    pub spec: Option<&'a TimestampSpec>,
    pub members: &'a [Member],
    pub sel: Selector,
    pub sink: &'a mut dyn Sink,
    held: Vec<Held>,
    held_bytes: Vec<u8>,
    /// Line logs: the time of the last timed record.
    last_time: Option<Timestamp>,
    /// The member the last emitted entry came from.
    last_member: Option<usize>,
    /// Records whose timestamp matched the regex but did not parse.
    pub unparsed: u64,
    /// Entries handed to the sink.
    pub emitted: u64,
}

#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

impl<'a> Scan<'a> {
    pub fn new(
        format: &'a Format,
        spec: Option<&'a TimestampSpec>,
        members: &'a [Member],
        sel: Selector,
        sink: &'a mut dyn Sink,
    ) -> Scan<'a> {
        Scan {
            format,
            spec,
            members,
            sel,
            sink,
            held: Vec::new(),
            held_bytes: Vec::new(),
            last_time: None,
            last_member: None,
            unparsed: 0,
            emitted: 0,
        }
    }

    /// Reads the range from `(member, offset)`, a record boundary.
    pub fn run(&mut self, start: usize, offset: u64) -> Result<(), ReplayError> {
        for i in start..self.members.len() {
            let off = if i == start { offset } else { 0 };
            match self.read_member(i, off)? {
                (Flow::Stop, _) => return Ok(()),
                (Flow::Go, end) => self.check_from_reached(i, end)?,
            }
        }
        // Records after the last marker: their transaction is still open.
        self.release(Timestamp::MAX)?;
        Ok(())
    }

    /// `--from SEQ:OFFSET` past the end of its file is an error, not a
    /// silent start at the next file.
    fn check_from_reached(&self, i: usize, end: u64) -> Result<(), ReplayError> {
        let m = &self.members[i];
        match self.sel.bounds.from {
            Some(f) if !self.sel.started && f.sequence == m.sequence && f.offset > end => {
                Err(ReplayError::PastEnd {
                    path: m.path.clone(),
                    sequence: m.sequence,
                    offset: f.offset,
                    len: end,
                })
            }
            _ => Ok(()),
        }
    }

    /// Reads member `i` from `offset`; on `Go`, also the (uncompressed)
    /// offset where it ended.
    fn read_member(&mut self, i: usize, offset: u64) -> Result<(Flow, u64), ReplayError> {
        let m = &self.members[i];
        let next = self
            .members
            .get(i + 1)
            .map_or(m.sequence + 1, |n| n.sequence);
        let io = |off: u64, e: std::io::Error| ReplayError::read(&m.path, off, next, e);
        let reader: Box<dyn Read> = if m.plain {
            let mut f = m.file.try_clone().map_err(|e| io(offset, e))?;
            f.seek(SeekFrom::Start(offset)).map_err(|e| io(offset, e))?;
            Box::new(f)
        } else {
            open_decoded(m)?
        };
        let line = if offset > 0 && self.sink.needs_lines() {
            count_lines(&m.file, offset).map_err(|e| io(0, e))? + 1
        } else {
            1
        };
        let year = YearHint(m.mtime);
        let mut rr = RecordReader::new(reader, self.format, offset, line);
        let mut live = m.live;
        loop {
            let at = rr.offset();
            let got = if live {
                rr.next_available()
            } else {
                rr.next_record()
            };
            let rec = match got.map_err(|e| io(at, e))? {
                Some(r) => r,
                // The live file's last record, if it is whole now (a
                // multi-line record waits for the next one's start): not
                // one still being written.
                None if live => {
                    live = false;
                    continue;
                }
                None => return Ok((Flow::Go, rr.offset())),
            };
            if m.live && !live && rec.incomplete {
                return Ok((Flow::Go, at));
            }
            if self.record(i, &rec, year)? == Flow::Stop {
                return Ok((Flow::Stop, 0));
            }
        }
    }

    fn record(&mut self, i: usize, rec: &Record<'_>, year: YearHint) -> Result<Flow, ReplayError> {
        match self.format {
            Format::P4 => {
                let marker = p4_marker_time(rec.bytes);
                if let Some(t) = marker {
                    self.sel.saw_time(t);
                    if self.release(t)? == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                    return self.decide(i, rec, t);
                }
                if self.sel.needs_time() {
                    self.hold(i, rec);
                    return Ok(Flow::Go);
                }
                self.decide(i, rec, Timestamp::MAX)
            }
            Format::Lines { .. } => {
                if self.sel.needs_time() {
                    self.time_line(i, rec, year);
                }
                let t = self.last_time.unwrap_or(Timestamp::MIN);
                self.decide(i, rec, t)
            }
        }
    }

    /// Line logs: notes the record's own time, if it has one.
    fn time_line(&mut self, i: usize, rec: &Record<'_>, year: YearHint) {
        let Some(spec) = self.spec else { return };
        let first = match memchr::memchr(b'\n', rec.bytes) {
            Some(nl) => &rec.bytes[..nl],
            None => rec.bytes,
        };
        match spec.time_of(first, year) {
            Ok(Some(t)) => {
                self.sel.saw_time(t);
                self.last_time = Some(t);
            }
            Ok(None) => {}
            Err(why) => {
                if self.unparsed == 0 {
                    tracing::warn!(file = %self.members[i].path.display(), line = rec.line, "a timestamp that does not parse: {why}; the record takes the previous record's time (check the journal's `timestamp` format)");
                }
                self.unparsed += 1;
            }
        }
    }

    fn hold(&mut self, i: usize, rec: &Record<'_>) {
        let start = self.held_bytes.len();
        self.held_bytes.extend_from_slice(rec.bytes);
        self.held.push(Held {
            member: i,
            offset: rec.offset,
            line: rec.line,
            lines: rec.lines,
            incomplete: rec.incomplete,
            bytes: start..self.held_bytes.len(),
        });
    }

    /// Decides on the held records, which all take time `t`.
    fn release(&mut self, t: Timestamp) -> Result<Flow, ReplayError> {
        let held = std::mem::take(&mut self.held);
        let bytes = std::mem::take(&mut self.held_bytes);
        let mut flow = Flow::Go;
        for h in &held {
            let rec = Record {
                offset: h.offset,
                line: h.line,
                lines: h.lines,
                bytes: &bytes[h.bytes.clone()],
                incomplete: h.incomplete,
            };
            if self.decide(h.member, &rec, t)? == Flow::Stop {
                flow = Flow::Stop;
                break;
            }
        }
        self.held = held;
        self.held.clear();
        self.held_bytes = bytes;
        self.held_bytes.clear();
        Ok(flow)
    }

    fn decide(&mut self, i: usize, rec: &Record<'_>, t: Timestamp) -> Result<Flow, ReplayError> {
        let m = &self.members[i];
        let end = rec.offset + rec.bytes.len() as u64;
        let v = self.sel.judge(m.sequence, rec.offset, end, t).map_err(
            |OffBoundary { pos, record }| ReplayError::OffBoundary {
                path: m.path.clone(),
                sequence: pos.sequence,
                offset: pos.offset,
                start: record.0,
                end: record.1,
            },
        )?;
        match v {
            Verdict::Skip => Ok(Flow::Go),
            Verdict::Stop => Ok(Flow::Stop),
            Verdict::Emit => {
                let first = self.last_member.is_some_and(|l| l != i);
                self.last_member = Some(i);
                self.emitted += 1;
                self.sink.entry(m, rec, first)?;
                Ok(Flow::Go)
            }
        }
    }

    /// Where to start reading: the member and a record boundary in it.
    pub fn locate(&mut self) -> Result<(usize, u64), ReplayError> {
        let b = self.sel.bounds.clone();
        if let Some(f) = b.from {
            return self.locate_position(f.sequence, f.offset);
        }
        let Some(since) = b.since else {
            return Ok((0, 0));
        };
        let mut start = 0;
        let mut oldest_first = None;
        for i in (0..self.members.len()).rev() {
            let first = self.first_time(i)?;
            if i == 0 {
                oldest_first = first;
            }
            if first.is_some_and(|t| t < since) {
                start = i;
                break;
            }
        }
        if let (Some(f), Some(m)) = (oldest_first, self.members.first()) {
            if since < f {
                tracing::warn!(file = %m.path.display(), first_entry = %f, since = %since, "the range starts before the oldest entry still on disk; entries before it are not replayed");
            }
        }
        let Some(m) = self.members.get(start) else {
            return Ok((0, 0));
        };
        if !m.plain {
            return Ok((start, 0));
        }
        let p = self.prober(m);
        let lo = p
            .seek_time(since)
            .map_err(|e| ReplayError::read(&m.path, 0, m.sequence + 1, e))?;
        Ok((start, lo))
    }

    fn locate_position(&self, seq: u64, offset: u64) -> Result<(usize, u64), ReplayError> {
        let (Some(oldest), Some(newest)) = (self.members.first(), self.members.last()) else {
            return Ok((0, 0));
        };
        if seq < oldest.sequence {
            tracing::warn!(file = %oldest.path.display(), sequence = oldest.sequence, from = seq, "the range starts before the oldest file still on disk; replaying from its first entry");
            return Ok((0, 0));
        }
        let Some(i) = self.members.iter().position(|m| m.sequence == seq) else {
            return Err(ReplayError::NoSequence {
                journal: String::new(),
                sequence: seq,
                oldest: oldest.sequence,
                newest: newest.sequence,
            });
        };
        let m = &self.members[i];
        if !m.plain || offset == 0 {
            return Ok((i, 0));
        }
        if offset > m.len {
            return Err(ReplayError::PastEnd {
                path: m.path.clone(),
                sequence: seq,
                offset,
                len: m.len,
            });
        }
        let b = self
            .prober(m)
            .boundary_before(offset)
            .map_err(|e| ReplayError::read(&m.path, offset, seq + 1, e))?;
        Ok((i, b))
    }

    fn prober<'m>(&'m self, m: &'m Member) -> Prober<'m> {
        Prober {
            file: &m.file,
            len: m.len,
            format: self.format,
            spec: self.spec,
            year: YearHint(m.mtime),
        }
    }

    /// The time of the first timed entry of member `i`, read from its start.
    fn first_time(&self, i: usize) -> Result<Option<Timestamp>, ReplayError> {
        let m = &self.members[i];
        let io = |off: u64, e: std::io::Error| ReplayError::read(&m.path, off, m.sequence + 1, e);
        let reader = open_decoded(m)?;
        let mut rr = RecordReader::new(reader, self.format, 0, 1);
        let year = YearHint(m.mtime);
        loop {
            let at = rr.offset();
            let Some(rec) = rr.next_record().map_err(|e| io(at, e))? else {
                return Ok(None);
            };
            let t = match self.format {
                Format::P4 => p4_marker_time(rec.bytes),
                Format::Lines { .. } => self.spec.and_then(|s| {
                    let first = rec.bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
                    s.time_of(first, year).ok().flatten()
                }),
            };
            if t.is_some() {
                return Ok(t);
            }
        }
    }
}

/// The uncompressed bytes of `m` from its start.
fn open_decoded(m: &Member) -> Result<Box<dyn Read + Send>, ReplayError> {
    let io = |e| ReplayError::read(&m.path, 0, m.sequence + 1, e);
    let mut f = m.file.try_clone().map_err(io)?;
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    Ok(crate::compress::read_opened(f, &m.path)?.reader)
}
