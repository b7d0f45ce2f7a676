//! What the host and command tests share: a running daemon with its log in
//! a file, the testkit's record, the acknowledged positions from
//! `checkpoint show`, configs and fixtures.

#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixture::{bin, stderr, stdout, target_dir, Fixture};

/// Path of a test plugin library built with the workspace.
pub fn test_plugin(name: &str) -> PathBuf {
    let p = target_dir().join(format!("liblogdaemon_test_plugin_{name}.so"));
    assert!(
        p.exists(),
        "{} is missing after `cargo build --workspace`",
        p.display()
    );
    p
}

/// The testkit library, as a config's `plugin = ...` value.
pub fn testkit() -> String {
    test_plugin("testkit").display().to_string()
}

/// A p4 data record with a distinct key and a payload.
pub fn rec(i: usize, payload: &str) -> String {
    format!("@pv@ 0 @db.counters@ @k{i:06}@ @{payload}@ \n")
}

/// Records `from..to`, end to end.
pub fn recs(from: usize, to: usize) -> String {
    (from..to).map(|i| rec(i, "v")).collect()
}

pub fn append(path: &Path, data: &str) {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut f, data.as_bytes()).unwrap();
}

/// Polls `cond` until it holds; fails the test with `what` and `ctx()` after `secs`.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool, ctx: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}\n{}",
            ctx()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Everything the testkit recorded in `path` (nothing if the file is missing).
pub fn events(path: &Path) -> Vec<Value> {
    match fs::read_to_string(path) {
        Ok(t) => t
            .lines()
            .filter(|l| l.ends_with('}'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub fn kind(e: &Value) -> &str {
    e["event"].as_str().unwrap_or("?")
}

/// The entry events only.
pub fn entries(path: &Path) -> Vec<Value> {
    events(path)
        .into_iter()
        .filter(|e| kind(e) == "entry")
        .collect()
}

/// The raw text of the recorded entries, concatenated.
pub fn entry_text(path: &Path) -> String {
    entries(path)
        .iter()
        .map(|e| e["raw"].as_str().expect("UTF-8 entry"))
        .collect()
}

/// Fails unless no `(sequence, offset)` is recorded twice.
pub fn assert_no_repeats(path: &Path) {
    let mut seen = std::collections::HashSet::new();
    for e in entries(path) {
        let key = (
            e["sequence"].as_u64().unwrap(),
            e["offset"].as_u64().unwrap(),
        );
        assert!(
            seen.insert(key),
            "entry at sequence {} offset {} delivered twice (record {})",
            key.0,
            key.1,
            path.display()
        );
    }
}

/// `(sequence, offset)` a listener has acknowledged, from `checkpoint show`.
pub fn acked(f: &Fixture, listener: &str) -> Option<(u64, u64)> {
    let out = f.run(&["checkpoint", "show", "--state-dir", "state"]);
    assert!(
        out.status.success(),
        "checkpoint show failed: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    let line = text.lines().find(|l| {
        l.trim_start()
            .starts_with(&format!("listener {listener}: acknowledged up to "))
    })?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let num = |key: &str| {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
            .and_then(|w| w.parse().ok())
    };
    Some((num("sequence")?, num("offset")?))
}

/// A config of one p4 journal `p4root/journal` with the given listener tables.
pub fn config(journal_extra: &str, listeners: &str) -> String {
    format!("state_dir = \"state\"\n\n[[journal]]\nname = \"p4\"\npath = \"p4root/journal\"\nformat = \"p4\"\nstart = \"beginning\"\n{journal_extra}\n{listeners}")
}

/// A testkit listener table recording into `out/NAME.jsonl`.
pub fn kit_listener(name: &str, listener_extra: &str, config_extra: &str) -> String {
    format!(
        "\n[[journal.listener]]\nname = \"{name}\"\nplugin = \"{}\"\n{listener_extra}\n[journal.listener.config]\npath = \"out/{name}.jsonl\"\n{config_extra}\n",
        testkit()
    )
}

/// A built-in file listener table writing the raw entries to `out/NAME.raw`.
pub fn file_listener(name: &str) -> String {
    format!("\n[[journal.listener]]\nname = \"{name}\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"out/{name}.raw\"\nformat = \"raw\"\n")
}

/// A `logdaemon run` in the background, its log going to a file.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `logdaemon run --config cfg.toml` and waits until it runs.
    pub fn start(f: &Fixture) -> Daemon {
        Daemon::start_env(f, &[])
    }

    /// [`Daemon::start`] with these environment variables.
    pub fn start_env(f: &Fixture, env: &[(&str, &str)]) -> Daemon {
        let mut d = Daemon::spawn_env(f, env);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !d.log().contains(" running") {
            assert!(!d.exited(), "the daemon exited at start:\n{}", d.log());
            assert!(
                Instant::now() < deadline,
                "the daemon did not start within 20 s:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// Starts `logdaemon run --config cfg.toml` and returns at once.
    pub fn spawn(f: &Fixture) -> Daemon {
        Daemon::spawn_env(f, &[])
    }

    /// [`Daemon::spawn`] with these environment variables.
    pub fn spawn_env(f: &Fixture, env: &[(&str, &str)]) -> Daemon {
        let log = f.join("daemon.log");
        let child = Command::new(bin())
            .args(["run", "--config", "cfg.toml"])
            .envs(env.iter().copied())
            .current_dir(f.path())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("start logdaemon");
        Daemon {
            child: Some(child),
            log,
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Whether the process has exited (it stays reapable by `wait`).
    pub fn exited(&mut self) -> bool {
        let c = self.child.as_mut().expect("running");
        matches!(c.try_wait(), Ok(Some(_)))
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the exit (at most `secs`) and returns its status and the log.
    pub fn wait(mut self, secs: u64) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return (st, self.log());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the daemon did not exit within {secs} s; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status and the log.
    pub fn stop(self) -> (ExitStatus, String) {
        self.signal("TERM");
        self.wait(20)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A journal file of `data` in a fresh fixture, with `cfg.toml`.
pub fn fixture(journal: &str, cfg: &str) -> Fixture {
    let f = Fixture::new();
    f.write("p4root/journal", journal);
    f.write("cfg.toml", cfg);
    f
}

// ---------------------------------------------------------------- retry
