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
//! the rest is counted by the [`Tally`].

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::tally::{records_in, report_line, scale, Tally};
use crate::fixture::{stderr, Fixture};
use crate::rotation::harness::{config, listing, live, logrotate, wait_output, Daemon, OUT};
use crate::writer::{Kind, Pump, Writer};

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

/// Creates the live file again right after the old one's inode was freed,
/// until it gets that inode back (ext4 hands it out again at once unless
/// another file created meanwhile took it). If it never does, sets the
/// checkpoint's inode to the new file's instead: what the daemon then sees
/// is the same. Returns whether the inode was really reused.
fn reuse_inode(f: &Fixture, w: &mut Writer, old: u64) -> bool {
    for _ in 0..20 {
        w.reopen();
        if inode(w.path()) == old {
            return true;
        }
        fs::remove_file(w.path()).unwrap();
    }
    w.reopen();
    let new = inode(w.path());
    let ckpt = f.join("state/checkpoint.toml");
    let text = fs::read_to_string(&ckpt).unwrap();
    let saved = fs::metadata(&ckpt).unwrap().modified().unwrap();
    let from = format!("inode = {old}\n");
    assert!(
        text.contains(&from),
        "the checkpoint records inode {old}:\n{text}"
    );
    fs::write(&ckpt, text.replace(&from, &format!("inode = {new}\n"))).unwrap();
    // Saved when it was: the daemon tells a file created since by that time.
    OpenOptions::new()
        .append(true)
        .open(&ckpt)
        .unwrap()
        .set_modified(saved)
        .unwrap();
    eprintln!(
        "inode {old} was not handed out again; the checkpoint now names the new file's inode {new}"
    );
    false
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

/// The gaps the `file` listener recorded: (from sequence, from offset, to
/// sequence, to offset, cause).
fn gaps(f: &Fixture) -> Vec<(u64, u64, u64, u64, String)> {
    let text = fs::read_to_string(f.join(format!("{OUT}.gaps"))).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let g = &v["gap"];
            let n = |p: &str, k: &str| {
                g[p][k]
                    .as_u64()
                    .unwrap_or_else(|| panic!("gap without {p}.{k}: {l}"))
            };
            (
                n("from", "sequence"),
                n("from", "offset"),
                n("to", "sequence"),
                n("to", "offset"),
                g["cause"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn reuse_note(real: bool) -> &'static str {
    if real {
        "inode really reused"
    } else {
        "inode set in the checkpoint"
    }
}

// ------------------------------------------------------------ 7: inode reuse

/// The live file (with the banner first, if any) read to `delivered`
/// records by the daemon, which is then stopped.
fn read_then_stop(
    journal_extra: &str,
    banner: Option<&mut Banner>,
    delivered: u64,
) -> (Fixture, Writer) {
    let f = setup(journal_extra);
    let path = f.join(live(KIND));
    let mut w = Writer::new(&path, KIND);
    let expected = match banner {
        Some(b) => {
            b.put(&w);
            w.write(delivered);
            b.expected(&w)
        }
        None => {
            w.write(delivered);
            w.expected()
        }
    };
    let mut d = Daemon::start(&f);
    wait_output(&f, &mut d, &expected, "before the stop");
    d.term();
    (f, w)
}

/// 7a, 7b: the old file deleted with unread records, a new one with the
/// old inode, shorter (`new_records` few) or longer than the old offset.
fn deleted_and_reused(id: &str, new_records: u64, on_gap: &str) {
    let (f, mut w) = read_then_stop(&format!("on_gap = \"{on_gap}\""), None, 40);
    let offset = w.ledger().len();
    let lost = w.write_lost(10);
    let old = inode(w.path());
    fs::remove_file(w.path()).unwrap();
    let real = reuse_inode(&f, &mut w, old);
    w.write(new_records);
    let new_len = fs::metadata(w.path()).unwrap().len() as usize;
    assert_eq!(
        new_records > 20,
        new_len > offset,
        "the new file is {new_len} bytes, the old offset {offset}"
    );
    if on_gap == "stop" {
        // The daemon stops naming the lost records and the way out.
        let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "the daemon went on over lost records:\n{err}"
        );
        let msg = format!("journal \"app\": the entries from sequence 1 offset {offset} (line 41) are in no file any more (the file holding them was deleted or rotated away)");
        assert!(
            err.contains(&msg),
            "the stop message does not say {msg:?}:\n{err}"
        );
        assert_eq!(
            output(&f),
            w.ledger()[..offset],
            "nothing may be delivered past the loss"
        );
        // The second way out the message prints, as an operator would run it.
        let cmd = err
            .lines()
            .find_map(|l| l.split_once("logdaemon checkpoint set "))
            .map(|(_, a)| a.to_string())
            .expect("a checkpoint set command");
        let mut args = vec!["checkpoint", "set"];
        args.extend(cmd.split_whitespace());
        assert!(cmd.contains("--sequence 2 --offset 0"), "{cmd}");
        let set = f.run(&args);
        assert!(set.status.success(), "{args:?}: {}", stderr(&set));
    }
    let mut d = Daemon::start(&f);
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "after the restart over a new file with the old inode",
    );
    d.term();
    if on_gap == "report" {
        assert_eq!(
            gaps(&f),
            [(1, offset as u64, 2, 0, "deleted".to_string())],
            "one gap, from the checkpoint to the new file"
        );
    }
    let t = Tally::count(&w, &output(&f), records_in(&w, lost));
    t.assert_exact(id);
    let how = if on_gap == "stop" {
        "stop naming them, then checkpoint set"
    } else {
        "a gap"
    };
    let size = if new_records > 20 {
        "longer"
    } else {
        "shorter"
    };
    t.report(
        id,
        &format!("inode reuse: old file deleted, new one {size} than the old offset"),
        &format!(
            "{} unread records reported by {how}; {}",
            t.reported_lost,
            reuse_note(real)
        ),
    );
}

#[test]
fn s07a_inode_reuse_shorter_new_file() {
    deleted_and_reused("7a", 5, "report");
}

#[test]
fn s07b_inode_reuse_longer_new_file() {
    deleted_and_reused("7b", 80, "stop");
}

/// 7c, 7d, 7e: every file starts with the same banner; the old file, with
/// records unread, is rotated and compressed by logrotate (`nocreate`) or
/// deleted (`kept` false), and the new live file gets its inode back.
/// `delivered` records after the banner were read before the stop: with
/// none, the checkpoint's proofs (head and tail) cover only the banner,
/// which the new file starts with too.
fn banner_reused(id: &str, delivered: u64, kept: bool) {
    let mut b = Banner::new(3);
    let (f, mut w) = read_then_stop("on_gap = \"report\"", Some(&mut b), delivered);
    let offset = w.ledger().len() + b.text.len();
    clock_past_checkpoint(&f);
    let lost = if kept {
        w.write(10);
        logrotate(&f, "    nocreate\n    compress");
        assert!(
            f.join("logs/app.log.1.gz").exists() && !w.path().exists(),
            "{:?}",
            listing(&f, KIND)
        );
        0..0
    } else {
        let lost = w.write_lost(10);
        fs::remove_file(w.path()).unwrap();
        lost
    };
    let old = checkpoint_inode(&f);
    let real = reuse_inode(&f, &mut w, old);
    b.put(&w);
    w.write(20);
    let mut d = Daemon::start(&f);
    wait_output(
        &f,
        &mut d,
        &b.expected(&w),
        "after the restart over a new file with the old inode and the same banner",
    );
    d.term();
    let want = if kept {
        vec![]
    } else {
        vec![(1, offset as u64, 2, 0, "deleted".to_string())]
    };
    assert_eq!(gaps(&f), want, "the gaps reported");
    let t = Tally::count(&w, &b.strip(&w, &output(&f)), records_in(&w, lost));
    t.assert_exact(id);
    let proof = if delivered == 0 {
        "checkpoint at the end of the banner"
    } else {
        "checkpoint after records"
    };
    let (old_file, how) = if kept {
        ("compressed", "rest of the old file read from app.log.1.gz")
    } else {
        (
            "deleted",
            "the old file's unread records reported as one gap",
        )
    };
    t.report(
        id,
        &format!("inode reuse: same banner, old file {old_file}, {proof}"),
        &format!(
            "{how}, then the new file with its banner; {}",
            reuse_note(real)
        ),
    );
}

/// The inode the checkpoint's listener position records.
fn checkpoint_inode(f: &Fixture) -> u64 {
    let text = fs::read_to_string(f.join("state/checkpoint.toml")).unwrap();
    let at = text
        .find("[journal.app.listener.copy.identity]")
        .expect("a listener identity in the checkpoint");
    let line = text[at..]
        .lines()
        .find(|l| l.starts_with("inode = "))
        .expect("an inode in the listener identity");
    line["inode = ".len()..].trim().parse().unwrap()
}

#[test]
fn s07c_inode_reuse_same_banner_checkpoint_after_records() {
    banner_reused("7c", 30, true);
}

#[test]
fn s07d_inode_reuse_same_banner_checkpoint_at_the_banner() {
    banner_reused("7d", 0, true);
}

#[test]
fn s07e_inode_reuse_same_banner_old_file_deleted() {
    banner_reused("7e", 0, false);
}

// ------------------------------------------------- 8: identical first lines

/// Time between two records of the writer thread.
const PACE: std::time::Duration = std::time::Duration::from_micros(500);

/// The writer's rotation step while it holds its lock: logrotate, reopen,
/// the banner first in the new file.
fn rotate_with_banner(f: &Fixture, w: &mut Writer, b: &mut Banner, directives: &str) {
    logrotate(f, directives);
    w.reopen();
    b.put(w);
}

/// 8a, 8b: rotations with `directives` while the daemon runs, then while
/// it is stopped, every file starting with the same `lines`-line banner.
fn banner_rotations(id: &str, lines: usize, directives: &str) {
    let f = setup("");
    let mut b = Banner::new(lines);
    let w = Writer::new(&f.join(live(KIND)), KIND);
    b.put(&w);
    let between = scale(40, 2000);
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, PACE);
    for _ in 0..scale(3, 20) {
        pump.wait_more(between);
        rotate_with_banner(&f, &mut pump.lock(), &mut b, directives);
    }
    pump.wait_more(between);
    d.term();
    for _ in 0..2 {
        pump.wait_more(between);
        rotate_with_banner(&f, &mut pump.lock(), &mut b, directives);
    }
    let mut d = Daemon::start(&f);
    pump.wait_more(between);
    let w = pump.stop();
    let files = listing(&f, KIND);
    wait_output(
        &f,
        &mut d,
        &b.expected(&w),
        &format!("banner rotations (files: {files:?})"),
    );
    d.term();
    let t = Tally::count(&w, &b.strip(&w, &output(&f)), 0);
    t.assert_exact(id);
    let n = b.at.len();
    t.report(
        id,
        &format!(
            "identical first lines: {} B banner, logrotate {}",
            b.text.len(),
            directives.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
        &format!("{n} generations, each banner delivered once where written"),
    );
}

#[test]
fn s08a_identical_banner_rotated_running_and_stopped() {
    banner_rotations("8a", 2, "    create\n    compress\n    delaycompress");
}

#[test]
fn s08b_banner_longer_than_the_head_window() {
    banner_rotations("8b", 60, "    create\n    compress");
}

/// 8c, 8d: the daemon stops having read only the banner of a new file:
/// its checkpoint proves nothing but the banner. While stopped, that file
/// gets records and is rotated, and the next one too: two rotated files
/// and the live one all hold the checkpoint's bytes.
fn stopped_at_the_banner(id: &str, lines: usize, directives: &str) {
    let f = setup("");
    let mut b = Banner::new(lines);
    let mut w = Writer::new(&f.join(live(KIND)), KIND);
    b.put(&w);
    w.write(20);
    let mut d = Daemon::start(&f);
    wait_output(&f, &mut d, &b.expected(&w), "the first file");
    rotate_with_banner(&f, &mut w, &mut b, directives);
    wait_output(&f, &mut d, &b.expected(&w), "the banner of the second file");
    d.term();
    clock_past_checkpoint(&f);
    for _ in 0..2 {
        w.write(10);
        rotate_with_banner(&f, &mut w, &mut b, directives);
    }
    w.write(10);
    let mut d = Daemon::start(&f);
    let files = listing(&f, KIND);
    wait_output(
        &f,
        &mut d,
        &b.expected(&w),
        &format!("restart at a banner (files: {files:?})"),
    );
    d.term();
    let t = Tally::count(&w, &b.strip(&w, &output(&f)), 0);
    t.assert_exact(id);
    let how = if directives.contains("compress") {
        "compressed"
    } else {
        "plain"
    };
    t.report(id, &format!("identical first lines: checkpoint at the end of a {} B banner, 2 rotations while stopped, {how}", b.text.len()), "three files hold the checkpoint's bytes; each read once from the right place");
}

#[test]
fn s08c_checkpoint_at_a_short_banner_then_compressed_rotations() {
    stopped_at_the_banner("8c", 2, "    create\n    compress");
}

#[test]
fn s08d_checkpoint_at_a_long_banner_then_plain_rotations() {
    stopped_at_the_banner("8d", 60, "    create");
}

#[test]
fn s08e_checkpoint_at_a_long_banner_then_compressed_rotations() {
    stopped_at_the_banner("8e", 60, "    create\n    compress");
}

// ------------------------------------------------------- 9: tiny files

/// Writes the writer's records in pieces (a record not yet complete, as a
/// logger flushing mid-line leaves it) on its own `O_APPEND` descriptor,
/// which it keeps across a rename until told to reopen, like an application.
struct Pieces {
    path: std::path::PathBuf,
    file: fs::File,
    /// Records completed.
    done: u64,
    /// Bytes of record `done` already written.
    part: usize,
}

impl Pieces {
    fn new(path: &Path) -> Pieces {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        Pieces {
            path: path.to_path_buf(),
            file,
            done: 0,
            part: 0,
        }
    }

    fn reopen(&mut self) {
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
    }

    /// Writes the next `n` bytes of the current record, not its last one.
    fn bytes(&mut self, n: usize) {
        let r = Writer::record(KIND, self.done);
        assert!(
            self.part + n < r.len(),
            "{n} bytes would complete record {}",
            self.done
        );
        self.file.write_all(&r[self.part..self.part + n]).unwrap();
        self.part += n;
    }

    /// Completes the current record and writes `more` whole ones.
    fn records(&mut self, more: u64) {
        for _ in 0..=more {
            let r = Writer::record(KIND, self.done);
            self.file.write_all(&r[self.part..]).unwrap();
            self.part = 0;
            self.done += 1;
        }
    }

    fn expected(&self) -> Vec<u8> {
        (0..self.done)
            .flat_map(|i| Writer::record(KIND, i))
            .collect()
    }

    fn size(&self) -> u64 {
        fs::metadata(&self.path).unwrap().len()
    }
}

/// 9a: a live file of 0, then 1, then 10 bytes (one record not yet
/// complete), the daemon restarted at each size, then the record completed.
#[test]
fn s09a_live_file_of_0_1_10_bytes_with_restarts() {
    let f = setup("");
    let mut p = Pieces::new(&f.join(live(KIND)));
    let mut d = Daemon::start(&f);
    for n in [1, 9] {
        d.term();
        d = Daemon::start(&f);
        p.bytes(n);
        assert_eq!(p.size(), p.part as u64);
    }
    d.term();
    let mut d = Daemon::start(&f);
    p.records(0);
    wait_output(
        &f,
        &mut d,
        &p.expected(),
        "the record written in pieces of 1 and 9 bytes, then completed",
    );
    d.term();
    let mut d = Daemon::start(&f);
    p.records(3);
    wait_output(
        &f,
        &mut d,
        &p.expected(),
        "after a restart at the end of that record",
    );
    d.term();
    let t = Tally::count_records(KIND, p.done, &output(&f), 0);
    t.assert_exact("9a");
    t.report(
        "9a",
        "tiny files: live file of 0, 1, 10 bytes, restart at each",
        "the record written in pieces delivered once, whole",
    );
}

/// 9b: rotated (logrotate `create`, the application reopening later) while
/// the live file holds only 10 bytes of a record, which the application
/// completes in the renamed file; three times while the daemon runs, twice
/// while it is stopped.
#[test]
fn s09b_rotated_while_holding_ten_bytes() {
    let f = setup("");
    let mut p = Pieces::new(&f.join(live(KIND)));
    p.bytes(10);
    let mut d = Daemon::start(&f);
    let rotate = |p: &mut Pieces| {
        logrotate(&f, "    create");
        p.records(0);
        p.reopen();
        p.bytes(10);
    };
    for _ in 0..3 {
        rotate(&mut p);
        wait_output(&f, &mut d, &p.expected(), "rotations while running");
    }
    d.term();
    rotate(&mut p);
    rotate(&mut p);
    let mut d = Daemon::start(&f);
    p.records(2);
    wait_output(
        &f,
        &mut d,
        &p.expected(),
        &format!("rotations while stopped (files: {:?})", listing(&f, KIND)),
    );
    d.term();
    let t = Tally::count_records(KIND, p.done, &output(&f), 0);
    t.assert_exact("9b");
    t.report(
        "9b",
        "tiny files: rotated while holding 10 bytes, 3x running, 2x stopped",
        "each record completed in the renamed file delivered once, whole",
    );
}

/// 9c, 9d: rotated files whose whole content is the same 10 bytes, three
/// of them made while the daemon is stopped at the end of the first.
fn identical_tiny_files(id: &str, directives: &str) {
    const BEAT: &[u8] = b"heartbeat\n";
    let f = setup("");
    let path = f.join(live(KIND));
    append(&path, BEAT);
    let mut d = Daemon::start(&f);
    wait_output(&f, &mut d, BEAT, "the first heartbeat");
    d.term();
    clock_past_checkpoint(&f);
    for _ in 0..2 {
        logrotate(&f, directives);
        append(&path, BEAT);
    }
    logrotate(&f, directives);
    let mut w = Writer::new(&path, KIND);
    w.write(5);
    let files = listing(&f, KIND);
    let mut d = Daemon::start(&f);
    let mut want = BEAT.repeat(3);
    want.extend_from_slice(w.ledger());
    wait_output(
        &f,
        &mut d,
        &want,
        &format!("three identical 10-byte files (files: {files:?})"),
    );
    d.term();
    let out = output(&f);
    let beats = out.chunks(BEAT.len()).take_while(|c| *c == BEAT).count();
    assert_eq!(beats, 3, "three heartbeats first");
    let t = Tally::count(&w, &out[3 * BEAT.len()..], 0);
    t.assert_exact(id);
    let how = if directives.contains("compress") {
        "compressed"
    } else {
        "plain"
    };
    report_line(&format!(
        "{id}|tiny files: three rotated files of the same 10 bytes, {how}, restart at the end of the first|{}|{}|{}|{}|the 3 identical files read once each, then the live file",
        t.written + 3,
        t.delivered + beats as u64,
        t.duplicated,
        t.reported_lost
    ));
}

#[test]
fn s09c_three_identical_ten_byte_files_plain() {
    identical_tiny_files("9c", "    create");
}

#[test]
fn s09d_three_identical_ten_byte_files_compressed() {
    identical_tiny_files("9d", "    create\n    compress");
}
