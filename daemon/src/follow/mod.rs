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
//! A follower reads for one journal's listeners through its [`crate::tap`]
//! (or for one listener that reads on its own): a listener that must
//! re-read on its own just opens a follower at its position.

mod batch;
mod error;
mod idle;
mod locate;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod race_tests;
mod transition;

use std::path::PathBuf;
use std::sync::Arc;

use logdaemon_sdk::abi::{GapCause, FLAG_DID_ROTATE, FLAG_INCOMPLETE};
use logdaemon_sdk::Position;
use logdaemon_state::{Cursor, Finished, Identity};

pub use batch::{Batch, GapEvent, Meta};
pub use error::{CutShort, FollowError, Missing};

use crate::config::{JournalConfig, OnGap};
use crate::identity;
use crate::segment::{Segment, SegmentInfo};

/// Read-buffer room beyond a batch's `max_bytes`, for the record that
/// crosses it.
const RECORD_SLACK: usize = 64 * 1024;

/// A batch of at most this many bytes is copied out of the read buffer it
/// took when its fill is over (see [`Batch::unview_if_small`]).
const COPY_BELOW: usize = 4096;
/// Records taken from the reader at once, at most (see
/// [`RecordReader::take_lines`](crate::format::RecordReader::take_lines)).
const RUN: usize = 256;

/// Entries a batch makes room for at once, at most (a batch of tiny
/// records grows beyond by doubling).
const RESERVE_MAX: usize = 1 << 16;

/// What [`Follower::fill`] produced.
#[derive(Debug, Clone)]
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
    /// The live file, when opened next, is its new content after a
    /// truncation (the copy of a copytruncate was read to its end).
    live_truncated: bool,
    /// A record read after the NUL hole reported as `pending_gap`: it is
    /// delivered after that gap.
    held: Option<(Meta, Vec<u8>)>,
    /// Finished files found grown (sequence, size now), reported once each.
    late_reported: std::cell::RefCell<Vec<(u64, u64)>>,
    /// The files' `stat` when the last fill found nothing (see [`idle`]).
    idle_stamp: Option<idle::Stamp>,
}

impl Follower {
    /// Opens the stream at `cursor` (a listener's acknowledged position), or
    /// at the journal's configured start when there is none.
    #[cfg(test)]
    pub fn open(
        cfg: Arc<JournalConfig>,
        cursor: Option<&Cursor>,
        state_dir: Option<PathBuf>,
    ) -> Result<Follower, FollowError> {
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
            live_truncated: false,
            held: None,
            late_reported: Default::default(),
            idle_stamp: None,
        };
        match cursor {
            Some(c) => f.open_at_cursor(c)?,
            None => f.open_at_start()?,
        }
        Ok(f)
    }

    /// The position of the next entry this follower will produce.
    pub fn position(&self) -> Option<Position> {
        self.seg.as_ref().map(|s| Position {
            sequence: s.sequence,
            offset: s.reader.offset(),
            line: s.reader.line(),
        })
    }

    /// Where this follower is, told apart from another follower's: the
    /// position and the file it is in (two followers may number files
    /// differently, so a position alone does not say they are in the same
    /// place). `None` while no file is open.
    pub fn mark(&self) -> Option<Mark> {
        let seg = self.seg.as_ref()?;
        Some(Mark {
            pos: self.position()?,
            key: seg.key,
        })
    }

    /// Whether nothing but the files decides what the next fill produces:
    /// no gap or record held for the next batch, not draining a renamed
    /// file. Only then may this follower stand in for another at the same
    /// [`mark`](Self::mark) (see [`crate::tap`]).
    pub fn at_rest(&self) -> bool {
        self.pending_gap.is_none() && self.held.is_none() && !self.draining
    }

    /// Reads entries into `batch` until it holds `max_bytes` or nothing more
    /// is available now.
    ///
    /// A batch may end earlier: the records read in one go are handed over
    /// in the reader's buffer itself, not copied, and a batch holds one
    /// such buffer.
    pub fn fill(&mut self, batch: &mut Batch, max_bytes: usize) -> Result<Fill, FollowError> {
        let r = self.fill_entries(batch, max_bytes);
        self.settle(batch);
        // A live journal's few new lines: copied out of the read buffer it
        // took, which goes back to the pool at once. A batch waiting for
        // its listeners then holds its bytes, not a read buffer: thousands
        // of journals written at once hold a few buffers, not one each.
        batch.unview_if_small(COPY_BELOW);
        r
    }

    /// Gives `batch` the bytes of the records it holds that are still in
    /// the reader's buffer, and stops pinning them. Called before anything
    /// that may change or drop the segment, and before returning a batch.
    fn settle(&mut self, batch: &mut Batch) {
        let Some(seg) = self.seg.as_mut() else {
            debug_assert!(
                !batch.awaits_view(),
                "records pinned in a segment that is gone"
            );
            return;
        };
        if !batch.awaits_view() {
            seg.reader.unpin();
        } else if seg.reader.buffered() > seg.reader.pinned_len() {
            // The reader holds more bytes than the batch needs: copy the few.
            batch.copy_in(seg.reader.pinned());
            seg.reader.unpin();
        } else {
            let (buf, pinned) = seg.reader.hand_off(batch.take_spare());
            batch.adopt(buf, pinned.start);
        }
    }

    fn fill_entries(&mut self, batch: &mut Batch, max_bytes: usize) -> Result<Fill, FollowError> {
        let mut ends = [0usize; RUN];
        loop {
            if let Some(g) = self.pending_gap.take() {
                if !batch.is_empty() {
                    self.pending_gap = Some(g);
                    return Ok(Fill::Entries);
                }
                return Ok(Fill::Gap(g));
            }
            if let Some((meta, raw)) = self.held.take() {
                batch.push(meta, &raw);
            }
            if batch.size() >= max_bytes || batch.has_view() {
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
                self.settle(batch);
                if self.check_truncated(batch)? {
                    self.note_crossing(batch, before);
                    continue;
                }
            }
            let seg = self.seg.as_mut().expect("segment");
            let plain = seg.file().is_some();
            // Room for a whole batch and the record that ends it: a batch
            // ends at `max_bytes`, not at a full buffer.
            seg.reader
                .set_resting(max_bytes.saturating_add(RECORD_SLACK));
            if seg.reader.capacity() == 0 {
                // A new or released buffer: as large as what there is to read.
                let hint = match seg.file() {
                    Some(f) => f
                        .metadata()
                        .map_or(0, |m| m.len().saturating_sub(seg.read_pos()) as usize),
                    None => usize::MAX,
                };
                seg.reader.size_hint(hint);
            }
            seg.reader.pin();
            let at = seg.reader.pinned_len();
            if !seg.did_rotate && !seg.nul_fill && !one_by_one() {
                // The records already read that need nothing but their
                // place in the batch, all at once.
                let limit = max_bytes - batch.size();
                if let Some(run) = seg.reader.take_lines(limit, &mut ends) {
                    let ends = &ends[..run.count];
                    if run.offset < identity::HEAD_WINDOW {
                        let mut from = 0;
                        for &to in ends {
                            seg.head
                                .feed(run.offset + from as u64, &run.bytes[from..to]);
                            from = to;
                        }
                    }
                    if !plain {
                        seg.ring.feed(run.bytes);
                    }
                    self.live_truncated = false;
                    // Room for the entries of as many such records as the
                    // batch may still take from what was read, at once
                    // rather than doubling.
                    let avg = (run.bytes.len() / run.count).max(1);
                    let more = limit.min(run.bytes.len() + run.rest) / avg;
                    batch.reserve(run.count, (more + more / 8).clamp(run.count, RESERVE_MAX));
                    batch.push_lines(seg.sequence, run.offset, run.line, ends, at);
                    continue;
                }
            }
            #[cfg(test)]
            race_tests::before_read();
            let rec = match seg.reader.next_available() {
                Ok(r) => r,
                Err(e) => {
                    let (path, sequence) = (seg.path.clone(), seg.sequence);
                    return Err(self.read_err(&path, sequence, e));
                }
            };
            match rec {
                Some(r) => {
                    let mut flags = 0;
                    if seg.did_rotate {
                        flags |= FLAG_DID_ROTATE;
                        seg.did_rotate = false;
                    }
                    if r.incomplete {
                        // Only a record the bytes after it prove unclosable
                        // comes incomplete from a file that may still grow.
                        flags |= FLAG_INCOMPLETE;
                        tracing::warn!(journal = %self.cfg.name, file = %seg.path.display(), sequence = seg.sequence, offset = r.offset, line = r.line, bytes = r.bytes.len(), "a record that can never complete (a p4 string never closed: an odd number of unescaped @); delivered as incomplete, reading on at the next record");
                    }
                    if r.offset < identity::HEAD_WINDOW {
                        seg.head.feed(r.offset, r.bytes);
                    }
                    if !plain {
                        seg.ring.feed(r.bytes);
                    }
                    let nul = if seg.nul_fill {
                        leading_nuls(&mut seg.nul_skipped, &seg.path, r.offset, r.bytes)
                    } else {
                        0
                    };
                    let meta = Meta {
                        sequence: seg.sequence,
                        offset: r.offset + nul as u64,
                        len: (r.bytes.len() - nul) as u64,
                        line: r.line,
                        lines: r.lines,
                        flags,
                        start: 0,
                    };
                    if nul == 0 {
                        seg.nul_fill = false;
                        self.live_truncated = false;
                        batch.push_view(meta, at);
                        continue;
                    }
                    // The hole is a gap, reported before the record after it.
                    let whole = nul == r.bytes.len();
                    let gap_to = Position {
                        sequence: seg.sequence,
                        offset: r.offset + nul as u64,
                        line: if whole { r.line + r.lines } else { r.line },
                    };
                    let from = Position {
                        sequence: seg.sequence,
                        offset: r.offset,
                        line: r.line,
                    };
                    let detail = format!(
                        "{}: {nul} NUL bytes at offset {} of the file's new content after a truncation: the hole a writer without O_APPEND left at its old offset; not entries",
                        seg.path.display(),
                        r.offset
                    );
                    if whole {
                        if flags & FLAG_DID_ROTATE != 0 {
                            seg.did_rotate = true;
                        }
                    } else {
                        seg.nul_fill = false;
                        self.live_truncated = false;
                        self.held = Some((meta, r.bytes[nul..].to_vec()));
                    }
                    self.pending_gap = Some(GapEvent {
                        from,
                        to: gap_to,
                        cause: GapCause::NulFill,
                        detail,
                    });
                }
                None => {
                    let full = seg.reader.is_full();
                    self.settle(batch);
                    if full {
                        // The batch took the buffer (or copied the few
                        // records it needed): the reader has room again.
                        continue;
                    }
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
        let (Some(before), Some(now)) = (before, self.position()) else {
            return;
        };
        if now.sequence > before.sequence && self.pending_gap.is_none() {
            batch.end = Some(now);
        }
    }

    /// The files this follower finished recently, with the proof of each
    /// (for the checkpoint's `finished` list), oldest first.
    pub fn finished(&self) -> Vec<Finished> {
        let mut out: Vec<Finished> = self.history.clone();
        for info in &self.recent {
            // Its first bytes as far as they were read: a writer may have
            // appended to it since (late writes), and the proof must hold
            // the file as it was left.
            let pos = Position {
                sequence: info.sequence,
                offset: info.end,
                line: 0,
            };
            let Some(id) = self.identity_with_head(pos, identity::HEAD_WINDOW.min(info.end)) else {
                continue;
            };
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

    /// Like [`identity_at`](Self::identity_at), only where `pos` lies in a
    /// plain file this follower holds: its proof is then read from the
    /// file, right for any position in it (a compressed file's proof is
    /// kept for where the follower stands only).
    pub fn identity_in_file(&self, pos: Position) -> Option<Identity> {
        let plain = match self.seg.as_ref().filter(|s| s.sequence == pos.sequence) {
            Some(s) => s.file().is_some(),
            None => self
                .recent
                .iter()
                .rev()
                .find(|i| i.sequence == pos.sequence)
                .is_some_and(|i| i.file.is_some()),
        };
        if !plain {
            return None;
        }
        self.identity_at(pos)
    }

    /// The identity proving `pos`, if `pos` lies in a segment this follower
    /// has open or finished recently.
    pub fn identity_at(&self, pos: Position) -> Option<Identity> {
        self.identity_with_head(pos, identity::HEAD_WINDOW)
    }

    /// [`identity_at`](Self::identity_at) with a head of at most
    /// `head_window` bytes, where it is read from the file.
    fn identity_with_head(&self, pos: Position, head_window: u64) -> Option<Identity> {
        let info;
        let (path, key, head, file, ring) =
            match self.seg.as_ref().filter(|s| s.sequence == pos.sequence) {
                Some(s) => (&s.path, s.key, &s.head, s.file(), &s.ring),
                None => {
                    info = self
                        .recent
                        .iter()
                        .rev()
                        .find(|i| i.sequence == pos.sequence)?;
                    (
                        &info.path,
                        info.key,
                        &info.head,
                        info.file.as_ref(),
                        &info.tail,
                    )
                }
            };
        let (head_len, head_hash, tail) = match file {
            Some(f) => {
                let (hl, hh) = identity::head_of(f, head_window).ok()?;
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
        let to = m.to.unwrap_or(Position {
            sequence: m.from.sequence + 1,
            offset: 0,
            line: 1,
        });
        tracing::warn!(journal = %self.cfg.name, from = %m.from, to = %to, cause = %m.cause, "entries lost; reporting a gap");
        self.pending_gap = Some(GapEvent {
            from: m.from,
            to,
            cause: m.cause,
            detail: m.to_string(),
        });
    }
}

/// A follower's place: see [`Follower::mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub pos: Position,
    pub key: Option<crate::identity::FileKey>,
}

fn idle(batch: &Batch) -> Fill {
    if batch.is_empty() {
        Fill::Idle
    } else {
        Fill::Entries
    }
}

/// How many leading bytes of a record are NUL filler to drop, in the live
/// file's new content after a truncation only (`Segment::nul_fill`): a
/// writer without O_APPEND that kept writing at its old offset leaves a
/// hole of NULs before its next record. A record made only of NULs (and
/// its newline) is dropped whole. The NULs are not entries; they are
/// logged here and reported to the listeners as a `nul-fill` gap.
fn leading_nuls(skipped: &mut u64, path: &std::path::Path, offset: u64, raw: &[u8]) -> usize {
    let k = raw.iter().take_while(|&&b| b == 0).count();
    if k == 0 {
        return 0;
    }
    let k = if raw[k..] == *b"\n" || k == raw.len() {
        raw.len()
    } else {
        k
    };
    *skipped += k as u64;
    tracing::warn!(file = %path.display(), offset, bytes = k, "skipped NUL bytes: a writer without O_APPEND wrote past a truncation");
    k
}

pub(crate) fn io_err(
    cfg: &JournalConfig,
    path: &std::path::Path,
    e: std::io::Error,
) -> FollowError {
    FollowError::Io {
        journal: cfg.name.clone(),
        path: path.to_path_buf(),
        source: e,
    }
}

#[cfg(test)]
thread_local! {
    /// Tests only: take records one at a time, the path the runs of
    /// [`RecordReader::take_lines`](crate::format::RecordReader::take_lines)
    /// are checked against.
    static ONE_BY_ONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the runs of one-line records are off (tests only).
#[inline(always)]
fn one_by_one() -> bool {
    #[cfg(test)]
    return ONE_BY_ONE.with(|c| c.get());
    #[cfg(not(test))]
    false
}

#[cfg(test)]
mod fill_tests;
