//! One daemon following a thousand files: the threads stay a small fixed
//! set (not one or more per file, as they once were) and every output is
//! exact. No timing is asserted here: speed and memory at scale are
//! measured by `scripts/bench-scale.sh`, against `tail -F` and rsyslog.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::{bin, Fixture};

/// Logs followed, each by its own journal with a `file` listener.
const LOGS: usize = 1000;
/// Most threads the daemon may have, whatever the number of files.
const MAX_THREADS: usize = 16;

fn line(i: usize, k: usize) -> String {
    format!("app{i:04} line {k}\n")
}

fn threads(pid: u32) -> usize {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads: in /proc/PID/status")
}

/// Waits (up to `secs`) until every output is its log, byte for byte.
fn wait_exact(f: &Fixture, secs: u64, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut pending: Vec<usize> = (0..LOGS).collect();
    while !pending.is_empty() {
        pending.retain(|&i| {
            let want = fs::read(f.join(format!("logs/app{i:04}.log"))).unwrap();
            fs::read(f.join(format!("out/app{i:04}.out"))).ok() != Some(want)
        });
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {LOGS} outputs are not their log after {secs} s (first: app{:04}); daemon log:\n{}",
            pending.len(),
            pending[0],
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_thousand_files_are_followed_exactly_by_a_fixed_set_of_threads() {
    let f = Fixture::new();
    let mut cfg = String::from("state_dir = \"state\"\n");
    for i in 0..LOGS {
        f.write(format!("logs/app{i:04}.log"), line(i, 1) + &line(i, 2));
        cfg += &format!(
            "[[journal]]\nname = \"app{i:04}\"\npath = \"logs/app{i:04}.log\"\nformat = \"lines\"\n\
             [[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n\
             [journal.listener.config]\npath = \"out/app{i:04}.out\"\nformat = \"raw\"\nfsync = false\n"
        );
    }
    f.write("cfg.toml", cfg);
    let log = f.join("daemon.log");
    let mut child = Command::new(bin())
        .args(["run", "--config", "cfg.toml"])
        .current_dir(f.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(fs::File::create(&log).unwrap()))
        .spawn()
        .expect("start logdaemon");
    let pid = child.id();

    wait_exact(&f, 180, "at start", &log);
    let at_start = threads(pid);
    for i in 0..LOGS {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(f.join(format!("logs/app{i:04}.log")))
            .unwrap();
        std::io::Write::write_all(&mut file, line(i, 3).as_bytes()).unwrap();
    }
    wait_exact(&f, 120, "after one more line in every log", &log);
    let after = threads(pid);
    assert!(
        at_start <= MAX_THREADS && after <= MAX_THREADS,
        "{LOGS} files followed with {at_start} threads at start and {after} after a write to each: at most {MAX_THREADS}"
    );

    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit 60 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    // Nothing twice after the stop either: the outputs are still their logs.
    wait_exact(&f, 1, "after the stop", &log);
}
