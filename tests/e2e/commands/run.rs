//! `run` at the edges of its life: started before the journal exists, a
//! SIGTERM while a listener is still starting, and the README's bundled
//! example run twice.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::{boundary, run_once};
use crate::fixture::{stderr, Fixture};
use crate::host::{acked, config, entry_text, kit_listener, recs, Daemon};

#[test]
fn run_before_the_journal_exists_waits_for_it_then_and_later() {
    // The daemon may start before the server has written its first journal.
    let f = Fixture::new();
    fs::create_dir(f.join("p4root")).unwrap();
    f.write("cfg.toml", config("", &kit_listener("kit", "", "")));
    run_once(&f);
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), "");
    let d = Daemon::start(&f);
    f.write("p4root/journal", recs(0, 4));
    let kit = f.join("out/kit.jsonl");
    crate::host::wait_until(
        15,
        "the entries of the new journal",
        || entry_text(&kit) == recs(0, 4),
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert_eq!(acked(&f, "kit"), Some((1, boundary(4))));
}

#[test]
fn sigterm_while_a_listener_is_still_starting_stops_cleanly() {
    // A listener may take long to open (a server to reach): a SIGTERM then
    // is an orderly stop with exit 0, not death by the signal.
    let f = Fixture::new();
    f.write("p4root/journal", recs(0, 3));
    f.write(
        "cfg.toml",
        config(
            "",
            &kit_listener("kit", "", "open_waits_for_file = \"flag\""),
        ),
    );
    let kit = f.join("out/kit.jsonl");
    let d = Daemon::spawn(&f);
    let opening = || {
        crate::host::events(&kit)
            .iter()
            .any(|e| e["event"] == "opening")
    };
    crate::host::wait_until(15, "the listener to be opening", opening, || d.log());
    d.signal("TERM");
    f.write("flag", "");
    let (st, log) = d.wait(20);
    assert!(
        st.success() && log.contains("stopping"),
        "SIGTERM during start-up gave {st}:\n{log}"
    );
    // Nothing was delivered, so a later run delivers everything.
    assert_eq!(entry_text(&kit), "");
    run_once(&f);
    assert_eq!(entry_text(&kit), recs(0, 3));
}

// ---------------------------------------------------------------- README example

fn gunzip(path: &Path) -> Vec<u8> {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("run gzip");
    assert!(
        out.status.success(),
        "gzip -dc {}: {}",
        path.display(),
        stderr(&out)
    );
    out.stdout
}

#[test]
fn the_readme_example_runs_once_and_a_second_run_repeats_nothing() {
    let src = crate::fixture::manifest_dir().join("../examples/p4");
    let f = Fixture::new();
    fs::copy(src.join("logdaemon.toml"), f.join("logdaemon.toml"))
        .expect("examples/p4/logdaemon.toml");
    fs::create_dir(f.join("p4root")).unwrap();
    for name in ["journal", "journal.1", "journal.2.gz"] {
        fs::copy(src.join("p4root").join(name), f.join("p4root").join(name)).unwrap();
    }
    let root = f.join("p4root");
    let want: Vec<u8> = [
        fs::read(root.join("journal.1")).unwrap(),
        gunzip(&root.join("journal.2.gz")),
        fs::read(root.join("journal")).unwrap(),
    ]
    .concat();
    let once = |f: &Fixture| {
        let out = f.run(&["run", "--once", "--config", "logdaemon.toml"]);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    once(&f);
    let raw = fs::read(f.join("out/journal.raw")).unwrap();
    assert!(
        raw == want,
        "out/journal.raw ({} bytes) is not journal.1 + journal.2.gz + journal ({} bytes)",
        raw.len(),
        want.len()
    );
    let jsonl = fs::read_to_string(f.join("out/entries.jsonl")).unwrap();
    let offsets: Vec<(u64, u64)> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["sequence"].as_u64().unwrap(),
                v["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    let seqs: std::collections::BTreeSet<u64> = offsets.iter().map(|o| o.0).collect();
    assert_eq!(
        seqs.into_iter().collect::<Vec<_>>(),
        [1, 2, 3],
        "entries of journal.1, journal.2.gz and the live journal"
    );
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "entries out of order"
    );
    once(&f);
    assert!(
        fs::read(f.join("out/journal.raw")).unwrap() == want,
        "the second run changed out/journal.raw"
    );
    assert_eq!(
        fs::read_to_string(f.join("out/entries.jsonl")).unwrap(),
        jsonl,
        "the second run delivered again"
    );
}
