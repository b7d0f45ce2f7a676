//! A stop for bytes in no file any more names the missing file (journal
//! number, last known name, what it held at least) and the lost range; the
//! printed way out, run literally, skips exactly that, and the skip reaches
//! the file listener's `.gaps` as a gap instead of passing unrecorded.

use std::fs;

use serde_json::Value;

use super::numbers::run_printed_way_out;
use crate::fixture::stderr;
use crate::host::{
    append, assert_no_repeats, config, entry_text, file_listener, fixture, kit_listener, recs,
};

#[test]
fn a_deleted_p4_journal_is_named_with_its_number_and_the_skip_is_a_recorded_gap() {
    let cfg = config(
        "",
        &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
    )
    .replace("start = \"beginning\"", "start = 43");
    let f = fixture(&recs(0, 10), &cfg);
    let run = || f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(run().status.success());
    let root = f.join("p4root");
    let live = root.join("journal");
    let acked = recs(0, 10).len();
    append(&live, &recs(10, 20));
    fs::rename(&live, root.join("journal.43")).unwrap();
    fs::remove_file(root.join("journal.43")).unwrap();
    f.write("p4root/journal", recs(20, 30));
    let out = run();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    for w in [
        format!("sequence 43 offset {acked}"),
        "missing: journal 43".to_string(),
        format!("last seen as {}", live.display()),
        format!("restore it as {}.43", live.display()),
        format!("at least {acked} bytes long"),
        format!("lost: every byte from sequence 43 offset {acked}"),
        "--sequence 44 --offset 0".to_string(),
    ] {
        assert!(err.contains(&w), "the stop does not say {w:?}:\n{err}");
    }
    run_printed_way_out(&f, &err);
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    let want = format!("{}{}", recs(0, 10), recs(20, 30));
    let kit = f.join("out/kit.jsonl");
    assert_eq!(entry_text(&kit), want);
    assert_no_repeats(&kit);
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), want);
    // The skip is in the side file, as a gap of cause "operator".
    let gaps = fs::read_to_string(f.join("out/copy.raw.gaps"))
        .expect("the skipped entries left no trace in copy.raw.gaps");
    let gl: Vec<Value> = gaps
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(gl.len(), 1, "{gaps}");
    let g = &gl[0]["gap"];
    assert_eq!(g["cause"], "operator", "{gaps}");
    assert_eq!(
        (g["from"]["sequence"].as_u64(), g["from"]["offset"].as_u64()),
        (Some(43), Some(acked as u64)),
        "{gaps}"
    );
    assert_eq!(
        (g["to"]["sequence"].as_u64(), g["to"]["offset"].as_u64()),
        (Some(44), Some(0)),
        "{gaps}"
    );
    // Said once: a later run records nothing more.
    assert!(run().status.success());
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw.gaps")).unwrap(),
        gaps
    );
}
