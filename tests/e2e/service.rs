//! The daemon as a service, through the real binary: systemd's
//! notification protocol on a datagram socket the test listens on (as
//! systemd does: `READY=1` only once every listener is open, `STATUS=`,
//! `WATCHDOG=1` beats at half of `WATCHDOG_USEC`, `STOPPING=1`), and
//! `run --once` with a listener that keeps failing ending in bounded time,
//! non-zero, naming it, with the others' checkpoint saved.

use std::fs::File;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::{bin, stderr, Fixture};
use crate::host::{
    acked, config, events, file_listener, fixture, kind, kit_listener, recs, wait_until,
};

/// The next notification datagram, or `None` after `secs`.
fn next(sock: &UnixDatagram, secs: u64) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => return Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            // A signal to the test process (a child exiting): wait on.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(e) => panic!("recv on the notify socket: {e}"),
        }
    }
}

/// `logdaemon run` with `NOTIFY_SOCKET` and `WATCHDOG_USEC` set, as systemd starts it.
fn spawn(f: &Fixture, socket: &std::path::Path, watchdog_usec: Option<u64>) -> Child {
    let mut c = Command::new(bin());
    if let Some(usec) = watchdog_usec {
        c.env("WATCHDOG_USEC", usec.to_string());
    }
    c.args(["run", "--config", "cfg.toml"])
        .current_dir(f.path())
        .env("NOTIFY_SOCKET", socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(f.join("daemon.log")).unwrap())
        .spawn()
        .expect("start logdaemon")
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn systemd_hears_ready_only_once_every_listener_is_open_then_watchdog_beats_and_stopping() {
    let cfg = config(
        "",
        &format!(
            "{}{}",
            file_listener("copy"),
            kit_listener("kit", "", "open_waits_for_file = \"flag\"")
        ),
    );
    let f = fixture(&recs(0, 5), &cfg);
    let socket = f.join("notify.sock");
    let sock = UnixDatagram::bind(&socket).unwrap();
    let kit = f.join("out/kit.jsonl");
    let log = || std::fs::read_to_string(f.join("daemon.log")).unwrap_or_default();
    let mut d = Kill(spawn(&f, &socket, Some(1_000_000)));

    // The second listener's open is under way and cannot return: nothing
    // may have been sent yet (a READY=1 sent before the opens would be
    // queued on the socket by now).
    wait_until(
        20,
        "the testkit's open to begin",
        || events(&kit).iter().any(|e| kind(e) == "opening"),
        log,
    );
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let early = sock.recv(&mut buf);
    assert!(
        early.is_err(),
        "notified while a listener was still opening: {:?}",
        early.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    );
    sock.set_nonblocking(false).unwrap();

    f.write("flag", "");
    let ready = next(&sock, 20).unwrap_or_else(|| panic!("no READY=1 within 20 s\n{}", log()));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready
            .lines()
            .any(|l| l == "STATUS=2 of 2 listeners running"),
        "{ready:?}"
    );
    assert!(
        events(&kit).iter().any(|e| kind(e) == "open"),
        "READY=1 before the testkit's open returned"
    );

    // WATCHDOG_USEC = 1 s: a beat every half second from the engine's loop.
    let start = Instant::now();
    let mut beats = 0;
    while beats < 3 {
        let m = next(&sock, 5).unwrap_or_else(|| panic!("no watchdog beat within 5 s\n{}", log()));
        if m.lines().any(|l| l == "WATCHDOG=1") {
            beats += 1;
        }
    }
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "three beats in {:?}: faster than every half second",
        start.elapsed()
    );

    let st = Command::new("kill")
        .args(["-TERM", &d.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let stopping = loop {
        let m = next(&sock, 20).unwrap_or_else(|| panic!("no STOPPING=1\n{}", log()));
        if m.lines().any(|l| l == "STOPPING=1") {
            break m;
        }
        assert!(Instant::now() < deadline, "no STOPPING=1 within 20 s");
    };
    assert!(stopping.contains("STATUS=stopping"), "{stopping:?}");
    let st = d.0.wait().unwrap();
    assert!(st.success(), "exit {st}\n{}", log());
}

#[test]
fn a_status_line_tells_systemd_when_a_listener_is_disabled() {
    let cfg = config(
        "",
        &format!(
            "{}{}",
            file_listener("copy"),
            kit_listener("kit", "on_failure = \"disable\"", "fatal_on = \"BOOM\"")
        ),
    );
    let f = fixture(&recs(0, 3), &cfg);
    let socket = f.join("notify.sock");
    let sock = UnixDatagram::bind(&socket).unwrap();
    let log = || std::fs::read_to_string(f.join("daemon.log")).unwrap_or_default();
    let _d = Kill(spawn(&f, &socket, None));
    let ready = next(&sock, 20).unwrap_or_else(|| panic!("no READY=1\n{}", log()));
    assert!(ready.contains("READY=1"), "{ready:?}");
    crate::host::append(&f.join("p4root/journal"), &crate::host::rec(3, "BOOM"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = next(&sock, 20).unwrap_or_else(|| panic!("no new STATUS=\n{}", log()));
        assert!(
            !m.contains("WATCHDOG=1"),
            "beats without WATCHDOG_USEC: {m:?}"
        );
        if m.contains("STATUS=1 of 2 listeners running, 1 disabled") {
            break;
        }
        assert!(Instant::now() < deadline, "last: {m:?}");
    }
}

/// A listener that keeps asking to retry: `--once` gives up after its
/// `retry_max`, exits non-zero naming it and its last error, and saves the
/// checkpoint of the listener that took everything.
#[test]
fn run_once_with_a_listener_that_keeps_failing_exits_non_zero_in_bounded_time() {
    let all = recs(0, 20);
    let cfg = config(
        "",
        &format!(
            "{}{}",
            file_listener("copy"),
            kit_listener("down", "retry_max = \"1s\"", "retry_until_file = \"never\"")
        ),
    );
    let f = fixture(&all, &cfg);
    let start = Instant::now();
    let mut child = Command::new(bin())
        .args(["run", "--once", "--config", "cfg.toml"])
        .current_dir(f.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: retry_max (1 s) plus one capped backoff; 30 s is far above it.
    let deadline = start + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("run --once still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{err}");
    assert!(
        last.contains("listener \"down\" of journal \"p4\" still fails after 1s (retry_max)")
            && last.contains("never does not exist yet"),
        "the last line names the listener and its last error: {last}"
    );
    assert_eq!(acked(&f, "copy"), Some((1, all.len() as u64)), "{err}");
    assert_eq!(acked(&f, "down"), Some((1, 0)), "{err}");
}

/// `--log-format json`: every line an object; the rotated file's read is
/// logged once per listener and names it; lines from a listener's thread
/// name their listener and none is repeated; the progress lines of
/// `log_progress_every` add up to what was delivered and reach zero lag.
#[test]
fn json_logs_name_their_listener_once_and_progress_lines_add_up() {
    let (old, live) = (recs(0, 6), recs(6, 10));
    let cfg = format!(
        "state_dir = \"state\"\nlog_progress_every = \"300ms\"\n\n[[journal]]\nname = \"p4\"\npath = \"p4root/journal\"\nformat = \"p4\"\nstart = 1\nlate_writes = \"0s\"\n{}{}",
        file_listener("copy"),
        kit_listener("kit", "", "")
    );
    let f = fixture(&live, &cfg);
    f.write("p4root/journal.1", &old);
    let mut child = Kill(
        Command::new(bin())
            .args(["--log-format", "json", "run", "--config", "cfg.toml"])
            .current_dir(f.path())
            .env("LOGDAEMON_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(f.join("daemon.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(f.join("daemon.log")).unwrap_or_default();
    let lines = || -> Vec<serde_json::Value> {
        log()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    };
    let msg = |v: &serde_json::Value| v["message"].as_str().unwrap_or("").to_string();
    let progress = move |all: &[serde_json::Value]| -> Vec<serde_json::Value> {
        all.iter()
            .filter(|v| v["target"] == "logdaemon::progress")
            .cloned()
            .collect()
    };
    let total = |all: &[serde_json::Value]| -> u64 {
        progress(all)
            .iter()
            .map(|v| v["entries"].as_u64().unwrap())
            .sum()
    };
    wait_until(
        30,
        "progress lines adding up to 2 × 10 entries, with no lag",
        || {
            let all = lines();
            total(&all) == 20 && progress(&all).last().is_some_and(|v| v["lag_bytes"] == 0)
        },
        log,
    );
    let st = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.0.wait().unwrap().success(), "{}", log());
    let all = lines();
    assert_eq!(
        std::fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        format!("{old}{live}")
    );
    for p in progress(&all) {
        assert_eq!(p["journal"], "p4", "{p}");
        assert!(
            msg(&p).contains("copy: ") && msg(&p).contains("kit: "),
            "{p}"
        );
    }
    // The rotated file: one line per listener, each naming it.
    let mut rotated: Vec<String> = all
        .iter()
        .filter(|v| msg(v) == "reading rotated file")
        .map(|v| v["span"]["listener"].as_str().unwrap_or("NONE").to_string())
        .collect();
    rotated.sort();
    assert_eq!(rotated, ["copy", "kit"], "{}", log());
    let mut seen = std::collections::HashSet::new();
    for v in &all {
        let target = v["target"].as_str().unwrap_or("");
        if target.starts_with("logdaemon::follow") || target.starts_with("logdaemon::worker") {
            assert!(v["span"]["listener"].is_string(), "names no listener: {v}");
        }
        if v["span"]["listener"].is_string() {
            let mut key = v.clone();
            key.as_object_mut().unwrap().remove("timestamp");
            assert!(seen.insert(key.to_string()), "logged twice: {v}");
        }
    }
}
