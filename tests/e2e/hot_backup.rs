//! The `hot-backup` listener through the real daemon and a real sshd
//! (`logdaemon_tests::sshd`): the standby directory mirrors the journal and
//! its rotated predecessors byte for byte, across `run --once` runs, a
//! rotation, and SIGKILLs of the daemon at pseudo-random moments while it
//! streams.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logdaemon_tests::sshd::Sshd;

use crate::fixture::{bin, data_dir, stderr, Fixture};

fn config(sshd: &Sshd, remote: &Path, extra: &str) -> String {
    format!(
        r#"state_dir = "state"

[[journal]]
name = "p4"
path = "journal"
format = "p4"
start = "beginning"
quiet_after = "200ms"

[[journal.listener]]
name = "standby"
plugin = "hot-backup"
[journal.listener.config]
host = "127.0.0.1"
port = {port}
user = "{user}"
identity_file = "{key}"
known_hosts = "{kh}"
remote_dir = "{remote}"
connect_timeout = "5s"
io_timeout = "20s"
{extra}
"#,
        port = sshd.port(),
        user = sshd.user(),
        key = sshd.client_key().display(),
        kh = sshd.known_hosts().display(),
        remote = remote.display()
    )
}

/// Runs `logdaemon run --once`, failing the test if it fails or hangs.
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

/// A journal of `tx` transactions built from the real p4 records of the
/// corpus, each closed by `@ex@` (`seed` varies the mix).
fn journal(seed: usize, tx: usize) -> Vec<u8> {
    let mut names: Vec<_> = std::fs::read_dir(data_dir().join("p4"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("jnl"))
        .collect();
    names.sort();
    let mut recs: Vec<Vec<u8>> = Vec::new();
    for p in names.iter().cycle().skip(seed * 5).take(10) {
        let data = std::fs::read(p).unwrap();
        let (mut start, mut ats) = (0, 0usize);
        for (i, &b) in data.iter().enumerate() {
            if b == b'@' {
                ats += 1;
            } else if b == b'\n' && ats % 2 == 0 {
                if !data[start..].starts_with(b"@ex@") {
                    recs.push(data[start..=i].to_vec());
                }
                start = i + 1;
                ats = 0;
            }
        }
    }
    let mut out = Vec::new();
    let mut it = recs.iter().cycle();
    for t in 0..tx {
        for _ in 0..(1 + (t * 3 + seed) % 6) {
            out.extend_from_slice(it.next().unwrap());
        }
        out.extend_from_slice(format!("@ex@ {} {}\n", 100 + seed, 1_700_000_000 + t).as_bytes());
    }
    out
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn hot_backup_mirrors_the_journal_across_runs_and_a_rotation() {
    let sshd = Sshd::start().expect("start sshd (apt-get install openssh-server)");
    let f = Fixture::new();
    let remote = f.join("standby");
    std::fs::create_dir(&remote).unwrap();
    f.write("cfg.toml", config(&sshd, &remote, ""));
    let first = journal(0, 200);
    f.write("journal", &first);
    run_once(&f);
    assert_eq!(read(&remote.join("journal")), first);

    // More transactions, and a half-written one at the end: the standby
    // stops at the last complete transaction.
    let mut grown = first.clone();
    grown.extend_from_slice(&journal(1, 50));
    let complete = grown.len();
    grown.extend_from_slice(b"@pv@ 0 @db.counters@ @change@ 99 \n");
    f.write("journal", &grown);
    run_once(&f);
    assert_eq!(read(&remote.join("journal")), &grown[..complete]);

    // p4-style rotation: the live journal becomes journal.N, a new one starts.
    let mut closed = grown.clone();
    closed.extend_from_slice(b"@ex@ 101 1700000999\n");
    f.write("journal", &closed);
    let marker = String::from_utf8(read(&remote.join(".logdaemon-standby"))).unwrap();
    let seq: u64 = marker.trim().parse().unwrap();
    std::fs::rename(f.join("journal"), f.join(format!("journal.{seq}"))).unwrap();
    let next = journal(2, 80);
    f.write("journal", &next);
    run_once(&f);
    assert_eq!(read(&remote.join(format!("journal.{seq}"))), closed);
    assert_eq!(read(&remote.join("journal")), next);
}

fn start_daemon(f: &Fixture) -> Child {
    Command::new(bin())
        .args(["run", "--config", "cfg.toml"])
        .current_dir(f.path())
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(f.join("daemon.log"))
                .unwrap(),
        )
        .spawn()
        .expect("start logdaemon")
}

fn log_of(f: &Fixture) -> String {
    std::fs::read_to_string(f.join("daemon.log")).unwrap_or_default()
}

/// True when `standby` is empty or ends right after an `@ex@` record.
fn ends_on_a_transaction(standby: &[u8]) -> bool {
    if standby.is_empty() {
        return true;
    }
    let body = &standby[..standby.len() - 1];
    let last = body
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(body, |i| &body[i + 1..]);
    standby.ends_with(b"\n") && last.starts_with(b"@ex@ ")
}

#[test]
fn hot_backup_sigkill_at_random_moments_leaves_the_standby_byte_identical() {
    let sshd = Sshd::start().expect("start sshd (apt-get install openssh-server)");
    let f = Fixture::new();
    let remote = f.join("standby");
    std::fs::create_dir(&remote).unwrap();
    // Short batches, so kills land between many of them.
    f.write(
        "cfg.toml",
        config(&sshd, &remote, "max_delay = \"20ms\"\nbatch_bytes = 65536"),
    );
    f.write("journal", b"");
    let data = journal(3, 4000);
    // The server writes transactions while the daemon streams them and is
    // killed: a writer appends small slices (cut anywhere, even inside a
    // record) until the journal is complete.
    let writer = {
        let (path, data) = (f.join("journal"), data.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut out = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            for chunk in data.chunks(1999) {
                out.write_all(chunk).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    // A fixed-seed LCG picks the kill moments: reproducible, yet not
    // aligned with anything the daemon does.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = |bound: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % bound
    };
    let mut sizes = Vec::new();
    for round in 0..7 {
        let mut daemon = start_daemon(&f);
        // Each life first makes progress (the standby grows, or holds all
        // of the journal), however slow the machine; the kill then comes
        // at a random moment of the stream that follows.
        let before = sizes.last().copied().unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let len = std::fs::metadata(remote.join("journal")).map_or(0, |m| m.len() as usize);
            if len > before || len == data.len() {
                break;
            }
            assert!(
                daemon.try_wait().unwrap().is_none(),
                "round {round}: the daemon exited; log:\n{}",
                log_of(&f)
            );
            assert!(
                Instant::now() < deadline,
                "round {round}: the standby stayed at {len} bytes for 30 s; log:\n{}",
                log_of(&f)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rand(200)));
        daemon.kill().unwrap(); // SIGKILL
        daemon.wait().unwrap();
        // The standby finishes (or cuts back) a batch it was receiving when
        // the daemon died: wait for that, then it must end on a transaction.
        let deadline = Instant::now() + Duration::from_secs(10);
        let now = loop {
            let now = std::fs::read(remote.join("journal")).unwrap_or_default();
            assert!(
                data.starts_with(&now),
                "after kill {round}: the standby is not a prefix of the journal"
            );
            if ends_on_a_transaction(&now) {
                break now;
            }
            assert!(
                Instant::now() < deadline,
                "after kill {round}: the standby stays inside a transaction at {}",
                now.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        sizes.push(now.len());
    }
    writer.join().unwrap();
    assert!(
        sizes.windows(2).any(|w| w[1] > w[0] && w[0] > 0),
        "no kill landed mid-stream: {sizes:?}"
    );
    run_once(&f);
    assert_eq!(
        read(&remote.join("journal")),
        data,
        "standby sizes after each kill: {sizes:?}; daemon log:\n{}",
        log_of(&f)
    );
    eprintln!("standby sizes after each kill: {sizes:?} of {}", data.len());
}

/// Runs `logdaemon run --once` for at most `limit`; `None` when it had to
/// be killed.
fn run_once_within(f: &Fixture, limit: Duration) -> Option<std::process::Output> {
    let mut child = Command::new(bin())
        .args(["run", "--config", "cfg.toml", "--once"])
        .current_dir(f.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start logdaemon");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            eprintln!("killed after {limit:?}; log:\n{}", stderr(&out));
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

/// The `backoff_ms` values of the daemon's retry lines, in order.
fn backoffs(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.split("backoff_ms=").nth(1))
        .filter_map(|v| v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect()
}

#[test]
fn hot_backup_once_with_a_failing_apply_backs_off_then_exits_nonzero_with_its_error() {
    let sshd = Sshd::start().expect("start sshd (apt-get install openssh-server)");
    let f = Fixture::new();
    let remote = f.join("standby");
    std::fs::create_dir(&remote).unwrap();
    // Several batches queue up behind the failing one; `apply` reads its
    // batch and fails every time.
    let cfg = config(
        &sshd,
        &remote,
        "batch_bytes = 20000\nmax_delay = \"10ms\"\napply = [\"sh\", \"-c\", \"cat >/dev/null; echo replay refused >&2; exit 3\"]",
    )
    .replace(
        "[journal.listener.config]",
        // Long enough for three retries even when each connection to the
        // standby takes a second or more on a loaded machine.
        "retry_max = \"5s\"\n[journal.listener.config]",
    );
    f.write("cfg.toml", cfg);
    f.write("journal", journal(1, 1500));
    let out = run_once_within(&f, Duration::from_secs(60))
        .expect("run --once never gave up retrying within 60 s");
    let log = stderr(&out);
    assert!(
        !out.status.success(),
        "exit status 0 after giving up:\n{log}"
    );
    assert!(log.contains("still fails after 5s (retry_max)"), "{log}");
    let at = log.rfind("still fails after").unwrap();
    let last: String = log[at..].chars().take(600).collect();
    assert!(
        last.contains("replay refused") && last.contains("exited with status 3"),
        "the give-up names apply's own error: {last}"
    );
    let b = backoffs(&log);
    assert!(
        b.len() >= 3 && b.windows(2).all(|w| w[1] >= w[0]) && b.last() > b.first(),
        "the backoff grows: {b:?}\n{log}"
    );
    assert!(b.iter().all(|&ms| ms <= 5000), "capped at retry_max: {b:?}");
}

#[test]
fn hot_backup_ships_nul_filler_the_host_skips_even_after_a_rotation() {
    let sshd = Sshd::start().expect("start sshd (apt-get install openssh-server)");
    let f = Fixture::new();
    let remote = f.join("standby");
    std::fs::create_dir(&remote).unwrap();
    f.write(
        "cfg.toml",
        config(&sshd, &remote, "").replace("format = \"p4\"", "format = \"lines\""),
    );
    f.write("journal", b"first line\n");
    run_once(&f);
    assert_eq!(read(&remote.join("journal")), b"first line\n");
    // A writer leaves NULs before its next line (the host drops them as
    // filler), then the log is rotated before the daemon runs again: the
    // live journal no longer holds the skipped bytes.
    let mut old = b"first line\n".to_vec();
    old.extend_from_slice(b"\0\0\0\0second line\nthird line\n");
    f.write("journal", &old);
    std::fs::rename(f.join("journal"), f.join("journal.1")).unwrap();
    f.write("journal", b"new file\n");
    run_once(&f);
    let mut names: Vec<String> = std::fs::read_dir(&remote)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("journal."))
        .collect();
    names.sort();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(
        read(&remote.join(&names[0])),
        old,
        "the rotated file, NULs included, byte for byte"
    );
    assert_eq!(read(&remote.join("journal")), b"new file\n");
}

#[test]
fn hot_backup_logs_an_unclosed_mx_after_max_hold_time_with_its_position() {
    let sshd = Sshd::start().expect("start sshd (apt-get install openssh-server)");
    let f = Fixture::new();
    let remote = f.join("standby");
    std::fs::create_dir(&remote).unwrap();
    f.write("cfg.toml", config(&sshd, &remote, "max_hold_time = \"1s\""));
    let done = journal(2, 5);
    let mut data = done.clone();
    data.extend_from_slice(b"@mx@ 4242 1700000000\n@pv@ 0 @db.counters@ @change@ 7 \n");
    f.write("journal", &data);
    let mut daemon = start_daemon(&f);
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        let log = log_of(&f);
        if let Some(l) = log.lines().find(|l| l.contains("has had no @ex@")) {
            break l.to_string();
        }
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon exited:\n{log}"
        );
        assert!(Instant::now() < deadline, "no warning within 30 s:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    };
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(
        line.contains(&format!(
            "the @mx@ of process 4242 at sequence 1 offset {}",
            done.len()
        )) && line.contains("max_hold_time"),
        "{line}"
    );
    assert_eq!(
        read(&remote.join("journal")),
        done,
        "the open transaction is held"
    );
}

/// A standby directory on a file system that fills up mid-catch-up: the
/// give-up names the full disk, never a socket time-out. The standby is a
/// 64 KiB tmpfs mounted by the test (it runs as root, as CI does).
#[test]
fn hot_backup_a_full_standby_disk_is_reported_as_such() {
    let sshd = Sshd::start().expect("start sshd (apt-get install openssh-server)");
    let f = Fixture::new();
    let remote = f.join("standby");
    std::fs::create_dir(&remote).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&remote)
        .status()
        .expect("run mount");
    assert!(
        mounted.success(),
        "mount a 64 KiB tmpfs on {}",
        remote.display()
    );
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&remote);
    // The standby's user is the one running the tests (root), like the
    // tmpfs's owner.
    let cfg = config(&sshd, &remote, "batch_bytes = 20000").replace(
        "[journal.listener.config]",
        "retry_max = \"1s\"\n[journal.listener.config]",
    );
    f.write("cfg.toml", cfg);
    let data = journal(1, 1500);
    assert!(data.len() > 128 * 1024, "the journal outgrows the standby");
    f.write("journal", &data);
    let out = run_once_within(&f, Duration::from_secs(60))
        .expect("run --once never gave up retrying within 60 s");
    let log = stderr(&out);
    assert!(
        !out.status.success(),
        "exit status 0 with a full standby:\n{log}"
    );
    let at = log.rfind("still fails after").expect("gave up");
    let last: String = log[at..].chars().take(800).collect();
    assert!(
        last.contains("disk full") || last.contains("No space left"),
        "the give-up names the full disk: {last}"
    );
    assert!(
        !last.contains("Timed out waiting on socket"),
        "not a socket time-out: {last}"
    );
}
