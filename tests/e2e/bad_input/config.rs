//! Bad input the daemon reads at start: a config that does not load (a
//! value that does not parse, an unknown key, a missing file) and an empty
//! checkpoint. Nothing runs, nothing moves, and the advice works.

use std::fs;

use super::{delivered, read, refused, run_once};
use crate::fixture::stderr;
use crate::host::{append, recs};

// ---------------------------------------------------------------- config

/// Breaks line 7 of a working config; the run refuses with `words`, and
/// neither the checkpoint nor the output moves although the journal grew.
fn config_refused(line7: &str, words: &[&str]) {
    let (f, journal) = delivered();
    let cp = f.join("state/checkpoint.toml");
    let before = read(&cp);
    append(&f.join("p4root/journal"), &recs(10, 20));
    let good = fs::read_to_string(f.join("cfg.toml")).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    assert_eq!(
        lines[6], "start = \"beginning\"",
        "line 7 of the test config moved"
    );
    lines[6] = line7;
    f.write("cfg.toml", lines.join("\n"));
    refused(&run_once(&f), words);
    assert_eq!(
        read(&cp),
        before,
        "the checkpoint moved under a refused config"
    );
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        journal,
        "entries were delivered under a refused config"
    );
    // Fixed, the run delivers exactly the rest.
    f.write("cfg.toml", &good);
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 20)
    );
}

#[test]
fn a_bad_duration_in_the_config_runs_nothing() {
    config_refused(
        "quiet_after = \"2 parsecs\"",
        &[
            "config cfg.toml, line 7: quiet_after: \"2 parsecs\" is not a duration",
            "unknown time unit \"parsecs\"",
            "write e.g. \"2s\"",
        ],
    );
}

#[test]
fn an_unknown_config_key_runs_nothing() {
    config_refused(
        "quiet_aftr = \"2s\"",
        &[
            "config cfg.toml, line 7: unknown field `quiet_aftr`, expected one of",
            "`quiet_after`",
        ],
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let (f, _) = delivered();
    let before = read(&f.join("state/checkpoint.toml"));
    let out = f.run(&["run", "--once", "--config", "nope.toml"]);
    refused(
        &out,
        &["config nope.toml: cannot read: No such file or directory"],
    );
    assert_eq!(read(&f.join("state/checkpoint.toml")), before);
}

// ---------------------------------------------------------------- checkpoint

#[test]
fn an_empty_checkpoint_stops_run_and_the_previous_save_restores_it() {
    let (f, journal) = delivered();
    // A second run saves again, so checkpoint.toml.prev exists.
    append(&f.join("p4root/journal"), &recs(10, 12));
    assert!(run_once(&f).status.success());
    let cp = f.join("state/checkpoint.toml");
    f.write("state/checkpoint.toml", "");
    append(&f.join("p4root/journal"), &recs(12, 15));
    refused(
        &run_once(&f),
        &[
            &format!("checkpoint {}: the checkpoint is empty", cp.display()),
            "restore the previous save from checkpoint.toml.prev beside it (`cp checkpoint.toml.prev checkpoint.toml`)",
            "logdaemon checkpoint set",
        ],
    );
    assert_eq!(read(&cp), b"", "the damaged checkpoint was changed");
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 12),
        "entries were delivered from an empty checkpoint"
    );
    // The advice works: the previous save is behind the output, the file
    // listener's own record skips what it already holds.
    fs::copy(f.join("state/checkpoint.toml.prev"), &cp).unwrap();
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 15),
        "lost or repeated after restoring the previous save"
    );
    assert!(journal.len() < recs(0, 15).len());
}
