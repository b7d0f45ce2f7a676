//! Scenario 15: a partial last line at a copytruncate or a kill -9, and a
//! huge record (64 MiB; 16 MiB in the bounded mode) renamed, compressed or
//! killed while the daemon holds half of it, its peak RSS bounded.

use std::fs;

use super::{finish, setup, Appended};
use crate::fixture::Fixture;
use crate::rotation::harness::{config, logrotate, wait_output, Daemon};
use crate::writer::Kind;

#[test]
fn s15a_partial_last_line_at_logrotate_copytruncate() {
    let (f, mut a) = setup(Kind::Lines, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    a.delivered(&f, &mut d);
    let line = b"2026-11-21T13:00:01.000 app[4242]: a line cut by the rotation\n";
    a.first_part(line, 30);
    logrotate(&f, "    copytruncate");
    a.rest();
    a.records(20);
    let t = finish(
        &f,
        &mut d,
        &a,
        "15a: a partial last line at logrotate copytruncate",
    );
    let how = a.entries_of(&f, 0);
    t.report(
        "15a",
        "partial last line at logrotate copytruncate",
        &format!("cut line delivered as {}", how.join(", ")),
    );
}

#[test]
fn s15b_partial_last_line_at_kill_9() {
    let (f, mut a) = setup(Kind::Lines, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    a.delivered(&f, &mut d);
    let line = b"2026-11-21T13:00:02.000 app[4242]: a line cut by the crash\n";
    a.first_part(line, 30);
    let before = a.expected[..a.len() - 30].to_vec();
    wait_output(&f, &mut d, &before, "15b: before the kill");
    d.kill();
    a.rest();
    a.records(20);
    let mut d = Daemon::start(&f);
    let t = finish(&f, &mut d, &a, "15b: a partial last line at kill -9");
    let how = a.entries_of(&f, 0);
    assert_eq!(
        how,
        [format!("seq 1 +{}", line.len())],
        "the line completed while the daemon was down is one complete entry"
    );
    t.report(
        "15b",
        "partial last line at kill -9, completed while down",
        &format!("delivered whole: {}", how.join(", ")),
    );
}

/// The size of the single huge record of scenario 15: 64 MiB (16 MiB in
/// the bounded mode: a debug build reads a 64 MiB line from a .gz in
/// about 17 s).
fn huge() -> usize {
    super::tally::scale(16 << 20, 64 << 20)
}

/// `len` bytes of text without `@` or newline, not trivially compressible.
fn filler(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                "{:016x} lorem ipsum dolor sit amet, {} consectetur ",
                i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                i % 977
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Waits until the daemon holds at least `kib` KiB more than `base`: it is
/// mid-way through the huge record.
fn wait_rss_above(d: &mut Daemon, base: u64, kib: u64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while status_kib(d.pid(), "VmRSS") < base + kib {
        d.assert_running();
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the daemon's RSS did not grow by {kib} KiB within 30 s; log:\n{}",
            d.log_tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Peak RSS allowed while one huge record passes: the record in the
/// reader's buffer (grown by doubling), its copy in the batch and the
/// decoder's chunks, with room for the allocator; not the whole file.
fn peak_limit_kib() -> u64 {
    5 * (huge() as u64 >> 10) + (32 << 10)
}

/// A journal of `kind` with only the raw listener (the entries of a
/// 64 MiB record as JSON would dominate the run).
fn setup_huge(kind: Kind, extra: &str) -> (Fixture, Appended) {
    let f = Fixture::new();
    let a = Appended::new(&f, kind);
    f.write("cfg.toml", config(kind, extra, "fsync = false"));
    (f, a)
}

#[test]
fn s15c_huge_p4_string_renamed_and_gzipped_while_read() {
    let (f, mut a) = setup_huge(Kind::P4, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    let mut rec = b"@pv@ 0 @db.desc@ 900100 @".to_vec();
    rec.extend_from_slice(&filler(huge()));
    rec.extend_from_slice(b"@ \n");
    let base = status_kib(d.pid(), "VmRSS");
    a.first_part(&rec, rec.len() / 2);
    wait_rss_above(&mut d, base, (huge() as u64 >> 10) / 4, "15c");
    // The rest, then p4's rename and a gzip of the renamed file (which
    // removes it) while the daemon reads.
    a.rest();
    crate::rotation::p4_rename(&f, &mut a.w, 1);
    a.records(20);
    crate::rotation::harness::run_tool("gzip", &["-1"], &f.join("p4root/journal.1"));
    wait_output(
        &f,
        &mut d,
        &a.expected,
        "15c: a 64 MiB p4 string renamed and gzipped while read",
    );
    let peak = status_kib(d.pid(), "VmHWM");
    d.term();
    let t = a.tally(&fs::read(f.join(crate::rotation::harness::OUT)).unwrap());
    t.assert_exact("15c");
    assert!(
        peak < peak_limit_kib(),
        "15c: peak RSS {peak} KiB for one 64 MiB record"
    );
    t.report(
        "15c",
        "huge p4 string, renamed and gzipped mid-way",
        &format!(
            "{} MiB string; peak RSS (VmHWM) {} MiB",
            huge() >> 20,
            peak >> 10
        ),
    );
}

#[test]
fn s15d_huge_line_killed_mid_way_then_rotated_and_compressed() {
    let (f, mut a) = setup_huge(Kind::Lines, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    let mut rec = b"2026-11-21T13:00:03.000 app[4242]: ".to_vec();
    rec.extend_from_slice(&filler(huge()));
    rec.push(b'\n');
    let base = status_kib(d.pid(), "VmRSS");
    a.first_part(&rec, rec.len() / 2);
    wait_rss_above(&mut d, base, (huge() as u64 >> 10) / 4, "15d");
    let first_peak = status_kib(d.pid(), "VmHWM");
    d.kill();
    a.rest();
    a.records(20);
    logrotate(&f, "    create\n    compress");
    a.w.reopen();
    a.records(20);
    let mut d = Daemon::start(&f);
    wait_output(
        &f,
        &mut d,
        &a.expected,
        "15d: a 64 MiB line, kill -9 mid-way, rotated and compressed while down",
    );
    let peak = status_kib(d.pid(), "VmHWM");
    d.term();
    let t = a.tally(&fs::read(f.join(crate::rotation::harness::OUT)).unwrap());
    t.assert_exact("15d");
    assert!(
        peak < peak_limit_kib() && first_peak < peak_limit_kib(),
        "15d: peak RSS {first_peak} KiB, then {peak} KiB from the .gz"
    );
    t.report(
        "15d",
        "huge line, kill -9 mid-way, logrotate compress while down",
        &format!("{} MiB line; peak RSS (VmHWM) {} MiB before the kill, {} MiB reading it from app.log.1.gz", huge() >> 20, first_peak >> 10, peak >> 10),
    );
}
