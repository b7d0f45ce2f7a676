//! The checkpoint through the real daemon: a version-1 file migrated at
//! start and resumed exactly; a checkpoint of many journals whose saves go
//! to `checkpoint.log` (only the journal that moved, `checkpoint.toml`
//! untouched), read by `checkpoint show` after a kill, folded in by the
//! next start and by a stop; listeners' state directories of the earlier
//! layout (`listeners/JOURNAL/LISTENER`) moved into place at start.

use std::fs;

use crate::fixture::{stderr, Fixture};
use crate::host::{
    acked, append, assert_no_repeats, config, entry_text, file_listener, fixture, kit_listener,
    recs, wait_until, Daemon,
};

fn run_once(f: &Fixture) {
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "run --once failed:\n{}", stderr(&out));
}

fn read(f: &Fixture, rel: &str) -> String {
    fs::read_to_string(f.join(rel)).unwrap_or_default()
}

#[test]
fn a_version_1_checkpoint_is_migrated_at_start_and_resumed_exactly() {
    let f = fixture(
        &recs(0, 10),
        &config(
            "",
            &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
        ),
    );
    run_once(&f);
    // What a logdaemon of format version 1 wrote: the same tables.
    let v2 = read(&f, "state/checkpoint.toml");
    assert!(v2.contains("\nversion = 2\ngeneration = "), "{v2}");
    let v1: String = v2
        .replace("\nversion = 2\n", "\nversion = 1\n")
        .lines()
        .filter(|l| !l.starts_with("generation = "))
        .map(|l| format!("{l}\n"))
        .collect();
    f.write("state/checkpoint.toml", &v1);
    fs::remove_file(f.join("state/checkpoint.toml.prev")).unwrap();

    // Nothing new to deliver: the start migrates all the same.
    run_once(&f);
    let migrated = read(&f, "state/checkpoint.toml");
    assert!(
        migrated.contains("\nversion = 2\ngeneration = 1\n"),
        "not migrated:\n{migrated}"
    );
    assert_eq!(
        read(&f, "state/checkpoint.toml.prev"),
        v1,
        "the version-1 file is kept"
    );
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), recs(0, 10));

    append(&f.join("p4root/journal"), &recs(10, 15));
    run_once(&f);
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), recs(0, 15));
    assert_no_repeats(&f.join("out/kit.jsonl"));
    assert_eq!(read(&f, "out/copy.raw"), recs(0, 15));
}

/// A state directory of the earlier layout holds the `file` listener's
/// record of what it wrote: moved to `listeners/JOURNAL@LISTENER` at
/// start, the listener goes on from it. (Left where it was, the listener
/// would find its output without a record and refuse to write to it.)
#[test]
fn a_listener_state_directory_of_the_earlier_layout_is_moved_and_kept() {
    let f = fixture(&recs(0, 10), &config("", &file_listener("copy")));
    run_once(&f);
    let new = f.join("state/listeners/p4@copy");
    assert!(new.join("file.pos").is_file(), "the new layout");
    fs::create_dir(f.join("state/listeners/p4")).unwrap();
    fs::rename(&new, f.join("state/listeners/p4/copy")).unwrap();

    append(&f.join("p4root/journal"), &recs(10, 15));
    run_once(&f);
    assert_eq!(read(&f, "out/copy.raw"), recs(0, 15));
    assert!(new.join("file.pos").is_file(), "moved into place");
    assert!(
        !f.join("state/listeners/p4").exists(),
        "the emptied directory is removed"
    );
}

/// Journals enough for a checkpoint past the size from which saves go to
/// the log (64 KiB).
const JOURNALS: usize = 150;

fn line(journal: usize, n: usize) -> String {
    format!("line {n} of journal {journal:03}\n")
}

/// `JOURNALS` line logs `logs/aNNN.log`, each with one file listener `cNNN`.
fn many_journals() -> Fixture {
    let f = Fixture::new();
    let mut cfg = String::from("state_dir = \"state\"\n");
    for i in 0..JOURNALS {
        f.write(format!("logs/a{i:03}.log"), line(i, 0));
        cfg.push_str(&format!(
            "\n[[journal]]\nname = \"a{i:03}\"\npath = \"logs/a{i:03}.log\"\nformat = \"lines\"\n\
             start = \"beginning\"\n\n[[journal.listener]]\nname = \"c{i:03}\"\nplugin = \"file\"\n\
             [journal.listener.config]\npath = \"out/a{i:03}.raw\"\nformat = \"raw\"\n"
        ));
    }
    f.write("cfg.toml", cfg);
    f
}

/// Starts the daemon and waits until it runs: a start resumes every
/// journal in turn, which takes a while for this many in a debug build.
fn start(f: &Fixture) -> Daemon {
    let mut d = Daemon::spawn(f);
    wait_until(
        120,
        "the daemon running",
        || {
            assert!(!d.exited(), "the daemon exited at start:\n{}", d.log());
            d.log().contains(" running")
        },
        String::new,
    );
    d
}

/// `checkpoint show`'s listing.
fn show(f: &Fixture) -> String {
    let out = f.run(&["checkpoint", "show", "--state-dir", "state"]);
    assert!(out.status.success(), "checkpoint show: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Waits until the checkpoint's files have not changed for over a second
/// (the daemon saves once a second while anything moves).
fn settled(f: &Fixture, d: &Daemon) {
    let files = || {
        (
            read(f, "state/checkpoint.toml"),
            read(f, "state/checkpoint.log"),
        )
    };
    let mut last = files();
    wait_until(
        30,
        "the checkpoint settled",
        || {
            std::thread::sleep(std::time::Duration::from_millis(1500));
            let now = files();
            std::mem::replace(&mut last, now) == last
        },
        || d.log(),
    );
}

/// Appends line `n` to journal `i`, waits until its listener holds it and
/// its acknowledgement is saved, and returns what the save added to the log.
fn moved(f: &Fixture, d: &Daemon, i: usize, n: usize) -> String {
    let before = read(f, "state/checkpoint.log").len();
    append(&f.join(format!("logs/a{i:03}.log")), &line(i, n));
    let want: String = (0..=n).map(|k| line(i, k)).collect();
    let end = want.len() as u64;
    wait_until(
        30,
        &format!("journal {i} line {n} delivered and saved"),
        || {
            read(f, &format!("out/a{i:03}.raw")) == want
                && acked(f, &format!("c{i:03}")).is_some_and(|(_, o)| o == end)
        },
        || d.log(),
    );
    let log = read(f, "state/checkpoint.log");
    log.get(before..).unwrap_or(&log).to_string()
}

/// The journal tables in `text`, by journal name.
fn journals_in(text: &str) -> std::collections::BTreeSet<String> {
    text.split("\n[journal.")
        .skip(1)
        .map(|t| t.split(['.', ']']).next().unwrap().to_string())
        .collect()
}

#[test]
fn a_large_checkpoint_logs_the_journal_that_moved_and_folds_the_log_at_start_and_stop() {
    let f = many_journals();
    let d = start(&f);
    wait_until(
        60,
        "every journal's first line delivered and saved",
        || {
            (0..JOURNALS).all(|i| read(&f, &format!("out/a{i:03}.raw")) == line(i, 0))
                && show(&f).matches(": acknowledged up to ").count() == JOURNALS
        },
        || d.log(),
    );
    // The first start saved every journal whole (pinned at its start) and
    // then logged each one's first line: the log is about as large as the
    // checkpoint, and the next save may fold it. A stop folds it now.
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
    assert!(
        !f.join("state/checkpoint.log").exists(),
        "not folded at stop"
    );

    let d = start(&f);
    settled(&f, &d);
    let whole = read(&f, "state/checkpoint.toml");
    assert!(whole.len() > 64 * 1024, "{} bytes", whole.len());

    let added = moved(&f, &d, 7, 1);
    assert_eq!(
        read(&f, "state/checkpoint.toml"),
        whole,
        "checkpoint.toml is not rewritten for one journal"
    );
    assert_eq!(
        journals_in(&added),
        ["a007".to_string()].into(),
        "only the journal that moved is saved:\n{added}"
    );

    // Killed: checkpoint.toml and the log are the checkpoint together.
    d.signal("KILL");
    let _ = d.wait(20);
    let at = (line(7, 0) + &line(7, 1)).len() as u64;
    assert_eq!(
        acked(&f, "c007"),
        Some((1, at)),
        "checkpoint show reads the log"
    );

    // The next start folds the log in; the next stop folds what it logged.
    let d = start(&f);
    wait_until(
        30,
        "the log folded in at start",
        || !f.join("state/checkpoint.log").exists(),
        || d.log(),
    );
    assert_ne!(read(&f, "state/checkpoint.toml"), whole);
    settled(&f, &d);
    let added = moved(&f, &d, 42, 1);
    assert_eq!(journals_in(&added), ["a042".to_string()].into(), "{added}");
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
    assert!(
        !f.join("state/checkpoint.log").exists(),
        "not folded at stop"
    );
    let stopped = read(&f, "state/checkpoint.toml");
    let offset = |j: usize| {
        let t = &stopped[stopped
            .find(&format!("[journal.a{j:03}.listener.c{j:03}]"))
            .unwrap()..];
        t.lines()
            .find(|l| l.starts_with("offset = "))
            .unwrap()
            .to_string()
    };
    assert_eq!(offset(7), format!("offset = {at}"));
    assert_eq!(offset(42), format!("offset = {at}"));
    for i in 0..JOURNALS {
        let want: String = match i {
            7 | 42 => line(i, 0) + &line(i, 1),
            _ => line(i, 0),
        };
        assert_eq!(read(&f, &format!("out/a{i:03}.raw")), want, "journal {i}");
    }
}
