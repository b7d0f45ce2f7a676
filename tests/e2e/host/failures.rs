//! Listeners that fail for good: panics and Fatal failures reported and
//! handled per `on_failure` (stop or disable), a daemon left with no
//! listener, a listener that cannot open, and a panic on the daemon's own
//! side of a listener.

use std::fs;

use crate::fixture::{stderr, Fixture};
use crate::host::{
    acked, append, config, entry_text, file_listener, fixture, kit_listener, rec, recs, wait_until,
    Daemon,
};

// ---------------------------------------------------------------- failures

/// A listener that fails for good (`trigger` = `panic_on` or `fatal_on`)
/// next to a file listener; returns the fixture, the daemon, and the
/// journal text before and after the failing entry.
fn failing(trigger: &str, policy: &str) -> (Fixture, Daemon, String, String) {
    let good = recs(0, 50);
    let cfg = config(
        "",
        &format!(
            "{}{}",
            kit_listener(
                "kit",
                &format!("on_failure = \"{policy}\""),
                &format!("{trigger} = \"BOOM\"")
            ),
            file_listener("copy")
        ),
    );
    let f = fixture(&good, &cfg);
    let kit = f.join("out/kit.jsonl");
    let d = Daemon::start(&f);
    wait_until(
        15,
        "the good entries",
        || entry_text(&kit) == good,
        || d.log(),
    );
    let bad = format!("{}{}", rec(50, "BOOM"), recs(51, 60));
    append(&f.join("p4root/journal"), &bad);
    (f, d, good, bad)
}

fn failure_stops_the_daemon(trigger: &str, words: &[&str]) {
    let (f, d, good, _) = failing(trigger, "stop");
    let (st, log) = d.wait(20);
    assert!(
        !st.success(),
        "a failed listener with on_failure = \"stop\" exited 0:\n{log}"
    );
    for w in words.iter().chain(&["\"kit\"", "on_failure = \"stop\""]) {
        assert!(log.contains(w), "the log does not say {w:?}:\n{log}");
    }
    assert!(stderr_line(&log).contains("kit"), "{log}");
    // The checkpoint was written: everything the listener acknowledged before.
    assert_eq!(acked(&f, "kit"), Some((1, good.len() as u64)), "{log}");
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), good);
}

/// The last line (`error: ...`) the binary prints.
fn stderr_line(log: &str) -> &str {
    log.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("")
}

fn failure_disables_the_listener(trigger: &str, words: &[&str]) {
    let (f, mut d, good, bad) = failing(trigger, "disable");
    let copy = f.join("out/copy.raw");
    let logged =
        |log: &str| log.contains("listener disabled") && words.iter().all(|w| log.contains(w));
    wait_until(
        15,
        "the failure to be logged",
        || logged(&d.log()),
        || d.log(),
    );
    // The other listener goes on, and so does the daemon.
    let later = recs(60, 70);
    append(&f.join("p4root/journal"), &later);
    let all = format!("{good}{bad}{later}");
    wait_until(
        15,
        "the file listener to go on",
        || fs::read_to_string(&copy).unwrap_or_default() == all,
        || d.log(),
    );
    assert!(
        !d.exited(),
        "the daemon stopped although the listener is only disabled:\n{}",
        d.log()
    );
    let (st, log) = d.stop();
    assert!(st.success(), "exit {st}: {log}");
    assert_eq!(
        acked(&f, "kit"),
        Some((1, good.len() as u64)),
        "the disabled listener's cursor is kept\n{log}"
    );
    assert_eq!(acked(&f, "copy"), Some((1, all.len() as u64)));
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), good);
    // Fixed and started again, it resumes at its kept cursor: nothing lost, nothing twice.
    let cfg = fs::read_to_string(f.join("cfg.toml"))
        .unwrap()
        .replace(&format!("{trigger} = \"BOOM\""), "");
    f.write("cfg.toml", cfg);
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), all);
    assert_eq!(fs::read_to_string(&copy).unwrap(), all);
}

#[test]
fn a_panicking_listener_with_on_failure_stop_stops_the_daemon_after_the_checkpoint() {
    failure_stops_the_daemon(
        "panic_on",
        &[
            "listener \"kit\" of journal \"p4\" failed for good: listener panicked",
            "contains the panic_on text",
        ],
    );
}

#[test]
fn a_panicking_listener_with_on_failure_disable_leaves_the_others_running() {
    failure_disables_the_listener(
        "panic_on",
        &["listener \"kit\" of journal \"p4\" failed for good: listener panicked"],
    );
}

#[test]
fn a_fatal_listener_with_on_failure_stop_stops_the_daemon_after_the_checkpoint() {
    failure_stops_the_daemon(
        "fatal_on",
        &[
            "listener \"kit\" of journal \"p4\" failed for good",
            "contains the fatal_on text",
        ],
    );
}

#[test]
fn a_fatal_listener_with_on_failure_disable_leaves_the_others_running() {
    failure_disables_the_listener(
        "fatal_on",
        &[
            "listener \"kit\" of journal \"p4\" failed for good",
            "contains the fatal_on text",
        ],
    );
}

#[test]
fn when_every_listener_is_disabled_the_daemon_exits_non_zero_keeping_the_cursors() {
    // Exiting 0 with nothing left running would tell a supervisor all is well.
    let good = recs(0, 5);
    let cfg = config(
        "",
        &format!(
            "{}{}",
            kit_listener("a", "on_failure = \"disable\"", "fatal_on = \"BOOM\""),
            kit_listener("b", "on_failure = \"disable\"", "panic_on = \"BOOM\"")
        ),
    );
    let f = fixture(&good, &cfg);
    let d = Daemon::start(&f);
    wait_until(
        15,
        "the good entries",
        || entry_text(&f.join("out/a.jsonl")) == good && entry_text(&f.join("out/b.jsonl")) == good,
        || d.log(),
    );
    append(&f.join("p4root/journal"), &rec(5, "BOOM"));
    let (st, log) = d.wait(20);
    assert!(
        !st.success(),
        "the daemon exited 0 with every listener disabled:\n{log}"
    );
    let last = stderr_line(&log);
    assert!(
        last.contains("every listener is disabled")
            && last.contains("\"a\"")
            && last.contains("\"b\""),
        "{log}"
    );
    assert_eq!(acked(&f, "a"), Some((1, good.len() as u64)));
    assert_eq!(acked(&f, "b"), Some((1, good.len() as u64)));
}

#[test]
fn a_listener_that_cannot_open_stops_run_at_start_naming_it() {
    let f = fixture(
        &recs(0, 3),
        &config(
            "",
            &format!(
                "{}{}",
                file_listener("copy"),
                kit_listener("kit", "", "colour = \"red\"")
            ),
        ),
    );
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("listener \"kit\" of journal \"p4\" could not start")
            && err.contains("colour"),
        "{err}"
    );
    let copied = fs::read(f.join("out/copy.raw")).unwrap_or_default();
    assert!(
        copied.is_empty(),
        "a listener got entries although another could not start"
    );
    assert!(!f.join("state/checkpoint.toml").exists());
}

/// A panic on the daemon's side (not in the listener: in the worker that
/// reads and frames for it) fails that listener alone by its `on_failure`;
/// the other listener gets everything, SIGTERM still ends the run at once,
/// and `--once` exits non-zero naming it. The panic is injected through a
/// failpoint of test builds.
#[test]
fn a_host_side_panic_fails_that_listener_alone_and_sigterm_and_once_still_end() {
    let good = recs(0, 20);
    let cfg = config(
        "",
        &format!(
            "{}{}",
            kit_listener("kit", "on_failure = \"disable\"", ""),
            file_listener("copy")
        ),
    );
    let f = fixture(&good, &cfg);
    let env = [("LOGDAEMON_FAILPOINT", "panic-in-step:p4/kit")];
    let d = Daemon::start_env(&f, &env);
    wait_until(
        15,
        "the other listener's copy",
        || std::fs::read_to_string(f.join("out/copy.raw")).unwrap_or_default() == good,
        || d.log(),
    );
    wait_until(
        15,
        "the panic reported as the listener's failure",
        || {
            d.log().contains("listener \"kit\" of journal \"p4\": the daemon failed internally (a panic: failpoint panic-in-step:p4/kit)")
        },
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "SIGTERM ends the run cleanly: {st}\n{log}");
    assert!(
        log.contains("listener disabled, its cursor is kept"),
        "{log}"
    );
    let out = std::process::Command::new(crate::fixture::bin())
        .args(["run", "--once", "--config", "cfg.toml"])
        .envs(env)
        .current_dir(f.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "--once with a failed listener exits non-zero:\n{err}"
    );
    assert!(err.contains("\"kit\"") && err.contains("a panic"), "{err}");
}
