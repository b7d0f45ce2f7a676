//! A lost predecessor: the daemon stops with both ways out and an
//! untouched checkpoint, restoring the file delivers it, and with
//! `on_gap = "report"` the gap reaches the listeners.

use std::fs;
use std::process::Command;

use serde_json::Value;

use crate::fixture::{stderr, Fixture};
use crate::host::{
    append, assert_no_repeats, config, entry_text, events, file_listener, fixture, kind,
    kit_listener, recs,
};

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
