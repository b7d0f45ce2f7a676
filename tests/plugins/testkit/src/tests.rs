//! The testkit outside the host, on owned batches.

use std::path::Path;

use logdaemon_sdk::testing::Batch;
use logdaemon_sdk::{FailureKind, Gap, Listener, Logger, OpenContext, Position};

use super::Testkit;

fn open(dir: &Path, config: &str) -> Result<Testkit, logdaemon_sdk::Failure> {
    let ctx = OpenContext {
        listener: "kit",
        journal: "p4",
        format: "p4",
        journal_path: &dir.join("journal"),
        config_toml: config,
        config_dir: dir,
        state_dir: dir,
        cursor: Position {
            sequence: 3,
            offset: 10,
            line: 2,
        },
        logger: Logger::discard(),
    };
    Testkit::open(&ctx)
}

fn events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const RECORDS: [&[u8]; 2] = [b"@pv@ 0 @db.desc@ 1 @x@ \n", b"@ex@ 1 2\n"];

#[test]
fn records_open_entries_no_data_gaps_and_flush_in_order() {
    let d = tempfile::tempdir().unwrap();
    let mut k = open(d.path(), "path = \"out/kit.jsonl\"").unwrap();
    let b = Batch::p4("p4", 3, 10, &RECORDS);
    k.listen(b.entries()).unwrap();
    k.no_data(true).unwrap();
    let gap = Gap {
        journal: b"p4",
        from: Position {
            sequence: 3,
            offset: 43,
            line: 4,
        },
        to: Position {
            sequence: 4,
            offset: 0,
            line: 1,
        },
        cause: "deleted",
        kind: Some(logdaemon_sdk::abi::GapCause::Deleted),
        detail: "gone",
    };
    k.gap(&gap).unwrap();
    k.flush().unwrap();
    let ev = events(&d.path().join("out/kit.jsonl"));
    let kinds: Vec<&str> = ev.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["open", "entry", "entry", "no_data", "gap", "flush"]);
    assert_eq!(ev[0]["cursor"]["offset"], 10);
    assert_eq!(ev[1]["offset"], 10);
    assert_eq!(ev[1]["raw"], "@pv@ 0 @db.desc@ 1 @x@ \n");
    assert_eq!(ev[2]["offset"], 10 + RECORDS[0].len() as u64);
    assert!(ev[1]["t_ns"].as_u64().unwrap() > 1_600_000_000_000_000_000);
    assert_eq!(ev[3]["had_data"], true);
    assert_eq!(ev[4]["cause"], "deleted");
    assert_eq!(ev[4]["to"]["sequence"], 4);
}

#[test]
fn non_utf8_entries_are_recorded_in_hex() {
    let d = tempfile::tempdir().unwrap();
    let mut k = open(d.path(), "path = \"kit.jsonl\"").unwrap();
    let b = Batch::lines("log", 1, 0, &[b"\xff\x00\n"]);
    k.listen(b.entries()).unwrap();
    let ev = events(&d.path().join("kit.jsonl"));
    assert_eq!(ev[1]["raw_hex"], "ff000a");
    assert!(ev[1].get("raw").is_none());
}

#[test]
fn retries_until_the_flag_file_exists() {
    let d = tempfile::tempdir().unwrap();
    let mut k = open(
        d.path(),
        "path = \"kit.jsonl\"\nretry_until_file = \"flag\"",
    )
    .unwrap();
    let b = Batch::p4("p4", 3, 10, &RECORDS);
    let e = k.listen(b.entries()).unwrap_err();
    assert_eq!(e.kind, FailureKind::Retry);
    assert!(e.message.contains("flag"), "{}", e.message);
    std::fs::write(d.path().join("flag"), b"").unwrap();
    k.listen(b.entries()).unwrap();
    let kinds: Vec<String> = events(&d.path().join("kit.jsonl"))
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["open", "retry", "entry", "entry"]);
}

#[test]
fn fatal_on_and_panic_on_reject_the_whole_batch() {
    let d = tempfile::tempdir().unwrap();
    let mut k = open(d.path(), "path = \"kit.jsonl\"\nfatal_on = \"@ex@\"").unwrap();
    let b = Batch::p4("p4", 3, 10, &RECORDS);
    let e = k.listen(b.entries()).unwrap_err();
    assert_eq!(e.kind, FailureKind::Fatal);
    assert!(e.message.contains("offset 34"), "{}", e.message);

    let mut k = open(d.path(), "path = \"kit.jsonl\"\npanic_on = \"db.desc\"").unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| k.listen(b.entries())));
    assert!(r.is_err(), "panic_on did not panic");
    let kinds: Vec<String> = events(&d.path().join("kit.jsonl"))
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["open", "open"], "a rejected batch is not recorded");
}

#[test]
fn discard_mode_records_nothing_and_bad_configs_are_fatal() {
    let d = tempfile::tempdir().unwrap();
    let mut k = open(d.path(), "mode = \"discard\"").unwrap();
    let b = Batch::p4("p4", 3, 10, &RECORDS);
    k.listen(b.entries()).unwrap();
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);

    for (cfg, want) in [
        ("", "needs path"),
        ("path = \"x\"\ncolour = 1", "colour"),
        ("path = \"x\"\npanic_on = \"\"", "panic_on"),
    ] {
        let e = open(d.path(), cfg).err().expect("refused");
        assert_eq!(e.kind, FailureKind::Fatal);
        assert!(
            e.message.contains("\"kit\"") && e.message.contains(want),
            "{cfg:?}: {}",
            e.message
        );
    }
}

#[test]
fn open_waits_for_its_file_after_saying_so() {
    let d = tempfile::tempdir().unwrap();
    let flag = d.path().join("flag");
    let kit = d.path().join("kit.jsonl");
    let opener = {
        let dir = d.path().to_path_buf();
        std::thread::spawn(move || {
            open(&dir, "path = \"kit.jsonl\"\nopen_waits_for_file = \"flag\"").map(|_| ())
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&kit)
        .unwrap_or_default()
        .contains("opening")
    {
        assert!(std::time::Instant::now() < deadline, "no opening event");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        !opener.is_finished(),
        "open returned before its file existed"
    );
    std::fs::write(&flag, b"").unwrap();
    opener.join().unwrap().unwrap();
    let kinds: Vec<String> = events(&kit)
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["opening", "open"]);
}
