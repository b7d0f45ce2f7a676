//! The `email` listener through the real daemon and a real SMTP server
//! (`logdaemon_tests::smtp`): one mail per submitted change across runs, and
//! a SIGKILL of the daemon while the server holds its reply to a message,
//! which may cost the one documented duplicate (same Message-ID) and never
//! a lost entry.

use std::collections::HashMap;
use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logdaemon_tests::smtp::{Control, Received, SmtpServer};

use crate::fixture::{bin, data_dir, stderr, Fixture};

fn config(srv: &SmtpServer, journal_format: &str, listener: &str) -> String {
    format!(
        r#"state_dir = "state"

[[journal]]
name = "jnl"
path = "journal"
format = "{journal_format}"
start = "beginning"
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
{listener}
"#,
        port = srv.port()
    )
}

/// Runs `logdaemon run --once`, failing the test if it does not finish in time.
fn run_once(f: &Fixture) {
    let mut child = Command::new(bin())
        .args(["run", "--config", "cfg.toml", "--once"])
        .current_dir(f.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start logdaemon");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "logdaemon run --once failed: {}",
                stderr(&out)
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "logdaemon run --once did not finish within 60 s: {}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The p4 records of `data` (a record ends at a newline after an even
/// number of `@`).
fn p4_records(data: &[u8]) -> Vec<&[u8]> {
    let (mut out, mut start, mut ats) = (Vec::new(), 0, 0usize);
    for (i, &b) in data.iter().enumerate() {
        if b == b'@' {
            ats += 1;
        } else if b == b'\n' && ats & 1 == 0 {
            out.push(&data[start..=i]);
            start = i + 1;
            ats = 0;
        }
    }
    out
}

#[test]
fn email_one_mail_per_submitted_change_across_runs() {
    let srv = SmtpServer::start();
    let f = Fixture::new();
    let journal =
        std::fs::read(data_dir().join("p4/integration__dumps__branch_multi__jnl.0")).unwrap();
    // Expected: number, user and full description of every submitted change.
    let mut descs = HashMap::new();
    let mut want = Vec::new();
    for r in p4_records(&journal) {
        let (op, fields) = logdaemon_sdk::p4::split(r);
        let v: Vec<String> = fields
            .iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect();
        match (&*op, v.get(1).map(String::as_str)) {
            (b"pv", Some("db.desc")) => {
                descs.insert(v[2].clone(), v[3].clone());
            }
            (b"pv", Some("db.change")) if v[7] == "1" => {
                want.push((v[2].clone(), v[5].clone(), descs[&v[3]].clone()))
            }
            _ => {}
        }
    }
    f.write("journal", &journal);
    f.write(
        "cfg.toml",
        config(
            &srv,
            "p4",
            "preset = \"p4-changes\"\nmax_entries = 100\nmax_delay = \"30s\"",
        ),
    );
    run_once(&f);
    let msgs = srv.messages();
    assert_eq!(msgs.len(), want.len(), "one mail per submitted change");
    for (m, (num, user, desc)) in msgs.iter().zip(&want) {
        assert!(m.defects.is_empty(), "{:?}", m.defects);
        assert!(
            m.body().starts_with(&format!("Change {num} by {user}@")),
            "{}",
            m.body()
        );
        for line in desc.trim_end().lines() {
            assert!(
                m.body().contains(&format!("\t{line}\n")),
                "{line:?} missing in {:?}",
                m.body()
            );
        }
    }

    run_once(&f);
    assert_eq!(
        srv.messages().len(),
        want.len(),
        "a second run mails nothing again"
    );

    let mut more = journal.clone();
    more.extend_from_slice(b"@pv@ 0 @db.desc@ 77 @Second line matters\ntoo.\n@ \n");
    more.extend_from_slice(
        b"@pv@ 0 @db.change@ 77 77 @ws@ @zoe@ 1700000000 1 @Second line matters@ \n",
    );
    f.write("journal", &more);
    run_once(&f);
    let msgs = srv.messages();
    assert_eq!(msgs.len(), want.len() + 1);
    let last = msgs.last().unwrap();
    // (The transport may end the body with extra line breaks.)
    assert_eq!(
        last.body().trim_end(),
        "Change 77 by zoe@ws on 2023-11-14 22:13:20 UTC\n\n\tSecond line matters\n\ttoo."
    );
}

fn lines_of(m: &Received) -> Vec<String> {
    let (_, list) = m.body().split_once("\n\n").expect("entry list");
    list.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn wait_exit(child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not stop within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_daemon(f: &Fixture) -> Child {
    let log = File::create(f.join("daemon.log")).unwrap();
    Command::new(bin())
        .args(["run", "--config", "cfg.toml"])
        .current_dir(f.path())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start logdaemon")
}

#[test]
fn email_sigkill_mid_send_costs_at_most_the_documented_duplicate() {
    let srv = SmtpServer::start();
    // The server stores each message, then keeps its 250 back for a while:
    // the daemon is killed in between.
    srv.set(&Control {
        delay_after_store_ms: 30_000,
        ..Control::default()
    });
    let f = Fixture::new();
    let texts: Vec<String> = (0..6).map(|i| format!("event {i}")).collect();
    f.write(
        "journal",
        texts.iter().map(|t| format!("{t}\n")).collect::<String>(),
    );
    f.write(
        "cfg.toml",
        config(&srv, "lines", "max_entries = 2\nmax_delay = \"1h\""),
    );

    let mut daemon = start_daemon(&f);
    let first = srv.wait_for_messages(1, Duration::from_secs(30));
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();
    assert_eq!(lines_of(&first[0]), texts[..2]);

    srv.set(&Control::default());
    run_once(&f);
    let msgs = srv.messages();
    let log = std::fs::read_to_string(f.join("daemon.log")).unwrap_or_default();
    assert_eq!(
        msgs.len(),
        4,
        "3 digests and one resend; daemon log before the kill:\n{log}"
    );
    assert_eq!(
        msgs[0].message_id(),
        msgs[1].message_id(),
        "the resend carries the same Message-ID"
    );
    assert_eq!(msgs[0].body(), msgs[1].body());
    let mut mailed: Vec<String> = msgs[1..].iter().flat_map(lines_of).collect();
    assert_eq!(
        mailed, texts,
        "after the one duplicate, every entry exactly once, in order"
    );
    mailed.sort();
    mailed.dedup();
    assert_eq!(mailed.len(), texts.len());
}

#[test]
fn email_server_outage_during_run_loses_and_repeats_nothing() {
    let mut srv = SmtpServer::start();
    let f = Fixture::new();
    let texts: Vec<String> = (0..5).map(|i| format!("outage {i}")).collect();
    f.write(
        "journal",
        texts.iter().map(|t| format!("{t}\n")).collect::<String>(),
    );
    f.write(
        "cfg.toml",
        config(&srv, "lines", "max_entries = 2\nmax_delay = \"1h\""),
    );
    srv.stop();

    let mut daemon = start_daemon(&f);
    // Wait until the daemon has met the outage and backs off.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(f.join("daemon.log")).unwrap_or_default();
        if log.contains("did not take") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never reported the outage:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.restart();
    // 5 entries, 2 per digest: 2 full digests while running.
    srv.wait_for_messages(2, Duration::from_secs(30));
    // A graceful stop finishes the call in hand (no crash window) and
    // flushes the held fifth entry.
    let term = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    wait_exit(&mut daemon, Duration::from_secs(30));
    assert_eq!(
        srv.messages().len(),
        3,
        "the flush on shutdown mails the rest"
    );
    run_once(&f);
    let msgs = srv.messages();
    let mailed: Vec<String> = msgs.iter().flat_map(lines_of).collect();
    assert_eq!(mailed, texts, "every entry exactly once, in order");
}

#[test]
fn run_once_with_the_relay_down_at_the_final_flush_exits_nonzero_and_keeps_the_entries() {
    let mut srv = SmtpServer::start();
    let f = Fixture::new();
    f.write("journal", "event 1\nevent 2\n");
    // A digest held for an hour: only the final flush of --once sends it.
    f.write(
        "cfg.toml",
        config(&srv, "lines", "max_entries = 100\nmax_delay = \"1h\"").replace(
            "[journal.listener.config]",
            "retry_max = \"1s\"\n[journal.listener.config]",
        ),
    );
    srv.stop();
    let out = Command::new(bin())
        .args(["run", "--config", "cfg.toml", "--once"])
        .current_dir(f.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run logdaemon");
    let log = stderr(&out);
    assert!(
        !out.status.success(),
        "exit 0 with the digest unsent:\n{log}"
    );
    assert!(
        log.contains("still fails after 1s (retry_max)") && log.contains("did not take"),
        "{log}"
    );
    // The next run, with the relay back, mails both entries.
    srv.restart();
    run_once(&f);
    let msgs = srv.wait_for_messages(1, Duration::from_secs(30));
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0].body().contains("event 1") && msgs[0].body().contains("event 2"),
        "{}",
        msgs[0].body()
    );
}
