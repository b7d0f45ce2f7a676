//! Scenario 18: a line log rotated Perforce-style (`app.log` renamed to
//! `app.log.1`, then `app.log.2`, …: higher is newer) under the default
//! config, which assumes logrotate's numbering (higher is older), with a
//! writer at full speed, the renamed files plain or gzipped, the daemon
//! running throughout or killed around every other rename.
//!
//! The names contradict the order the files were written in. The daemon
//! must never deliver a record twice: files it finished are known by
//! content and passed over, and where a file the names call older was
//! never read it stops naming the `rotated` setting that fits. So each row
//! ends exact, or refused with that message and nothing twice.

use std::fs;
use std::time::{Duration, Instant};

use super::tally::{scale, Tally};
use crate::rotation::harness::{self, live, run_tool, Daemon, LOG, OUT};
use crate::writer::{Kind, Pump};

const FITS: &str = "rotated = [\"{name}.{N}{ext}\"]";

fn ascending(id: &str, scenario: &str, gzip: bool, kills: bool) {
    let (f, mut w) = harness::setup(Kind::Lines, "", "fsync = false");
    w.write(2_000);
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, Duration::ZERO);
    let rounds = scale(4, 20);
    let mut refused = None;
    let started = Instant::now();
    for n in 1..=rounds {
        pump.wait_more(scale(20_000, 200_000));
        let kill = kills && n % 2 == 1;
        if kill {
            d.kill();
        }
        let renamed = f.join(format!("{}.{n}", live(Kind::Lines)));
        {
            let mut w = pump.lock();
            fs::rename(w.path(), &renamed).unwrap();
            w.reopen();
        }
        if gzip {
            run_tool("gzip", &[], &renamed);
        }
        if kill {
            d = Daemon::start(&f);
        }
        if let Some(st) = d.exited() {
            refused = Some(st);
            break;
        }
    }
    let rate = pump.lock().count() as f64 / started.elapsed().as_secs_f64();
    pump.wait_more(1_000);
    let w = pump.stop();
    let want = w.expected();
    let deadline = Instant::now() + Duration::from_secs(60);
    while refused.is_none() {
        if fs::metadata(f.join(OUT)).map_or(0, |m| m.len()) >= want.len() as u64 {
            break;
        }
        refused = d.exited();
        assert!(
            Instant::now() < deadline,
            "{id}: neither caught up nor stopped in 60 s; log:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = fs::read(f.join(OUT)).unwrap_or_default();
    let t = Tally::count(&w, &out, 0);
    let note = match refused {
        None => {
            d.term();
            t.assert_exact(id);
            format!("{rate:.0} lines/s; {rounds} renames; read in the written order, the files already read passed over by content")
        }
        Some(st) => {
            let log = fs::read_to_string(f.join(LOG)).unwrap_or_default();
            assert!(
                !st.success() && log.contains(FITS),
                "{id}: stopped ({st}) without naming the setting that fits; log:\n{}",
                d.log_tail()
            );
            assert!(
                t.duplicated == 0 && t.out_of_order == 0 && t.foreign_bytes == 0,
                "{id}: {t:?}"
            );
            let before = t.delivered;
            // The way out, as printed: the setting that fits.
            f.write(
                "cfg.toml",
                harness::config(Kind::Lines, FITS, "fsync = false"),
            );
            let mut d = Daemon::start(&f);
            harness::wait_output(&f, &mut d, &want, &format!("{id}: with {FITS}"));
            d.term();
            let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
            t.assert_exact(id);
            t.report(
                id,
                scenario,
                &format!("{rate:.0} lines/s; refused after {before} records: the stop names the file the names call older and {FITS}; with that setting the rest once"),
            );
            return;
        }
    };
    assert!(
        !f.join(format!("{OUT}.gaps")).exists(),
        "{id}: nothing was lost, yet gaps were reported"
    );
    t.report(id, scenario, &note);
}

#[test]
fn s18a_ascending_rename_plain_writer_at_full_speed() {
    ascending(
        "18a",
        "line log renamed Perforce-style (plain), default config, writer at full speed",
        false,
        false,
    );
}

#[test]
fn s18b_ascending_rename_gzip_writer_at_full_speed() {
    ascending(
        "18b",
        "line log renamed Perforce-style then gzipped, default config, writer at full speed",
        true,
        false,
    );
}

#[test]
fn s18c_ascending_rename_plain_with_kills() {
    ascending(
        "18c",
        "line log renamed Perforce-style (plain), default config, killed around every other rename",
        false,
        true,
    );
}

#[test]
fn s18d_ascending_rename_gzip_with_kills() {
    ascending("18d", "line log renamed Perforce-style then gzipped, default config, killed around every other rename", true, true);
}
