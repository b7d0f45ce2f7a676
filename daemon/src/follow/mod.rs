//! Following one journal stream: the live file and, when it was rotated or
//! truncated before we finished it, the files our unread bytes went to.
//!
//! A [`Follower`] reads records from its current [`Segment`] into a
//! [`Batch`] until nothing more is available *now*. At that point it looks
//! around ([`transition`]): has the live path moved to a new file (rename
//! rotation)? has the file shrunk, or have the bytes before our position
//! changed (truncation in place, even if it has since regrown)? Each case is
//! decided by content, and each ends either with more to read, or with an
//! honest error or gap when bytes are gone.
//!
//! One follower serves one listener: listeners never wait for each other,
//! and a listener that must re-read (after a failure) just reopens its
//! follower at its acknowledged position.

mod batch;
mod error;
mod locate;
#[cfg(test)]
mod model_tests;
mod transition;

use std::path::PathBuf;
use std::sync::Arc;

use logdaemon_sdk::abi::{FLAG_DID_ROTATE, FLAG_INCOMPLETE};
use logdaemon_sdk::Position;
use logdaemon_state::{Cursor, Finished, Identity};

pub use batch::{Batch, GapEvent, Meta};
pub use error::{FollowError, Missing};

use crate::config::{JournalConfig, OnGap};
use crate::identity;
use crate::segment::{Segment, SegmentInfo};

/// What [`Follower::fill`] produced.
#[derive(Debug)]
pub enum Fill {
    /// The batch has entries (and may be full).
    Entries,
    /// Bytes that can no longer be delivered; only with `on_gap = "report"`.
    Gap(GapEvent),
    /// Nothing more is available now; the batch may still hold entries.
    Idle,
}

pub struct Follower {
    cfg: Arc<JournalConfig>,
    seg: Option<Segment>,
    /// Segments finished recently, to prove positions in them (bounded).
    recent: Vec<SegmentInfo>,
    pending_gap: Option<GapEvent>,
    /// After the live path moved on: one more read of the old file, then finish it.
    draining: bool,
    state_dir: Option<PathBuf>,
    /// First sequence number to give the live file when nothing says otherwise.
    next_sequence_hint: u64,
    /// Files finished before the cursor this follower was opened at.
    history: Vec<Finished>,
}

impl Follower {
    /// Opens the stream at `cursor` (a listener's acknowledged position), or
    /// at the journal's configured start when there is none.
    pub fn open(cfg: Arc<JournalConfig>, cursor: Option<&Cursor>, state_dir: Option<PathBuf>) -> Result<Follower, FollowError> {
        Follower::open_with_history(cfg, cursor, &[], state_dir)
    }

    /// Like [`Follower::open`], knowing the files finished before the
    /// cursor (the checkpoint's `finished` list): where content cannot prove
    /// the cursor's file (it was empty when acknowledged), the file written
    /// after the last finished one is it.
    pub fn open_with_history(
        cfg: Arc<JournalConfig>,
        cursor: Option<&Cursor>,
        finished: &[Finished],
        state_dir: Option<PathBuf>,
    ) -> Result<Follower, FollowError> {
        let mut f = Follower {
            cfg,
            seg: None,
            recent: Vec::new(),
            pending_gap: None,
            draining: false,
            state_dir,
            next_sequence_hint: 1,
            history: finished.to_vec(),
        };
        match cursor {
            Some(c) => f.open_at_cursor(c)?,
            None => f.open_at_start()?,
        }
        Ok(f)
    }

    pub fn journal(&self) -> &str {
        &self.cfg.name
    }

    /// The position of the next entry this follower will produce.
    pub fn position(&self) -> Option<Position> {
        self.seg.as_ref().map(|s| Position { sequence: s.sequence, offset: s.reader.offset(), line: s.reader.line() })
    }

    /// Reads entries into `batch` until it holds `max_bytes` or nothing more
    /// is available now.
    pub fn fill(&mut self, batch: &mut Batch, max_bytes: usize) -> Result<Fill, FollowError> {
        loop {
            if let Some(g) = self.pending_gap.take() {
                if !batch.is_empty() {
                    self.pending_gap = Some(g);
                    return Ok(Fill::Entries);
                }
                return Ok(Fill::Gap(g));
            }
            if batch.bytes.len() >= max_bytes {
                return Ok(Fill::Entries);
            }
            if self.seg.is_none() {
                if !self.try_open_live()? {
                    return Ok(idle(batch));
                }
                continue;
            }
            if batch.is_empty() && !self.draining {
                // Before reading on after a pause, make sure the file did not
                // change under our position (truncated and maybe regrown).
                let before = self.position();
                if self.check_truncated(batch)? {
                    self.note_crossing(batch, before);
                    continue;
                }
            }
            let seg = self.seg.as_mut().expect("segment");
            let plain = seg.file().is_some();
            let rec = seg.reader.next_available().map_err(|e| io_err(&self.cfg, &seg.path, e))?;
            match rec {
                Some(r) => {
                    let mut flags = 0;
                    if seg.did_rotate {
                        flags |= FLAG_DID_ROTATE;
                        seg.did_rotate = false;
                    }
                    if r.incomplete {
                        flags |= FLAG_INCOMPLETE;
                    }
                    if r.offset < identity::HEAD_WINDOW {
                        seg.head.feed(r.offset, r.bytes);
                    }
                    if !plain {
                        seg.ring.feed(r.bytes);
                    }
                    let nul = leading_nuls(&mut seg.nul_skipped, &seg.path, r.offset, r.bytes);
                    if nul == r.bytes.len() {
                        if flags & FLAG_DID_ROTATE != 0 {
                            seg.did_rotate = true;
                        }
                        continue;
                    }
                    let meta = Meta {
                        sequence: seg.sequence,
                        offset: r.offset + nul as u64,
                        len: (r.bytes.len() - nul) as u64,
                        line: r.line,
                        lines: r.lines,
                        flags,
                        start: 0,
                    };
                    batch.push(meta, &r.bytes[nul..]);
                }
                None => {
                    let before = self.position();
                    if !self.transition(batch)? {
                        return Ok(idle(batch));
                    }
                    self.note_crossing(batch, before);
                }
            }
        }
    }

    /// After a change of segment: if the one at `before` was finished and a
    /// later sequence begun, the batch's end moves to the new position, so
    /// that acknowledging the batch (even without entries) says everything
    /// of the finished file was handled, and a restart after that file is
    /// deleted or truncated does not look for it.
    fn note_crossing(&self, batch: &mut Batch, before: Option<Position>) {
        let (Some(before), Some(now)) = (before, self.position()) else { return };
        if now.sequence > before.sequence && self.pending_gap.is_none() {
            batch.end = Some(now);
        }
    }

    /// The files this follower finished recently, with the proof of each
    /// (for the checkpoint's `finished` list), oldest first.
    pub fn finished(&self) -> Vec<Finished> {
        let mut out: Vec<Finished> = self.history.clone();
        for info in &self.recent {
            let Some(id) = self.identity_at(Position { sequence: info.sequence, offset: info.end, line: 0 }) else { continue };
            if id.head_len > info.end {
                continue;
            }
            out.retain(|f| f.sequence != info.sequence);
            out.push(Finished {
                sequence: info.sequence,
                size: info.end,
                head_len: id.head_len,
                head_hash: id.head_hash,
                tail_len: id.tail_len,
                tail_hash: id.tail_hash,
                path: id.path,
            });
        }
        let keep = out.len().saturating_sub(8);
        out.drain(..keep);
        out
    }

    /// The identity proving `pos`, if `pos` lies in a segment this follower
    /// has open or finished recently.
    pub fn identity_at(&self, pos: Position) -> Option<Identity> {
        let info;
        let (path, key, head, file, ring) = match self.seg.as_ref().filter(|s| s.sequence == pos.sequence) {
            Some(s) => (&s.path, s.key, &s.head, s.file(), &s.ring),
            None => {
                info = self.recent.iter().rev().find(|i| i.sequence == pos.sequence)?;
                (&info.path, info.key, &info.head, info.file.as_ref(), &info.tail)
            }
        };
        let (head_len, head_hash, tail) = match file {
            Some(f) => {
                let (hl, hh) = identity::head_of(f, identity::HEAD_WINDOW).ok()?;
                (hl, hh, identity::tail_of(f, pos.offset).ok()?)
            }
            None => {
                let (hl, hh) = head.head();
                (hl, hh, ring.tail(pos.offset))
            }
        };
        let (tail_len, tail_hash) = tail.unwrap_or((0, Default::default()));
        Some(Identity {
            path: path.to_string_lossy().into_owned(),
            dev: key.map_or(0, |k| k.dev),
            inode: key.map_or(0, |k| k.ino),
            head_len,
            head_hash,
            tail_len,
            tail_hash,
        })
    }

    /// Bytes are gone: stop, or report a gap, as configured.
    fn on_gap(&mut self, m: Missing) -> Result<(), FollowError> {
        match self.cfg.on_gap {
            OnGap::Stop => Err(FollowError::Missing(Box::new(m))),
            OnGap::Report => {
                self.report_gap(m);
                Ok(())
            }
        }
    }

    /// Reports a gap to the listeners whatever `on_gap` says: used for the
    /// copytruncate window, which no follower can avoid.
    fn report_gap(&mut self, m: Missing) {
        let to = m.to.unwrap_or(Position { sequence: m.from.sequence + 1, offset: 0, line: 1 });
        tracing::warn!(journal = %self.cfg.name, from = %m.from, to = %to, cause = m.cause, "entries lost; reporting a gap");
        self.pending_gap = Some(GapEvent { from: m.from, to, cause: m.cause, detail: m.to_string() });
    }
}

fn idle(batch: &Batch) -> Fill {
    if batch.is_empty() {
        Fill::Idle
    } else {
        Fill::Entries
    }
}

/// How many leading bytes of a record are NUL filler to drop: a writer
/// without O_APPEND that kept writing at its old offset after a truncation
/// leaves a hole of NULs before its next record. A record made only of NULs
/// (and its newline) is dropped whole. The NULs are not entries; they are
/// reported in the log.
fn leading_nuls(skipped: &mut u64, path: &std::path::Path, offset: u64, raw: &[u8]) -> usize {
    let k = raw.iter().take_while(|&&b| b == 0).count();
    if k == 0 {
        return 0;
    }
    let k = if raw[k..] == *b"\n" || k == raw.len() { raw.len() } else { k };
    *skipped += k as u64;
    tracing::warn!(file = %path.display(), offset, bytes = k, "skipped NUL bytes: a writer without O_APPEND wrote past a truncation");
    k
}

pub(crate) fn io_err(cfg: &JournalConfig, path: &std::path::Path, e: std::io::Error) -> FollowError {
    FollowError::Io { journal: cfg.name.clone(), path: path.to_path_buf(), source: e }
}
