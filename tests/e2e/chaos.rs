//! Bounded chaos: a journal written without pause and rotated by every
//! strategy (p4: rename, rename then gzip, copy then truncate; application
//! log: real logrotate with create or copytruncate, compress and
//! delaycompress), live and while the daemon is down, with the daemon
//! SIGKILLed at random moments and restarted. At the end the raw output must still be the writer's ledger,
//! every entry exactly once and in order.
//!
//! The schedule comes from a seed printed at the start (shown with the
//! failure); set `LOGDAEMON_CHAOS_SEED` to replay one.

use std::time::{Duration, Instant};

use crate::fixture::Fixture;
use crate::rotation::harness::{config, listing, live, logrotate, run_tool, wait_output, Daemon};
use crate::rotation::{copy_truncate, p4_rename};
use crate::writer::{Kind, Pump, Writer};

/// How many times the daemon is killed.
const KILLS: u32 = 50;

/// xorshift64*: a small deterministic generator for the schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn seed() -> u64 {
    match std::env::var("LOGDAEMON_CHAOS_SEED") {
        Ok(s) => s.parse().expect("LOGDAEMON_CHAOS_SEED must be a number"),
        Err(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        }
    }
}

/// One rotation of the p4 journal by a strategy drawn from `rng`; `n` is
/// the next journal number. Returns what was done, for the failure message.
fn rotate(f: &Fixture, pump: &Pump, rng: &mut Rng, n: u64) -> &'static str {
    match rng.range(0, 3) {
        0 => {
            p4_rename(f, &mut pump.lock(), n);
            "rename"
        }
        1 => {
            p4_rename(f, &mut pump.lock(), n);
            run_tool("gzip", &[], &f.join(format!("{}.{n}", live(Kind::P4))));
            "rename+gzip"
        }
        _ => {
            copy_truncate(f, &mut pump.lock(), n);
            "copy+truncate"
        }
    }
}

#[test]
fn sigkill_at_random_moments_across_p4_rotations_loses_and_repeats_nothing() {
    chaos(Kind::P4, rotate);
}

#[test]
fn sigkill_at_random_moments_across_logrotate_runs_loses_and_repeats_nothing() {
    chaos(Kind::Lines, logrotate_once);
}

/// One real logrotate run on the application log, `create` (the
/// application reopens afterwards) or `copytruncate` (writes wait while it
/// runs), both with `compress` and `delaycompress`.
fn logrotate_once(f: &Fixture, pump: &Pump, rng: &mut Rng, _n: u64) -> &'static str {
    if rng.range(0, 2) == 0 {
        logrotate(f, "    create\n    compress\n    delaycompress");
        pump.lock().reopen();
        "create"
    } else {
        let _w = pump.lock();
        logrotate(f, "    copytruncate\n    compress\n    delaycompress");
        "copytruncate"
    }
}

type Rotate = fn(&Fixture, &Pump, &mut Rng, u64) -> &'static str;

fn chaos(kind: Kind, rotate: Rotate) {
    let seed = seed();
    eprintln!("chaos seed {seed} (replay with LOGDAEMON_CHAOS_SEED={seed})");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let f = Fixture::new();
    let mut w = Writer::new(&f.join(live(kind)), kind);
    w.write(20);
    f.write("cfg.toml", config(kind, "", "fsync = false"));
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, Duration::from_micros(300));
    let mut n = 1;
    let mut done = Vec::new();
    for _ in 0..KILLS {
        // Live: up to two rotations at random moments, then the kill.
        for _ in 0..rng.range(0, 3) {
            std::thread::sleep(Duration::from_millis(rng.range(5, 120)));
            done.push(rotate(&f, &pump, &mut rng, n));
            n += 1;
        }
        // Mostly short lives; one in five spans a periodic checkpoint save
        // (once a second), so restarts also begin from saved positions
        // inside files rotated since.
        let life = if rng.range(0, 5) == 0 {
            rng.range(1000, 1500)
        } else {
            rng.range(5, 150)
        };
        std::thread::sleep(Duration::from_millis(life));
        d.kill();
        // Down: sometimes a rotation before the restart.
        if rng.range(0, 4) == 0 {
            pump.wait_more(20);
            done.push(rotate(&f, &pump, &mut rng, n));
            n += 1;
        }
        d = Daemon::start(&f);
    }
    pump.wait_more(50);
    let w = pump.stop();
    let what = format!(
        "chaos seed {seed} (replay with LOGDAEMON_CHAOS_SEED={seed}): {KILLS} kills, rotations {done:?}, files {:?}",
        listing(&f, kind)
    );
    wait_output(&f, &mut d, &w.expected(), &what);
    d.term();
    eprintln!(
        "{KILLS} kills and {} rotations in {:?}",
        done.len(),
        started.elapsed()
    );
}
