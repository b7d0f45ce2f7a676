//! A listener for testing the host end to end, loaded like any plugin.
//!
//! It records what the host gives it — every entry with its position and
//! receive time, every `no_data(had_data)`, every gap — as JSON lines (see
//! [`event`]), so a test can check order, completeness and timing from the
//! outside. On request it misbehaves the ways a real listener can: it asks
//! to retry until a flag file appears, fails with Fatal, or panics.
//!
//! ```toml
//! [[journal.listener]]
//! name = "kit"
//! plugin = "/path/to/liblogdaemon_test_plugin_testkit.so"
//! [journal.listener.config]
//! mode = "record"                 # or "discard": acknowledge, record nothing
//! path = "out/kit.jsonl"          # record mode: where to append
//! retry_until_file = "flag"       # optional: Retry while this file is missing
//! panic_on = "text"               # optional: panic on a batch with an entry containing it
//! fatal_on = "text"               # optional: Fatal on a batch with an entry containing it
//! open_waits_for_file = "flag"    # optional: `open` returns only once this file exists
//! ack_mid_record_on = "text"      # optional: acknowledge the middle of an entry containing it
//! ```
//!
//! Record mode is kept cheap (one clock reading and one buffered write per
//! call, no fsync) because benchmarks use the receive times for latency.
//! Everything is acknowledged at once; what it records is what was
//! delivered, so a repeat or a loss shows in the file.

pub mod config;
pub mod event;

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use logdaemon_sdk::{export_listener, Ack, Entry, Failure, Gap, Listener, Logger, OpenContext};

use config::{Config, Mode};
use event::{now_ns, raw_fields, Event};

/// The testkit listener.
pub struct Testkit {
    cfg: Config,
    out: Option<Recorder>,
    logger: Logger,
    name: String,
}

/// The record file.
struct Recorder {
    path: PathBuf,
    w: BufWriter<File>,
}

impl Recorder {
    fn open(path: PathBuf) -> std::io::Result<Recorder> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Recorder {
            path,
            w: BufWriter::with_capacity(1 << 16, f),
        })
    }

    fn push(&mut self, e: &Event<'_>) -> Result<(), Failure> {
        serde_json::to_writer(&mut self.w, e).map_err(|err| self.failed(err.into()))?;
        self.w.write_all(b"\n").map_err(|err| self.failed(err))
    }

    /// Hands the buffered lines to the kernel (readers see them; no fsync).
    fn commit(&mut self) -> Result<(), Failure> {
        self.w.flush().map_err(|e| self.failed(e))
    }

    fn failed(&self, e: std::io::Error) -> Failure {
        Failure::retry(format!(
            "testkit: cannot write {}: {e}; retrying",
            self.path.display()
        ))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

impl Testkit {
    fn record(
        &mut self,
        events: impl FnOnce(&mut Recorder) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        match &mut self.out {
            None => Ok(()),
            Some(r) => {
                events(r)?;
                r.commit()
            }
        }
    }

    /// The first entry containing `needle`, if any.
    fn find<'e>(entries: &'e [Entry<'e>], needle: Option<&[u8]>) -> Option<&'e Entry<'e>> {
        let n = needle?;
        entries.iter().find(|e| contains(e.raw(), n))
    }
}

impl Listener for Testkit {
    /// Only `raw` is recorded: the host need not split p4 records.
    const WANTS_FIELDS: bool = false;

    fn open(ctx: &OpenContext<'_>) -> Result<Self, Failure> {
        let cfg = Config::from_context(ctx)?;
        let out = match (cfg.mode, &cfg.path) {
            (Mode::Record, Some(p)) => Some(Recorder::open(p.clone()).map_err(|e| {
                Failure::fatal(format!("listener {:?} (testkit): cannot open {}: {e}; check the directory exists and is writable", ctx.listener, p.display()))
            })?),
            _ => None,
        };
        let mut me = Testkit {
            cfg,
            out,
            logger: ctx.logger,
            name: ctx.listener.to_string(),
        };
        if let Some(flag) = me.cfg.open_waits_for_file.clone() {
            me.record(|r| r.push(&Event::Opening { t_ns: now_ns() }))?;
            while !flag.exists() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        let cursor = ctx.cursor.into();
        me.record(|r| {
            r.push(&Event::Open {
                cursor,
                t_ns: now_ns(),
            })
        })?;
        me.logger.debug(&format!("testkit open at {}", ctx.cursor));
        Ok(me)
    }

    fn listen(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure> {
        let t_ns = now_ns();
        if let Some(flag) = &self.cfg.retry_until_file {
            if !flag.exists() {
                let waiting_for = flag.display().to_string();
                let msg = format!("testkit {:?}: {waiting_for} does not exist yet", self.name);
                self.record(|r| r.push(&Event::Retry { waiting_for, t_ns }))?;
                return Err(Failure::retry(msg));
            }
        }
        if let Some(e) = Self::find(entries, self.cfg.panic_on.as_deref()) {
            panic!(
                "testkit {:?}: entry at {} contains the panic_on text",
                self.name,
                e.start()
            );
        }
        if let Some(e) = Self::find(entries, self.cfg.fatal_on.as_deref()) {
            return Err(Failure::fatal(format!(
                "testkit {:?}: entry at {} contains the fatal_on text",
                self.name,
                e.start()
            )));
        }
        self.record(|r| {
            for e in entries {
                let (raw, raw_hex) = raw_fields(e.raw());
                r.push(&Event::Entry {
                    sequence: e.sequence(),
                    offset: e.offset(),
                    line: e.line(),
                    len: e.len(),
                    lines: e.lines(),
                    did_rotate: e.did_rotate(),
                    incomplete: e.incomplete(),
                    t_ns,
                    raw,
                    raw_hex,
                })?;
            }
            Ok(())
        })?;
        if let Some(e) = Self::find(entries, self.cfg.ack_mid_record_on.as_deref()) {
            let mut mid = e.start();
            mid.offset += e.len() / 2;
            return Ok(Ack::Upto(mid));
        }
        Ok(Ack::All)
    }

    fn no_data(&mut self, had_data: bool) -> Result<Ack, Failure> {
        self.record(|r| {
            r.push(&Event::NoData {
                had_data,
                t_ns: now_ns(),
            })
        })?;
        Ok(Ack::All)
    }

    fn flush(&mut self) -> Result<Ack, Failure> {
        self.record(|r| r.push(&Event::Flush { t_ns: now_ns() }))?;
        Ok(Ack::All)
    }

    fn gap(&mut self, gap: &Gap<'_>) -> Result<Ack, Failure> {
        let ev = Event::Gap {
            from: gap.from.into(),
            to: gap.to.into(),
            cause: gap.cause,
            detail: gap.detail,
            t_ns: now_ns(),
        };
        self.record(|r| r.push(&ev))?;
        Ok(Ack::All)
    }
}

export_listener!(Testkit, "testkit");

#[cfg(test)]
mod tests;
