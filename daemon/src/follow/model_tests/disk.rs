//! The model's writer side: a real directory the journal is written,
//! rotated, compressed and deleted in, and the list of records the follower
//! must deliver, each with the sequence, offset and line it must carry.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use logdaemon_state::Cursor;

use super::{Avoid, Comp, Fmt, Naming, Rot};
use crate::config::{JournalConfig, OnGap};
use crate::follow::Follower;
use crate::format::Format;

/// One record as the model expects it delivered.
#[derive(Debug, Clone)]
pub(super) struct Rec {
    pub(super) bytes: Vec<u8>,
    pub(super) sequence: u64,
    pub(super) offset: u64,
    /// 1-based line number of its first line.
    pub(super) line: u64,
    pub(super) incomplete: bool,
}

/// A rotated file in the directory: which records it holds.
#[derive(Debug, Clone)]
pub(super) struct Rotated {
    pub(super) path: PathBuf,
    pub(super) compressed: bool,
    /// Records `first..end` of the model's list.
    pub(super) first: usize,
    pub(super) end: usize,
}

pub(super) struct Harness {
    pub(super) _dir: tempfile::TempDir,
    pub(super) dir: PathBuf,
    pub(super) fmt: Fmt,
    pub(super) naming: Naming,
    pub(super) cfg: Arc<JournalConfig>,
    pub(super) follower: Option<Follower>,
    /// Every record that must be delivered, in order.
    pub(super) recs: Vec<Rec>,
    /// How many of `recs` were delivered.
    pub(super) delivered: usize,
    /// A record written in part: its full bytes and how many are written.
    pub(super) pending: Option<(Vec<u8>, usize)>,
    pub(super) live_seq: u64,
    pub(super) live_len: u64,
    /// First record of the live file.
    pub(super) live_first: usize,
    /// Oldest first.
    pub(super) rotated: Vec<Rotated>,
    pub(super) serial: u64,
    pub(super) rotations: u64,
    pub(super) acked: Option<Cursor>,
    pub(super) trace: Vec<String>,
    pub(super) avoid: Avoid,
    /// A gap the follower must report next (`on_gap = "report"`).
    pub(super) expect_gap: Option<ExpectGap>,
    /// The follower stopped on a `Missing` error, as it must (`on_gap = "stop"`).
    pub(super) stopped: bool,
}

/// The gap the model knows the follower must report.
#[derive(Debug, Clone, Copy)]
pub(super) struct ExpectGap {
    pub(super) from: (u64, u64),
    /// The sequence delivery resumes at (from offset 0).
    pub(super) to_sequence: u64,
    /// The model's next record after the gap.
    pub(super) resume: usize,
}

pub(super) fn live_name(fmt: Fmt) -> &'static str {
    match fmt {
        Fmt::P4 => "journal",
        Fmt::Lines => "app.log",
    }
}

pub(super) fn journal_config(path: &Path, format: Format, on_gap: OnGap) -> JournalConfig {
    JournalConfig {
        on_gap,
        batch_bytes: 4 << 20,
        ..JournalConfig::for_test("model", path, format)
    }
}

pub(super) fn quote_p4(text: &[u8]) -> Vec<u8> {
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

pub(super) fn compress(data: &[u8], c: Comp) -> Vec<u8> {
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

pub(super) fn ext(c: Comp) -> &'static str {
    match c {
        Comp::Gz => ".gz",
        Comp::Xz => ".xz",
        Comp::Zst => ".zst",
    }
}

impl Harness {
    pub(super) fn new(fmt: Fmt, naming: Naming, on_gap: OnGap, avoid: Avoid) -> Harness {
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

    pub(super) fn live(&self) -> PathBuf {
        self.cfg.path.clone()
    }

    /// A unique record with `text` in it.
    pub(super) fn record(&mut self, text: &[u8]) -> Vec<u8> {
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

    pub(super) fn append(&mut self, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.live())
            .unwrap();
        f.write_all(bytes).unwrap();
        self.live_len += bytes.len() as u64;
    }

    /// Appends a record of the live file to the model, with its line number.
    pub(super) fn push_rec(&mut self, bytes: Vec<u8>, offset: u64, incomplete: bool) {
        let line = match self.recs.last() {
            Some(r) if r.sequence == self.live_seq => {
                r.line + r.bytes.iter().filter(|&&b| b == b'\n').count() as u64
            }
            _ => 1,
        };
        self.recs.push(Rec {
            bytes,
            sequence: self.live_seq,
            offset,
            line,
            incomplete,
        });
    }

    pub(super) fn complete_pending(&mut self) {
        if let Some((full, written)) = self.pending.take() {
            let offset = self.live_len - written as u64;
            self.append(&full[written..]);
            self.push_rec(full, offset, false);
        }
    }

    pub(super) fn write(&mut self, texts: &[Vec<u8>]) {
        self.complete_pending();
        for t in texts {
            let r = self.record(t);
            let offset = self.live_len;
            self.append(&r);
            self.push_rec(r, offset, false);
        }
    }

    pub(super) fn partial_write(&mut self, text: &[u8], cut: usize) {
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
    pub(super) fn cut_pending(&mut self) {
        if let Some((full, written)) = self.pending.take() {
            let offset = self.live_len - written as u64;
            self.push_rec(full[..written].to_vec(), offset, true);
        }
    }

    /// Name for the file the live file (sequence `live_seq`) rotates to;
    /// shifts older files first for logrotate names.
    pub(super) fn rotated_name(&mut self) -> PathBuf {
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
            (Fmt::Lines, Naming::Ascending) => {
                self.dir.join(format!("{name}.{}", self.rotations + 1))
            }
        }
    }

    /// Waits until the file system's clock (coarse: it ticks every few ms)
    /// has moved past every file's birth and last write, as it has between
    /// two real rotations: with `Ascending` names, times are what tells a
    /// newer file from an older one that the names call newer.
    fn tick(&self) {
        let newest = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .flat_map(|m| [m.created().ok(), m.modified().ok()])
            .flatten()
            .max();
        let probe = self.dir.join(".tick");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            std::fs::write(&probe, b"").unwrap();
            let born = std::fs::metadata(&probe).unwrap().created().unwrap();
            std::fs::remove_file(&probe).unwrap();
            if newest.is_none_or(|t| born > t) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the file system clock did not move"
            );
            std::thread::yield_now();
        }
    }

    pub(super) fn rotate(&mut self, how: Rot) -> Result<(), String> {
        if self.naming == Naming::Ascending {
            self.tick();
        }
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
                // Line logs: a limit, not a bug (see `Avoid::rotating_empty`).
                if (self.avoid.rotating_empty || self.fmt == Fmt::Lines) && self.live_len == 0 {
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
                    if self.naming == Naming::Ascending {
                        // As gzip, xz and zstd do: the original's last write time.
                        let written = std::fs::metadata(&to).unwrap().modified().unwrap();
                        std::fs::File::options()
                            .append(true)
                            .open(&z)
                            .unwrap()
                            .set_modified(written)
                            .unwrap();
                    }
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
                // A limit: a copy keeps no trace of when its content was
                // written (the live file keeps its old birth time), so with
                // names that count the other way nothing orders a copy
                // against files renamed later. Applications that rename
                // Perforce-style do not also copy and truncate.
                if self.naming == Naming::Ascending {
                    self.trace
                        .push("  (skipped: copytruncate with ascending names)".into());
                    return Ok(());
                }
                if self.live_len == 0 {
                    // Nothing tells an empty copy from an empty file (logrotate `notifempty`).
                    return Ok(());
                }
                // Line logs: a limit, not a bug (see `Avoid::copytruncate_unread`).
                if (self.avoid.copytruncate_unread || self.fmt == Fmt::Lines)
                    && self.delivered <= self.live_first
                {
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

    pub(super) fn compress_rotated(&mut self, k: usize, c: Comp) {
        let plain: Vec<usize> = (0..self.rotated.len())
            .filter(|&i| !self.rotated[i].compressed)
            .collect();
        if plain.is_empty() {
            return;
        }
        let ascending = self.naming == Naming::Ascending;
        if ascending {
            self.tick();
        }
        let f = &mut self.rotated[plain[k % plain.len()]];
        let data = std::fs::read(&f.path).unwrap();
        let z = PathBuf::from(format!("{}{}", f.path.display(), ext(c)));
        std::fs::write(&z, compress(&data, c)).unwrap();
        if ascending {
            // As gzip, xz and zstd do: the original's last write time.
            let written = std::fs::metadata(&f.path).unwrap().modified().unwrap();
            std::fs::File::options()
                .append(true)
                .open(&z)
                .unwrap()
                .set_modified(written)
                .unwrap();
        }
        std::fs::remove_file(&f.path).unwrap();
        self.trace
            .push(format!("  compressed {}", f.path.display()));
        f.path = z;
        f.compressed = true;
    }

    pub(super) fn delete(&mut self, k: usize) {
        if self.rotated.is_empty() {
            return;
        }
        let i = k % self.rotated.len();
        if self.rotated[i].end > self.delivered
            || ((self.avoid.delete_at_ack || self.fmt == Fmt::Lines)
                && self.rotated[i].end == self.delivered)
        {
            self.trace.push("  (skipped: not fully read)".into());
            return;
        }
        let f = self.rotated.remove(i);
        self.trace.push(format!("  deleted {}", f.path.display()));
        std::fs::remove_file(&f.path).unwrap();
    }
}
