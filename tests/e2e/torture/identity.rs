//! Scenarios 7 to 9: telling files apart when inodes are reused, first lines are identical, or files are smaller than any fingerprint.
//!
//! A file is known by content (hashes of its first bytes and of the bytes
//! before the cursor), the inode being only a hint. These scenarios attack
//! exactly the cases where those proofs are weakest, with the real daemon
//! restarted over files changed while it was stopped:
//!
//! - 7: the live file replaced by a new one that gets the old inode back
//!   (ext4 hands a freed inode to the next file created in the directory;
//!   where the file system does not, the checkpoint's inode is set to the
//!   new file's, which is what the daemon would see). The new file must be
//!   read from its start, the old file's unread records found in its
//!   compressed copy, or reported lost (a gap, or a stop naming them and the
//!   way out) when no file holds them — including when the new file starts
//!   with the very bytes the checkpoint proves (a banner): a live file
//!   created after the checkpoint was saved is not the checkpoint's file.
//! - 8: every generation starts with the same banner (short, and longer
//!   than the 4 KiB head window), rotated by the real `logrotate` while the
//!   daemon runs and while it is stopped, compressed and not: every
//!   rotated file is read exactly once, banners included.
//! - 9: files of 0, 1 and 10 bytes (a record not yet complete), rotated
//!   while that small, with restarts in between, and rotated files whose
//!   whole content is the same 10 bytes.
//!
//! Banners and the identical short records are not writer records: their
//! places in the output are checked exactly, then they are taken out and
//! the rest is counted by the [`Tally`](super::tally::Tally).

mod banner;
mod reuse;
mod tiny;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::fixture::Fixture;
use crate::rotation::harness::{config, OUT};
use crate::writer::{Kind, Writer};

const KIND: Kind = Kind::Lines;

/// A fixture with the config written (`journal_extra` in the journal table).
fn setup(journal_extra: &str) -> Fixture {
    let f = Fixture::new();
    f.write("cfg.toml", config(KIND, journal_extra, "fsync = false"));
    fs::create_dir_all(f.join("logs")).unwrap();
    f
}

fn inode(p: &Path) -> u64 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .ino()
}

fn output(f: &Fixture) -> Vec<u8> {
    fs::read(f.join(OUT)).unwrap_or_default()
}

/// Appends `bytes` to `path` with one write on its own `O_APPEND` descriptor.
fn append(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

/// The same first line(s) at the start of every generation of the log, and
/// where in the writer's ledger each copy was written.
struct Banner {
    text: Vec<u8>,
    at: Vec<usize>,
}

impl Banner {
    /// A banner of `lines` lines (80 bytes each).
    fn new(lines: usize) -> Banner {
        let text = (0..lines).flat_map(|i| format!("# app 4.2 build 2026-11-01 -- started by init, banner line {i:03} of {lines:03} ----\n").into_bytes()).collect();
        Banner {
            text,
            at: Vec::new(),
        }
    }

    /// Writes the banner into the live file, before the writer's next record.
    fn put(&mut self, w: &Writer) {
        append(w.path(), &self.text);
        self.at.push(w.ledger().len());
    }

    /// The output the daemon must produce: the writer's records with the
    /// banners where they were written.
    fn expected(&self, w: &Writer) -> Vec<u8> {
        let ledger = w.ledger();
        let lost = |p: usize| w.lost().iter().any(|r| r.start <= p && p < r.end);
        let mut points: Vec<usize> = self.at.clone();
        points.extend(w.lost().iter().flat_map(|r| [r.start, r.end]));
        points.extend([0, ledger.len()]);
        points.sort();
        points.dedup();
        let mut out = Vec::new();
        for (i, &p) in points.iter().enumerate() {
            for _ in self.at.iter().filter(|&&b| b == p) {
                out.extend_from_slice(&self.text);
            }
            if let Some(&next) = points.get(i + 1) {
                if !lost(p) {
                    out.extend_from_slice(&ledger[p..next]);
                }
            }
        }
        out
    }

    /// Takes the banners out of `output`, checking that each one is exactly
    /// where it was written (none missing, none twice), and returns the rest.
    fn strip(&self, w: &Writer, output: &[u8]) -> Vec<u8> {
        let kept = |ledger_at: usize| {
            ledger_at
                - w.lost()
                    .iter()
                    .filter(|r| r.end <= ledger_at)
                    .map(|r| r.len())
                    .sum::<usize>()
        };
        let want: Vec<usize> = self.at.iter().map(|&a| kept(a)).collect();
        let mut rest = Vec::with_capacity(output.len());
        let mut found = Vec::new();
        let mut at = 0;
        while at < output.len() {
            if output[at..].starts_with(&self.text) {
                found.push(rest.len());
                at += self.text.len();
                continue;
            }
            let end = output[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(output.len(), |p| at + p + 1);
            rest.extend_from_slice(&output[at..end]);
            at = end;
        }
        assert_eq!(
            found, want,
            "banners found at these record bytes of the output, written at these"
        );
        rest
    }
}

/// Waits until the file system's clock (coarse: it ticks every few ms)
/// has moved past the checkpoint's last save, so that files written from
/// now on are later than it, as files written by a rotation some time
/// after the daemon stopped are.
fn clock_past_checkpoint(f: &Fixture) {
    let saved = fs::metadata(f.join("state/checkpoint.toml"))
        .unwrap()
        .modified()
        .unwrap();
    let probe = f.join("clock.probe");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        fs::write(&probe, b"").unwrap();
        if fs::metadata(&probe).unwrap().modified().unwrap() > saved {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the file system clock did not move for 30 s"
        );
        std::thread::yield_now();
    }
    fs::remove_file(&probe).unwrap();
}
