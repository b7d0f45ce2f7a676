//! What the rotation and chaos tests share: the daemon as a live child
//! process (started, stopped with SIGTERM, killed, frozen), the config of a
//! journal copied raw by the `file` listener, real `logrotate` runs, and the
//! wait for the output to reach the writer's ledger with a diff on failure.

#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::{bin, Fixture};
use crate::writer::{Kind, Writer};

/// The raw copy written by the `file` listener.
pub const OUT: &str = "out/copy.raw";
/// Where the daemon's log goes (appended across restarts).
pub const LOG: &str = "daemon.log";

/// The live file of a journal of this kind, relative to the fixture.
pub fn live(kind: Kind) -> &'static str {
    match kind {
        Kind::P4 => "p4root/journal",
        Kind::Lines => "logs/app.log",
    }
}

/// A config with one journal of `kind` and one raw `file` listener;
/// `journal_extra` goes into the `[[journal]]` table, `listener_extra`
/// into the listener's config table.
pub fn config(kind: Kind, journal_extra: &str, listener_extra: &str) -> String {
    let (name, format) = match kind {
        Kind::P4 => ("p4", "p4"),
        Kind::Lines => ("app", "lines"),
    };
    format!(
        r#"state_dir = "state"

[[journal]]
name = "{name}"
path = "{path}"
format = "{format}"
start = "beginning"
quiet_after = "200ms"
reconcile_every = "200ms"
{journal_extra}

[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "{OUT}"
format = "raw"
{listener_extra}
"#,
        path = live(kind)
    )
}

/// A fixture with the live file of a `kind` journal created (the writer
/// holds it open for appending) and `cfg.toml` written by [`config`].
pub fn setup(kind: Kind, journal_extra: &str, listener_extra: &str) -> (Fixture, Writer) {
    let f = Fixture::new();
    let w = Writer::new(&f.join(live(kind)), kind);
    f.write("cfg.toml", config(kind, journal_extra, listener_extra));
    (f, w)
}

/// `logdaemon run` as a child of the test.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `logdaemon run --config cfg.toml` in the fixture directory
    /// and waits until it runs (followers open, signals handled).
    pub fn start(f: &Fixture) -> Daemon {
        Daemon::start_with_env(f, &[])
    }

    /// As [`Daemon::start`], with more environment variables (a preloaded
    /// library such as libfaketime, `LOGDAEMON_TIME_SCALE`).
    pub fn start_with_env(f: &Fixture, env: &[(&str, &str)]) -> Daemon {
        let log = f.join(LOG);
        let before = count_running(&log);
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(bin())
            .args(["run", "--config", "cfg.toml"])
            .current_dir(f.path())
            .env(
                "LOGDAEMON_LOG",
                std::env::var("LOGDAEMON_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start logdaemon");
        let mut d = Daemon {
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while count_running(&d.log) == before {
            d.assert_running();
            assert!(
                Instant::now() < deadline,
                "the daemon did not start within 20 s; log:\n{}",
                d.log_tail()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill {sig} {} failed", self.pid());
    }

    /// Stops the daemon with SIGTERM and checks that it exits 0.
    pub fn term(&mut self) {
        self.signal("-TERM");
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the daemon did not stop within 20 s of SIGTERM; log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(
            status.success(),
            "the daemon exited with {status} after SIGTERM; log:\n{}",
            self.log_tail()
        );
    }

    /// SIGKILL: no flush, no checkpoint.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Freezes the daemon (SIGSTOP) so that files can change under it.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen daemon run on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// The exit status, if the daemon exited on its own.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().unwrap().try_wait().unwrap()
    }

    /// Fails if the daemon exited on its own.
    pub fn assert_running(&mut self) {
        if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
            panic!(
                "the daemon exited by itself with {s}; log:\n{}",
                self.log_tail()
            );
        }
    }

    /// The exit status if the daemon exited on its own (it stays reapable).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().unwrap().try_wait().unwrap()
    }

    /// The last lines of the daemon's log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How many times the log says the daemon is running.
fn count_running(log: &Path) -> usize {
    fs::read_to_string(log)
        .unwrap_or_default()
        .matches("logdaemon::engine: running")
        .count()
}

pub fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits (up to 30 s) until the output is as long as `expected`, then
/// checks it byte for byte. The failure message says where they differ.
pub fn wait_output(f: &Fixture, d: &mut Daemon, expected: &[u8], what: &str) {
    let out = f.join(OUT);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let len = fs::metadata(&out).map_or(0, |m| m.len());
        if len >= expected.len() as u64 {
            break;
        }
        if Instant::now() > deadline {
            let got = fs::read(&out).unwrap_or_default();
            panic!(
                "{what}: the output stayed at {len} of {} bytes for 30 s\n{}\ndaemon log:\n{}",
                expected.len(),
                diff(&got, expected),
                d.log_tail()
            );
        }
        d.assert_running();
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = fs::read(&out).unwrap();
    assert!(
        got == expected,
        "{what}: output differs from the writer's ledger\n{}\ndaemon log:\n{}",
        diff(&got, expected),
        d.log_tail()
    );
}

/// Where two byte strings part, with some context of each.
pub fn diff(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let ctx = |b: &[u8]| {
        let lo = at.saturating_sub(120);
        let hi = (at + 120).min(b.len());
        String::from_utf8_lossy(&b[lo.min(hi)..hi]).into_owned()
    };
    format!(
        "output {} bytes, ledger {} bytes, first difference at byte {at}\n--- output around it:\n{}\n--- ledger around it:\n{}",
        got.len(),
        want.len(),
        ctx(got),
        ctx(want)
    )
}

/// Runs the real `logrotate -f` on the live file of a lines journal with
/// these directives (one per line), keeping its state in the fixture.
pub fn logrotate(f: &Fixture, directives: &str) {
    let conf = f.write(
        "logrotate.conf",
        format!(
            "{} {{\n    rotate 1000\n    missingok\n{directives}\n}}\n",
            f.join(live(Kind::Lines)).display()
        ),
    );
    let out = Command::new("/usr/sbin/logrotate")
        .arg("-f")
        .arg("-s")
        .arg(f.join("logrotate.state"))
        .arg(&conf)
        .output()
        .expect("run /usr/sbin/logrotate");
    assert!(
        out.status.success(),
        "logrotate failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd FLAGS FILE` (gzip, xz, zstd…) and checks it succeeded.
pub fn run_tool(cmd: &str, flags: &[&str], file: &Path) {
    let out = Command::new(cmd)
        .args(flags)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {flags:?} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The names in the live file's directory, for failure messages.
pub fn listing(f: &Fixture, kind: Kind) -> Vec<String> {
    let dir = f.join(live(kind)).parent().unwrap().to_path_buf();
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
