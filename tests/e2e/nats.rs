//! The `nats` listener through the real daemon and real `nats-server -js`
//! processes (`logdaemon_tests::nats`): a single server with file storage
//! restarted mid-stream, a three-node cluster whose R3 stream loses its
//! leader (SIGKILL) mid-stream, the daemon SIGKILLed at random moments
//! (also after the stream's 1 s duplicate window has passed), and a second
//! daemon on the same subject. After each, the stream is read by an
//! independent client (Python's nats-py) and must hold every entry of the
//! journal exactly once, in order, byte for byte, across p4 renames and a
//! gzip predecessor.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logdaemon_tests::nats::{self, NatsCluster, NatsServer, Stored};

use crate::fixture::{bin, stderr, Fixture};
use crate::rotation::harness::{run_tool, Daemon};
use crate::writer::{Kind, Pump, Writer};

const STREAM: &str = "JOURNALS";
const SUBJECT: &str = "journal.db1.p4";
const PACE: Duration = Duration::from_micros(500);

fn config(servers: &[String], journal_path: &str, extra: &str) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    format!(
        r#"state_dir = "state"

[[journal]]
name = "p4"
path = "{journal_path}"
format = "p4"
start = "beginning"
quiet_after = "200ms"
reconcile_every = "200ms"

[[journal.listener]]
name = "fleet"
plugin = "nats"
retry_max = "500ms"
[journal.listener.config]
servers = [{servers}]
subject = "journal.{{host}}.{{journal}}"
stream = "{STREAM}"
host = "db1"
timeout = "3s"
create_stream = true
{extra}
"#,
        servers = servers.join(", ")
    )
}

/// A fixture with the p4 journal's live file and `cfg.toml`.
fn setup(servers: &[String], extra: &str) -> (Fixture, Writer) {
    let f = Fixture::new();
    let w = Writer::new(&f.join("p4root/journal"), Kind::P4);
    f.write("cfg.toml", config(servers, "p4root/journal", extra));
    (f, w)
}

/// Waits (up to 60 s) until the daemon's log holds `what`.
fn wait_log(f: &Fixture, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(f.join("daemon.log")).unwrap_or_default();
        if log.contains(what) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon's log never said {what:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// p4d's rotation to `journal.N`, then gzip of the predecessor.
fn rotate_gzip(f: &Fixture, pump: &Pump, n: u64) {
    {
        let mut w = pump.lock();
        std::fs::rename(w.path(), f.join(format!("p4root/journal.{n}"))).unwrap();
        w.reopen();
    }
    run_tool("gzip", &[], &f.join(format!("p4root/journal.{n}")));
}

/// Waits until the stream holds as many bytes on the subject as `want`
/// (read with nats-py), then checks every entry once, in order, byte for
/// byte, and the position headers.
fn wait_stream(servers: &str, w: &Writer, d: &mut [&mut Daemon], what: &str) -> Vec<Stored> {
    let want: Vec<Vec<u8>> = (0..w.count())
        .map(|i| Writer::record(Kind::P4, i))
        .collect();
    assert_eq!(
        want.concat(),
        w.expected(),
        "the writer's records are its ledger"
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = nats::dump(servers, STREAM, SUBJECT);
        let bytes: usize = got.iter().map(|m| m.data().len()).sum();
        if got.len() >= want.len() || bytes >= w.expected().len() {
            check_stream(&got, &want, what);
            return got;
        }
        if Instant::now() > deadline {
            let tails: Vec<String> = d.iter().map(|d| d.log_tail()).collect();
            panic!(
                "{what}: the stream holds {} of {} entries after 90 s; daemon log:\n{}",
                got.len(),
                want.len(),
                tails.join("\n---\n")
            );
        }
        for d in d.iter_mut() {
            d.assert_running();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every entry exactly once, in order, byte for byte; ids and positions
/// as documented.
fn check_stream(got: &[Stored], want: &[Vec<u8>], what: &str) {
    for (i, (m, w)) in got.iter().zip(want).enumerate() {
        assert!(
            m.data() == *w,
            "{what}: message {i} (stream sequence {}) is {:?}, entry {i} is {:?}",
            m.seq,
            String::from_utf8_lossy(&m.data()),
            String::from_utf8_lossy(w)
        );
        let id = format!(
            "db1:p4:{}:{}:{}",
            m.header("Logdaemon-Writer"),
            m.header("Logdaemon-Sequence"),
            m.header("Logdaemon-Offset")
        );
        assert_eq!(m.header("Nats-Msg-Id"), id, "{what}: message {i}");
        assert_eq!(m.header("Logdaemon-Journal"), "p4");
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} messages for {} entries",
        got.len(),
        want.len()
    );
    let mut ids: Vec<&str> = got.iter().map(|m| m.header("Nats-Msg-Id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "{what}: message ids repeat");
}

#[test]
fn nats_single_server_restarted_mid_stream_every_entry_once_in_order() {
    let root = tempfile::tempdir().unwrap();
    let mut srv = NatsServer::start(root.path());
    let (f, w) = setup(&[srv.url()], "");
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, PACE);
    pump.wait_more(200);
    rotate_gzip(&f, &pump, 1);
    pump.wait_more(100);
    // Stopped while the writer goes on and the daemon publishes, and kept
    // down until the listener has met the outage (acknowledgements that
    // never come), then started again on the same store.
    srv.stop();
    wait_log(&f, "the subject is read again before retrying");
    srv.restart();
    pump.wait_more(100);
    rotate_gzip(&f, &pump, 2);
    pump.wait_more(200);
    let w = pump.stop();
    wait_stream(&srv.url(), &w, &mut [&mut d], "single server restarted");
    d.term();
}

#[test]
fn nats_cluster_r3_stream_leader_killed_mid_stream_every_entry_once_in_order() {
    let root = tempfile::tempdir().unwrap();
    let mut c = NatsCluster::start(root.path());
    let urls: Vec<String> = c.servers.iter().map(NatsServer::url).collect();
    let (f, w) = setup(&urls, "replicas = 3");
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, PACE);
    pump.wait_more(300);
    rotate_gzip(&f, &pump, 1);
    pump.wait_more(100);
    let leader = nats::leader(&c.urls(), STREAM, "");
    c.by_name(&leader).kill();
    pump.wait_more(600);
    // Another server is elected to lead the stream (js.py waits for it).
    nats::leader(&c.running_urls(), STREAM, &leader);
    rotate_gzip(&f, &pump, 2);
    pump.wait_more(200);
    let w = pump.stop();
    wait_stream(&c.running_urls(), &w, &mut [&mut d], "leader killed");
    // The killed server catches up and serves the same stream.
    c.by_name(&leader).start_again();
    c.by_name(&leader).wait_ready();
    d.term();
}

/// A small deterministic generator for the kill moments (seed printed).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn nats_daemon_sigkilled_at_random_moments_even_after_the_duplicate_window() {
    let seed = std::env::var("NATS_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill moments from NATS_KILL_SEED={seed}");
    let mut rng = Lcg(seed);
    let root = tempfile::tempdir().unwrap();
    let srv = NatsServer::start(root.path());
    let (f, w) = setup(
        &[srv.url()],
        "duplicate_window = \"1s\"\nmax_in_flight = 64",
    );
    let pump = Pump::start(w, PACE);
    for round in 1..=6u64 {
        let mut d = Daemon::start(&f);
        std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
        d.kill();
        if round % 2 == 0 {
            // Past the stream's duplicate window: Nats-Msg-Id no longer
            // catches a resend; only the listener's reconciliation can.
            std::thread::sleep(Duration::from_millis(1_200));
        }
        if round == 3 {
            rotate_gzip(&f, &pump, 1);
        }
    }
    pump.wait_more(100);
    let w = pump.stop();
    let mut d = Daemon::start(&f);
    let got = wait_stream(
        &srv.url(),
        &w,
        &mut [&mut d],
        &format!("6 SIGKILLs (seed {seed})"),
    );
    d.term();
    // One writer across the restarts: its id is kept in its state
    // directory, so its own last message id still chains after a crash.
    let mut writers: Vec<&str> = got.iter().map(|m| m.header("Logdaemon-Writer")).collect();
    writers.dedup();
    assert_eq!(writers.len(), 1, "writers: {writers:?}");
}

#[test]
fn nats_second_daemon_on_the_same_subject_is_refused_not_interleaved() {
    let root = tempfile::tempdir().unwrap();
    let srv = NatsServer::start(root.path());
    let (f, w) = setup(&[srv.url()], "");
    let mut a = Daemon::start(&f);
    let pump = Pump::start(w, PACE);
    pump.wait_more(200);
    // Another daemon (own state directory) on the same journal and subject.
    let g = Fixture::new();
    let journal: PathBuf = f.join("p4root/journal");
    g.write(
        "cfg.toml",
        config(&[srv.url()], &journal.display().to_string(), ""),
    );
    let mut b = Daemon::start(&g);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (loser, winner) = loop {
        let a_done = a.try_exit();
        let b_done = b.try_exit();
        match (a_done, b_done) {
            (Some(_), None) => break (a, b),
            (None, Some(_)) => break (b, a),
            (Some(x), Some(y)) => panic!(
                "both daemons stopped ({x}, {y}); logs:\n{}\n---\n{}",
                a.log_tail(),
                b.log_tail()
            ),
            (None, None) => {}
        }
        assert!(
            Instant::now() < deadline,
            "two daemons published on one subject for 60 s; logs:\n{}\n---\n{}",
            a.log_tail(),
            b.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = loser.log_tail();
    assert!(
        log.contains("Another writer publishes on this subject")
            && log.contains(&format!("stream \"{STREAM}\""))
            && log.contains(SUBJECT),
        "the refused daemon names the stream, the subject and the other writer:\n{log}"
    );
    let mut winner = winner;
    pump.wait_more(200);
    let w = pump.stop();
    let got = wait_stream(&srv.url(), &w, &mut [&mut winner], "second daemon refused");
    winner.term();
    // Not interleaved: the first daemon's messages, then at most one run
    // of the other's (when the first one was the one refused).
    let mut runs: Vec<&str> = got.iter().map(|m| m.header("Logdaemon-Writer")).collect();
    runs.dedup();
    assert!(
        runs.len() <= 2 && runs.iter().all(|w| !w.is_empty()),
        "the writers of the subject, in stream order: {runs:?}"
    );
}

/// `logdaemon run --once`, returning its stderr and whether it succeeded.
fn run_once(f: &Fixture) -> (bool, String) {
    let out = Command::new(bin())
        .args(["run", "--config", "cfg.toml", "--once"])
        .current_dir(f.path())
        .stdin(Stdio::null())
        .output()
        .expect("run logdaemon");
    (out.status.success(), stderr(&out))
}

#[test]
fn nats_another_journal_on_the_subject_is_refused_on_open() {
    let root = tempfile::tempdir().unwrap();
    let srv = NatsServer::start(root.path());
    let f = Fixture::new();
    f.write("p4root/journal", Writer::record(Kind::P4, 0));
    f.write("cfg.toml", config(&[srv.url()], "p4root/journal", ""));
    let (ok, err) = run_once(&f);
    assert!(ok, "{err}");
    // Another host's listener pointed at db1's subject.
    let g = Fixture::new();
    g.write("p4root/journal", Writer::record(Kind::P4, 1));
    g.write(
        "cfg.toml",
        config(&[srv.url()], "p4root/journal", "")
            .replace("host = \"db1\"", "host = \"db2\"\n")
            .replace(
                "subject = \"journal.{host}.{journal}\"",
                "subject = \"journal.db1.{journal}\"",
            ),
    );
    let (ok, err) = run_once(&g);
    assert!(
        !ok,
        "a listener of host db2 must not publish after db1's entries"
    );
    assert!(
        err.contains("is from host \"db1\" journal \"p4\"") && err.contains("its own subject"),
        "{err}"
    );
    assert_eq!(
        nats::dump(&srv.url(), STREAM, SUBJECT).len(),
        1,
        "nothing was added"
    );
}

#[test]
fn nats_missing_stream_and_oversized_entry_are_clear_errors() {
    let root = tempfile::tempdir().unwrap();
    let srv = NatsServer::start_with(root.path(), "max_payload: 2048\n");
    let f = Fixture::new();
    let small = b"@ex@ 1 1\n".to_vec();
    let big = format!("@ex@ 2 @{}@\n", "x".repeat(4000)).into_bytes();
    f.write(
        "p4root/journal",
        [small.clone(), big.clone(), small.clone()].concat(),
    );
    f.write(
        "cfg.toml",
        config(&[srv.url()], "p4root/journal", "").replace("create_stream = true", ""),
    );
    let (ok, err) = run_once(&f);
    assert!(!ok);
    assert!(
        err.contains(&format!("stream \"{STREAM}\" does not exist"))
            && err.contains("create_stream = true"),
        "{err}"
    );
    f.write("cfg.toml", config(&[srv.url()], "p4root/journal", ""));
    let (ok, err) = run_once(&f);
    assert!(!ok, "an entry over max_payload stops the listener");
    assert!(
        err.contains("the entry at sequence 1 offset 9 (line 2) is 4010 bytes")
            && err.contains("max_payload of 2048 bytes"),
        "{err}"
    );
    let got = nats::dump(&srv.url(), STREAM, SUBJECT);
    assert_eq!(
        got.len(),
        1,
        "the entry before it is published, nothing after"
    );
    assert_eq!(got[0].data(), small);
    // Never dropped: it is still refused at the next start.
    let (ok, err) = run_once(&f);
    assert!(!ok && err.contains("4010 bytes"), "{err}");
}

#[test]
fn nats_busy_other_subject_of_the_stream_costs_no_entry_and_no_duplicate() {
    // Another writer floods another subject of the same stream: the
    // listener's chain of message ids breaks again and again and it must
    // send again, never store an entry twice or out of order.
    let root = tempfile::tempdir().unwrap();
    let srv = NatsServer::start(root.path());
    let (f, w) = setup(&[srv.url()], "stream_subjects = [\"journal.>\"]");
    let mut d = Daemon::start_with_env(&f, &[("LOGDAEMON_LOG", "debug")]);
    let flood = nats::flood(&srv.url(), "journal.other", 4);
    let pump = Pump::start(w, PACE);
    pump.wait_more(1500);
    let w = pump.stop();
    wait_stream(
        &srv.url(),
        &w,
        &mut [&mut d],
        "with another subject flooded",
    );
    let out = flood.wait_with_output().unwrap();
    assert!(out.status.success());
    let other: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(other > 100, "the other writer published {other} messages");
    wait_log(
        &f,
        "times another message of the stream came between two of ours",
    );
    d.term();
}

#[test]
fn nats_foreign_message_on_the_subject_stops_the_listener_naming_both() {
    let root = tempfile::tempdir().unwrap();
    let srv = NatsServer::start(root.path());
    let (f, mut w) = setup(&[srv.url()], "");
    w.write(3);
    let mut d = Daemon::start(&f);
    let deadline = Instant::now() + Duration::from_secs(30);
    while nats::dump(&srv.url(), STREAM, SUBJECT).len() < 3 {
        assert!(Instant::now() < deadline, "{}", d.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    nats::publish(&srv.url(), SUBJECT, "intruder");
    w.write(2);
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.try_exit().is_none() {
        assert!(
            Instant::now() < deadline,
            "the listener went on after a foreign message:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = d.log_tail();
    assert!(
        log.contains("publishing the entry at sequence 1 offset")
            && log.contains("was refused")
            && log.contains("this listener's last message on the subject is stream sequence 3")
            && log
                .contains("the subject now ends with stream sequence 4, not written by logdaemon"),
        "{log}"
    );
    let got = nats::dump(&srv.url(), STREAM, SUBJECT);
    assert_eq!(got.len(), 4, "nothing published after the foreign message");
    assert_eq!(got[3].data(), b"intruder");
    // At the next start it is refused before publishing anything.
    let (ok, err) = run_once(&f);
    assert!(!ok && err.contains("was not written by logdaemon"), "{err}");
}

#[test]
fn nats_jsonl_payload_is_one_json_object_per_entry() {
    let root = tempfile::tempdir().unwrap();
    let srv = NatsServer::start(root.path());
    let f = Fixture::new();
    let records: Vec<Vec<u8>> = (2..5).map(|i| Writer::record(Kind::P4, i)).collect();
    f.write("p4root/journal", records.concat());
    f.write(
        "cfg.toml",
        config(&[srv.url()], "p4root/journal", "payload = \"jsonl\""),
    );
    let (ok, err) = run_once(&f);
    assert!(ok, "{err}");
    let got = nats::dump(&srv.url(), STREAM, SUBJECT);
    assert_eq!(got.len(), records.len());
    let mut offset = 0;
    for (m, r) in got.iter().zip(&records) {
        let v: serde_json::Value = serde_json::from_slice(&m.data()).unwrap();
        assert_eq!(v["raw"].as_str().unwrap().as_bytes(), &r[..]);
        assert_eq!(v["op"], "pv");
        assert_eq!(v["offset"], offset);
        assert_eq!(m.header("Logdaemon-Offset"), offset.to_string());
        offset += r.len();
    }
}

#[test]
fn nats_token_from_a_private_file_authenticates_a_readable_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let srv = NatsServer::start_with(root.path(), "authorization { token: \"s3cret-t0ken\" }\n");
    let f = Fixture::new();
    f.write("p4root/journal", Writer::record(Kind::P4, 0));
    let token = f.write("token", "s3cret-t0ken\n");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    f.write(
        "cfg.toml",
        config(&[srv.url()], "p4root/journal", "token_file = \"token\""),
    );
    let (ok, err) = run_once(&f);
    assert!(!ok, "a token file others can read is refused");
    assert!(
        err.contains("config key `token_file`")
            && err.contains("is accessible by group or others (mode 0644)")
            && err.contains("chmod 600")
            && !err.contains("s3cret-t0ken"),
        "{err}"
    );
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, err) = run_once(&f);
    assert!(ok, "{err}");
    let authed = srv.url().replace("nats://", "nats://s3cret-t0ken@");
    let got = nats::dump(&authed, STREAM, SUBJECT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data(), Writer::record(Kind::P4, 0));
}
