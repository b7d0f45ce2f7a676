//! Glob journals end to end: `path = "logs/*"` with `exclude`, followed by
//! the real daemon while files are written, created, rotated by the real
//! `logrotate` and deleted. Each matching file is a stream with its own
//! `file` listener output (`out/{file}.raw`) that must equal what was
//! written to that file, every line once and in order.

mod commands;
pub(crate) mod rotation;
mod security;
mod streams;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fixture::{stderr, stdout, Fixture};
use crate::rotation::harness::{diff, Daemon};

/// A config following `logs/*` (less `skip*`) with a raw `file` listener
/// per stream; `journal_extra` goes into the `[[journal]]` table.
fn config(journal_extra: &str) -> String {
    format!(
        r#"state_dir = "state"

[[journal]]
name = "app"
path = "logs/*"
exclude = ["skip*"]
format = "lines"
quiet_after = "200ms"
reconcile_every = "200ms"
{journal_extra}

[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "out/{{file}}.raw"
format = "raw"
fsync = false
"#
    )
}

/// An application log: appends numbered lines naming their file, and keeps
/// a ledger of what it wrote.
struct Log {
    path: PathBuf,
    file: File,
    ledger: Vec<u8>,
    count: u64,
}

impl Log {
    fn new(path: &Path) -> Log {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        Log {
            path: path.to_path_buf(),
            file: open_append(path),
            ledger: Vec::new(),
            count: 0,
        }
    }

    fn name(&self) -> String {
        self.path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    fn write(&mut self, n: u64) {
        for _ in 0..n {
            let line = format!(
                "2026-12-07T10:00:00 {} line {:06} {}\n",
                self.name(),
                self.count,
                "z".repeat((self.count * 7 % 40) as usize)
            );
            self.file.write_all(line.as_bytes()).unwrap();
            self.ledger.extend_from_slice(line.as_bytes());
            self.count += 1;
        }
    }

    /// The application reopening its log (after logrotate's `create`).
    fn reopen(&mut self) {
        self.file = open_append(&self.path);
    }
}

fn open_append(p: &Path) -> File {
    File::options().create(true).append(true).open(p).unwrap()
}

/// Waits (up to 30 s) until `out/NAME.raw` is as long as the log's ledger,
/// then checks it byte for byte.
fn wait_copy(f: &Fixture, d: &mut Daemon, log: &Log) {
    let out = f.join(format!("out/{}.raw", log.name()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::metadata(&out).map_or(0, |m| m.len()) < log.ledger.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "{}: the copy stayed short for 30 s\n{}\ndaemon log:\n{}",
            log.name(),
            diff(&fs::read(&out).unwrap_or_default(), &log.ledger),
            d.log_tail()
        );
        d.assert_running();
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = fs::read(&out).unwrap();
    assert!(
        got == log.ledger,
        "{}: the copy differs from what was written\n{}\ndaemon log:\n{}",
        log.name(),
        diff(&got, &log.ledger),
        d.log_tail()
    );
}

/// The outputs the daemon wrote: the names in `out/` ending in `.raw`.
fn outputs(f: &Fixture) -> BTreeSet<String> {
    fs::read_dir(f.join("out"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".raw"))
                .collect()
        })
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `logdaemon checkpoint show` of the fixture's state.
fn checkpoint_show(f: &Fixture) -> String {
    let o = f.run(&["checkpoint", "show", "--config", "cfg.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}
