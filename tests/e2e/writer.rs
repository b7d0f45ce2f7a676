//! A journal writer for the rotation tests that keeps its own ledger: the
//! exact bytes it appended, in order. Whatever the rotations do to the
//! files, the daemon's raw output must equal this ledger.
//!
//! The writer appends whole records with one `write` each on an `O_APPEND`
//! descriptor, like p4d and most loggers, and reopens the live path when
//! told (p4d after renaming its journal, an application after logrotate's
//! `postrotate` signal). A [`Pump`] runs it on a thread so rotations happen
//! while it writes; the test takes the writer's lock to make a rotation
//! step atomic with respect to writes when the real writer would be.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the writer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// p4 journal records, some spanning several lines, with `@@` escapes.
    P4,
    /// An application log: one line per entry.
    Lines,
}

/// The writer and its ledger.
pub struct Writer {
    path: PathBuf,
    kind: Kind,
    file: File,
    /// Every byte appended, in order.
    ledger: Vec<u8>,
    /// Records written.
    count: u64,
    /// Bytes appended but known lost (a copytruncate window), kept apart.
    lost: Vec<std::ops::Range<usize>>,
}

impl Writer {
    /// Opens (creating) the live file at `path` for appending.
    pub fn new(path: &Path, kind: Kind) -> Writer {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).unwrap();
        }
        let file = open_append(path);
        Writer {
            path: path.to_path_buf(),
            kind,
            file,
            ledger: Vec::new(),
            count: 0,
            lost: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes of record number `i` (deterministic, unique).
    pub fn record(kind: Kind, i: u64) -> Vec<u8> {
        match kind {
            Kind::P4 => {
                if i % 7 == 3 {
                    format!("@pv@ 0 @db.desc@ {i} @change {i}: fix the build\nsecond line, a mail addr@@example.com\n@ \n").into_bytes()
                } else {
                    let pad = "x".repeat((i * 13 % 61) as usize);
                    format!(
                        "@pv@ 3 @db.rev@ @//depot/main/f{}.c@ {i} 1 0 {i} 1417534005 1417534005 {:032X} @//depot/main/{pad}.c@ @1.{i}@ 1 \n",
                        i % 97,
                        i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    )
                    .into_bytes()
                }
            }
            Kind::Lines => {
                let pad = "y".repeat((i * 17 % 71) as usize);
                format!("2026-11-21T12:{:02}:{:02}.{:03} app[4242]: request {i} took {} ms path=/api/{pad}\n", i / 60 % 60, i % 60, i % 1000, i % 37)
                    .into_bytes()
            }
        }
    }

    /// Appends one record with a single write.
    pub fn write_one(&mut self) {
        let r = Writer::record(self.kind, self.count);
        self.file
            .write_all(&r)
            .unwrap_or_else(|e| panic!("appending to {}: {e}", self.path.display()));
        self.ledger.extend_from_slice(&r);
        self.count += 1;
    }

    /// Appends `n` records.
    pub fn write(&mut self, n: u64) {
        for _ in 0..n {
            self.write_one();
        }
    }

    /// Appends records whose bytes are then destroyed before any copy holds
    /// them (a copytruncate window): they are kept apart from the ledger.
    /// Returns their range in the ledger's numbering before removal.
    pub fn write_lost(&mut self, n: u64) -> std::ops::Range<usize> {
        let start = self.ledger.len();
        self.write(n);
        let r = start..self.ledger.len();
        self.lost.push(r.clone());
        r
    }

    /// Reopens the live path (created if missing).
    pub fn reopen(&mut self) {
        self.file = open_append(&self.path);
    }

    /// Every byte appended, including any lost window.
    pub fn ledger(&self) -> &[u8] {
        &self.ledger
    }

    /// The bytes that must reach the output: the ledger without lost windows.
    pub fn expected(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ledger.len());
        let mut at = 0;
        for r in &self.lost {
            out.extend_from_slice(&self.ledger[at..r.start]);
            at = r.end;
        }
        out.extend_from_slice(&self.ledger[at..]);
        out
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Declares bytes already appended as lost (found afterwards to be in
    /// no file, e.g. a copytruncate window seen by comparing the files with
    /// the ledger). Ranges must come in order and not overlap.
    pub fn mark_lost(&mut self, range: std::ops::Range<usize>) {
        assert!(
            range.end <= self.ledger.len() && self.lost.last().is_none_or(|l| l.end <= range.start),
            "{range:?}"
        );
        self.lost.push(range);
    }

    /// The ranges of the ledger known lost, in order.
    pub fn lost(&self) -> &[std::ops::Range<usize>] {
        &self.lost
    }
}

fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {} for appending: {e}", path.display()))
}

/// A writer appending records on its own thread, one record per `pace`,
/// until stopped. Lock it (with [`Pump::lock`]) to rotate between two writes.
pub struct Pump {
    writer: Arc<Mutex<Writer>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Pump {
    pub fn start(writer: Writer, pace: Duration) -> Pump {
        let writer = Arc::new(Mutex::new(writer));
        let stop = Arc::new(AtomicBool::new(false));
        let (w, s) = (writer.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    w.lock().unwrap().write_one();
                    std::thread::sleep(pace);
                }
            })
            .unwrap();
        Pump {
            writer,
            stop,
            handle: Some(handle),
        }
    }

    /// Holds the writer between two records.
    pub fn lock(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap()
    }

    /// Waits until `n` more records have been written than now.
    pub fn wait_more(&self, n: u64) {
        let target = self.lock().count() + n;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.lock().count() < target {
            assert!(
                Instant::now() < deadline,
                "the writer thread did not write {n} records within 30 s"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the thread and returns the writer.
    pub fn stop(mut self) -> Writer {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .unwrap()
            .join()
            .expect("writer thread panicked");
        let w = self.writer.clone();
        drop(self);
        Arc::try_unwrap(w)
            .ok()
            .expect("writer still shared")
            .into_inner()
            .unwrap()
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
