//! Scenario 16: a compressed predecessor that is still being written or is corrupt.
//!
//! What this proves: a rotated journal whose compressed file is still being
//! written is read once it is complete, never reported corrupt or skipped;
//! one that stays truncated stops the daemon (or, with `on_gap = "report"`,
//! becomes one gap of exactly the bytes it lacks) with a message naming the
//! file, the uncompressed offset and what to do.
//!
//! How: the test is the compressor. It compresses the rotated journal with
//! the real tool (`gzip -c`, `xz -c`, `zstd -c`) into memory and writes the
//! bytes to `journal.N.gz|.xz|.zst` itself, in pieces with pauses, while
//! the daemon runs: either beside the uncompressed `journal.N`, removed
//! afterwards (what `gzip` does: it writes `X.gz`, then unlinks `X`), or
//! with `journal.N` already gone (p4d `-z` writes the rotated journal
//! compressed, with no plain copy). A file that stays truncated is given a
//! modification time an hour back: the daemon's wait for a compressed file
//! that ends too soon runs from the file's last change, so the test needs
//! no sleep to make it "old".

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use super::tally::{records_in, Tally};
use crate::fixture::Fixture;
use crate::rotation::harness::{live, wait_output, Daemon, LOG, OUT};
use crate::rotation::p4_rename;
use crate::writer::{Kind, Writer};

/// `tool -c FILE`: the compressed bytes.
fn compressed(tool: &str, file: &Path) -> Vec<u8> {
    let out = Command::new(tool)
        .arg("-c")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} -c {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A compressor at work: appends `bytes` to `dst` in `pieces` writes,
/// `pause` apart, on its own thread.
fn write_slowly(
    dst: PathBuf,
    bytes: Vec<u8>,
    pieces: usize,
    pause: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&dst)
            .unwrap();
        for piece in bytes.chunks(bytes.len().div_ceil(pieces)) {
            std::thread::sleep(pause);
            f.write_all(piece).unwrap();
        }
    })
}

/// `p4root/journal.1` and its compressed name with `ext`.
fn rotated(f: &Fixture, ext: &str) -> (PathBuf, PathBuf) {
    let plain = f.join(format!("{}.1", live(Kind::P4)));
    let packed = f.join(format!("{}.1.{ext}", live(Kind::P4)));
    (plain, packed)
}

fn setup(journal_extra: &str) -> (Fixture, Writer) {
    crate::rotation::harness::setup(Kind::P4, journal_extra, "fsync = false")
}

/// The daemon's log so far.
fn log(f: &Fixture) -> String {
    fs::read_to_string(f.join(LOG)).unwrap_or_default()
}

#[test]
fn s16a_gzip_still_writing_beside_the_renamed_journal() {
    let (f, mut w) = setup("");
    let mut d = Daemon::start(&f);
    w.write(200);
    wait_output(&f, &mut d, &w.expected(), "16a: before the rotation");
    w.write(200);
    p4_rename(&f, &mut w, 1);
    let (plain, gz) = rotated(&f, "gz");
    let bytes = compressed("gzip", &plain);
    let compressor = write_slowly(gz.clone(), bytes, 6, Duration::from_millis(80));
    w.write(100);
    compressor.join().unwrap();
    fs::remove_file(&plain).unwrap();
    w.write(100);
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "16a: gzip writing journal.1.gz beside journal.1",
    );
    d.term();
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
    t.assert_exact("16a");
    t.report(
        "16a",
        "gzip still writing journal.1.gz beside journal.1 (then removes it), daemon live",
        "6 pieces 80 ms apart; read from the renamed file's descriptor",
    );
}

/// Stops the daemon after it delivered `before` records, then writes
/// `after` more, renames the journal and compresses it with `tool` into
/// memory, removing the plain file: the compressed bytes are returned for
/// the test to write.
fn rotated_while_down(
    f: &Fixture,
    w: &mut Writer,
    tool: &str,
    ext: &str,
) -> (PathBuf, Vec<u8>, usize) {
    let mut d = Daemon::start(f);
    w.write(200);
    wait_output(f, &mut d, &w.expected(), "16: before the stop");
    d.term();
    let acked = w.expected().len();
    w.write(200);
    p4_rename(f, w, 1);
    let (plain, packed) = rotated(f, ext);
    let bytes = compressed(tool, &plain);
    fs::remove_file(&plain).unwrap();
    w.write(50);
    (packed, bytes, acked)
}

#[test]
fn s16b_restart_while_the_compressed_journal_is_still_being_written() {
    let (f, mut w) = setup("");
    let (gz, bytes, _) = rotated_while_down(&f, &mut w, "gzip", "gz");
    // A tenth of it is there when the daemon starts; the rest comes in
    // pieces. The checkpoint lies beyond the tenth.
    let first = bytes.len() / 10;
    fs::write(&gz, &bytes[..first]).unwrap();
    let compressor = write_slowly(
        gz.clone(),
        bytes[first..].to_vec(),
        5,
        Duration::from_millis(150),
    );
    let mut d = Daemon::start(&f);
    compressor.join().unwrap();
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "16b: journal.1.gz written while the daemon starts",
    );
    d.term();
    assert!(
        log(&f).contains("compressed file ends too soon; waiting while it is written"),
        "the daemon waited for journal.1.gz:\n{}",
        d.log_tail()
    );
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
    t.assert_exact("16b");
    t.report(
        "16b",
        "restart while journal.1.gz is still being written (no plain journal.1)",
        "a tenth there at start, the rest in 5 pieces 150 ms apart: waited, then read",
    );
}

/// Gives `file` a modification time an hour back: it stopped changing long ago.
fn settled_long_ago(file: &Path) {
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(file)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
}

/// Waits (up to 30 s) for the daemon to stop by itself (a zombie until
/// the harness reaps it); returns its log.
fn wait_exit(f: &Fixture, d: &Daemon) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = format!("/proc/{}/status", d.pid());
    while !fs::read_to_string(&status).is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not stop within 30 s; log:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    log(f)
}

#[test]
fn s16c_truncated_xz_stops_naming_file_offset_and_remedy() {
    let (f, mut w) = setup("");
    let (xz, bytes, acked) = rotated_while_down(&f, &mut w, "xz", "xz");
    // The compressor died with most of the file written.
    fs::write(&xz, &bytes[..bytes.len() * 9 / 10]).unwrap();
    settled_long_ago(&xz);
    let d = Daemon::start(&f);
    let text = wait_exit(&f, &d);
    let want = format!(
        "error: journal \"p4\": {}: xz data ends unexpectedly at uncompressed offset ",
        xz.display()
    );
    let at = text
        .find(&want)
        .unwrap_or_else(|| panic!("16c: no message naming {}:\n{}", xz.display(), d.log_tail()));
    let rest = &text[at + want.len()..];
    let offset: usize = rest[..rest.find(' ').unwrap()].parse().unwrap();
    assert!(
        rest.contains("(unchanged for 3600 s): the file is truncated")
            && rest.contains("restore the complete file"),
        "16c: the message says what to do: {}",
        &rest[..rest.find('\n').unwrap_or(rest.len())]
    );
    // Nothing is delivered after the checkpoint: the batch that met the cut
    // is dropped with the error, and the checkpoint stays where it was for
    // a restart with the file restored.
    let out = fs::read(f.join(OUT)).unwrap();
    assert!(
        out.len() == acked && out[..] == w.expected()[..acked],
        "16c: delivered {} bytes, checkpoint at {acked}, cut at {offset}",
        out.len()
    );
    let t = Tally::count(&w, &out, 0);
    assert_eq!(
        (t.duplicated, t.out_of_order, t.foreign_bytes),
        (0, 0, 0),
        "16c: {t:?}"
    );
    super::tally::report_line(&format!(
        "16c|journal.1.xz truncated for good (unchanged for an hour), daemon restarted|{}|{}|{}|0|stopped: \"… xz data ends unexpectedly at uncompressed offset {offset} (unchanged for 3600 s): the file is truncated …; restore the complete file …\"; the {} records after the checkpoint wait for the file (those before the cut too: the batch that met it is dropped)",
        t.written, t.delivered, t.duplicated, t.written - t.delivered
    ));
}

#[test]
fn s16d_truncated_zstd_before_the_checkpoint_is_one_gap_with_report() {
    let (f, mut w) = setup("on_gap = \"report\"");
    let (zst, bytes, acked) = rotated_while_down(&f, &mut w, "zstd", "zst");
    // Cut before the checkpoint's position: nothing from there on exists.
    fs::write(&zst, &bytes[..bytes.len() / 10]).unwrap();
    settled_long_ago(&zst);
    let end_of_1 = w.expected().len()
        - (w.count() - 50..w.count())
            .map(|i| Writer::record(Kind::P4, i).len())
            .sum::<usize>();
    let mut d = Daemon::start(&f);
    // Expected: everything but journal 1's bytes from the checkpoint on.
    let ledger = w.expected();
    let want: Vec<u8> = [&ledger[..acked], &ledger[end_of_1..]].concat();
    wait_output(
        &f,
        &mut d,
        &want,
        "16d: a gap for the truncated journal.1.zst",
    );
    d.term();
    let gaps = fs::read_to_string(f.join(format!("{OUT}.gaps"))).unwrap_or_default();
    let gap: Vec<serde_json::Value> = gaps
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(gap.len(), 1, "16d: one gap: {gaps}");
    let g = &gap[0]["gap"];
    assert_eq!(
        (g["from"]["sequence"].as_u64(), g["from"]["offset"].as_u64()),
        (Some(1), Some(acked as u64)),
        "{gaps}"
    );
    assert_eq!(
        (g["to"]["sequence"].as_u64(), g["to"]["offset"].as_u64()),
        (Some(2), Some(0)),
        "{gaps}"
    );
    let detail = g["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("{}: zstd data ends unexpectedly", zst.display()))
            && detail.contains("unchanged for 3600 s"),
        "16d: {detail}"
    );
    let lost = records_in(&w, acked..end_of_1);
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), lost);
    t.assert_exact("16d");
    t.report(
        "16d",
        "journal.1.zst truncated before the checkpoint, on_gap = report",
        &format!(
            "one gap {{1:{acked}}}..{{2:0}}, cause {}: exactly the {lost} records no file holds",
            g["cause"]
        ),
    );
}

#[test]
fn s16e_corrupt_gzip_stops_at_once_naming_file_and_offset() {
    let (f, mut w) = setup("");
    let (gz, mut bytes, acked) = rotated_while_down(&f, &mut w, "gzip", "gz");
    // Damaged after the checkpoint's position (which lies half-way),
    // complete in length, just written: corrupt data is not waited for.
    let mid = bytes.len() * 3 / 4;
    for b in &mut bytes[mid..mid + 32] {
        *b ^= 0x5a;
    }
    fs::write(&gz, &bytes).unwrap();
    let started = std::time::Instant::now();
    let d = Daemon::start(&f);
    let text = wait_exit(&f, &d);
    let took = started.elapsed();
    let want = format!(
        "error: journal \"p4\": {}: corrupt gzip data at uncompressed offset ",
        gz.display()
    );
    assert!(
        text.contains(&want),
        "16e: no message naming {}:\n{}",
        gz.display(),
        d.log_tail()
    );
    assert!(
        took < Duration::from_secs(30),
        "16e: the daemon waited {took:?} on corrupt data"
    );
    let out = fs::read(f.join(OUT)).unwrap();
    assert!(
        out.len() == acked && out[..] == w.expected()[..acked],
        "16e: delivered {} bytes, checkpoint at {acked}",
        out.len()
    );
    let t = Tally::count(&w, &out, 0);
    super::tally::report_line(&format!(
        "16e|journal.1.gz corrupt after the checkpoint, daemon restarted|{}|{}|{}|0|stopped at once ({} ms): \"journal \\\"p4\\\": …/journal.1.gz: corrupt gzip data at uncompressed offset N: …\"; checkpoint kept",
        t.written,
        t.delivered,
        t.duplicated,
        took.as_millis()
    ));
}
