//! Streams of a glob journal: each matching file its own stream, cursor
//! and output; a file created while running, deleted without rotation, or
//! created again under an ended stream's name; the file name the listeners
//! see; and new files found by the periodic check alone.

use std::fs::{self};
use std::time::{Duration, Instant};

use super::{checkpoint_show, config, outputs, set, wait_copy, Log};
use crate::fixture::{stderr, Fixture};
use crate::rotation::harness::Daemon;

#[test]
fn each_file_a_glob_matches_is_a_stream_with_its_own_cursor_and_output() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    let mut b = Log::new(&f.join("logs/b.txt"));
    let mut skip = Log::new(&f.join("logs/skip.log"));
    a.write(30);
    b.write(10);
    skip.write(5);
    f.write("cfg.toml", config(""));
    let mut d = Daemon::start(&f);
    a.write(20);
    b.write(40);
    skip.write(5);
    wait_copy(&f, &mut d, &a);
    wait_copy(&f, &mut d, &b);
    d.term();
    assert_eq!(
        outputs(&f),
        set(&["a.log.raw", "b.txt.raw"]),
        "skip.log is excluded"
    );
    let show = checkpoint_show(&f);
    for stream in ["app/a.log", "app/b.txt"] {
        assert!(show.contains(&format!("journal {stream}:")), "{show}");
    }
    assert!(!show.contains("skip"), "{show}");
    // Each stream resumes at its own cursor: nothing again, nothing lost.
    a.write(7);
    let mut d = Daemon::start(&f);
    b.write(3);
    wait_copy(&f, &mut d, &a);
    wait_copy(&f, &mut d, &b);
    d.term();
}

#[test]
fn a_file_created_while_running_is_followed_from_its_first_line() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    a.write(10);
    // `start = "end"` applies to the files there at the first start only.
    f.write("cfg.toml", config("start = \"end\""));
    let mut d = Daemon::start(&f);
    a.ledger.clear();
    a.write(5);
    let mut c = Log::new(&f.join("logs/c.log"));
    c.write(25);
    wait_copy(&f, &mut d, &a);
    wait_copy(&f, &mut d, &c);
    d.term();
    // Created while the daemon was stopped: also read whole.
    let mut e = Log::new(&f.join("logs/e.log"));
    e.write(12);
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &e);
    d.term();
}

#[test]
fn listeners_of_a_glob_journal_see_which_file_an_entry_came_from() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    let mut b = Log::new(&f.join("logs/b.log"));
    a.write(3);
    b.write(2);
    f.write(
        "cfg.toml",
        config("").replace("format = \"raw\"", "format = \"jsonl\""),
    );
    let o = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (log, n) in [(&a, 3), (&b, 2)] {
        let text = fs::read_to_string(f.join(format!("out/{}.raw", log.name()))).unwrap();
        let journals: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["journal"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(journals, vec![format!("app/{}", log.name()); n], "{text}");
    }
}

#[test]
fn a_file_deleted_without_rotation_ends_its_stream_after_its_last_lines() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    let mut b = Log::new(&f.join("logs/b.log"));
    a.write(10);
    b.write(10);
    f.write("cfg.toml", config(""));
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &a);
    // Written and deleted while the daemon cannot look: its last lines
    // are read from the deleted file before the stream ends.
    d.freeze();
    a.write(15);
    fs::remove_file(&a.path).unwrap();
    d.thaw();
    wait_copy(&f, &mut d, &a);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(f.join("daemon.log"))
        .unwrap_or_default()
        .contains("stream ended")
    {
        assert!(
            Instant::now() < deadline,
            "no end of stream:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    b.write(5);
    wait_copy(&f, &mut d, &b);
    d.term();
    let show = checkpoint_show(&f);
    assert!(
        !show.contains("app/a.log"),
        "the ended stream is gone: {show}"
    );
    assert!(show.contains("journal app/b.log:"), "{show}");
}

#[test]
fn a_file_created_again_under_an_ended_streams_name_is_read_whole_into_its_output() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    a.write(10);
    f.write("cfg.toml", config(""));
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &a);
    fs::remove_file(&a.path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(f.join("daemon.log"))
        .unwrap_or_default()
        .contains("stream ended")
    {
        d.assert_running();
        assert!(
            Instant::now() < deadline,
            "no end of stream:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The same name again (a job run again): its output goes on, and no
    // entry of the new file is taken for one already written.
    a.reopen();
    a.write(4);
    wait_copy(&f, &mut d, &a);
    d.term();
}

#[test]
fn with_watch_poll_a_new_file_is_found_by_the_periodic_check() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    a.write(3);
    f.write("cfg.toml", format!("watch = \"poll\"\n{}", config("")));
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &a);
    let mut b = Log::new(&f.join("logs/b.log"));
    b.write(8);
    wait_copy(&f, &mut d, &b);
    d.term();
}
