//! Shared pieces of the listener's tests against a real sshd: journals made
//! of real p4 records, a listener opened like the host opens it, and a
//! small host simulator that delivers, honours acknowledgements and
//! redelivers after failures, as the daemon does.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use logdaemon_listener_hot_backup::{Clock, HotBackup};
use logdaemon_sdk::testing::Batch;
use logdaemon_sdk::{Ack, Failure, FailureKind, Listener, Logger, OpenContext, Position};
use logdaemon_tests::sshd::Sshd;

/// The p4 corpus shipped with the tests.
pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/p4")
}

/// Splits p4 journal bytes into records (a newline inside an `@` string
/// belongs to the record).
pub fn split_p4(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_str = false;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'@' if in_str && data.get(i + 1) == Some(&b'@') => i += 1,
            b'@' => in_str = !in_str,
            b'\n' if !in_str => {
                out.push(data[start..=i].to_vec());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < data.len() {
        out.push(data[start..].to_vec());
    }
    out
}

/// A journal of `tx` transactions made of real records from the corpus
/// (`variant` picks which), each closed by `@ex@`.
pub fn journal(variant: usize, tx: usize) -> Vec<u8> {
    let mut names: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("jnl"))
        .collect();
    names.sort();
    let mut recs = Vec::new();
    for p in names.iter().cycle().skip(variant * 7).take(12) {
        recs.extend(
            split_p4(&std::fs::read(p).unwrap())
                .into_iter()
                .filter(|r| !r.starts_with(b"@ex@")),
        );
    }
    let mut out = Vec::new();
    let mut it = recs.iter().cycle();
    for t in 0..tx {
        for _ in 0..(1 + (t * 7 + variant) % 5) {
            out.extend_from_slice(it.next().unwrap());
        }
        out.extend_from_slice(
            format!("@ex@ {} {}\n", 4000 + variant, 1_700_000_000 + t).as_bytes(),
        );
    }
    out
}

/// One record of the stream the host delivers.
#[derive(Clone, Debug)]
pub struct Rec {
    pub seq: u64,
    pub off: u64,
    pub bytes: Vec<u8>,
    pub rotate: bool,
}

/// The records of journal files `(sequence, bytes)`, in order.
pub fn stream(files: &[(u64, &[u8])]) -> Vec<Rec> {
    let mut out = Vec::new();
    for (i, (seq, data)) in files.iter().enumerate() {
        let mut off = 0;
        for (j, r) in split_p4(data).into_iter().enumerate() {
            let len = r.len() as u64;
            out.push(Rec {
                seq: *seq,
                off,
                bytes: r,
                rotate: i > 0 && j == 0,
            });
            off += len;
        }
    }
    out
}

/// End offsets of the `@ex@` records of `data`.
pub fn ex_ends(data: &[u8]) -> Vec<u64> {
    let mut ends = Vec::new();
    let mut off = 0;
    for r in split_p4(data) {
        off += r.len() as u64;
        if r.starts_with(b"@ex@") {
            ends.push(off);
        }
    }
    ends
}

/// A standby behind a real sshd, a local journal path and a state dir.
pub struct Env {
    pub sshd: Sshd,
    pub tmp: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let sshd = Sshd::start().expect("start sshd (needs openssh-server)");
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("remote")).unwrap();
        std::fs::create_dir(tmp.path().join("state")).unwrap();
        std::fs::create_dir(tmp.path().join("local")).unwrap();
        Env { sshd, tmp }
    }

    pub fn remote(&self) -> PathBuf {
        self.tmp.path().join("remote")
    }

    pub fn remote_file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.remote().join(name))
            .unwrap_or_else(|e| panic!("standby file {name}: {e}"))
    }

    pub fn journal_path(&self) -> PathBuf {
        self.tmp.path().join("local/journal")
    }

    /// The listener's config; batches ship at once unless `extra` sets `max_delay`.
    pub fn config(&self, extra: &str) -> String {
        let delay = if extra.contains("max_delay") {
            ""
        } else {
            "max_delay = \"0s\"\n"
        };
        format!(
            "host = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nremote_dir = \"{}\"\nio_timeout = \"5s\"\nconnect_timeout = \"2s\"\n{delay}{extra}",
            self.sshd.port(),
            self.sshd.user(),
            self.sshd.client_key().display(),
            self.sshd.known_hosts().display(),
            self.remote().display()
        )
    }

    pub fn open_with(&self, config: &str, cursor: Position) -> Result<HotBackup, Failure> {
        self.open_clocked(config, cursor, None)
    }

    pub fn open_clocked(
        &self,
        config: &str,
        cursor: Position,
        clock: Option<Clock>,
    ) -> Result<HotBackup, Failure> {
        self.open_format("p4", config, cursor, clock)
    }

    pub fn open_format(
        &self,
        format: &str,
        config: &str,
        cursor: Position,
        clock: Option<Clock>,
    ) -> Result<HotBackup, Failure> {
        let journal = self.journal_path();
        let ctx = OpenContext {
            listener: "standby",
            journal: "log",
            format,
            journal_path: &journal,
            config_toml: config,
            config_dir: self.tmp.path(),
            state_dir: &self.tmp.path().join("state"),
            cursor,
            logger: Logger::discard(),
        };
        match clock {
            Some(c) => HotBackup::open_with_clock(&ctx, c),
            None => HotBackup::open(&ctx),
        }
    }

    pub fn open(&self, extra: &str) -> HotBackup {
        self.open_with(&self.config(extra), Position::default())
            .unwrap_or_else(|f| panic!("open: {f}"))
    }

    /// Every file in the standby directory with its contents.
    pub fn remote_listing(&self) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(self.remote())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap_or_default(),
                )
            })
            .collect();
        v.sort();
        v
    }
}

/// Delivers records like the host: in batches of `batch`, one file at a
/// time, honouring acknowledgements; after a failure it goes back to the
/// last acknowledgement.
pub struct Host<'a> {
    pub recs: &'a [Rec],
    /// Index of the first record not acknowledged.
    pub acked: usize,
    /// Index of the next record to deliver.
    pub next: usize,
    pub batch: usize,
}

impl<'a> Host<'a> {
    pub fn new(recs: &'a [Rec], batch: usize) -> Host<'a> {
        Host {
            recs,
            acked: 0,
            next: 0,
            batch,
        }
    }

    /// Starts at the record at `p` (the host's cursor).
    pub fn at(recs: &'a [Rec], batch: usize, p: Position) -> Host<'a> {
        let i = index_of(recs, p);
        Host {
            recs,
            acked: i,
            next: i,
            batch,
        }
    }

    pub fn done(&self) -> bool {
        self.next >= self.recs.len()
    }

    /// Position of the first unacknowledged record (the host's cursor).
    pub fn cursor(&self) -> Position {
        self.recs.get(self.acked).map_or_else(
            || {
                let r = self.recs.last().unwrap();
                Position {
                    sequence: r.seq,
                    offset: r.off + r.bytes.len() as u64,
                    line: 0,
                }
            },
            |r| Position {
                sequence: r.seq,
                offset: r.off,
                line: 0,
            },
        )
    }

    /// One `listen` call.
    pub fn step(&mut self, l: &mut HotBackup) -> Result<Ack, Failure> {
        let first = &self.recs[self.next];
        let mut end = self.next + 1;
        while end < self.recs.len()
            && end - self.next < self.batch
            && self.recs[end].seq == first.seq
            && !self.recs[end].rotate
        {
            end += 1;
        }
        let slice = &self.recs[self.next..end];
        let raw: Vec<&[u8]> = slice.iter().map(|r| r.bytes.as_slice()).collect();
        let mut b = Batch::p4("p4", first.seq, first.off, &raw);
        if first.rotate {
            b.set_did_rotate(0);
        }
        let r = l.listen(b.entries());
        self.settle(r, end)
    }

    /// One `flush` call (the host's checkpoint, end of `run --once`).
    pub fn flush(&mut self, l: &mut HotBackup) -> Result<Ack, Failure> {
        let r = l.flush();
        let next = self.next;
        self.settle(r, next)
    }

    /// What the host does with a call's answer: on success everything up to
    /// record `end` was handed over and is acknowledged as the answer says;
    /// on failure the next call starts again at what was acknowledged.
    fn settle(&mut self, r: Result<Ack, Failure>, end: usize) -> Result<Ack, Failure> {
        match &r {
            Ok(a) => {
                self.acked = match a {
                    Ack::All => end,
                    Ack::Upto(p) => index_of(self.recs, *p),
                };
                self.next = end;
            }
            Err(f) => {
                if let Some(p) = f.ack {
                    self.acked = index_of(self.recs, p);
                }
                self.next = self.acked;
            }
        }
        r
    }

    /// Delivers everything and flushes; panics on any failure.
    pub fn run(&mut self, l: &mut HotBackup) {
        while !self.done() {
            if let Err(f) = self.step(l) {
                panic!("listen failed at record {}: {f}", self.next);
            }
        }
        if let Err(f) = self.flush(l) {
            panic!("flush failed: {f}");
        }
    }
}

pub fn index_of(recs: &[Rec], p: Position) -> usize {
    recs.iter()
        .position(|r| (r.seq, r.off) >= (p.sequence, p.offset))
        .unwrap_or(recs.len())
}

pub fn assert_retry(r: Result<Ack, Failure>) -> Failure {
    match r {
        Err(f) if f.kind == FailureKind::Retry => f,
        other => panic!("expected Retry, got {other:?}"),
    }
}

pub fn assert_fatal<T>(r: Result<T, Failure>) -> String {
    match r {
        Err(f) if f.kind == FailureKind::Fatal => f.message,
        Err(f) => panic!("expected Fatal, got {f}"),
        Ok(_) => panic!("expected Fatal, got success"),
    }
}
