//! p4 journal numbers are p4d's: `start = N` on a first start names the
//! live journal's number, rotated journals keep their numbers, and the way
//! out printed for a deleted journal, run literally, skips exactly that
//! journal and delivers nothing twice.

use std::fs;

use serde_json::Value;

use crate::fixture::{stderr, Fixture};
use crate::host::{
    append, assert_no_repeats, config, entries, entry_text, file_listener, fixture, kit_listener,
    recs,
};

fn run_once(f: &Fixture) -> std::process::Output {
    f.run(&["run", "--once", "--config", "cfg.toml"])
}

/// The printed `logdaemon checkpoint set …` of a stop, run as printed.
pub(crate) fn run_printed_way_out(f: &Fixture, err: &str) {
    let cmd = err
        .lines()
        .find_map(|l| l.split_once("logdaemon checkpoint set "))
        .map(|(_, rest)| rest.trim())
        .unwrap_or_else(|| panic!("no way out printed:\n{err}"));
    let args: Vec<&str> = ["checkpoint", "set"]
        .into_iter()
        .chain(cmd.split_whitespace())
        .collect();
    let out = f.run(&args);
    assert!(
        out.status.success(),
        "the printed `logdaemon {}` failed:\n{}",
        args.join(" "),
        stderr(&out)
    );
}

fn sequences(kit: &std::path::Path) -> Vec<u64> {
    entries(kit)
        .iter()
        .map(|e: &Value| e["sequence"].as_u64().unwrap())
        .collect()
}

#[test]
fn start_n_numbers_the_live_journal_and_a_deleted_journal_is_skipped_exactly() {
    let cfg = config(
        "",
        &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
    )
    .replace("start = \"beginning\"", "start = 41");
    let f = fixture(&recs(0, 10), &cfg);
    let out = run_once(&f);
    assert!(
        out.status.success(),
        "start = 41 refused:\n{}",
        stderr(&out)
    );
    let kit = f.join("out/kit.jsonl");
    assert_eq!(entry_text(&kit), recs(0, 10));
    assert_eq!(
        sequences(&kit),
        vec![41; 10],
        "the live journal is number 41"
    );
    // p4d rotates three times; journal.42 is deleted before it is read.
    let root = f.join("p4root");
    append(&root.join("journal"), &recs(10, 15));
    for (n, next) in [(41, recs(15, 20)), (42, recs(20, 25)), (43, recs(25, 30))] {
        fs::rename(root.join("journal"), root.join(format!("journal.{n}"))).unwrap();
        f.write("p4root/journal", next);
    }
    fs::remove_file(root.join("journal.42")).unwrap();
    let out = run_once(&f);
    let err = stderr(&out);
    assert!(!out.status.success(), "went on past journal 42:\n{err}");
    for w in ["journal 42", "--sequence 43 --offset 0"] {
        assert!(err.contains(w), "the stop does not say {w:?}:\n{err}");
    }
    assert_eq!(entry_text(&kit), recs(0, 15), "journal.41 read to its end");
    run_printed_way_out(&f, &err);
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = format!("{}{}", recs(0, 15), recs(20, 30));
    assert_eq!(
        entry_text(&kit),
        want,
        "not exactly the journals left, once"
    );
    assert_no_repeats(&kit);
    let seqs = sequences(&kit);
    assert_eq!(seqs[15..20], [43; 5], "{seqs:?}");
    assert_eq!(seqs[20..], [44; 5], "{seqs:?}");
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), want);
}

#[test]
fn start_n_with_rotated_journals_below_n_is_refused_when_n_is_taken() {
    // With journal.41 on disk, the live journal is 42 whatever start says;
    // start = 41 then means journal.41, and start = 40 a journal not there.
    let cfg =
        config("", &kit_listener("kit", "", "")).replace("start = \"beginning\"", "start = 40");
    let f = fixture(&recs(5, 10), &cfg);
    f.write("p4root/journal.41", recs(0, 5));
    let out = run_once(&f);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("no journal number 40"), "{err}");
    f.write(
        "cfg.toml",
        config("", &kit_listener("kit", "", "")).replace("start = \"beginning\"", "start = 41"),
    );
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    let kit = f.join("out/kit.jsonl");
    assert_eq!(entry_text(&kit), recs(0, 10));
    assert_eq!(sequences(&kit), [vec![41; 5], vec![42; 5]].concat());
}

#[test]
fn a_journal_deleted_after_a_first_start_without_start_n_stops_naming_it() {
    // First started with only `journal` on disk, the daemon reads it as
    // sequence 1; p4d renames it journal.41: from then on the names count.
    let f = fixture(
        &recs(0, 10),
        &config(
            "",
            &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
        ),
    );
    assert!(run_once(&f).status.success());
    let root = f.join("p4root");
    for (n, next) in [(41, recs(10, 15)), (42, recs(15, 20)), (43, recs(20, 25))] {
        fs::rename(root.join("journal"), root.join(format!("journal.{n}"))).unwrap();
        f.write("p4root/journal", next);
    }
    fs::remove_file(root.join("journal.42")).unwrap();
    let out = run_once(&f);
    let err = stderr(&out);
    assert!(!out.status.success(), "journal 42 skipped silently:\n{err}");
    assert!(err.contains("journal 42"), "{err}");
    let kit = f.join("out/kit.jsonl");
    assert_eq!(entry_text(&kit), recs(0, 10));
    run_printed_way_out(&f, &err);
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = format!("{}{}", recs(0, 10), recs(15, 25));
    assert_eq!(entry_text(&kit), want);
    assert_no_repeats(&kit);
    let seqs = sequences(&kit);
    assert_eq!(seqs[10..], [vec![43; 5], vec![44; 5]].concat(), "{seqs:?}");
}

#[test]
fn a_first_start_takes_the_live_journal_number_from_its_journal_counter_record() {
    let counter = |n: u64| format!("@pv@ 1 @db.counters@ @journal@ @{n}@ \n");
    let cfg = config("", &kit_listener("kit", "", ""));
    let f = fixture(&format!("{}{}", counter(42), recs(0, 10)), &cfg);
    let out = run_once(&f);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("journal_counter=42"),
        "the log does not say where the number came from:\n{err}"
    );
    let kit = f.join("out/kit.jsonl");
    assert_eq!(
        sequences(&kit),
        vec![42; 11],
        "the live journal is number 42"
    );
    // p4d's next checkpoint: journal -> journal.42, the new one says 43.
    let root = f.join("p4root");
    append(&root.join("journal"), &recs(10, 15));
    fs::rename(root.join("journal"), root.join("journal.42")).unwrap();
    f.write("p4root/journal", format!("{}{}", counter(43), recs(15, 20)));
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = format!(
        "{}{}{}{}",
        counter(42),
        recs(0, 15),
        counter(43),
        recs(15, 20)
    );
    assert_eq!(entry_text(&kit), want);
    assert_no_repeats(&kit);
    let mut seqs = vec![42; 16];
    seqs.extend([43; 6]);
    assert_eq!(sequences(&kit), seqs);
}
