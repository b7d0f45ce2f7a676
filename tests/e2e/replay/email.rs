//! `replay --listener email`: one window's mails sent again through the
//! real SMTP server by a fresh listener instance, while the daemon runs,
//! without moving or touching the live cursor or the live listener's
//! records.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logdaemon_tests::smtp::SmtpServer;

use super::history::{rfc3339, write_file, Entry, Range};
use super::{p4_history, time_in, P4_FILES, P4_SEQS};
use crate::fixture::{bin, stderr, Fixture};

fn config(srv: &SmtpServer) -> String {
    format!(
        r#"state_dir = "state"

[[journal]]
name = "p4"
path = "journal"
format = "p4"
quiet_after = "200ms"

[[journal.listener]]
name = "mail"
plugin = "email"
[journal.listener.config]
smtp_host = "127.0.0.1"
smtp_port = {port}
tls = "none"
timeout = "20s"
from = "logdaemon@example.com"
to = ["dev@example.com"]
rules = [{{ regex = "^@pv@ [0-9]+ @db.change@" }}]
max_entries = 1
subject = "{{first}}"
"#,
        port = srv.port()
    )
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_change(e: &Entry) -> bool {
    e.bytes.starts_with(b"@pv@ ") && e.bytes.windows(13).any(|w| w == b" @db.change@ ")
}

#[test]
fn replay_listener_email_resends_one_window_without_moving_the_live_cursor() {
    let srv = SmtpServer::start();
    let recs = p4_history();
    let n = recs.len();
    let all = super::history::entries(
        &recs,
        &[n / 5 + 1, 2 * n / 5 + 2, 3 * n / 5 + 3, 4 * n / 5 + 1],
        true,
    );
    let fx = Fixture::new();
    for (name, data) in P4_FILES.iter().zip(super::history::files(&all)) {
        write_file(&fx.join(name), &data);
    }
    fx.write("cfg.toml", config(&srv));

    // The daemon mails every change of the live journal once and stops.
    let o = fx.run(&["run", "--config", "cfg.toml", "--once"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let changes = all.iter().filter(|e| e.file == 4 && is_change(e)).count();
    let live = srv.wait_for_messages(changes, Duration::from_secs(60));
    assert_eq!(live.len(), changes);
    let checkpoint = std::fs::read(fx.join("state/checkpoint.toml")).unwrap();
    let records = std::fs::read(fx.join("state/listeners/p4@mail/email-state.json")).unwrap();

    // The daemon runs again (holding the state directory's lock) while
    // the window is replayed.
    let mut daemon: Child = Command::new(bin())
        .args(["run", "--config", "cfg.toml"])
        .current_dir(fx.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = fx.join("state/logdaemon.lock");
    let pid = daemon.id().to_string();
    wait_until("the daemon takes its lock", Duration::from_secs(20), || {
        std::fs::read_to_string(&lock).is_ok_and(|s| s.trim() == pid)
    });

    let (since, until) = (time_in(&all, 1, 2), time_in(&all, 2, 1));
    let window = Range {
        since: Some(since),
        until: Some(until),
        ..Range::default()
    };
    let want: Vec<String> = window_changes(&all, window);
    assert!(want.len() >= 5, "the window holds changes: {}", want.len());
    let o = fx.run(&[
        "replay",
        "--config",
        "cfg.toml",
        "--journal",
        "p4",
        "--listener",
        "mail",
        "--since",
        &rfc3339(since),
        "--until",
        &rfc3339(until),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let msgs = srv.wait_for_messages(changes + want.len(), Duration::from_secs(60));
    let got: Vec<String> = msgs[changes..]
        .iter()
        .map(|m| m.subject().to_string())
        .collect();
    assert_eq!(got, want, "one mail per change of the window, in order");

    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon still runs"
    );
    assert!(
        std::fs::read(fx.join("state/checkpoint.toml")).unwrap() == checkpoint,
        "the live checkpoint is byte for byte unchanged"
    );
    assert!(
        std::fs::read(fx.join("state/listeners/p4@mail/email-state.json")).unwrap() == records,
        "the live listener's records are unchanged"
    );
    // The replay's own records: under state/replays/p4/mail/.
    let runs: Vec<_> = std::fs::read_dir(fx.join("state/replays/p4/mail"))
        .unwrap()
        .collect();
    assert_eq!(runs.len(), 1);
    let dir = runs[0].as_ref().unwrap().path();
    assert!(dir.join("listener/email-state.json").is_file());
    let cursor = std::fs::read_to_string(dir.join("cursor.toml")).unwrap();
    assert!(cursor.contains("sequence = "), "{cursor}");

    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    wait_until(
        "the daemon stops on SIGTERM",
        Duration::from_secs(30),
        || daemon.try_wait().unwrap().is_some(),
    );
}

/// `SEQ:OFFSET` of every change record in the window.
fn window_changes(all: &[Entry], r: Range) -> Vec<String> {
    let mut started = false;
    let mut out = Vec::new();
    for e in all {
        if !started {
            if r.since.is_some_and(|s| e.time < s) {
                continue;
            }
            started = true;
        }
        if r.until.is_some_and(|u| e.time >= u) {
            break;
        }
        if is_change(e) {
            out.push(format!("{}:{}", P4_SEQS[e.file], e.offset));
        }
    }
    out
}
