//! Glob journals at their edges: a file deleted before any of its bytes
//! were read (every listener still gets them all, once the daemon has seen
//! the file), and two glob journals whose patterns match one file (refused
//! by `logdaemon check` where it can tell, and at run time the file is
//! followed by one journal only, with a warning).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::fixture::{stderr, stdout, Fixture};
use crate::host::testkit;
use crate::rotation::harness::{diff, Daemon};

/// Polls `cond` every 5 ms for up to 30 s; `what` and the daemon's log
/// explain a timeout.
fn wait_for(d: &mut Daemon, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        d.assert_running();
        assert!(
            Instant::now() < deadline,
            "{what} (30 s); daemon log:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (up to 30 s) until the daemon holds `path` open (one of its
/// `/proc/PID/fd` links leads to it): from then on, every byte written to
/// it before its deletion must be delivered.
pub(crate) fn wait_held_open(d: &mut Daemon, path: &Path) {
    let fds = format!("/proc/{}/fd", d.pid());
    let held = || {
        fs::read_dir(&fds).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| fs::read_link(e.path()).is_ok_and(|t| t == path))
        })
    };
    let what = format!("the daemon never opened {}", path.display());
    wait_for(d, &what, held);
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_default()
}

/// `n` numbered lines naming `name`, from line `from`.
fn lines(name: &str, from: usize, n: usize) -> Vec<u8> {
    (from..from + n)
        .flat_map(|i| format!("{name} line {i:04}\n").into_bytes())
        .collect()
}

#[test]
fn a_file_deleted_before_any_listener_read_it_is_delivered_whole_to_every_listener() {
    let f = Fixture::new();
    fs::create_dir_all(f.join("logs")).unwrap();
    // The first listener's open waits for `flag`: the stream's worker
    // cannot step, and the second listener is not opened yet either.
    f.write(
        "cfg.toml",
        format!(
            r#"state_dir = "state"

[[journal]]
name = "jobs"
path = "logs/*.tmp"
format = "lines"
quiet_after = "200ms"
reconcile_every = "200ms"

[[journal.listener]]
name = "kit"
plugin = "{}"
[journal.listener.config]
path = "out/{{file}}.kit.jsonl"
open_waits_for_file = "flag"

[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "out/{{file}}.raw"
format = "raw"
fsync = false
"#,
            testkit()
        ),
    );
    let mut d = Daemon::start(&f);
    let job = f.join("logs/job.tmp");
    let mut ledger = lines("job.tmp", 0, 20);
    fs::write(&job, &ledger).unwrap();
    // The daemon found the file and is opening its listeners.
    let kit = f.join("out/job.tmp.kit.jsonl");
    wait_for(&mut d, "the first listener never began to open", || {
        String::from_utf8_lossy(&read(&kit)).contains("\"opening\"")
    });
    // More lines, then the file is deleted: no listener has read a byte.
    let more = lines("job.tmp", 20, 30);
    fs::OpenOptions::new()
        .append(true)
        .open(&job)
        .and_then(|mut h| std::io::Write::write_all(&mut h, &more))
        .unwrap();
    ledger.extend_from_slice(&more);
    fs::remove_file(&job).unwrap();
    f.write("flag", "");
    let copy = f.join("out/job.tmp.raw");
    wait_for(&mut d, "the stream did not end", || {
        fs::read_to_string(f.join("daemon.log"))
            .unwrap_or_default()
            .contains("stream ended")
    });
    let got = read(&copy);
    assert!(
        got == ledger,
        "the second listener lost lines of the deleted file:\n{}\ndaemon log:\n{}",
        diff(&got, &ledger),
        d.log_tail()
    );
    let kit_lines = String::from_utf8_lossy(&read(&kit))
        .lines()
        .filter(|l| l.contains("\"entry\""))
        .count();
    assert_eq!(kit_lines, 50, "the first listener got every line");
    d.term();
}

/// Two glob journals on `logs/`, `first` and `second` patterns, each with
/// a raw `file` listener writing `out/NAME-{file}.raw`.
fn two_globs(first: &str, second: &str) -> String {
    let journal = |name: &str, path: &str| {
        format!(
            r#"
[[journal]]
name = "{name}"
path = "logs/{path}"
format = "lines"
quiet_after = "200ms"
reconcile_every = "200ms"

[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "out/{name}-{{file}}.raw"
format = "raw"
fsync = false
"#
        )
    };
    format!(
        "state_dir = \"state\"\n{}{}",
        journal("five", first),
        journal("dash", second)
    )
}

#[test]
fn check_refuses_two_globs_that_match_one_name_at_the_second_path() {
    let f = Fixture::new();
    f.write("logs/app.log", "x\n");
    f.write("cfg.toml", two_globs("*.log", "app*"));
    let o = f.run(&["check", "--config", "cfg.toml"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(
        e.contains("config cfg.toml, line 20: journal \"dash\": path \"logs/app*\" matches file names that journal \"five\"")
            && e.contains("e.g. \"app.log\"")
            && e.contains("followed twice")
            && e.contains("in journal \"five\": exclude = [\"app*\"]"),
        "{e}"
    );
    // Kept apart by an exclude list: accepted.
    f.write(
        "cfg.toml",
        two_globs("*.log", "app*").replace(
            "path = \"logs/*.log\"",
            "path = \"logs/*.log\"\nexclude = [\"app*\"]",
        ),
    );
    let o = f.run(&["check", "--config", "cfg.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_file_two_globs_match_is_followed_once_and_the_other_journal_warns_once() {
    let f = Fixture::new();
    // `abc-d.log` is five characters and a dash: both patterns match it,
    // which the config check cannot show.
    let old = lines("abc-d.log", 0, 10);
    f.write("logs/abc-d.log", &old);
    f.write("cfg.toml", two_globs("?????.log", "*-?.log"));
    let o = f.run(&["check", "--config", "cfg.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut d = Daemon::start(&f);
    let out = |n: &str| read(&f.join(format!("out/{n}.raw")));
    wait_for(&mut d, "five-abc-d.log stayed short", || {
        out("five-abc-d.log") == old
    });
    // One created while the daemon runs, and then another one only the
    // first journal matches: by then the directory was looked at again.
    let new = lines("qrs-t.log", 0, 5);
    f.write("logs/qrs-t.log", &new);
    wait_for(&mut d, "five-qrs-t.log stayed short", || {
        out("five-qrs-t.log") == new
    });
    let later = lines("later.log", 0, 3);
    f.write("logs/later.log", &later);
    wait_for(&mut d, "five-later.log stayed short", || {
        out("five-later.log") == later
    });
    d.term();
    for n in ["dash-abc-d.log", "dash-qrs-t.log"] {
        assert!(!f.join(format!("out/{n}.raw")).exists(), "{n} was written");
    }
    let log = fs::read_to_string(f.join("daemon.log")).unwrap();
    for file in ["abc-d.log", "qrs-t.log"] {
        let warned: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("matches the patterns of two journals") && l.contains(file))
            .collect();
        assert_eq!(warned.len(), 1, "one warning for {file}:\n{log}");
        assert!(
            warned[0].contains("journal \"five\" follows it, journal \"dash\" leaves it"),
            "{}",
            warned[0]
        );
    }
}
