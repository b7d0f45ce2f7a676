//! Keeping the standby byte-identical, exactly once.
//!
//! The standby itself is the truth about what was shipped: on every
//! (re)connect the listener asks it where it stands and checks it against
//! its own durable [`Record`]. Then every run of entries the host delivers
//! is placed against the standby's file:
//!
//! - bytes the standby already has (a crash after sending, before the host's
//!   checkpoint) are compared with the standby's copy and skipped; any
//!   difference is fatal and names the file and offset;
//! - bytes past the standby's end are appended with one exec channel per
//!   run (`cat >> file`, size checked before and after, then fsync);
//! - a hole between the standby's end and the run (the standby was
//!   restored or truncated) is filled from the local live journal when it
//!   is provably the same file, else it is fatal with recovery steps;
//! - a run of a newer sequence first renames the finished live file to
//!   `<name>.<sequence>`, resumably.
//!
//! `apply` runs in the same remote script right after the append, fed from
//! the standby's file, and moves the standby's applied marker; a batch that
//! was appended but not applied is applied by the next script.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use logdaemon_sdk::{Logger, Position};

use crate::cksum::{self, Cksum};
use crate::config::Config;
use crate::error::{fatal, transient, Error, Result};
use crate::hold::Run;
use crate::record::{self, Record, TAIL};
use crate::remote::View;
use crate::shell::{self, status, Batch, Layout};
use crate::ssh::{Conn, Output};

mod joined;
mod local;
use local::{copy_local, read_local, Fill};
mod verify;

/// The last ≤ [`TAIL`] bytes of a standby file up to `end`.
#[derive(Debug)]
struct Tail {
    seq: u64,
    end: u64,
    bytes: Vec<u8>,
    /// The checksum of the file's bytes up to `end`, when all are known.
    sum: Option<Cksum>,
}

/// An open connection and what the standby holds.
struct Link {
    conn: Conn,
    view: View,
}

/// The standby side of the listener: connection, remote view, durable record.
pub struct Standby {
    cfg: Config,
    log: Logger,
    layout: Layout,
    journal_path: PathBuf,
    record_path: PathBuf,
    target: String,
    link: Option<Link>,
    tail: Option<Tail>,
    /// Requests sent and not yet answered, oldest first.
    pending: VecDeque<Pending>,
    next_id: u64,
    /// Tags of requests answered while sending others, for [`Standby::ship`].
    settled: Vec<u64>,
}

/// How many requests may be on their way before the oldest answer is read.
pub const PIPELINE: usize = 3;

/// A run sent to the standby whose answer is still to be read.
struct Pending {
    id: u64,
    tag: u64,
    /// Whether a request was sent (a run the standby already had is only compared).
    request: bool,
    start: Position,
    seq: u64,
    end: u64,
    /// The standby's last bytes after this run, for the record (`None`
    /// until known).
    tail: Option<Vec<u8>>,
    /// The file's checksum state after this run, for the record.
    sum: Option<u32>,
    appended: u64,
    sent_at: std::time::Instant,
}

impl Standby {
    pub fn new(
        cfg: Config,
        log: Logger,
        journal_path: PathBuf,
        state_dir: &std::path::Path,
    ) -> Result<Standby> {
        let live = journal_path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                fatal(format!(
                    "journal path {} has no UTF-8 file name to mirror",
                    journal_path.display()
                ))
            })?
            .to_string();
        let target = format!("{}@{}:{}:{}", cfg.user, cfg.host, cfg.port, cfg.remote_dir);
        let layout = Layout {
            dir: cfg.remote_dir.clone(),
            live,
        };
        Ok(Standby {
            cfg,
            log,
            layout,
            journal_path,
            record_path: record::path(state_dir),
            target,
            link: None,
            tail: None,
            pending: VecDeque::new(),
            next_id: 0,
            settled: Vec::new(),
        })
    }

    /// Drops the connection and everything believed about the standby.
    pub fn reset(&mut self) {
        self.link = None;
        self.tail = None;
        self.pending.clear();
        self.settled.clear();
    }

    /// Whether answers are outstanding.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Start of the oldest run sent but not confirmed.
    pub fn oldest_pending(&self) -> Option<Position> {
        self.pending.front().map(|p| p.start)
    }

    /// Reads the oldest answer and records what it confirmed; returns its tag.
    pub fn settle_one(&mut self) -> Result<Option<u64>> {
        let Some(mut link) = self.link.take() else {
            return Ok(None);
        };
        let r = self.settle_on(&mut link);
        if r.is_ok() {
            self.link = Some(link);
        }
        r
    }

    fn settle_on(&mut self, link: &mut Link) -> Result<Option<u64>> {
        let Some(p) = self.pending.pop_front() else {
            return Ok(None);
        };
        if p.request {
            let out = link.conn.answer(self.answer_wait(), false)?;
            self.check_status(&out)?;
            self.log.debug(&format!(
                "standby has sequence {} up to offset {}: appended {} bytes, confirmed after {} ms",
                p.seq,
                p.end,
                p.appended,
                p.sent_at.elapsed().as_millis()
            ));
        }
        if let Some(tail) = &p.tail {
            record::store(
                &self.record_path,
                &Record::new(&self.target, p.seq, p.end, tail, p.sum),
            )?;
        }
        Ok(Some(p.tag))
    }

    /// Reads every outstanding answer (before a read that must see them).
    fn settle_all(&mut self, link: &mut Link) -> Result<()> {
        while !self.pending.is_empty() {
            if let Some(tag) = self.settle_on(link)? {
                self.settled.push(tag);
            }
        }
        Ok(())
    }

    pub fn is_connected(&self) -> bool {
        self.link.is_some()
    }

    /// The negotiated cipher of the open connection.
    pub fn cipher(&self) -> Option<String> {
        self.link.as_ref().map(|l| l.conn.cipher())
    }

    /// Sends a keepalive when connected; drops a dead connection quietly
    /// (the next batch reconnects).
    pub fn keepalive(&mut self) {
        if let Some(l) = &self.link {
            if let Err(e) = l.conn.keepalive() {
                self.log
                    .warn(&format!("connection to the standby lost: {e}"));
                self.reset();
            }
        }
    }

    /// Makes the standby hold `run` (which ends on a safe boundary) and
    /// applies up to its end.
    /// Sends `run` (tagged `tag`) without waiting for its answer when
    /// fewer than [`PIPELINE`] are outstanding. Returns the tags of the runs
    /// confirmed meanwhile, oldest first.
    pub fn ship(&mut self, run: &Run<'_>, tag: u64) -> Result<Vec<u64>> {
        self.connect()?;
        let mut link = self.link.take().expect("connected");
        // On failure the connection is dropped with everything believed about the standby.
        self.ship_on(&mut link, run, tag)?;
        self.settle_beyond_pipeline(&mut link)?;
        self.link = Some(link);
        Ok(std::mem::take(&mut self.settled))
    }

    /// Reads answers until at most [`PIPELINE`] requests are outstanding.
    fn settle_beyond_pipeline(&mut self, link: &mut Link) -> Result<()> {
        while self.pending.iter().filter(|p| p.request).count() > PIPELINE {
            if let Some(t) = self.settle_on(link)? {
                self.settled.push(t);
            }
        }
        Ok(())
    }

    fn ship_on(&mut self, link: &mut Link, run: &Run<'_>, tag: u64) -> Result<()> {
        let seq = run.sequence;
        let end = run.end();
        let mut batch = Batch {
            fsync: self.cfg.fsync,
            apply_timeout_s: self.apply_timeout_s(),
            trust_cached_size: !self.cfg.verify,
            ..Default::default()
        };
        let (file, size) = match link.view.live_seq {
            None => {
                batch.rotate = Some((None, seq));
                (self.layout.live.clone(), link.view.live_size.unwrap_or(0))
            }
            Some(ls) if seq > ls => {
                batch.rotate = Some((Some(ls), seq));
                (self.layout.live.clone(), 0)
            }
            Some(ls) if seq == ls && link.view.live_size.is_some() => {
                (self.layout.live.clone(), link.view.live_size.unwrap_or(0))
            }
            Some(_) => {
                // An older, already rotated file: it can only be compared.
                let (name, mut size) = link.view.file_of(&self.layout, seq);
                if size.is_none() {
                    self.settle_all(link)?;
                    let out = link.conn.capture(&self.layout.query(&[seq]))?;
                    if let Some(v) = View::parse(&String::from_utf8_lossy(&out), &self.layout)? {
                        size = v.sizes.get(&name).copied();
                        link.view.sizes.extend(v.sizes);
                    }
                }
                (name, size.unwrap_or(0))
            }
        };
        let appendable = file == self.layout.live;

        // Bytes the standby already has: compare, then skip.
        let mut at = run.offset;
        if at < size {
            let n = end.min(size) - at;
            let theirs = self.read_remote(link, &file, at, n)?;
            let ours = &run.bytes[..n as usize];
            if let Some(i) = first_difference(&theirs, ours) {
                return Err(fatal(format!(
                    "the standby's {}/{file} differs from the journal at offset {} (sequence {seq}): the standby has other bytes where the journal's were sent before. \
                     Nothing more is sent. Recovery: {}",
                    self.layout.dir,
                    at + i as u64,
                    self.recovery(&file)
                )));
            }
            at += n;
        }
        // A hole before the run: fill it from the local journal.
        let mut fill = None;
        if at > size {
            if !appendable {
                return Err(fatal(format!(
                    "the standby's rotated {}/{file} ends at offset {size} but the journal (sequence {seq}) continues at offset {at}; \
                     the missing bytes cannot be appended to a rotated file. Recovery: {}",
                    self.layout.dir,
                    self.recovery(&file)
                )));
            }
            fill = Some(self.local_fill(link, &file, seq, size, run)?);
        }
        if at < end && !appendable {
            return Err(fatal(format!(
                "the standby's rotated {}/{file} is {size} bytes, shorter than the journal's {end} bytes of sequence {seq}. Recovery: {}",
                self.layout.dir,
                self.recovery(&file)
            )));
        }
        let data = &run.bytes[(at - run.offset) as usize..];
        let fill_len = fill.as_ref().map_or(0, |f: &Fill| f.len);
        let append_len = fill_len + data.len() as u64;
        if append_len > 0 {
            batch.append = Some((size, append_len));
        }
        let live_after = if batch.rotate.is_some() {
            seq
        } else {
            link.view.live_seq.unwrap_or(seq)
        };
        if self.cfg.apply.is_some() {
            let from = link
                .view
                .applied
                .unwrap_or((link.view.live_seq.unwrap_or(seq), 0));
            batch.apply = shell::apply_pieces(&self.layout, from, (seq, end), live_after);
        }
        if let Some((old, new)) = batch.rotate {
            self.log.info(&format!(
                "rotating the standby: live sequence {old:?} -> {new}"
            ));
        }
        let request = batch.rotate.is_some() || batch.append.is_some() || !batch.apply.is_empty();
        if request {
            let script = batch.script(&self.layout, self.cfg.apply.as_deref());
            let journal_path = self.journal_path.clone();
            let dest = format!("{}:{}", self.cfg.host, self.cfg.port);
            let mut feed = |w: &mut dyn Write| -> Result<()> {
                if let Some(f) = &fill {
                    copy_local(&journal_path, f, w, &dest)?;
                }
                w.write_all(data)
                    .map_err(|e| transient(format!("sending to the standby {dest}: {e}")))
            };
            link.conn
                .submit(&script, append_len, &mut feed, self.cfg.command_timeout)?;
        }

        // The standby now holds `run`: remember it.
        if batch.rotate.is_some() {
            link.view.live_seq = Some(seq);
            link.view.live_size = Some(0);
        }
        if appendable {
            let grown = link.view.live_size.unwrap_or(0).max(end);
            link.view.live_size = Some(grown);
            link.view.sizes.insert(self.layout.live.clone(), grown);
        }
        if self.cfg.apply.is_some() {
            link.view.applied = Some((seq, end)).max(link.view.applied);
        }
        // Taken as confirmed for planning the next run; the record is
        // written when the answer arrives.
        self.next_id += 1;
        let id = self.next_id;
        self.pending.push_back(Pending {
            id,
            tag,
            request,
            start: run.start,
            seq,
            end,
            tail: None,
            sum: None,
            appended: append_len,
            sent_at: std::time::Instant::now(),
        });
        // The standby's last bytes after this run; a read this needs first
        // collects every answer, this run's included.
        self.update_tail(link, &file, run)?;
        self.keep_tail(id, seq, end)?;
        Ok(())
    }

    /// Gives request `id` (just sent, ending at `seq`/`end`) the standby's
    /// last bytes for the record written when its answer arrives; when a
    /// read meanwhile collected that answer, writes the record now.
    fn keep_tail(&mut self, id: u64, seq: u64, end: u64) -> Result<()> {
        let t = self.tail.as_ref().expect("tail set");
        let (tail, sum) = (t.bytes.clone(), t.sum.map(|c| c.state()));
        match self.pending.back_mut() {
            Some(p) if p.id == id => {
                p.tail = Some(tail);
                p.sum = sum;
            }
            _ => record::store(
                &self.record_path,
                &Record::new(&self.target, seq, end, &tail, sum),
            )?,
        }
        Ok(())
    }

    /// Reads from the standby once every outstanding answer is in.
    fn read_remote(
        &mut self,
        link: &mut Link,
        file: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        self.settle_all(link)?;
        read(&mut link.conn, &self.layout, file, offset, len)
    }

    fn update_tail(&mut self, link: &mut Link, file: &str, run: &Run<'_>) -> Result<()> {
        let end = run.end();
        let keep = |mut v: Vec<u8>| {
            if v.len() > TAIL {
                v.drain(..v.len() - TAIL);
            }
            v
        };
        // Only the last TAIL bytes of a (megabytes long) run are copied.
        let last = &run.bytes[run.bytes.len().saturating_sub(TAIL)..];
        let prev = self.tail.take();
        // The whole file's checksum goes on while the runs follow each other.
        let mut sum = match &prev {
            Some(t) if t.seq == run.sequence && t.end == run.offset => t.sum,
            _ if run.offset == 0 => Some(Cksum::new()),
            _ => None,
        };
        if let Some(c) = &mut sum {
            if self.cfg.verify {
                c.update(run.bytes);
            }
        }
        if !self.cfg.verify {
            sum = None;
        }
        let bytes = match prev {
            Some(t) if t.seq == run.sequence && t.end == run.offset => {
                let mut v = t.bytes;
                v.extend_from_slice(last);
                keep(v)
            }
            _ if run.offset == 0 || run.bytes.len() >= TAIL => last.to_vec(),
            _ => {
                let from = end.saturating_sub(TAIL as u64);
                let mut v = self.read_remote(link, file, from, run.offset - from)?;
                v.extend_from_slice(run.bytes);
                keep(v)
            }
        };
        self.tail = Some(Tail {
            seq: run.sequence,
            end,
            bytes,
            sum,
        });
        Ok(())
    }

    /// `command_timeout` in whole seconds (at least 1), for `timeout(1)`.
    fn apply_timeout_s(&self) -> u64 {
        self.cfg.command_timeout.as_secs_f64().ceil().max(1.0) as u64
    }

    /// How long an answer is awaited: longer than the standby's own bound
    /// on `apply` (`command_timeout`, then the kill), so that a slow
    /// `apply` is reported by the standby as timed out and the connection
    /// is not dropped while it still runs there.
    fn answer_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.apply_timeout_s() + shell::APPLY_KILL_AFTER)
            + self.cfg.io_timeout
    }

    fn check_status(&self, out: &Output) -> Result<()> {
        let text = out.text();
        let on = format!("on {}:{}", self.cfg.host, self.cfg.port);
        match out.status {
            0 => Ok(()),
            status::NO_DIR => Err(fatal(format!("remote_dir {} cannot be entered {on}: {text}", self.cfg.remote_dir))),
            status::ROTATE_CONFLICT => Err(fatal(format!(
                "{text} in {} {on}: a rotated journal of that name is never overwritten; move it away if it is not the finished live file",
                self.cfg.remote_dir
            ))),
            status::APPLY => Err(Error::Apply(format!("the apply command failed {on}: {text}"))),
            status::APPLY_TIMEOUT => Err(Error::Apply(format!("the apply command timed out {on}: {text}"))),
            status::APPLY_BUSY => Err(transient(format!("{text} {on}; retrying"))),
            status::SIZE_BEFORE => Err(transient(format!("the standby's journal changed under us {on}: {text}; re-checking"))),
            status::SIZE_AFTER => Err(transient(format!(
                "an append to {} {on} was cut short (disk full on the standby, or the connection dropped) and undone: {text}",
                self.cfg.remote_dir
            ))),
            status::SUPERSEDED => Err(transient(format!("another connection took the standby over {on}; reconnecting"))),
            status::IO => Err(transient(format!("writing to {} {on} failed (disk full? permissions?): {text}", self.cfg.remote_dir))),
            other => Err(transient(format!("the remote script exited with status {other} {on}: {text}"))),
        }
    }
}

/// Reads exactly `len` bytes of the standby's `file` from `offset`.
fn read(conn: &mut Conn, l: &Layout, file: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let v = conn.capture(&l.read(file, offset, len))?;
    if v.len() as u64 != len {
        return Err(transient(format!(
            "reading {}/{file} at offset {offset}: got {} of {len} bytes",
            l.dir,
            v.len()
        )));
    }
    Ok(v)
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}
