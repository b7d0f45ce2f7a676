//! A compressed predecessor truncated for good: the stop prints the exact
//! `logdaemon checkpoint set …` past it, and that command, run as printed,
//! delivers nothing twice and skips only what the file no longer holds,
//! recorded as a gap.

use std::fs;
use std::process::Command;

use serde_json::Value;

use super::numbers::run_printed_way_out;
use crate::fixture::stderr;
use crate::host::{
    append, assert_no_repeats, config, entry_text, file_listener, fixture, kit_listener, recs,
};

#[test]
fn the_way_out_of_a_truncated_compressed_journal_runs_and_skips_only_that_journal() {
    let cfg = config(
        "",
        &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
    )
    .replace("start = \"beginning\"", "start = 7");
    let f = fixture(&recs(0, 10), &format!("compressed_wait = \"0s\"\n{cfg}"));
    let run = || f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(run().status.success());
    let root = f.join("p4root");
    let acked = recs(0, 10).len();
    append(&root.join("journal"), &recs(10, 400));
    // p4d rotates to journal.7; it is compressed and the compressor dies
    // with most of the file written.
    fs::rename(root.join("journal"), root.join("journal.7")).unwrap();
    f.write("p4root/journal", recs(400, 410));
    let st = Command::new("xz")
        .arg(root.join("journal.7"))
        .status()
        .unwrap();
    assert!(st.success());
    let xz = root.join("journal.7.xz");
    let bytes = fs::read(&xz).unwrap();
    fs::write(&xz, &bytes[..bytes.len() * 9 / 10]).unwrap();
    let out = run();
    let err = stderr(&out);
    assert!(!out.status.success(), "went on past the cut:\n{err}");
    for w in [
        format!("{}: xz data ends unexpectedly", xz.display()),
        "logdaemon checkpoint set ".to_string(),
        "--journal p4 --sequence 8 --offset 0".to_string(),
    ] {
        assert!(err.contains(&w), "the stop does not say {w:?}:\n{err}");
    }
    run_printed_way_out(&f, &err);
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    let want = format!("{}{}", recs(0, 10), recs(400, 410));
    let kit = f.join("out/kit.jsonl");
    assert_eq!(entry_text(&kit), want);
    assert_no_repeats(&kit);
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), want);
    // The skip is recorded: journal 7 from the checkpoint to its end.
    let gaps = fs::read_to_string(f.join("out/copy.raw.gaps"))
        .expect("the skipped entries left no trace in copy.raw.gaps");
    let gl: Vec<Value> = gaps
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(gl.len(), 1, "{gaps}");
    let g = &gl[0]["gap"];
    assert_eq!(
        (g["from"]["sequence"].as_u64(), g["from"]["offset"].as_u64()),
        (Some(7), Some(acked as u64)),
        "{gaps}"
    );
    assert_eq!(
        (g["to"]["sequence"].as_u64(), g["to"]["offset"].as_u64()),
        (Some(8), Some(0)),
        "{gaps}"
    );
}
