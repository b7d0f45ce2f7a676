//! The plugin host and its delivery semantics through the real daemon, with
//! the `testkit` listener (tests/plugins/testkit) recording what it is given:
//! a listener that asks to retry for a long time loses nothing and holds
//! nobody back; panics and Fatal failures are reported and handled per
//! `on_failure` (and a daemon left with no listener says so); a lost
//! predecessor stops the daemon with both ways out, each of which works (or,
//! with `on_gap = "report"`, reaches the listeners as a gap);
//! `no_data(had_data)` follows the quiet timer; SIGTERM and SIGINT stop
//! cleanly with nothing lost or repeated.
//!
//! The helpers (in `support`) are shared with the `commands` module.

mod support;

pub use support::*;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixture::{stderr, Fixture};

#[test]
fn a_listener_retrying_for_long_loses_nothing_and_holds_nobody_back() {
    let first = recs(0, 300);
    let cfg = config(
        "",
        &format!(
            "{}{}",
            kit_listener(
                "slow",
                "retry_max = \"500ms\"",
                "retry_until_file = \"flag\""
            ),
            file_listener("copy")
        ),
    );
    let f = fixture(&first, &cfg);
    let (kit, copy) = (f.join("out/slow.jsonl"), f.join("out/copy.raw"));
    let started = Instant::now();
    let d = Daemon::start(&f);
    // The file listener copies everything while the testkit keeps refusing.
    wait_until(
        15,
        "the file listener's copy",
        || fs::read_to_string(&copy).unwrap_or_default() == first,
        || d.log(),
    );
    let more = recs(300, 400);
    append(&f.join("p4root/journal"), &more);
    let all = format!("{first}{more}");
    wait_until(
        15,
        "the copy of entries appended while the other listener retries",
        || fs::read_to_string(&copy).unwrap_or_default() == all,
        || d.log(),
    );
    assert!(
        entries(&kit).is_empty(),
        "the retrying listener recorded entries before its flag existed"
    );
    // Retry for a period long against the backoff cap (several capped rounds).
    let retries = || events(&kit).iter().filter(|e| kind(e) == "retry").count();
    wait_until(
        20,
        "at least 8 retries",
        || retries() >= 8 && started.elapsed() >= Duration::from_secs(4),
        || d.log(),
    );
    assert!(entries(&kit).is_empty());
    let flag_at = Instant::now();
    f.write("flag", "");
    wait_until(
        15,
        "the retrying listener to catch up",
        || entry_text(&kit) == all,
        || d.log(),
    );
    let caught_up = flag_at.elapsed();
    assert_no_repeats(&kit);
    // Retries were capped at retry_max (500 ms): no gap between attempts is far above it.
    let times: Vec<u64> = events(&kit)
        .iter()
        .filter(|e| kind(e) == "retry")
        .map(|e| e["t_ns"].as_u64().unwrap())
        .collect();
    let widest = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        widest < 2_000_000_000,
        "{} ms between two attempts with retry_max = 500ms",
        widest / 1_000_000
    );
    assert!(
        caught_up < Duration::from_secs(5),
        "caught up {caught_up:?} after the flag appeared"
    );
    let (st, log) = d.stop();
    assert!(st.success(), "exit {st}: {log}");
    assert!(
        log.contains("listener asks to retry") && log.contains("slow"),
        "{log}"
    );
    assert_eq!(acked(&f, "slow"), Some((1, all.len() as u64)));
    assert_eq!(acked(&f, "copy"), Some((1, all.len() as u64)));
}

#[test]
fn a_listener_retrying_across_a_rotation_catches_up_from_the_rotated_file() {
    let (a, b, c) = (recs(0, 40), recs(40, 60), recs(60, 80));
    let cfg = config(
        "",
        &format!(
            "{}{}",
            kit_listener(
                "slow",
                "retry_max = \"300ms\"",
                "retry_until_file = \"flag\""
            ),
            file_listener("copy")
        ),
    );
    let f = fixture(&a, &cfg);
    // The testkit first takes `a`, then retries while `b` is written and the journal rotates.
    f.write("flag", "");
    let (kit, copy, live) = (
        f.join("out/slow.jsonl"),
        f.join("out/copy.raw"),
        f.join("p4root/journal"),
    );
    let d = Daemon::start(&f);
    wait_until(
        15,
        "the first entries",
        || entry_text(&kit) == a,
        || d.log(),
    );
    fs::remove_file(f.join("flag")).unwrap();
    append(&live, &b);
    wait_until(
        15,
        "a retry",
        || events(&kit).iter().any(|e| kind(e) == "retry"),
        || d.log(),
    );
    wait_until(
        15,
        "the copy of b",
        || fs::read_to_string(&copy).unwrap_or_default() == format!("{a}{b}"),
        || d.log(),
    );
    // p4d-style rotation: the live journal becomes journal.1 (then compressed), a new one starts.
    fs::rename(&live, f.join("p4root/journal.1")).unwrap();
    f.write("p4root/journal", &c);
    wait_until(
        15,
        "the copy of the new journal",
        || fs::read_to_string(&copy).unwrap_or_default() == format!("{a}{b}{c}"),
        || d.log(),
    );
    let gz = Command::new("gzip")
        .arg(f.join("p4root/journal.1"))
        .status()
        .unwrap();
    assert!(gz.success());
    f.write("flag", "");
    wait_until(
        15,
        "the retrying listener to catch up across the rotation",
        || entry_text(&kit) == format!("{a}{b}{c}"),
        || d.log(),
    );
    assert_no_repeats(&kit);
    let seqs: Vec<u64> = entries(&kit)
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        seqs[..60].iter().all(|&s| s == 1) && seqs[60..].iter().all(|&s| s == 2),
        "{seqs:?}"
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert_eq!(acked(&f, "slow"), Some((2, c.len() as u64)));
}

#[test]
fn sigterm_during_a_long_backoff_stops_at_once_and_keeps_the_position() {
    let journal = recs(0, 30);
    let f = fixture(
        &journal,
        &config(
            "",
            &kit_listener("slow", "retry_max = \"60s\"", "retry_until_file = \"flag\""),
        ),
    );
    let kit = f.join("out/slow.jsonl");
    let d = Daemon::start(&f);
    // 100 + 200 + 400 + 800 + 1600 ms of backoff: the next wait is 3.2 s.
    wait_until(
        15,
        "six attempts",
        || events(&kit).iter().filter(|e| kind(e) == "retry").count() >= 6,
        || d.log(),
    );
    let t = Instant::now();
    d.signal("TERM");
    let (st, log) = d.wait(20);
    assert!(st.success(), "exit {st}: {log}");
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "SIGTERM took {:?} during a backoff",
        t.elapsed()
    );
    assert!(entries(&kit).is_empty());
    // Nothing was acknowledged: a restart (now without trouble) delivers everything.
    f.write("flag", "");
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(entry_text(&kit), journal);
}

// ---------------------------------------------------------------- failures

/// A listener that fails for good (`trigger` = `panic_on` or `fatal_on`)
/// next to a file listener; returns the fixture, the daemon, and the
/// journal text before and after the failing entry.
fn failing(trigger: &str, policy: &str) -> (Fixture, Daemon, String, String) {
    let good = recs(0, 50);
    let cfg = config(
        "",
        &format!(
            "{}{}",
            kit_listener(
                "kit",
                &format!("on_failure = \"{policy}\""),
                &format!("{trigger} = \"BOOM\"")
            ),
            file_listener("copy")
        ),
    );
    let f = fixture(&good, &cfg);
    let kit = f.join("out/kit.jsonl");
    let d = Daemon::start(&f);
    wait_until(
        15,
        "the good entries",
        || entry_text(&kit) == good,
        || d.log(),
    );
    let bad = format!("{}{}", rec(50, "BOOM"), recs(51, 60));
    append(&f.join("p4root/journal"), &bad);
    (f, d, good, bad)
}

fn failure_stops_the_daemon(trigger: &str, words: &[&str]) {
    let (f, d, good, _) = failing(trigger, "stop");
    let (st, log) = d.wait(20);
    assert!(
        !st.success(),
        "a failed listener with on_failure = \"stop\" exited 0:\n{log}"
    );
    for w in words.iter().chain(&["\"kit\"", "on_failure = \"stop\""]) {
        assert!(log.contains(w), "the log does not say {w:?}:\n{log}");
    }
    assert!(stderr_line(&log).contains("kit"), "{log}");
    // The checkpoint was written: everything the listener acknowledged before.
    assert_eq!(acked(&f, "kit"), Some((1, good.len() as u64)), "{log}");
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), good);
}

/// The last line (`error: ...`) the binary prints.
fn stderr_line(log: &str) -> &str {
    log.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("")
}

fn failure_disables_the_listener(trigger: &str, words: &[&str]) {
    let (f, mut d, good, bad) = failing(trigger, "disable");
    let copy = f.join("out/copy.raw");
    let logged =
        |log: &str| log.contains("listener disabled") && words.iter().all(|w| log.contains(w));
    wait_until(
        15,
        "the failure to be logged",
        || logged(&d.log()),
        || d.log(),
    );
    // The other listener goes on, and so does the daemon.
    let later = recs(60, 70);
    append(&f.join("p4root/journal"), &later);
    let all = format!("{good}{bad}{later}");
    wait_until(
        15,
        "the file listener to go on",
        || fs::read_to_string(&copy).unwrap_or_default() == all,
        || d.log(),
    );
    assert!(
        !d.exited(),
        "the daemon stopped although the listener is only disabled:\n{}",
        d.log()
    );
    let (st, log) = d.stop();
    assert!(st.success(), "exit {st}: {log}");
    assert_eq!(
        acked(&f, "kit"),
        Some((1, good.len() as u64)),
        "the disabled listener's cursor is kept\n{log}"
    );
    assert_eq!(acked(&f, "copy"), Some((1, all.len() as u64)));
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), good);
    // Fixed and started again, it resumes at its kept cursor: nothing lost, nothing twice.
    let cfg = fs::read_to_string(f.join("cfg.toml"))
        .unwrap()
        .replace(&format!("{trigger} = \"BOOM\""), "");
    f.write("cfg.toml", cfg);
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), all);
    assert_eq!(fs::read_to_string(&copy).unwrap(), all);
}

#[test]
fn a_panicking_listener_with_on_failure_stop_stops_the_daemon_after_the_checkpoint() {
    failure_stops_the_daemon(
        "panic_on",
        &[
            "listener \"kit\" of journal \"p4\" failed for good: listener panicked",
            "contains the panic_on text",
        ],
    );
}

#[test]
fn a_panicking_listener_with_on_failure_disable_leaves_the_others_running() {
    failure_disables_the_listener(
        "panic_on",
        &["listener \"kit\" of journal \"p4\" failed for good: listener panicked"],
    );
}

#[test]
fn a_fatal_listener_with_on_failure_stop_stops_the_daemon_after_the_checkpoint() {
    failure_stops_the_daemon(
        "fatal_on",
        &[
            "listener \"kit\" of journal \"p4\" failed for good",
            "contains the fatal_on text",
        ],
    );
}

#[test]
fn a_fatal_listener_with_on_failure_disable_leaves_the_others_running() {
    failure_disables_the_listener(
        "fatal_on",
        &[
            "listener \"kit\" of journal \"p4\" failed for good",
            "contains the fatal_on text",
        ],
    );
}

#[test]
fn when_every_listener_is_disabled_the_daemon_exits_non_zero_keeping_the_cursors() {
    // Exiting 0 with nothing left running would tell a supervisor all is well.
    let good = recs(0, 5);
    let cfg = config(
        "",
        &format!(
            "{}{}",
            kit_listener("a", "on_failure = \"disable\"", "fatal_on = \"BOOM\""),
            kit_listener("b", "on_failure = \"disable\"", "panic_on = \"BOOM\"")
        ),
    );
    let f = fixture(&good, &cfg);
    let d = Daemon::start(&f);
    wait_until(
        15,
        "the good entries",
        || entry_text(&f.join("out/a.jsonl")) == good && entry_text(&f.join("out/b.jsonl")) == good,
        || d.log(),
    );
    append(&f.join("p4root/journal"), &rec(5, "BOOM"));
    let (st, log) = d.wait(20);
    assert!(
        !st.success(),
        "the daemon exited 0 with every listener disabled:\n{log}"
    );
    let last = stderr_line(&log);
    assert!(
        last.contains("every listener is disabled")
            && last.contains("\"a\"")
            && last.contains("\"b\""),
        "{log}"
    );
    assert_eq!(acked(&f, "a"), Some((1, good.len() as u64)));
    assert_eq!(acked(&f, "b"), Some((1, good.len() as u64)));
}

#[test]
fn a_listener_that_cannot_open_stops_run_at_start_naming_it() {
    let f = fixture(
        &recs(0, 3),
        &config(
            "",
            &format!(
                "{}{}",
                file_listener("copy"),
                kit_listener("kit", "", "colour = \"red\"")
            ),
        ),
    );
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("listener \"kit\" of journal \"p4\" could not start")
            && err.contains("colour"),
        "{err}"
    );
    let copied = fs::read(f.join("out/copy.raw")).unwrap_or_default();
    assert!(
        copied.is_empty(),
        "a listener got entries although another could not start"
    );
    assert!(!f.join("state/checkpoint.toml").exists());
}

// ---------------------------------------------------------------- lost predecessor

/// Runs once over `first`, then appends `lost`, rotates the journal to
/// `journal.1`, deletes that, and starts a new live journal with `next`:
/// `lost` exists nowhere any more.
fn lose_a_predecessor(journal_extra: &str) -> (Fixture, String, String) {
    let (first, lost, next) = (recs(0, 20), recs(20, 30), recs(30, 40));
    let f = fixture(
        &first,
        &config(
            journal_extra,
            &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
        ),
    );
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), first);
    let live = f.join("p4root/journal");
    append(&live, &lost);
    fs::rename(&live, f.join("p4root/journal.1")).unwrap();
    fs::remove_file(f.join("p4root/journal.1")).unwrap();
    f.write("p4root/journal", &next);
    (f, first, next)
}

#[test]
fn a_deleted_predecessor_stops_the_daemon_with_the_way_out_and_an_untouched_checkpoint() {
    let (f, first, next) = lose_a_predecessor("");
    let cp = f.join("state/checkpoint.toml");
    let before = fs::read(&cp).unwrap();
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "the daemon went on past missing entries:\n{err}"
    );
    let live = f.join("p4root/journal");
    for w in [
        "journal \"p4\"".to_string(),
        format!("sequence 1 offset {}", first.len()),
        "looked at".to_string(),
        live.display().to_string(),
        "Two ways out".to_string(),
        "restore the file".to_string(),
        "logdaemon checkpoint set".to_string(),
        "on_gap = \"report\"".to_string(),
    ] {
        assert!(err.contains(&w), "the message does not say {w:?}:\n{err}");
    }
    assert_eq!(fs::read(&cp).unwrap(), before, "the checkpoint was changed");
    assert_eq!(
        entry_text(&f.join("out/kit.jsonl")),
        first,
        "entries after the loss were delivered"
    );
    // The second way out, exactly as printed, and the daemon goes on with the new journal.
    let cmd = err
        .lines()
        .find_map(|l| l.split_once("logdaemon checkpoint set "))
        .map(|(_, rest)| rest.trim())
        .unwrap();
    let args: Vec<&str> = ["checkpoint", "set"]
        .into_iter()
        .chain(cmd.split_whitespace())
        .collect();
    let out = f.run(&args);
    assert!(
        out.status.success(),
        "the suggested `logdaemon {}` failed:\n{}",
        args.join(" "),
        stderr(&out)
    );
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        entry_text(&f.join("out/kit.jsonl")),
        format!("{first}{next}")
    );
}

#[test]
fn restoring_the_lost_predecessor_delivers_it_and_then_the_new_journal() {
    let (f, first, next) = lose_a_predecessor("");
    let lost = recs(20, 30);
    // The first way out: put the file back (here compressed, as an archive would hold it).
    f.write("p4root/journal.1", format!("{first}{lost}"));
    let gz = Command::new("gzip")
        .arg(f.join("p4root/journal.1"))
        .status()
        .unwrap();
    assert!(gz.success());
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let kit = f.join("out/kit.jsonl");
    assert_eq!(entry_text(&kit), format!("{first}{lost}{next}"));
    assert_no_repeats(&kit);
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        format!("{first}{lost}{next}")
    );
}

#[test]
fn with_on_gap_report_the_gap_reaches_the_listeners_and_the_rest_follows() {
    let (f, first, next) = lose_a_predecessor("on_gap = \"report\"");
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let kit = f.join("out/kit.jsonl");
    let ev: Vec<Value> = events(&kit)
        .into_iter()
        .filter(|e| matches!(kind(e), "entry" | "gap"))
        .collect();
    let gap_at = ev
        .iter()
        .position(|e| kind(e) == "gap")
        .unwrap_or_else(|| panic!("no gap recorded: {ev:?}"));
    let g = &ev[gap_at];
    assert_eq!(
        (g["from"]["sequence"].as_u64(), g["from"]["offset"].as_u64()),
        (Some(1), Some(first.len() as u64)),
        "{g}"
    );
    assert!(g["to"]["sequence"].as_u64().unwrap() > 1, "{g}");
    assert!(!g["cause"].as_str().unwrap().is_empty(), "{g}");
    assert_eq!(ev.iter().filter(|e| kind(e) == "gap").count(), 1, "{ev:?}");
    let text = |es: &[Value]| {
        es.iter()
            .map(|e| e["raw"].as_str().unwrap().to_string())
            .collect::<String>()
    };
    assert_eq!(text(&ev[..gap_at]), first, "before the gap");
    assert_eq!(text(&ev[gap_at + 1..]), next, "after the gap");
    assert!(
        ev[gap_at + 1..]
            .iter()
            .all(|e| e["sequence"] == g["to"]["sequence"]),
        "{ev:?}"
    );
    // The file listener: the rest in its output, the gap in its side file.
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        format!("{first}{next}")
    );
    let gaps = fs::read_to_string(f.join("out/copy.raw.gaps"))
        .expect("the file listener wrote no .gaps file");
    let gl: Vec<Value> = gaps
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(gl.len(), 1, "{gaps}");
    assert_eq!(
        gl[0]["gap"]["from"]["offset"].as_u64(),
        Some(first.len() as u64),
        "{gaps}"
    );
    assert_eq!(gl[0]["gap"]["to"], g["to"], "{gaps}");
    // And the next run delivers nothing again.
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_repeats(&kit);
    assert_eq!(events(&kit).iter().filter(|e| kind(e) == "gap").count(), 1);
}

// ---------------------------------------------------------------- no_data

#[test]
fn no_data_says_had_data_once_after_entries_then_false_while_quiet() {
    let f = fixture(
        &recs(0, 10),
        &config("quiet_after = \"300ms\"", &kit_listener("kit", "", "")),
    );
    let kit = f.join("out/kit.jsonl");
    let d = Daemon::start(&f);
    let calls = |k: &Path| -> Vec<(String, Option<bool>, u64)> {
        events(k)
            .iter()
            .filter(|e| matches!(kind(e), "entry" | "no_data"))
            .map(|e| {
                (
                    kind(e).to_string(),
                    e["had_data"].as_bool(),
                    e["t_ns"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let quiet_calls = |k: &Path, had: bool| calls(k).iter().filter(|c| c.1 == Some(had)).count();
    wait_until(
        15,
        "no_data(true) then two no_data(false)",
        || quiet_calls(&kit, true) == 1 && quiet_calls(&kit, false) >= 2,
        || d.log(),
    );
    append(&f.join("p4root/journal"), &recs(10, 15));
    wait_until(
        15,
        "a second no_data(true) after more entries",
        || quiet_calls(&kit, true) == 2,
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    let c = calls(&kit);
    let first_true = c.iter().position(|x| x.1 == Some(true)).unwrap();
    assert!(
        c[..first_true].iter().all(|x| x.0 == "entry"),
        "no_data before the first entries were handled: {c:?}"
    );
    assert_eq!(first_true, 10, "{c:?}");
    let last_entry_t = c[first_true - 1].2;
    assert!(
        c[first_true].2 - last_entry_t >= 290_000_000,
        "no_data(true) came {} ms after the last entry, quiet_after = 300ms",
        (c[first_true].2 - last_entry_t) / 1_000_000
    );
    let (t1, f1) = (c[first_true].2, &c[first_true + 1]);
    assert_eq!(f1.1, Some(false), "{c:?}");
    assert!(
        f1.2 - t1 >= 290_000_000,
        "no_data(false) {} ms after no_data(true)",
        (f1.2 - t1) / 1_000_000
    );
    // After the second batch: entries, then exactly one no_data(true) before any false.
    let second_true = c.iter().rposition(|x| x.1 == Some(true)).unwrap();
    let second_entries: Vec<_> = c[..second_true]
        .iter()
        .rev()
        .take_while(|x| x.0 == "entry")
        .collect();
    assert_eq!(second_entries.len(), 5, "{c:?}");
}

// ---------------------------------------------------------------- signals

/// Appends while the daemon delivers, stops it with `sig`, and checks that
/// the checkpoint holds what the listeners acknowledged and a restart
/// delivers the rest, nothing twice.
fn stop_by_signal(sig: &str) {
    let f = fixture(
        &recs(0, 100),
        &config(
            "",
            &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
        ),
    );
    let (kit, live) = (f.join("out/kit.jsonl"), f.join("p4root/journal"));
    let d = Daemon::start(&f);
    wait_until(
        15,
        "the first entries",
        || entries(&kit).len() == 100,
        || d.log(),
    );
    // A writer keeps appending while the signal arrives.
    let writer = {
        let live = live.clone();
        std::thread::spawn(move || {
            for i in 0..40 {
                append(&live, &recs(100 + i * 25, 125 + i * 25));
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    wait_until(
        15,
        "entries from the writer",
        || entries(&kit).len() > 150,
        || d.log(),
    );
    d.signal(sig);
    let (st, log) = d.wait(20);
    writer.join().unwrap();
    assert!(st.success(), "SIG{sig} gave exit {st}:\n{log}");
    assert!(log.contains("stopping"), "{log}");
    // The checkpoint covers exactly what the testkit got (it acknowledges all).
    let got = entry_text(&kit);
    assert_eq!(acked(&f, "kit"), Some((1, got.len() as u64)), "{log}");
    let journal = fs::read_to_string(&live).unwrap();
    assert!(
        journal.starts_with(&got),
        "the testkit got something that is not a prefix of the journal"
    );
    let copied = fs::read_to_string(f.join("out/copy.raw")).unwrap();
    assert_eq!(acked(&f, "copy"), Some((1, copied.len() as u64)), "{log}");
    assert!(journal.starts_with(&copied));
    // A restart delivers the rest, nothing twice.
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(journal, recs(0, 1100));
    assert_eq!(entry_text(&kit), journal);
    assert_no_repeats(&kit);
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), journal);
}

#[test]
fn sigterm_stops_cleanly_and_a_restart_repeats_nothing() {
    stop_by_signal("TERM");
}

#[test]
fn sigint_stops_cleanly_and_a_restart_repeats_nothing() {
    stop_by_signal("INT");
}

/// A panic on the daemon's side (not in the listener: in the worker that
/// reads and frames for it) fails that listener alone by its `on_failure`;
/// the other listener gets everything, SIGTERM still ends the run at once,
/// and `--once` exits non-zero naming it. The panic is injected through a
/// failpoint of test builds.
#[test]
fn a_host_side_panic_fails_that_listener_alone_and_sigterm_and_once_still_end() {
    let good = recs(0, 20);
    let cfg = config(
        "",
        &format!(
            "{}{}",
            kit_listener("kit", "on_failure = \"disable\"", ""),
            file_listener("copy")
        ),
    );
    let f = fixture(&good, &cfg);
    let env = [("LOGDAEMON_FAILPOINT", "panic-in-step:p4/kit")];
    let d = Daemon::start_env(&f, &env);
    wait_until(
        15,
        "the other listener's copy",
        || std::fs::read_to_string(f.join("out/copy.raw")).unwrap_or_default() == good,
        || d.log(),
    );
    wait_until(
        15,
        "the panic reported as the listener's failure",
        || {
            d.log().contains("listener \"kit\" of journal \"p4\": the daemon failed internally (a panic: failpoint panic-in-step:p4/kit)")
        },
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "SIGTERM ends the run cleanly: {st}\n{log}");
    assert!(
        log.contains("listener disabled, its cursor is kept"),
        "{log}"
    );
    let out = std::process::Command::new(crate::fixture::bin())
        .args(["run", "--once", "--config", "cfg.toml"])
        .envs(env)
        .current_dir(f.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "--once with a failed listener exits non-zero:\n{err}"
    );
    assert!(err.contains("\"kit\"") && err.contains("a panic"), "{err}");
}
