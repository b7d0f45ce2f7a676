//! Scenario 20: listeners sharing their journal's reader.
//!
//! Two listeners follow one line log under load: the raw `file` listener
//! `copy`, always up, and the `testkit` listener `kit`, which answers
//! Retry while the file `flag` is missing (and records every entry with its
//! raw bytes once it takes them). Both take the batches of the journal's
//! one reader while they keep up; a listener that fails twice in a row, or
//! falls behind the shared window, reads from disk on its own and joins
//! again once it stands where the reader does.
//!
//! - 20a: `kit` goes down three times while the writer runs: each time it
//!   falls out of the shared batches (the status says so) and, once up,
//!   catches up on its own and joins them again, the writer still running.
//!   Both outputs exact.
//! - 20b: `kit` goes down in five bursts under load: during each one,
//!   `copy` keeps up with the writer (everything written before the check
//!   delivered while `kit` still refuses), never held back by the listener
//!   that is down. Both outputs exact.

use std::fs;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::tally::{scale, Tally};
use crate::fixture::{stdout, Fixture};
use crate::host::{entry_text, kit_listener, wait_until};
use crate::rotation::harness::{config, live, wait_output, Daemon, LOG, OUT};
use crate::writer::{Kind, Pump, Writer};

/// Time between two records of the writer thread.
const PACE: Duration = Duration::from_micros(500);
/// Where the testkit listener records.
const KIT: &str = "out/kit.jsonl";

fn setup() -> Fixture {
    let f = Fixture::new();
    f.write(
        "cfg.toml",
        format!(
            "{}{}",
            config(Kind::Lines, "", "fsync = false"),
            kit_listener(
                "kit",
                "retry_max = \"200ms\"",
                "retry_until_file = \"flag\""
            )
        ),
    );
    f
}

/// `kit`'s reading in `status --json`: shared, fell out, rejoined.
fn kit_reading(f: &Fixture) -> (bool, u64, u64) {
    let out = f.run(&["status", "--config", "cfg.toml", "--json"]);
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap_or(Value::Null);
    let kit = json["journals"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|j| j["listeners"].as_array().into_iter().flatten())
        .find(|l| l["name"] == "kit");
    match kit {
        Some(l) => (
            l["shared"].as_bool().unwrap_or(false),
            l["fell_out"].as_u64().unwrap_or(0),
            l["rejoined"].as_u64().unwrap_or(0),
        ),
        None => (false, 0, 0),
    }
}

/// Starts the daemon on a journal of 100 records with both listeners up
/// and the writer running.
fn start(f: &Fixture) -> (Daemon, Pump) {
    let mut w = Writer::new(&f.join(live(Kind::Lines)), Kind::Lines);
    w.write(100);
    f.write("flag", "");
    let d = Daemon::start(f);
    (d, Pump::start(w, PACE))
}

/// Once the writer stopped: both outputs must be exact.
fn finish(f: &Fixture, mut d: Daemon, w: Writer, id: &str, scenario: &str, note: &str) {
    let expected = w.expected();
    wait_output(f, &mut d, &expected, &format!("{id}: copy"));
    let kit = f.join(KIT);
    wait_until(
        30,
        "the testkit listener to catch up",
        || entry_text(&kit).len() >= expected.len(),
        || d.log_tail(),
    );
    d.term();
    Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0).assert_exact(&format!("{id} (copy)"));
    let t = Tally::count(&w, entry_text(&kit).as_bytes(), 0);
    t.assert_exact(&format!("{id} (kit)"));
    t.report(id, scenario, note);
}

#[test]
fn s20a_a_listener_falls_out_of_the_shared_batches_and_joins_again_under_load() {
    let f = setup();
    let (d, pump) = start(&f);
    let log = || fs::read_to_string(f.join(LOG)).unwrap_or_default();
    let rounds = scale(3u64, 10);
    for round in 1..=rounds {
        wait_until(
            30,
            "kit to take the shared batches",
            || kit_reading(&f).0,
            log,
        );
        fs::remove_file(f.join("flag")).unwrap();
        pump.wait_more(400);
        wait_until(
            30,
            "kit, down, to fall out of the shared batches",
            || kit_reading(&f).1 >= round,
            log,
        );
        pump.wait_more(400);
        f.write("flag", "");
        wait_until(
            30,
            "kit, up again, to join the shared batches under load",
            || kit_reading(&f).2 >= round,
            log,
        );
    }
    let (_, fell_out, rejoined) = kit_reading(&f);
    let w = pump.stop();
    let written = w.count();
    // kit, slower than copy (it records JSON), may fall out again under
    // load; once the writer stops, it joins again.
    let log = || fs::read_to_string(f.join(LOG)).unwrap_or_default();
    wait_until(
        30,
        "kit to take the shared batches once the writer stopped",
        || kit_reading(&f).0,
        log,
    );
    finish(
        &f,
        d,
        w,
        "20a",
        "a listener down 3 times under load falls out of the shared batches and joins again",
        &format!("{fell_out} times fell out, {rejoined} times joined again while the writer ran ({written} records written); both listeners exact"),
    );
}

#[test]
fn s20b_a_listener_down_in_bursts_never_holds_back_the_fast_one() {
    let f = setup();
    let (d, pump) = start(&f);
    let bursts = scale(5u64, 20);
    let kit = f.join(KIT);
    let mut slowest = Duration::ZERO;
    for _ in 0..bursts {
        fs::remove_file(f.join("flag")).unwrap();
        pump.wait_more(300);
        // Everything written by now reaches `copy` while `kit` refuses.
        let (want, t0) = (pump.lock().expected(), Instant::now());
        let kit_had = entry_text(&kit).len();
        wait_until(
            30,
            "copy to keep up while kit is down",
            || fs::read(f.join(OUT)).unwrap_or_default().len() >= want.len(),
            || d.log_tail(),
        );
        slowest = slowest.max(t0.elapsed());
        assert!(
            !f.join("flag").exists() && entry_text(&kit).len() == kit_had,
            "kit took entries while down"
        );
        assert!(
            kit_had < want.len(),
            "kit was not behind: the burst tested nothing"
        );
        f.write("flag", "");
        pump.wait_more(300);
    }
    let w = pump.stop();
    let written = w.count();
    finish(
        &f,
        d,
        w,
        "20b",
        "two listeners on one journal under load, one down in 5 bursts, one fast",
        &format!("the fast one delivered everything written before each check while the other was down, within {} ms at most; {written} records written", slowest.as_millis()),
    );
}
