//! A journal whose path is a symbolic link, pointed at another file while
//! the daemon was down: reported as such, and each way out the message
//! gives works.

use std::fs;
use std::os::unix::fs::symlink;

use super::{refused, run_once};
use crate::fixture::{stderr, Fixture};
use crate::host::{append, wait_until, Daemon};

fn lines(from: usize, to: usize, tag: &str) -> String {
    (from..to).map(|i| format!("{tag} line {i}\n")).collect()
}

fn point(f: &Fixture, to: &str) {
    let link = f.join("logs/current.log");
    let _ = fs::remove_file(&link);
    symlink(to, &link).unwrap();
}

/// `current.log -> a.log` read once; then, while down, two more lines in
/// a.log and the link pointed at b.log. Returns the refusal's message.
fn retargeted_while_down(f: &Fixture) -> String {
    f.write("logs/a.log", lines(0, 3, "a"));
    f.write("logs/b.log", lines(0, 2, "b"));
    point(f, "a.log");
    f.write(
        "cfg.toml",
        "state_dir = \"state\"\n[[journal]]\nname = \"app\"\npath = \"logs/current.log\"\nformat = \"lines\"\n\
         [[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"out/copy.raw\"\n",
    );
    let out = run_once(f);
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = f.join("out/copy.raw");
    assert_eq!(fs::read_to_string(&copy).unwrap(), lines(0, 3, "a"));

    append(&f.join("logs/a.log"), &lines(3, 5, "a"));
    point(f, "b.log");
    let (a, b) = (f.join("logs/a.log"), f.join("logs/b.log"));
    let unread = lines(3, 5, "a").len();
    let words = [
        format!("current.log is a symbolic link that pointed at {} when the checkpoint was saved and now points at {}", a.display(), b.display()),
        format!("{} still holds {unread} bytes after offset {}", a.display(), lines(0, 3, "a").len()),
        format!("ln -sfn {} ", a.display()),
        "--journal app --sequence 2 --offset 0 --force".to_string(),
    ];
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let msg = refused(&run_once(f), &words);
    assert_eq!(fs::read_to_string(&copy).unwrap(), lines(0, 3, "a"));
    msg
}

#[test]
fn a_link_retargeted_while_down_is_reported_with_both_files_and_the_way_out_reads_them() {
    let f = Fixture::new();
    retargeted_while_down(&f);
    // The way out: back to a.log, read it to its end, then b.log while running.
    let (a, b) = (f.join("logs/a.log"), f.join("logs/b.log"));
    let copy = f.join("out/copy.raw");
    point(&f, a.to_str().unwrap());
    let d = Daemon::start(&f);
    let want = lines(0, 5, "a");
    wait_until(
        20,
        "the rest of a.log",
        || fs::read_to_string(&copy).unwrap_or_default() == want,
        || d.log(),
    );
    point(&f, b.to_str().unwrap());
    let want = format!("{}{}", lines(0, 5, "a"), lines(0, 2, "b"));
    wait_until(
        20,
        "b.log after a.log",
        || fs::read_to_string(&copy).unwrap_or_default() == want,
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}

#[test]
fn the_other_way_out_skips_the_old_file_s_rest_as_it_says() {
    let f = Fixture::new();
    retargeted_while_down(&f);
    let out = f.run(&[
        "checkpoint",
        "set",
        "--state-dir",
        "state",
        "--journal",
        "app",
        "--sequence",
        "2",
        "--offset",
        "0",
        "--force",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        format!("{}{}", lines(0, 3, "a"), lines(0, 2, "b"))
    );
}
