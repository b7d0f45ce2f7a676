//! A second writer that holds the log open appends to it after it was
//! renamed: those lines are delivered, in order, while the renamed file is
//! watched (`late_writes`); lines appended after that are reported with
//! the file and the byte count, never dropped silently.

use std::fs;
use std::io::Write;

use crate::fixture::{stderr, Fixture};
use crate::host::{entry_text, kit_listener, wait_until, Daemon};

fn config(late_writes: &str) -> String {
    format!(
        "state_dir = \"state\"\n\n[[journal]]\nname = \"app\"\npath = \"logs/app.log\"\nformat = \"lines\"\nlate_writes = \"{late_writes}\"\n{}",
        kit_listener("kit", "", "")
    )
}

fn seq(from: u32, to: u32) -> String {
    (from..=to).map(|i| format!("{i}\n")).collect()
}

/// `seq 1 100 > app.log`, the daemon running, a second writer holding it
/// open; `mv app.log app.log.1; seq 1001 1010 > app.log`. Returns the
/// second writer.
fn rotate_under_a_second_writer(f: &Fixture, d: &Daemon) -> fs::File {
    let kit = f.join("out/kit.jsonl");
    wait_until(
        15,
        "the first lines",
        || entry_text(&kit) == seq(1, 100),
        || d.log(),
    );
    let held = fs::OpenOptions::new()
        .append(true)
        .open(f.join("logs/app.log"))
        .unwrap();
    fs::rename(f.join("logs/app.log"), f.join("logs/app.log.1")).unwrap();
    f.write("logs/app.log", seq(1001, 1010));
    held
}

#[test]
fn lines_a_second_writer_appends_to_the_renamed_file_are_delivered_in_order() {
    let f = Fixture::new();
    f.write("cfg.toml", config("5s"));
    f.write("logs/app.log", seq(1, 100));
    let d = Daemon::start(&f);
    let mut held = rotate_under_a_second_writer(&f, &d);
    // A second later, as a worker finishing its request would.
    std::thread::sleep(std::time::Duration::from_secs(1));
    held.write_all(seq(101, 120).as_bytes()).unwrap();
    crate::host::append(&f.join("logs/app.log"), &seq(1011, 1020));
    let kit = f.join("out/kit.jsonl");
    let want = format!("{}{}", seq(1, 120), seq(1001, 1020));
    wait_until(
        30,
        "every line, the late ones first",
        || entry_text(&kit).len() >= want.len(),
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert_eq!(entry_text(&kit), want);
}

#[test]
fn lines_appended_to_a_renamed_file_after_late_writes_are_reported() {
    let f = Fixture::new();
    f.write("cfg.toml", config("0s"));
    f.write("logs/app.log", seq(1, 100));
    let d = Daemon::start(&f);
    let mut held = rotate_under_a_second_writer(&f, &d);
    let kit = f.join("out/kit.jsonl");
    let first = format!("{}{}", seq(1, 100), seq(1001, 1010));
    wait_until(
        15,
        "the new file's lines",
        || entry_text(&kit) == first,
        || d.log(),
    );
    held.write_all(seq(101, 120).as_bytes()).unwrap();
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    // The next start looks at the files it finished.
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    let late = seq(101, 120).len();
    for w in [
        "bytes were appended to a rotated file after it was read to its end and left".to_string(),
        format!("file={}", f.join("logs/app.log.1").display()),
        format!("bytes={late}"),
        "raise late_writes".to_string(),
    ] {
        assert!(log.contains(&w), "the report does not say {w:?}:\n{log}");
    }
    assert_eq!(
        entry_text(&kit),
        first,
        "nothing delivered twice or out of order"
    );
}
