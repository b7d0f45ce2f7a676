//! SIGTERM and SIGINT stop cleanly: the checkpoint holds what the
//! listeners acknowledged, and a restart repeats nothing.

use std::fs;
use std::time::Duration;

use crate::fixture::stderr;
use crate::host::{
    acked, append, assert_no_repeats, config, entries, entry_text, file_listener, fixture,
    kit_listener, recs, wait_until, Daemon,
};

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
