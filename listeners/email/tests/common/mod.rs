//! A stand-in for the daemon that drives an [`EmailListener`] by the
//! listener contract (filter, deliver, follow acknowledgements, redeliver
//! after failures and crashes), and a real SMTP server for it to talk to.
//! The stand-in exists so these tests can pick the exact moment of a
//! failure or crash; the daemon itself is exercised in the end-to-end tests.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use logdaemon_listener_email::{EmailListener, ManualClock, Options};
use logdaemon_sdk::abi::RawEntry;
use logdaemon_sdk::testing::Batch;
use logdaemon_sdk::{Ack, Entry, Failure, Listener, Logger, OpenContext, Position};
use logdaemon_tests::smtp::{self, SmtpServer};

pub const LISTENER: &str = "reviews";
pub const JOURNAL: &str = "jnl";

/// One listener's world: state dir, clock, SMTP server, fault switch.
pub struct World {
    pub dir: tempfile::TempDir,
    pub srv: SmtpServer,
    pub clock: ManualClock,
    pub crash: Arc<AtomicBool>,
    pub format: &'static str,
    pub config: String,
}

impl World {
    /// `extra` is appended to a config pointing at the test server.
    pub fn new(format: &'static str, extra: &str) -> World {
        World::with_server(
            format,
            smtp::Options::default(),
            &format!("tls = \"none\"\n{extra}"),
        )
    }

    /// A world whose server is started with `opts`; `extra` sets `tls`.
    pub fn with_server(format: &'static str, opts: smtp::Options, extra: &str) -> World {
        let srv = SmtpServer::start_with(opts);
        let config = format!(
            "smtp_host = \"127.0.0.1\"\nsmtp_port = {}\ntimeout = \"10s\"\nfrom = \"logdaemon@example.com\"\nto = [\"dev@example.com\"]\n{extra}\n",
            srv.port()
        );
        World {
            dir: tempfile::tempdir().unwrap(),
            srv,
            clock: ManualClock::new(),
            crash: Arc::new(AtomicBool::new(false)),
            format,
            config,
        }
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn open(&self, cursor: Position) -> Result<EmailListener, Failure> {
        let path = self.dir.path().join("journal");
        let ctx = OpenContext {
            listener: LISTENER,
            journal: JOURNAL,
            format: self.format,
            journal_path: &path,
            config_toml: &self.config,
            config_dir: self.dir.path(),
            state_dir: self.dir.path(),
            cursor,
            logger: Logger::discard(),
        };
        EmailListener::open_with(
            &ctx,
            Options {
                clock: self.clock.clock(),
                crash_after_accept: Some(self.crash.clone()),
            },
        )
    }
}

/// The daemon's side: a journal, a cursor and redelivery.
pub struct Host {
    pub journal: Batch,
    /// The acknowledged position (the checkpoint); starts at the first entry.
    pub acked: Position,
    /// Index of the next entry to deliver.
    pub next: usize,
    /// The last successful call held entries (`Ack::Upto`).
    holding: bool,
}

impl Host {
    pub fn new(journal: Batch) -> Host {
        let acked = journal
            .entries()
            .first()
            .map(|e| e.start())
            .unwrap_or_default();
        Host {
            journal,
            acked,
            next: 0,
            holding: false,
        }
    }

    pub fn len(&self) -> usize {
        self.journal.entries().len()
    }

    pub fn done(&self) -> bool {
        self.next >= self.len()
    }

    fn rewind(&mut self) {
        let acked = self.acked;
        self.next = self
            .journal
            .entries()
            .iter()
            .position(|e| e.start() >= acked)
            .unwrap_or(self.len());
        self.holding = false;
    }

    /// After a crash: the listener is gone, delivery resumes at the checkpoint.
    pub fn crash(&mut self) {
        self.rewind();
    }

    fn apply(&mut self, r: &Result<Ack, Failure>, end: Position) {
        match r {
            Ok(Ack::All) => {
                self.acked = self.acked.max(end);
                self.holding = false;
            }
            Ok(Ack::Upto(p)) => {
                assert!(
                    *p >= self.acked,
                    "acknowledgement went backwards: {p} < {}",
                    self.acked
                );
                self.acked = *p;
                self.holding = true;
            }
            Err(f) => {
                if let Some(p) = f.ack {
                    assert!(
                        p >= self.acked,
                        "failure acknowledgement went backwards: {p} < {}",
                        self.acked
                    );
                    self.acked = p;
                }
                self.rewind();
            }
        }
    }

    /// Delivers up to `n` journal entries (handled ones go to `listen`).
    pub fn step(&mut self, l: &mut EmailListener, n: usize) -> Result<Ack, Failure> {
        let all = self.journal.entries();
        let upto = (self.next + n).min(all.len());
        if self.next >= upto {
            return Ok(Ack::All);
        }
        let slice = &all[self.next..upto];
        let end = slice.last().unwrap().end();
        let handled: Vec<RawEntry> = slice
            .iter()
            .filter(|e| l.is_handled(e))
            .map(|e| *e.as_raw())
            .collect();
        self.next = upto;
        if handled.is_empty() {
            if !self.holding {
                self.acked = self.acked.max(end);
            }
            return Ok(Ack::All);
        }
        // SAFETY: the raw entries point into self.journal, alive for the call.
        let entries: &[Entry<'_>] = unsafe { Entry::from_raw_slice(&handled) };
        let r = l.listen(entries);
        self.apply(&r, end);
        r
    }

    /// Delivers everything left in batches of `n`, stopping at the first failure.
    pub fn run(&mut self, l: &mut EmailListener, n: usize) -> Result<(), Failure> {
        while !self.done() {
            self.step(l, n)?;
        }
        Ok(())
    }

    pub fn no_data(&mut self, l: &mut EmailListener, had_data: bool) -> Result<Ack, Failure> {
        let end = self.journal.entries()[..self.next]
            .last()
            .map(|e| e.end())
            .unwrap_or_default();
        let r = l.no_data(had_data);
        self.apply(&r, end);
        r
    }
}

/// Splits a p4 journal into records: a record ends at a newline where the
/// number of `@` since the record's start is even.
pub fn p4_records(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut ats = 0usize;
    for (i, &b) in data.iter().enumerate() {
        match b {
            b'@' => ats += 1,
            b'\n' if ats & 1 == 0 => {
                out.push(&data[start..=i]);
                start = i + 1;
                ats = 0;
            }
            _ => {}
        }
    }
    if start < data.len() {
        out.push(&data[start..]);
    }
    out
}

/// `n` records as owned line texts.
pub fn lines(texts: &[String]) -> Batch {
    let recs: Vec<Vec<u8>> = texts
        .iter()
        .map(|t| format!("{t}\n").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
    Batch::lines(JOURNAL, 1, 0, &refs)
}

#[test]
fn p4_records_split_on_even_at_counts() {
    let j = b"@pv@ 0 @db.desc@ 1 @two\nlines @@ here@ \n@ex@ 1 2\n@pv@ 0 @db.desc@ 2 @x@ \n";
    let r = p4_records(j);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0], &b"@pv@ 0 @db.desc@ 1 @two\nlines @@ here@ \n"[..]);
    assert_eq!(r[1], &b"@ex@ 1 2\n"[..]);
}
