//! Scenarios 3 to 6: rename rotation with and without compression, while the daemon is down, lagging, or while the writer keeps appending to the renamed file.
//!
//! Nothing is destroyed in these rotations: every byte the writer appended
//! is in some file, plain or compressed, at every moment. So each scenario
//! must end with every record delivered exactly once and in order, and no
//! gap reported, however far behind the daemon was, however it was stopped
//! and whatever became of the file it was reading.
//!
//! Each scenario is a plan of [`Step`]s run while a writer thread appends
//! without pause (p4 records, some spanning lines, or log lines): stop,
//! freeze and restart the daemon, rotate the p4 way (rename to
//! `journal.N`, then maybe gzip, xz, zstd or bzip2) or with the real
//! `logrotate` (`create`, `compress` with each compressor, `delaycompress`),
//! or let the writer go on in the renamed file for a while. The daemon
//! starts with a backlog (records written before it starts, delivered in
//! small synced batches where a scenario needs it behind), and the row
//! says how far behind it was when the first step hit it.
//!
//! - 3: rotations compressed by every compressor while the daemon is down
//!   (SIGTERM or SIGKILL): it resumes inside a compressed file.
//! - 4: `compress` without `delaycompress` while the daemon lags: the file
//!   it reads is renamed, compressed and deleted under it; with rotations
//!   piling up (4d), the next file is still being compressed when the
//!   daemon looks for it, listed plain and gone when opened.
//! - 5: the writer appends to the renamed file for 3 s (30 s in the long
//!   mode) before it reopens the live path, with the daemon running, and
//!   killed and restarted in the middle of it.
//! - 6: two and three rotations, some compressed, while the daemon is
//!   frozen or stopped with a backlog.

mod down;
mod lagging;
mod late;
mod several;

use std::fmt::Write as _;
use std::fs;
use std::time::{Duration, Instant};

use super::tally::{scale, Tally};
use crate::fixture::Fixture;
use crate::rotation::harness::{
    self, listing, live, logrotate, run_tool, wait_output, Daemon, LOG, OUT,
};
use crate::rotation::p4_rename;
use crate::writer::{Kind, Pump};

/// Time between two records of the writer thread.
const PACE: Duration = Duration::from_micros(300);
/// Records written between two steps.
const BETWEEN: u64 = 300;

/// A compressor, as run on a p4 journal renamed to `journal.N`.
#[derive(Debug, Clone, Copy)]
enum Tool {
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Gzip => "gzip",
            Tool::Xz => "xz",
            Tool::Zstd => "zstd",
            Tool::Bzip2 => "bzip2",
        }
    }

    /// Flags that make it replace the file by the compressed one quietly.
    fn flags(self) -> &'static [&'static str] {
        match self {
            Tool::Zstd => &["-q", "--rm"],
            _ => &[],
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Tool::Gzip => ".gz",
            Tool::Xz => ".xz",
            Tool::Zstd => ".zst",
            Tool::Bzip2 => ".bz2",
        }
    }

    /// logrotate directives compressing with this tool.
    fn logrotate(self) -> String {
        let p = format!("/usr/bin/{}", self.name());
        format!(
            "    compress\n    compresscmd {p}\n    compressext {}\n    compressoptions -6\n",
            self.ext()
        )
    }
}

/// One step of a scenario's plan.
#[derive(Debug, Clone)]
enum Step {
    Freeze,
    Thaw,
    Kill,
    Term,
    Start,
    /// p4d's rotation: rename to `journal.N` (N counts from 1), the writer
    /// reopening at once (or not before [`Step::Reopen`]), then the
    /// compressor, if any, on the renamed journal.
    P4 {
        compress: Option<Tool>,
        reopen: bool,
    },
    /// The real `logrotate -f` with these directives; the writer reopens
    /// at once (its writes wait while logrotate runs), or not before
    /// [`Step::Reopen`].
    Logrotate {
        directives: String,
        reopen: bool,
    },
    Reopen,
    /// Hold the writer until the output has everything it wrote so far
    /// (the daemon follows the file the writer is in, renamed or not).
    CaughtUp,
    /// The writer appends this many records at once.
    Burst(u64),
    /// Until the daemon has saved its checkpoint once more (it saves
    /// every second while positions move): a kill after this restarts
    /// from a saved position, not from the start of the file.
    Saved,
    /// Let the writer write for this long.
    Hold(Duration),
}

/// A rename rotation, the writer reopening at once.
fn p4(compress: Option<Tool>) -> Step {
    Step::P4 {
        compress,
        reopen: true,
    }
}

/// logrotate `create` plus `extra` directives, the writer reopening at once.
fn lr(extra: &str) -> Step {
    Step::Logrotate {
        directives: format!("    create\n{extra}"),
        reopen: true,
    }
}

/// How a scenario is set up.
struct Setup {
    kind: Kind,
    /// Records written before the daemon starts.
    backlog: u64,
    /// Deliver in 16 KiB batches, each synced: the daemon stays behind.
    slow: bool,
}

/// Runs `plan` and checks that every record arrived exactly once, in
/// order, with no gap. Returns the tally and a note on how far behind the
/// daemon was when the first step hit it and where it resumed.
fn run(id: &str, setup: Setup, plan: &[Step]) -> (Tally, String) {
    let Setup {
        kind,
        backlog,
        slow,
    } = setup;
    let (journal_extra, listener_extra) = if slow {
        ("batch_bytes = 16384", "fsync = true")
    } else {
        ("", "fsync = false")
    };
    let (f, mut w) = harness::setup(kind, journal_extra, listener_extra);
    w.write(backlog);
    let mut d = Daemon::start(&f);
    let out_len = || fs::metadata(f.join(OUT)).map_or(0, |m| m.len());
    let started = Instant::now();
    while out_len() == 0 {
        d.assert_running();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{id}: nothing delivered within 30 s; log:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let pump = Pump::start(w, PACE);
    let mut note = String::new();
    let mut journal = 0;
    let mut lags = Vec::new();
    for (i, step) in plan.iter().enumerate() {
        // The first step comes as soon as the daemon has begun delivering:
        // with a slow daemon the backlog is still nearly whole. A step
        // after a burst comes at once, before the daemon can have read it.
        if i > 0 && !matches!(plan[i - 1], Step::Burst(_)) {
            pump.wait_more(BETWEEN);
        }
        let behind = || {
            pump.lock()
                .ledger()
                .len()
                .saturating_sub(out_len() as usize)
                / 1024
        };
        if i == 0 && slow {
            write!(note, "{} KiB behind at the first step", behind()).unwrap();
        }
        if slow && matches!(step, Step::P4 { .. } | Step::Logrotate { .. }) {
            lags.push(behind());
        }
        match step {
            Step::Freeze => d.freeze(),
            Step::Thaw => d.thaw(),
            Step::Kill => d.kill(),
            Step::Term => d.term(),
            Step::Start => {
                let before = fs::metadata(f.join(LOG)).map_or(0, |m| m.len());
                d = Daemon::start(&f);
                if let Some(at) = resumed_in(&f, before) {
                    write!(note, "; resumed in {at}").unwrap();
                }
            }
            Step::P4 { compress, reopen } => {
                journal += 1;
                let renamed = f.join(format!("{}.{journal}", live(kind)));
                let mut w = pump.lock();
                if *reopen {
                    p4_rename(&f, &mut w, journal);
                } else {
                    fs::rename(w.path(), &renamed).unwrap();
                }
                drop(w);
                if let Some(t) = compress {
                    assert!(
                        *reopen,
                        "{id}: a journal is compressed only once the writer has left it"
                    );
                    run_tool(t.name(), t.flags(), &renamed);
                }
            }
            Step::Logrotate { directives, reopen } => {
                let mut w = pump.lock();
                if *reopen {
                    logrotate(&f, directives);
                    w.reopen();
                } else {
                    drop(w);
                    logrotate(&f, directives);
                }
            }
            Step::Reopen => pump.lock().reopen(),
            Step::Burst(n) => pump.lock().write(*n),
            Step::Saved => {
                let checkpoint = || fs::read(f.join("state/checkpoint.toml")).ok();
                let (before, deadline) = (checkpoint(), Instant::now() + Duration::from_secs(30));
                while checkpoint() == before {
                    d.assert_running();
                    assert!(
                        Instant::now() < deadline,
                        "{id}: no checkpoint save within 30 s; log:\n{}",
                        d.log_tail()
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Step::CaughtUp => {
                let w = pump.lock();
                wait_output(
                    &f,
                    &mut d,
                    &w.expected(),
                    &format!("{id}: step {i} ({step:?}), files {:?}", listing(&f, kind)),
                );
            }
            Step::Hold(t) => {
                let (from, until) = (pump.lock().count(), Instant::now() + *t);
                while Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
                write!(
                    note,
                    "; {} records appended in {t:?}",
                    pump.lock().count() - from
                )
                .unwrap();
            }
        }
    }
    if let (Some(lo), Some(hi)) = (lags.iter().min(), lags.iter().max()) {
        write!(
            note,
            "; {lo} to {hi} KiB behind at the {} rotations",
            lags.len()
        )
        .unwrap();
    }
    pump.wait_more(BETWEEN);
    let w = pump.stop();
    let files = listing(&f, kind);
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        &format!("{id}: after {plan:?} (files: {files:?})"),
    );
    d.term();
    let gaps = f.join(format!("{OUT}.gaps"));
    assert!(
        !gaps.exists(),
        "{id}: nothing was lost, yet gaps were reported: {}",
        fs::read_to_string(&gaps).unwrap_or_default()
    );
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
    t.assert_exact(id);
    (t, note.trim_start_matches("; ").to_string())
}

/// The file and offset named by the daemon's "resuming" log line after
/// byte `from` of its log.
fn resumed_in(f: &Fixture, from: u64) -> Option<String> {
    let log = fs::read(f.join(LOG)).ok()?;
    let log = String::from_utf8_lossy(log.get(from as usize..)?).into_owned();
    let line = log.lines().find(|l| l.contains("resuming"))?;
    let field = |name: &str| line.split_whitespace().find_map(|w| w.strip_prefix(name));
    let file = field("file=")?.rsplit('/').next()?;
    Some(format!("{file} at offset {}", field("offset=")?))
}

/// Records written before the daemon starts.
fn backlog() -> u64 {
    scale(8_000, 200_000)
}
