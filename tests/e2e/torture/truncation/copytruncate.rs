//! Scenario 1: the real `logrotate copytruncate` while a writer appends
//! about 10 000 lines a second without pause, the daemon keeping up (1a)
//! or slowed down (1b); each rotation's window measured from the files.

use std::fs;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{daemon_log, gaps, wait_until, Gap};
use crate::fixture::Fixture;
use crate::rotation::harness::{config, live, logrotate, wait_output, Daemon, OUT};
use crate::torture::tally::{records_in, scale, Tally};
use crate::writer::{Kind, Writer};

// ---------------------------------------------------------------------------
// 1: the real logrotate copytruncate while the writer appends ~10k lines/s.

/// Records a second the writer aims at in scenario 1.
const RATE: u64 = 10_000;

/// Sets the flag when dropped: stops the writer thread even when the test
/// panics, so that the thread scope can end.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Appends `RATE` records a second to `w` until `stop`: every 200 µs
/// whatever is due, so the pace holds without a sleep per record.
fn write_at_rate(w: &Mutex<Writer>, stop: &AtomicBool) -> Duration {
    let start = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let due = start.elapsed().as_micros() as u64 * RATE / 1_000_000;
        if n < due {
            let k = (due - n).min(64);
            w.lock().unwrap().write(k);
            n += k;
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    start.elapsed()
}

/// Ledger offsets of record starts, extended on demand.
struct Starts(Kind, Vec<usize>);

impl Starts {
    fn of(&mut self, i: u64) -> usize {
        while self.1.len() <= i as usize {
            let last = self.1.len() as u64 - 1;
            let next = self.1[last as usize] + Writer::record(self.0, last).len();
            self.1.push(next);
        }
        self.1[i as usize]
    }
}

/// The number of the lines record `line` (`… request N took …`), checked
/// to be exactly that record.
fn line_record(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let i: u64 = text
        .split("request ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    (Writer::record(Kind::Lines, i) == line).then_some(i)
}

/// Waits until the live file holds a whole first line and returns its
/// record number.
fn first_record(d: &mut Daemon, path: &Path) -> u64 {
    let mut first = None;
    wait_until(
        d,
        "a whole first line in the live file after the truncation",
        || {
            let bytes = fs::read(path).unwrap_or_default();
            let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
                return false;
            };
            let rec = line_record(&bytes[..=nl]);
            assert!(
                rec.is_some(),
                "the live file starts with no whole written record: {:?}",
                String::from_utf8_lossy(&bytes[..=nl])
            );
            first = rec;
            true
        },
    );
    first.unwrap()
}

#[test]
fn s01a_copytruncate_at_10k_lines_per_second() {
    copytruncate_at_rate("1a", "", "fsync = false", "daemon keeping up");
}

#[test]
fn s01b_copytruncate_at_10k_lines_per_second_daemon_lagging() {
    // 4 KiB batches, each synced: the daemon reads behind the writer, so
    // truncations find it inside the copy, having seen the window's size.
    copytruncate_at_rate("1b", "batch_bytes = 4096", "fsync = true", "daemon lagging");
}

fn copytruncate_at_rate(id: &str, journal_extra: &str, listener_extra: &str, how: &str) {
    let kind = Kind::Lines;
    let f = Fixture::new();
    let path = f.join(live(kind));
    let w = Mutex::new(Writer::new(&path, kind));
    f.write("cfg.toml", config(kind, journal_extra, listener_extra));
    let mut d = Daemon::start(&f);
    let rotations = scale(6u64, 100);
    let between = RATE * 6 / 10;
    let stop = AtomicBool::new(false);
    let mut starts = Starts(kind, vec![0]);
    // Per rotation: the window, as ledger bytes (copy end..live file start).
    let mut windows: Vec<Range<usize>> = Vec::new();
    let mut firsts = Vec::new();
    let elapsed = std::thread::scope(|s| {
        let writer = s.spawn(|| write_at_rate(&w, &stop));
        let _stop = StopOnDrop(&stop);
        let mut base = 0;
        for _ in 0..rotations {
            let target = w.lock().unwrap().count() + between;
            wait_until(&mut d, "the writer thread to write on", || {
                w.lock().unwrap().count() >= target
            });
            logrotate(&f, "    copytruncate");
            // The copy is the ledger from the previous live start on.
            let copied = fs::read(f.join("logs/app.log.1")).unwrap();
            let x = base + copied.len();
            assert!(
                w.lock().unwrap().ledger()[base..x] == copied[..],
                "copy {} is not the ledger from byte {base}",
                windows.len() + 1
            );
            let first = first_record(&mut d, &path);
            let y = starts.of(first);
            assert!(
                y >= x,
                "the live file starts at ledger byte {y}, before the copy's end {x}"
            );
            windows.push(x..y);
            firsts.push(first);
            base = y;
        }
        let target = w.lock().unwrap().count() + between;
        wait_until(&mut d, "the writer thread to write on", || {
            w.lock().unwrap().count() >= target
        });
        stop.store(true, Ordering::SeqCst);
        writer.join().expect("writer thread")
    });
    let mut w = w.into_inner().unwrap();
    let rate = w.count() as f64 / elapsed.as_secs_f64();

    // The records not wholly in a copy, `recs` by number, are those of its
    // window: a copy can end inside a record (a write straddling a page is
    // seen in two steps), whose rest is then in no file.
    let mut recs = Vec::new();
    let mut cut_copies = 0;
    starts.of(w.count());
    for (k, win) in windows.iter().enumerate() {
        let first = starts.1.binary_search(&win.start).unwrap_or_else(|i| {
            cut_copies += 1;
            i - 1
        });
        recs.push(first as u64..firsts[k]);
    }

    // The last record must arrive; everything before it has by then.
    let last = Writer::record(kind, w.count() - 1);
    wait_until(&mut d, "the last record in the output", || {
        fs::read(f.join(OUT)).unwrap_or_default().ends_with(&last)
    });
    d.term();
    let out = fs::read(f.join(OUT)).unwrap();
    let mut delivered = vec![false; w.count() as usize];
    for line in out.split_inclusive(|&b| b == b'\n') {
        if let Some(i) = line_record(line) {
            delivered[i as usize] = true;
        }
    }

    // Per window: a prefix read live before the truncation, then at most
    // one gap starting where that stopped, then bytes no reader saw.
    let reported = gaps(&f);
    let partials = partials(&daemon_log(&f));
    let (mut read_live, mut in_gaps, mut unseen, mut lost) = (0, 0, 0, 0);
    let mut base = 0;
    for (k, (win, recs)) in windows.iter().zip(&recs).enumerate() {
        let seq = k as u64 + 1;
        let stop_at = recs
            .clone()
            .find(|&i| !delivered[i as usize])
            .unwrap_or(recs.end);
        assert!(
            (stop_at..recs.end).all(|i| !delivered[i as usize]),
            "rotation {seq}: records of the window {recs:?} delivered after one that was not"
        );
        read_live += stop_at - recs.start;
        // A record whose start alone the daemon had read when the file was
        // truncated (a write straddling a page is seen in two steps) is
        // delivered as incomplete: those bytes are in the output, the rest
        // in no file.
        let cut = starts.of(stop_at);
        let cut = cut
            + partials
                .iter()
                .find(|&&(offset, _)| base + offset == cut)
                .map_or(0, |&(_, bytes)| bytes);
        let mine: Vec<&Gap> = reported.iter().filter(|g| g.sequence == seq).collect();
        assert!(
            mine.len() <= 1,
            "rotation {seq}: more than one gap: {mine:?}"
        );
        if let Some(g) = mine.first() {
            let (from, to) = (base + g.from as usize, base + g.to as usize);
            assert_eq!(g.cause, "copytruncate", "{g:?}");
            assert_eq!(from, cut, "rotation {seq}: the gap {g:?} does not start where delivery stopped in the window {win:?}");
            assert!(from < to && to <= win.end, "rotation {seq}: the gap {g:?} is not inside the window {win:?} (ledger {from}..{to})");
            in_gaps += records_in(&w, from..to);
        }
        if cut < win.end {
            w.mark_lost(cut..win.end);
        }
        let gone = recs.end - stop_at;
        lost += gone;
        base = win.end;
        unseen += gone;
    }
    unseen -= in_gaps;
    assert!(
        reported.iter().all(|g| g.sequence <= rotations),
        "gaps after the last rotation: {reported:?}"
    );
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        &format!("{id}: copytruncate at 10k lines/s"),
    );
    let t = Tally::count(&w, &out, lost);
    t.assert_exact(id);
    let window: u64 = recs.iter().map(|r| r.end - r.start).sum();
    let widest = recs.iter().map(|r| r.end - r.start).max().unwrap_or(0);
    t.report(
        id,
        &format!("logrotate copytruncate at 10k lines/s, writer not paused, {how}"),
        &format!(
            "{rate:.0} lines/s; windows {window} records in {rotations} rotations (widest {widest}): {read_live} read live before the truncation, \
             {in_gaps} reported as gaps, {unseen} past the last size the daemon saw (in no file, not reported){}",
            if cut_copies > 0 { format!("; {cut_copies} copies ended inside a record") } else { String::new() }
        ),
    );
}

/// The records the daemon logged as cut off by a truncation and delivered
/// as incomplete: (offset in their file, bytes delivered).
fn partials(log: &str) -> Vec<(usize, usize)> {
    let field = |line: &str, key: &str| -> Option<usize> {
        let at = line.find(key)? + key.len();
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    log.lines()
        .filter(|l| l.contains("partial record before a truncation is cut off"))
        .filter_map(|l| Some((field(l, " offset=")?, field(l, " bytes=")?)))
        .collect()
}

#[test]
fn a_partial_record_cut_off_by_a_truncation_is_read_from_the_log() {
    let log = "x WARN a: partial record before a truncation is cut off; delivered as incomplete journal=app file=/l/app.log offset=638967 bytes=9\n\
               x INFO a: file truncated in place journal=app read_pos=1 size=0";
    assert_eq!(partials(log), [(638967, 9)]);
}
