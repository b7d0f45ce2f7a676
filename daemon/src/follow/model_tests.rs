//! A model-based property test of the [`Follower`]: random sequences of
//! writes, rotations (every strategy), compression, deletion, reads and
//! crashes run against a real directory and against an in-memory model that
//! knows every record written. Whatever happens to the files, the records the
//! follower delivers must be exactly the records written, once each and in
//! order, each at its sequence and offset, with a record cut off by a
//! rotation delivered once and marked incomplete.
//!
//! Every operation in this model keeps all bytes recoverable (copytruncate
//! without writes between copy and truncate, truncation in place only after
//! everything was read, deletion only of fully read files), so a gap or a
//! `Missing` error is always a failure here, in both `on_gap`
//! configurations. The small deterministic tests at the end pin down
//! sequences this test found.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use logdaemon_sdk::abi::FLAG_INCOMPLETE;
use logdaemon_sdk::Position;
use logdaemon_state::Cursor;
use proptest::prelude::*;

use super::{Batch, Fill, Follower};
use crate::config::{JournalConfig, OnGap, Start};
use crate::format::Format;
use crate::rotation::Scheme;

/// Sequences the property test steers around because they hit a bug that a
/// deterministic test at the end of this file pins down; each flag goes
/// once its bug is fixed.
#[derive(Debug, Clone, Copy, Default)]
struct Avoid {
    /// Let the follower read right after a truncation (copytruncate or in
    /// place), before new writes.
    regrow_after_truncation: bool,
    /// Copytruncate only once the follower delivered a record of the live file.
    copytruncate_unread: bool,
    /// Never rotate an empty live file (so no rotated file is empty).
    rotating_empty: bool,
    /// No crash while the acknowledged cursor is at the end of a file that
    /// was deleted or truncated since (the follower had finished it).
    restart_at_finished_end: bool,
    /// Cut partial records only after their serial number: a compressed
    /// file holding just the first bytes of a record is taken for the live
    /// file when a restart proves the cursor by content.
    short_cut_record: bool,
    /// Delete a fully read rotated file only once a record after it was
    /// delivered (the follower may still be in it).
    delete_at_ack: bool,
    /// Lose only the newest rotated file (no rotated file after it).
    lose_before_rotated: bool,
    /// At Idle, do not require the records of rotated files to be
    /// delivered when a file was compressed.
    idle_behind_compressed: bool,
}

const AVOID: Avoid = Avoid {
    regrow_after_truncation: true,
    copytruncate_unread: true,
    rotating_empty: true,
    restart_at_finished_end: true,
    idle_behind_compressed: true,
    lose_before_rotated: true,
    short_cut_record: true,
    delete_at_ack: true,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fmt {
    P4,
    Lines,
}

/// How rotated files are named (p4 always uses `journal.N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// p4 `journal.N`, or `app.log-YYYYMMDD` for line logs: newer names sort later.
    Numbered,
    /// logrotate: `app.log.1` is the newest, older files shift up by one.
    Shift,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comp {
    Gz,
    Xz,
    Zst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rot {
    /// Rename the live file and create a new empty one.
    Rename,
    /// Rename, then compress the renamed file (and remove the plain one).
    RenameCompress(Comp),
    /// Copy the live file to the rotated name, then truncate it in place.
    CopyTruncate,
    /// Truncate the live file in place (only once the follower read it all).
    Truncate,
}

#[derive(Debug, Clone)]
enum Op {
    /// Whole records (completing a partial one first).
    Write(Vec<Vec<u8>>),
    /// The first part of a record; a later write completes it.
    PartialWrite(Vec<u8>, usize),
    Rotate(Rot),
    /// Compress the k-th plain rotated file.
    Compress(usize, Comp),
    /// Delete the k-th rotated file, if the follower read all of it.
    Delete(usize),
    /// Delete a rotated file the acknowledged cursor is inside of (bytes
    /// after it unread), then restart: those bytes are truly lost.
    LoseRotated(usize),
    /// One `fill` with this many bytes at most.
    Read(usize),
    /// Drop the follower, reopen it at the acknowledged cursor.
    Crash,
    /// `fill` until it returns Idle.
    Idle,
}

/// One record as the model expects it delivered.
#[derive(Debug, Clone)]
struct Rec {
    bytes: Vec<u8>,
    sequence: u64,
    offset: u64,
    /// 1-based line number of its first line.
    line: u64,
    incomplete: bool,
}

/// A rotated file in the directory: which records it holds.
#[derive(Debug, Clone)]
struct Rotated {
    path: PathBuf,
    compressed: bool,
    /// Records `first..end` of the model's list.
    first: usize,
    end: usize,
}

struct Harness {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    fmt: Fmt,
    naming: Naming,
    cfg: Arc<JournalConfig>,
    follower: Option<Follower>,
    /// Every record that must be delivered, in order.
    recs: Vec<Rec>,
    /// How many of `recs` were delivered.
    delivered: usize,
    /// A record written in part: its full bytes and how many are written.
    pending: Option<(Vec<u8>, usize)>,
    live_seq: u64,
    live_len: u64,
    /// First record of the live file.
    live_first: usize,
    /// Oldest first.
    rotated: Vec<Rotated>,
    serial: u64,
    rotations: u64,
    acked: Option<Cursor>,
    trace: Vec<String>,
    avoid: Avoid,
    /// A gap the follower must report next (`on_gap = "report"`).
    expect_gap: Option<ExpectGap>,
    /// The follower stopped on a `Missing` error, as it must (`on_gap = "stop"`).
    stopped: bool,
}

/// The gap the model knows the follower must report.
#[derive(Debug, Clone, Copy)]
struct ExpectGap {
    from: (u64, u64),
    /// The sequence delivery resumes at (from offset 0).
    to_sequence: u64,
    /// The model's next record after the gap.
    resume: usize,
}

fn live_name(fmt: Fmt) -> &'static str {
    match fmt {
        Fmt::P4 => "journal",
        Fmt::Lines => "app.log",
    }
}

pub(super) fn journal_config(path: &Path, format: Format, on_gap: OnGap) -> JournalConfig {
    JournalConfig {
        name: "model".into(),
        path: path.to_path_buf(),
        scheme: Scheme::default_for(&format, path),
        format,
        quiet_after: Duration::from_secs(2),
        reconcile_every: Duration::from_secs(1),
        start: Start::Beginning,
        on_gap,
        batch_bytes: 4 << 20,
        listeners: Vec::new(),
    }
}

fn quote_p4(text: &[u8]) -> Vec<u8> {
    let mut q = vec![b'@'];
    for &b in text {
        q.push(b);
        if b == b'@' {
            q.push(b'@');
        }
    }
    q.push(b'@');
    q
}

fn compress(data: &[u8], c: Comp) -> Vec<u8> {
    match c {
        Comp::Gz => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Comp::Xz => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Comp::Zst => zstd::encode_all(data, 1).unwrap(),
    }
}

fn ext(c: Comp) -> &'static str {
    match c {
        Comp::Gz => ".gz",
        Comp::Xz => ".xz",
        Comp::Zst => ".zst",
    }
}

impl Harness {
    fn new(fmt: Fmt, naming: Naming, on_gap: OnGap, avoid: Avoid) -> Harness {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        let live = dir.join(live_name(fmt));
        std::fs::write(&live, b"").unwrap();
        let format = match fmt {
            Fmt::P4 => Format::P4,
            Fmt::Lines => Format::Lines { record_start: None },
        };
        let cfg = Arc::new(journal_config(&live, format, on_gap));
        let follower = Follower::open(cfg.clone(), None, None).expect("open at start");
        Harness {
            _dir: d,
            dir,
            fmt,
            naming,
            cfg,
            follower: Some(follower),
            recs: Vec::new(),
            delivered: 0,
            pending: None,
            live_seq: 1,
            live_len: 0,
            live_first: 0,
            rotated: Vec::new(),
            serial: 0,
            rotations: 0,
            acked: None,
            trace: Vec::new(),
            avoid,
            expect_gap: None,
            stopped: false,
        }
    }

    fn live(&self) -> PathBuf {
        self.cfg.path.clone()
    }

    /// A unique record with `text` in it.
    fn record(&mut self, text: &[u8]) -> Vec<u8> {
        self.serial += 1;
        match self.fmt {
            Fmt::P4 => {
                let mut r = format!("@pv@ 3 @db.rev@ {} ", self.serial).into_bytes();
                r.extend_from_slice(&quote_p4(text));
                r.extend_from_slice(b" \n");
                r
            }
            Fmt::Lines => {
                let mut r = format!("r{} ", self.serial).into_bytes();
                r.extend(text.iter().map(|&b| if b == b'\n' { b'_' } else { b }));
                r.push(b'\n');
                r
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.live())
            .unwrap();
        f.write_all(bytes).unwrap();
        self.live_len += bytes.len() as u64;
    }

    /// Appends a record of the live file to the model, with its line number.
    fn push_rec(&mut self, bytes: Vec<u8>, offset: u64, incomplete: bool) {
        let line = match self.recs.last() {
            Some(r) if r.sequence == self.live_seq => r.line + r.bytes.iter().filter(|&&b| b == b'\n').count() as u64,
            _ => 1,
        };
        self.recs.push(Rec { bytes, sequence: self.live_seq, offset, line, incomplete });
    }

    fn complete_pending(&mut self) {
        if let Some((full, written)) = self.pending.take() {
            let offset = self.live_len - written as u64;
            self.append(&full[written..]);
            self.push_rec(full, offset, false);
        }
    }

    fn write(&mut self, texts: &[Vec<u8>]) {
        self.complete_pending();
        for t in texts {
            let r = self.record(t);
            let offset = self.live_len;
            self.append(&r);
            self.push_rec(r, offset, false);
        }
    }

    fn partial_write(&mut self, text: &[u8], cut: usize) {
        self.complete_pending();
        let r = self.record(text);
        // Never the final newline: the part written must not end the record.
        let min = if self.avoid.short_cut_record {
            // Past the serial number, so no other record starts with these bytes.
            let serial = self.serial.to_string();
            r.windows(serial.len())
                .position(|w| w == serial.as_bytes())
                .unwrap()
                + serial.len()
        } else {
            1
        };
        let k = min + cut % (r.len() - 1 - min);
        self.append(&r[..k]);
        self.pending = Some((r, k));
    }

    /// The rotation leaves the partial record cut off in the old file.
    fn cut_pending(&mut self) {
        if let Some((full, written)) = self.pending.take() {
            let offset = self.live_len - written as u64;
            self.push_rec(full[..written].to_vec(), offset, true);
        }
    }

    /// Name for the file the live file (sequence `live_seq`) rotates to;
    /// shifts older files first for logrotate names.
    fn rotated_name(&mut self) -> PathBuf {
        let name = live_name(self.fmt);
        match (self.fmt, self.naming) {
            (Fmt::P4, _) => self.dir.join(format!("{name}.{}", self.live_seq)),
            (Fmt::Lines, Naming::Numbered) => {
                let r = self.rotations;
                let date = format!(
                    "{:04}{:02}{:02}",
                    2025 + r / 336,
                    (r / 28) % 12 + 1,
                    r % 28 + 1
                );
                self.dir.join(format!("{name}-{date}"))
            }
            (Fmt::Lines, Naming::Shift) => {
                // Newest is last in `rotated` and has number 1.
                // Rename from the oldest (highest number) down so nothing is overwritten.
                for f in self.rotated.iter_mut() {
                    let fname = f.path.file_name().unwrap().to_string_lossy().into_owned();
                    let rest = &fname[name.len() + 1..];
                    let (num, ext) = rest
                        .split_once('.')
                        .map_or((rest, String::new()), |(a, b)| (a, format!(".{b}")));
                    let num: u64 = num.parse().unwrap();
                    let to = self.dir.join(format!("{name}.{}{ext}", num + 1));
                    std::fs::rename(&f.path, &to).unwrap();
                    f.path = to;
                }
                self.dir.join(format!("{name}.1"))
            }
        }
    }

    fn rotate(&mut self, how: Rot) -> Result<(), String> {
        let live = self.live();
        match how {
            Rot::Truncate => {
                // Only once everything written was delivered.
                if self.pending.is_some() || self.delivered < self.recs.len() {
                    self.trace.push("  (skipped: unread bytes)".into());
                    return Ok(());
                }
                if self.live_len == 0 {
                    return Ok(());
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&live)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
                if self.avoid.regrow_after_truncation {
                    self.rotations += 1;
                    self.live_seq += 1;
                    self.live_len = 0;
                    self.live_first = self.recs.len();
                    self.trace
                        .push("  (read right after the truncation)".into());
                    return self.read(1 << 20).map(|_| ());
                }
            }
            Rot::Rename | Rot::RenameCompress(_) => {
                if self.avoid.rotating_empty && self.live_len == 0 {
                    self.trace.push("  (skipped: empty)".into());
                    return Ok(());
                }
                self.cut_pending();
                let to = self.rotated_name();
                std::fs::rename(&live, &to).unwrap();
                std::fs::write(&live, b"").unwrap();
                let mut compressed = false;
                let to = if let Rot::RenameCompress(c) = how {
                    let data = std::fs::read(&to).unwrap();
                    let z = PathBuf::from(format!("{}{}", to.display(), ext(c)));
                    std::fs::write(&z, compress(&data, c)).unwrap();
                    std::fs::remove_file(&to).unwrap();
                    compressed = true;
                    z
                } else {
                    to
                };
                self.rotated.push(Rotated {
                    path: to,
                    compressed,
                    first: self.live_first,
                    end: self.recs.len(),
                });
            }
            Rot::CopyTruncate => {
                if self.live_len == 0 {
                    // Nothing tells an empty copy from an empty file (logrotate `notifempty`).
                    return Ok(());
                }
                if self.avoid.copytruncate_unread && self.delivered <= self.live_first {
                    self.trace
                        .push("  (skipped: nothing of the live file read yet)".into());
                    return Ok(());
                }
                self.cut_pending();
                let to = self.rotated_name();
                std::fs::copy(&live, &to).unwrap();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&live)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
                self.rotated.push(Rotated {
                    path: to,
                    compressed: false,
                    first: self.live_first,
                    end: self.recs.len(),
                });
                if self.avoid.regrow_after_truncation && self.follower.is_some() {
                    // Let the follower see the truncation before anything is written again.
                    self.rotations += 1;
                    self.live_seq += 1;
                    self.live_len = 0;
                    self.live_first = self.recs.len();
                    self.trace
                        .push("  (read right after the truncation)".into());
                    return self.read(1 << 20).map(|_| ());
                }
            }
        }
        self.rotations += 1;
        self.live_seq += 1;
        self.live_len = 0;
        self.live_first = self.recs.len();
        Ok(())
    }

    fn compress_rotated(&mut self, k: usize, c: Comp) {
        let plain: Vec<usize> = (0..self.rotated.len())
            .filter(|&i| !self.rotated[i].compressed)
            .collect();
        if plain.is_empty() {
            return;
        }
        let f = &mut self.rotated[plain[k % plain.len()]];
        let data = std::fs::read(&f.path).unwrap();
        let z = PathBuf::from(format!("{}{}", f.path.display(), ext(c)));
        std::fs::write(&z, compress(&data, c)).unwrap();
        std::fs::remove_file(&f.path).unwrap();
        self.trace
            .push(format!("  compressed {}", f.path.display()));
        f.path = z;
        f.compressed = true;
    }

    fn delete(&mut self, k: usize) {
        if self.rotated.is_empty() {
            return;
        }
        let i = k % self.rotated.len();
        if self.rotated[i].end > self.delivered || (self.avoid.delete_at_ack && self.rotated[i].end == self.delivered) {
            self.trace.push("  (skipped: not fully read)".into());
            return;
        }
        let f = self.rotated.remove(i);
        self.trace.push(format!("  deleted {}", f.path.display()));
        std::fs::remove_file(&f.path).unwrap();
    }

    fn crash(&mut self) -> Result<(), String> {
        if self.acked.is_none() && self.rotations > 0 {
            // Without a checkpoint a new follower starts at the live file: not this model.
            return Ok(());
        }
        if self.avoid.restart_at_finished_end && !self.ack_file_exists() {
            self.trace
                .push("  (skipped: the acknowledged file is gone)".into());
            return Ok(());
        }
        self.follower = None;
        match Follower::open(self.cfg.clone(), self.acked.as_ref(), None) {
            Ok(f) => self.follower = Some(f),
            Err(e) => {
                return Err(self.fail(format!(
                    "reopening at the acknowledged cursor {:?} failed: {e}",
                    self.acked
                )))
            }
        }
        Ok(())
    }

    /// Deletes a rotated file whose records after the acknowledged cursor
    /// were not delivered, then restarts: the follower must stop with
    /// `Missing` from the cursor, or report the gap up to the next sequence.
    fn lose_rotated(&mut self, k: usize) -> Result<(), String> {
        // Line logs have no journal numbers to tell which rotated file came
        // after a deleted one: only the newest rotated file is lost there.
        let newest_only = self.fmt == Fmt::Lines || self.avoid.lose_before_rotated;
        let inside: Vec<usize> = (0..self.rotated.len())
            .filter(|&i| {
                self.rotated[i].first < self.delivered && self.delivered < self.rotated[i].end
            })
            .filter(|&i| !newest_only || i + 1 == self.rotated.len())
            .collect();
        if inside.is_empty() || self.acked.is_none() || self.expect_gap.is_some() {
            return Ok(());
        }
        let gone = self.rotated.remove(inside[k % inside.len()]);
        std::fs::remove_file(&gone.path).unwrap();
        self.trace
            .push(format!("  deleted {} and restarted", gone.path.display()));
        let ack = self.acked.clone().unwrap();
        let from = (ack.sequence, ack.offset);
        self.follower = None;
        match (
            Follower::open(self.cfg.clone(), Some(&ack), None),
            self.cfg.on_gap,
        ) {
            (Err(super::FollowError::Missing(m)), OnGap::Stop) => {
                if (m.from.sequence, m.from.offset) != from {
                    return Err(
                        self.fail(format!("Missing from {:?}, expected from {from:?}", m.from))
                    );
                }
                self.stopped = true;
                Ok(())
            }
            (Ok(f), OnGap::Report) => {
                self.follower = Some(f);
                let seq = self.recs[gone.first].sequence;
                self.expect_gap = Some(ExpectGap {
                    from,
                    to_sequence: seq + 1,
                    resume: gone.end,
                });
                Ok(())
            }
            (Ok(_), OnGap::Stop) => {
                Err(self.fail("restarted in a deleted file without stopping on Missing".into()))
            }
            (Err(e), _) => Err(self.fail(format!("restart in a deleted file: {e}"))),
        }
    }

    /// Does the file holding the last delivered record still exist?
    fn ack_file_exists(&self) -> bool {
        let Some(last) = self.delivered.checked_sub(1) else {
            return true;
        };
        self.recs[last].sequence == self.live_seq
            || self.rotated.iter().any(|f| f.first <= last && last < f.end)
    }

    fn fail(&self, msg: String) -> String {
        let mut s = format!("{msg}\nop trace:\n");
        for t in &self.trace {
            s.push_str(t);
            s.push('\n');
        }
        s.push_str(&format!(
            "model: {} records, {} delivered; rotated: {:?}\n",
            self.recs.len(),
            self.delivered,
            self.rotated
        ));
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        s.push_str(&format!("directory: {names:?}\n"));
        s
    }

    /// One `fill`; checks what it returned against the model and acknowledges
    /// it as a worker would. Returns whether it was Idle.
    fn read(&mut self, max: usize) -> Result<bool, String> {
        let mut batch = Batch::default();
        let follower = self.follower.as_mut().expect("follower");
        let r = follower.fill(&mut batch, max);
        let idle = match r {
            Ok(Fill::Idle) => true,
            Ok(Fill::Entries) => false,
            Ok(Fill::Gap(g)) => {
                let Some(want) = self.expect_gap.take() else {
                    return Err(
                        self.fail(format!("gap reported although no bytes were lost: {g:?}"))
                    );
                };
                if (g.from.sequence, g.from.offset) != want.from
                    || (g.to.sequence, g.to.offset) != (want.to_sequence, 0)
                {
                    return Err(self.fail(format!(
                        "gap {g:?} has the wrong range; expected from {:?} to sequence {} offset 0",
                        want.from, want.to_sequence
                    )));
                }
                self.delivered = want.resume;
                // The listener acknowledges the gap at the follower's position, as the worker presets it.
                let pos = self.follower.as_ref().unwrap().position().unwrap_or(g.to);
                self.ack(pos);
                return Ok(false);
            }
            Err(e) => {
                return Err(self.fail(format!("fill failed although no bytes were lost: {e}")))
            }
        };
        if let (Some(want), false) = (self.expect_gap, batch.entries.is_empty()) {
            return Err(self.fail(format!(
                "entries delivered before the gap {want:?} was reported"
            )));
        }
        for m in &batch.entries {
            let raw = batch.raw(m);
            let Some(want) = self.recs.get(self.delivered) else {
                return Err(self.fail(format!(
                    "delivered a record beyond what was written (repeat?): seq {} offset {} {:?}",
                    m.sequence,
                    m.offset,
                    String::from_utf8_lossy(raw)
                )));
            };
            let got_incomplete = m.flags & FLAG_INCOMPLETE != 0;
            if raw != want.bytes.as_slice()
                || got_incomplete != want.incomplete
                || m.sequence != want.sequence
                || m.offset != want.offset
                || m.line != want.line
            {
                return Err(self.fail(format!(
                    "record #{} differs:\n  expected seq {} offset {} line {} incomplete {} {:?}\n  got      seq {} offset {} line {} incomplete {} {:?}",
                    self.delivered,
                    want.sequence,
                    want.offset,
                    want.line,
                    want.incomplete,
                    String::from_utf8_lossy(&want.bytes),
                    m.sequence,
                    m.offset,
                    m.line,
                    got_incomplete,
                    String::from_utf8_lossy(raw)
                )));
            }
            self.delivered += 1;
        }
        if let Some(end) = batch.end {
            self.ack(end);
        }
        Ok(idle)
    }

    fn ack(&mut self, pos: Position) {
        let identity = self.follower.as_ref().unwrap().identity_at(pos);
        self.acked = Some(Cursor {
            sequence: pos.sequence,
            offset: pos.offset,
            line: pos.line.max(1),
            identity,
        });
    }

    /// Fills until Idle; then everything available must have been delivered.
    fn idle(&mut self) -> Result<(), String> {
        for _ in 0..1000 {
            if self.read(1 << 20)? {
                // A record cut by the last rotation waits until the writer moves on.
                let lag = match (self.recs.last(), self.rotated.last()) {
                    (Some(r), Some(f)) => {
                        r.incomplete && self.live_len == 0 && f.end == self.recs.len()
                    }
                    _ => false,
                };
                let want = self.recs.len() - usize::from(lag);
                let excused =
                    self.avoid.idle_behind_compressed && self.rotated.iter().any(|f| f.compressed);
                if self.delivered < want && !excused {
                    return Err(self.fail(format!(
                        "fill is Idle but only {} of {} available records were delivered",
                        self.delivered, want
                    )));
                }
                return Ok(());
            }
        }
        Err(self.fail("fill never returned Idle".into()))
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.trace.push(format!("{op:?}"));
        match op {
            Op::Write(t) => self.write(t),
            Op::PartialWrite(t, cut) => self.partial_write(t, *cut),
            Op::Rotate(r) => self.rotate(*r)?,
            Op::Compress(k, c) => self.compress_rotated(*k, *c),
            Op::Delete(k) => self.delete(*k),
            Op::LoseRotated(k) => self.lose_rotated(*k)?,
            Op::Read(n) => {
                self.read(*n)?;
            }
            Op::Crash => self.crash()?,
            Op::Idle => self.idle()?,
        }
        Ok(())
    }

    /// Ends the case: the writer moves on (one more record), everything is read.
    fn finish(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.trace.push("final write and drain".into());
        self.write(&[b"end".to_vec()]);
        self.idle()?;
        if self.delivered != self.recs.len() {
            return Err(self.fail(format!(
                "at the end {} of {} records were delivered",
                self.delivered,
                self.recs.len()
            )));
        }
        Ok(())
    }
}

fn text() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![4 => b'a'..=b'z', 1 => Just(b' '), 1 => Just(b'@'), 1 => Just(b'\n'), 1 => Just(0xffu8)],
        0..40,
    )
}

fn comp() -> impl Strategy<Value = Comp> {
    prop_oneof![Just(Comp::Gz), Just(Comp::Xz), Just(Comp::Zst)]
}

fn rot() -> impl Strategy<Value = Rot> {
    prop_oneof![
        3 => Just(Rot::Rename),
        2 => comp().prop_map(Rot::RenameCompress),
        2 => Just(Rot::CopyTruncate),
        1 => Just(Rot::Truncate),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(text(), 1..4).prop_map(Op::Write),
        2 => (text(), any::<usize>()).prop_map(|(t, i)| Op::PartialWrite(t, i)),
        3 => rot().prop_map(Op::Rotate),
        1 => (any::<usize>(), comp()).prop_map(|(i, c)| Op::Compress(i, c)),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => any::<usize>().prop_map(Op::LoseRotated),
        4 => (1usize..300).prop_map(Op::Read),
        2 => Just(Op::Crash),
        2 => Just(Op::Idle),
    ]
}

fn setup() -> impl Strategy<Value = (Fmt, Naming, OnGap)> {
    prop_oneof![
        Just((Fmt::P4, Naming::Numbered)),
        Just((Fmt::Lines, Naming::Numbered)),
        Just((Fmt::Lines, Naming::Shift)),
    ]
    .prop_flat_map(|(f, n)| {
        prop_oneof![Just(OnGap::Stop), Just(OnGap::Report)].prop_map(move |g| (f, n, g))
    })
}

fn run(setup: (Fmt, Naming, OnGap), ops: &[Op], avoid: Avoid) -> Result<(), String> {
    let (fmt, naming, on_gap) = setup;
    let mut h = Harness::new(fmt, naming, on_gap, avoid);
    h.trace
        .push(format!("setup: {fmt:?} {naming:?} {on_gap:?}"));
    for op in ops {
        h.apply(op)?;
    }
    h.finish()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn follower_delivers_every_record_once_in_order(setup in setup(), ops in proptest::collection::vec(op(), 1..40)) {
        if let Err(msg) = run(setup, &ops, AVOID) {
            return Err(TestCaseError::fail(msg));
        }
    }
}

/// Runs `ops` and panics with the trace if the property does not hold.
fn check(setup: (Fmt, Naming, OnGap), ops: &[Op]) {
    if let Err(msg) = run(setup, ops, Avoid::default()) {
        panic!("{msg}");
    }
}

fn w(n: usize) -> Op {
    Op::Write(vec![b"x".to_vec(); n])
}

/// Truncation (copytruncate, or in place after everything was read), then
/// the writer appends before the follower looks again: the regrown live
/// file's size must not be taken for the size the old content had, or the
/// records written after the truncation are reported lost (a copytruncate
/// gap, or a `Missing` stop) although none were.
#[test]
fn truncation_then_regrow_before_the_next_read_loses_nothing() {
    for on_gap in [OnGap::Stop, OnGap::Report] {
        check(
            (Fmt::P4, Naming::Numbered, on_gap),
            &[w(1), Op::Read(1), Op::Rotate(Rot::CopyTruncate), w(1)],
        );
        check(
            (Fmt::Lines, Naming::Shift, on_gap),
            &[w(2), Op::Idle, Op::Rotate(Rot::CopyTruncate), w(3)],
        );
        check(
            (Fmt::P4, Naming::Numbered, on_gap),
            &[w(1), Op::Read(1), Op::Rotate(Rot::Truncate), w(1)],
        );
        check(
            (Fmt::Lines, Naming::Numbered, on_gap),
            &[w(3), Op::Idle, Op::Rotate(Rot::Truncate), w(1)],
        );
    }
}

/// An empty journal renamed and compressed (p4d rotating an idle journal):
/// the follower cannot prove by content that the empty `journal.1.gz` is the
/// file it just finished, and must not read it as the next journal, which
/// numbers the live journal 3 instead of 2.
#[test]
fn rotating_an_empty_journal_into_a_compressed_file_keeps_the_numbering() {
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[Op::Rotate(Rot::RenameCompress(Comp::Gz)), w(1)],
    );
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Report),
        &[
            w(1),
            Op::Idle,
            Op::Rotate(Rot::Rename),
            Op::Rotate(Rot::RenameCompress(Comp::Zst)),
            w(1),
        ],
    );
}

/// The other way round: the follower finished a copy (copytruncate) that
/// was deleted since, so only modification times say what came after it. An
/// empty `journal.2` whose time is not newer is skipped, and the live journal
/// is numbered 2 although `journal.2` exists (p4 numbers the live journal
/// one above the highest rotated one).
#[test]
fn an_empty_rotated_journal_with_an_old_mtime_keeps_the_numbering() {
    let mut h = Harness::new(Fmt::P4, Naming::Numbered, OnGap::Stop, Avoid::default());
    for op in [
        w(1),
        Op::Read(1),
        Op::Rotate(Rot::CopyTruncate),
        Op::Idle,
        Op::Delete(0),
        Op::Rotate(Rot::Rename),
    ] {
        h.apply(&op).unwrap();
    }
    // An old timestamp: restored from a backup, or a coarse file system clock.
    let j2 = h.dir.join("journal.2");
    std::fs::File::options()
        .write(true)
        .open(&j2)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    if let Err(msg) = h.finish() {
        panic!("{msg}");
    }
}

fn partial() -> Op {
    Op::PartialWrite(b"half".to_vec(), 0)
}

/// The follower finished `journal.1` and opened its successor, whose first
/// record is still being written; the acknowledged cursor stays at the end of
/// `journal.1`. Once `journal.1` is deleted (or, in place, truncated), a
/// restart must not stop on entries "in no file any more": all of them were
/// delivered.
#[test]
fn restart_after_deleting_a_finished_file_is_not_missing() {
    for on_gap in [OnGap::Stop, OnGap::Report] {
        check(
            (Fmt::P4, Naming::Numbered, on_gap),
            &[
                w(1),
                Op::Idle,
                Op::Rotate(Rot::Truncate),
                Op::Idle,
                Op::Crash,
            ],
        );
        check(
            (Fmt::P4, Naming::Numbered, on_gap),
            &[
                w(2),
                Op::Idle,
                Op::Rotate(Rot::Rename),
                partial(),
                Op::Idle,
                Op::Delete(0),
                Op::Crash,
            ],
        );
        check(
            (Fmt::Lines, Naming::Numbered, on_gap),
            &[
                w(1),
                Op::Idle,
                Op::Rotate(Rot::Rename),
                Op::Rotate(Rot::Rename),
                Op::Idle,
                Op::Delete(0),
                Op::Crash,
            ],
        );
    }
}

/// A slow follower still holds the first journal (since compressed, so its
/// inode is gone) when the second rotation happens. At Idle the records of
/// `journal.2` must be delivered although the new live journal is empty:
/// `journal.2` is newer than the file we hold, so the writer has moved on.
#[test]
fn records_after_a_compressed_file_are_delivered_while_the_live_file_is_empty() {
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[
            w(1),
            Op::Rotate(Rot::RenameCompress(Comp::Gz)),
            w(1),
            Op::Rotate(Rot::Rename),
            Op::Idle,
        ],
    );
    check(
        (Fmt::Lines, Naming::Shift, OnGap::Report),
        &[
            w(1),
            Op::Rotate(Rot::Rename),
            Op::Compress(0, Comp::Xz),
            w(2),
            Op::Rotate(Rot::Rename),
            Op::Idle,
        ],
    );
}

/// Copytruncate before the follower read anything of the live file: the
/// records are in the copy only, and must be delivered from it (they are
/// silently skipped when the follower sees nothing but an empty live file at
/// its position 0).
#[test]
fn copytruncate_before_anything_was_read_delivers_the_copy() {
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[w(1), Op::Rotate(Rot::CopyTruncate), Op::Idle],
    );
    check(
        (Fmt::Lines, Naming::Numbered, OnGap::Report),
        &[
            w(1),
            Op::Idle,
            Op::Rotate(Rot::Rename),
            w(2),
            Op::Rotate(Rot::CopyTruncate),
            Op::Idle,
        ],
    );
}

/// A restart inside a deleted `journal.1` with `on_gap = "report"`: after the
/// gap the follower must go on with `journal.2`, not jump to the live
/// journal (silently skipping `journal.2` and numbering the live journal 2).
#[test]
fn after_a_gap_at_restart_the_next_rotated_journal_is_read() {
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Report),
        &[
            w(2),
            Op::Read(1),
            Op::Rotate(Rot::Rename),
            w(1),
            Op::Rotate(Rot::Rename),
            Op::LoseRotated(0),
        ],
    );
}

/// The acknowledged cursor is at the end of `journal.2.gz`, which holds only
/// the first byte of a record cut by the rotation. That byte also starts the
/// live journal, so the content proof matches both files; a restart must
/// resume in `journal.2.gz` (the cursor's journal number and path), not at
/// offset 1 of the live journal (where no record ever ends).
#[test]
fn restart_at_the_end_of_a_tiny_compressed_journal_resumes_there() {
    let cut = Op::PartialWrite(Vec::new(), 0);
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[
            w(1),
            Op::Rotate(Rot::Rename),
            cut.clone(),
            Op::Rotate(Rot::RenameCompress(Comp::Gz)),
            Op::Idle,
            w(1),
            Op::Crash,
        ],
    );
    check(
        (Fmt::Lines, Naming::Numbered, OnGap::Report),
        &[
            w(1),
            Op::Idle,
            cut,
            Op::Rotate(Rot::RenameCompress(Comp::Zst)),
            Op::Idle,
            w(1),
            Op::Crash,
        ],
    );
}

/// The follower resumed in `journal.1.gz` after a restart (a compressed
/// segment has no inode or modification time of its own). Once
/// `journal.1.gz` is deleted, its successor `journal.2` can only be found by
/// its number; it must not be skipped for the live journal.
#[test]
fn successor_of_a_deleted_compressed_journal_is_found_by_number() {
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[w(1), Op::Idle, Op::Rotate(Rot::RenameCompress(Comp::Gz)), Op::Crash, w(1), Op::Rotate(Rot::Rename), Op::Delete(0)],
    );
}
