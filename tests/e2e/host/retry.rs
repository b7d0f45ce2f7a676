//! A listener that asks to retry: for a long time it loses nothing and
//! holds nobody back, across a rotation it catches up from the rotated
//! file, and a SIGTERM during its backoff stops the daemon at once.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fixture::stderr;
use crate::host::{
    acked, append, assert_no_repeats, config, entries, entry_text, events, file_listener, fixture,
    kind, kit_listener, recs, wait_until, Daemon,
};

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
