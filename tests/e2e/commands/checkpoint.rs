//! The checkpoint commands: `checkpoint show`; `checkpoint set` accepted on
//! a record boundary, refused in the middle of a record, for a file not at
//! hand without `--force`, and while the daemon runs; and a corrupt
//! checkpoint left as it was.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use super::{boundary, run_once};
use crate::fixture::{stderr, stdout, Fixture};
use crate::host::{acked, config, entry_text, file_listener, kit_listener, recs, Daemon};

/// Ten one-line records delivered once to a testkit and a file listener.
fn delivered() -> (Fixture, String) {
    let f = Fixture::new();
    let journal = recs(0, 10);
    f.write("p4root/journal", &journal);
    f.write(
        "cfg.toml",
        config(
            "",
            &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
        ),
    );
    run_once(&f);
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), journal);
    (f, journal)
}

fn checkpoint(f: &Fixture) -> Vec<u8> {
    fs::read(f.join("state/checkpoint.toml")).expect("checkpoint.toml")
}

fn refused(out: &Output, words: &[&str]) -> String {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "accepted, but should have been refused:\n{}{err}",
        stdout(out)
    );
    for w in words {
        assert!(err.contains(w), "the message does not say {w:?}:\n{err}");
    }
    err
}

#[test]
fn checkpoint_show_names_the_file_and_every_position() {
    let f = Fixture::new();
    f.write("p4root/journal", recs(0, 10));
    f.write(
        "cfg.toml",
        config(
            "",
            &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
        ),
    );
    let cp = f.join("state/checkpoint.toml");
    let out = f.run(&["checkpoint", "show", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("no checkpoint at {}", cp.display())),
        "{}",
        stdout(&out)
    );
    run_once(&f);
    let end = boundary(10);
    for args in [
        &["checkpoint", "show", "--config", "cfg.toml"][..],
        &["checkpoint", "show", "--state-dir", "state"][..],
    ] {
        let out = f.run(args);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let live = f.join("p4root/journal").canonicalize().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("checkpoint ") && lines[0].ends_with("state/checkpoint.toml"),
            "{text}"
        );
        let at = format!("sequence 1 offset {end} line 11 in {}", live.display());
        let reader = lines
            .iter()
            .find(|l| l.starts_with("journal p4: read up to "))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            reader.contains(&at) && reader.contains("(dev ") && reader.contains(" inode "),
            "{reader}"
        );
        for l in ["copy", "kit"] {
            let want = format!("  listener {l}: acknowledged up to {at}");
            assert!(
                lines.iter().any(|x| x.starts_with(&want)),
                "no line {want:?} in\n{text}"
            );
        }
    }
}

#[test]
fn checkpoint_set_to_a_record_boundary_replays_from_there() {
    let (f, journal) = delivered();
    let out = f.checkpoint_set("p4", 1, boundary(6), &["--listener", "kit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "journal p4 listener kit: set to sequence 1 offset {} line 7",
            boundary(6)
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(acked(&f, "kit"), Some((1, boundary(6))));
    assert_eq!(
        acked(&f, "copy"),
        Some((1, boundary(10))),
        "another listener was moved"
    );
    run_once(&f);
    // The testkit got records 6..10 again, nothing else; the file listener nothing.
    assert_eq!(
        entry_text(&f.join("out/kit.jsonl")),
        format!("{journal}{}", &journal[boundary(6) as usize..])
    );
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), journal);
    assert_eq!(acked(&f, "kit"), Some((1, boundary(10))));
}

#[test]
fn checkpoint_set_before_the_first_run_says_where_to_start() {
    let f = Fixture::new();
    f.write("p4root/journal", recs(0, 10));
    f.write("cfg.toml", config("", &kit_listener("kit", "", "")));
    let out = f.checkpoint_set("p4", 1, boundary(7), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = fs::metadata(f.join("state")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "state directory mode {mode:o}");
    run_once(&f);
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), recs(7, 10));
}

#[test]
fn checkpoint_set_in_the_middle_of_a_record_is_refused_with_the_boundaries() {
    let (f, _) = delivered();
    let before = checkpoint(&f);
    let mid = boundary(3) + 5;
    let out = f.checkpoint_set("p4", 1, mid, &[]);
    let live = f.join("p4root/journal");
    refused(
        &out,
        &[
            &live.display().to_string(),
            &format!(
                "offset {mid} is in the middle of the record at offset {} (line 4",
                boundary(3)
            ),
            &format!("boundaries are {} and {}", boundary(3), boundary(4)),
        ],
    );
    assert_eq!(
        checkpoint(&f),
        before,
        "a refused set changed the checkpoint"
    );
}

#[test]
fn checkpoint_set_for_a_file_not_at_hand_needs_force() {
    let (f, _) = delivered();
    let before = checkpoint(&f);
    let args = [
        "checkpoint",
        "set",
        "--state-dir",
        "state",
        "--journal",
        "p4",
        "--sequence",
        "7",
        "--offset",
        "1234",
    ];
    let out = f.run(&args);
    refused(
        &out,
        &[
            "journal \"p4\"",
            "sequence 7 is not at hand",
            "--config",
            "--force",
        ],
    );
    assert_eq!(
        checkpoint(&f),
        before,
        "a refused set changed the checkpoint"
    );
    let out = f.run(&[&args[..], &["--force"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(acked(&f, "kit"), Some((7, 1234)));
    assert_eq!(acked(&f, "copy"), Some((7, 1234)));
    let shown = stdout(&f.run(&["checkpoint", "show", "--state-dir", "state"]));
    assert!(
        shown.contains("sequence 7 offset 1234 line 1 (unverified: set by hand)"),
        "{shown}"
    );
}

#[test]
fn checkpoint_set_and_a_second_run_while_the_daemon_runs_are_refused() {
    let (f, _) = delivered();
    let d = Daemon::start(&f);
    let out = f.checkpoint_set("p4", 1, 0, &[]);
    refused(
        &out,
        &[
            "state directory",
            "in use by another logdaemon",
            "stop the daemon",
        ],
    );
    // Nor does a second daemon start on the same state.
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    refused(
        &out,
        &[
            "in use by another logdaemon",
            &format!("pid {}", d.pid()),
            "stop that daemon first",
        ],
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert_eq!(
        acked(&f, "kit"),
        Some((1, boundary(10))),
        "the refused set moved the checkpoint"
    );
}

#[test]
fn a_corrupt_checkpoint_stops_run_naming_the_file_and_line_and_is_left_as_it_was() {
    let (f, _) = delivered();
    let text = String::from_utf8(checkpoint(&f)).unwrap();
    let n = text
        .lines()
        .position(|l| l.starts_with("offset = "))
        .expect("an offset line")
        + 1;
    let bad: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == n {
                "offset = twelve\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    f.write("state/checkpoint.toml", &bad);
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let cp = f.join("state/checkpoint.toml");
    refused(&out, &[&cp.display().to_string(), &format!("line {n}")]);
    assert_eq!(
        fs::read_to_string(&cp).unwrap(),
        bad,
        "the corrupt checkpoint was changed"
    );
    assert_eq!(
        entry_text(&f.join("out/kit.jsonl")),
        recs(0, 10),
        "entries were delivered from a corrupt checkpoint"
    );
    // `checkpoint set` cannot change one position of it, and says how to start over.
    let set = [
        "checkpoint",
        "set",
        "--config",
        "cfg.toml",
        "--journal",
        "p4",
        "--sequence",
        "1",
    ];
    let out = f.run(&[&set[..], &["--offset", &boundary(8).to_string()]].concat());
    let prev = f.join("state/checkpoint.toml.prev");
    refused(
        &out,
        &[
            &format!("line {n}"),
            "to start over",
            &format!("move both {} and {}", cp.display(), prev.display()),
        ],
    );
    assert_eq!(
        fs::read_to_string(&cp).unwrap(),
        bad,
        "a refused set changed the checkpoint"
    );
    // Following that advice works.
    fs::rename(&cp, f.join("damaged.toml")).unwrap();
    let _ = fs::rename(&prev, f.join("damaged.prev"));
    let out = f.run(&[&set[..], &["--offset", &boundary(8).to_string()]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    run_once(&f);
    assert_eq!(
        entry_text(&f.join("out/kit.jsonl")),
        format!("{}{}", recs(0, 10), recs(8, 10))
    );
}
