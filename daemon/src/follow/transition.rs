//! What happened to the file when there is nothing more to read: rotation,
//! truncation, deletion, or just a quiet writer.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use logdaemon_sdk::abi::{GapCause, FLAG_INCOMPLETE};
use logdaemon_sdk::Position;
use logdaemon_state::Identity;

use super::{io_err, Batch, FollowError, Follower, Meta, Missing};
use crate::compress::Compression;
use crate::identity::{self, FileKey, MismatchKind, Opened};
use crate::rotation::Candidate;
use crate::segment::{Origin, Source};

impl Follower {
    /// Called when the current segment has nothing more to read now.
    /// Returns true if reading can go on (new segment, new bytes, a gap).
    pub(super) fn transition(&mut self, batch: &mut Batch) -> Result<bool, FollowError> {
        let seg = self.seg.as_ref().expect("segment");
        if seg.compression != Compression::None {
            // A compressed file is complete once written: finish it.
            return self.finish_and_advance(batch);
        }
        if seg.origin == Origin::Rotated && self.continue_in_live()? {
            return Ok(true);
        }
        let seg = self.seg.as_ref().expect("segment");
        let path_md = std::fs::metadata(&self.cfg.path).ok();
        let path_key = path_md.as_ref().map(FileKey::of);
        let is_live = path_key.is_some() && path_key == seg.key;
        if is_live {
            // Same file at the live path: appended? truncated? quiet?
            // (The size counts as seen only once the content before our
            // position is proven unchanged: `check_truncated` records it.)
            let size = path_md.as_ref().map_or(0, |m| m.len());
            if self.check_truncated(batch)? {
                return Ok(true);
            }
            let seg = self.seg.as_ref().expect("segment");
            return Ok(size > seg.read_pos());
        }
        // The live path holds another file (or none): ours was renamed or
        // deleted. The writer has moved on once the new live file has data.
        // A file deleted since (compressed away, or removed) gets no more
        // records either: no writer appends to a journal no name leads to.
        let deleted = seg
            .file()
            .and_then(|f| f.metadata().ok())
            .is_some_and(|m| m.nlink() == 0);
        let moved_on =
            deleted || path_md.as_ref().is_some_and(|m| m.len() > 0) || self.has_newer_rotated()?;
        if !moved_on {
            // The writer may still append to our (renamed) file.
            let seg = self.seg.as_ref().expect("segment");
            let size = seg
                .file()
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.len());
            return Ok(size > seg.read_pos());
        }
        if !deleted && self.watching_for_late_writes() {
            let seg = self.seg.as_ref().expect("segment");
            let size = seg
                .file()
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.len());
            return Ok(size > seg.read_pos());
        }
        if !self.draining {
            // One more read: bytes appended before the writer moved on.
            self.draining = true;
            return Ok(true);
        }
        self.finish_and_advance(batch)
    }

    /// Whether the renamed file the writer has moved on from is still
    /// watched for writers that hold it open (several workers, a graceful
    /// restart): for `late_writes` after the move was first seen, unless
    /// it was neither renamed nor written for that long already (its
    /// status change time: renamed long ago, read after an outage).
    fn watching_for_late_writes(&mut self) -> bool {
        let bound = self.cfg.late_writes;
        let seg = self.seg.as_mut().expect("segment");
        let seen = *seg.moved_on_at.get_or_insert_with(std::time::Instant::now);
        let changed = seg.file().and_then(|f| f.metadata().ok()).map(|m| {
            std::time::UNIX_EPOCH
                + std::time::Duration::new(m.ctime().max(0) as u64, m.ctime_nsec().max(0) as u32)
        });
        let quiet = changed
            .and_then(|c| c.elapsed().ok())
            .is_some_and(|q| q >= bound);
        !quiet && seen.elapsed() < bound
    }

    /// At the end of a plain rotated file: if the live file holds the same
    /// bytes and more, the rotated file is a copy still being made (a
    /// copytruncate before its truncation, a `cp` of the journal), not a
    /// finished file. Reads on in the live file at the same position, where
    /// a later truncation is noticed and its copy found as usual. Returns
    /// whether it switched.
    fn continue_in_live(&mut self) -> Result<bool, FollowError> {
        let seg = self.seg.as_ref().expect("segment");
        let Some(pf) = seg.reader.get_ref().plain() else {
            return Ok(false);
        };
        let pos = pf.pos;
        let Ok(live) = std::fs::metadata(&self.cfg.path) else {
            return Ok(false);
        };
        if Some(FileKey::of(&live)) == seg.key || live.len() < pos {
            return Ok(false);
        }
        // Bytes shared with the live file prove a copy only if they hold a
        // whole record: a finished file holding just the start of a record
        // cut by its rotation shares those bytes with any live file whose
        // first record begins the same (every p4 record starts with `@`).
        if seg.reader.offset() == 0 {
            return Ok(false);
        }
        // A live file created after our file's last write cannot be what our
        // file is a copy of: ours is a finished file (renamed away before the
        // live file was created), however few bytes it shares with it.
        let ours_written = pf.file.metadata().ok().and_then(|m| m.modified().ok());
        if let (Ok(born), Some(written)) = (live.created(), ours_written) {
            if born > written {
                return Ok(false);
            }
        }
        let io = |e| io_err(&self.cfg, &seg.path, e);
        let (head_len, head_hash) =
            identity::head_of(&pf.file, identity::HEAD_WINDOW).map_err(io)?;
        let tail_len = pos.min(identity::TAIL_WINDOW);
        let Some(tail_hash) = identity::tail_len_of(&pf.file, pos, tail_len).map_err(io)? else {
            return Ok(false);
        };
        if head_len == 0 {
            return Ok(false);
        }
        let id = Identity {
            path: String::new(),
            dev: 0,
            inode: 0,
            head_len,
            head_hash,
            tail_len,
            tail_hash,
        };
        let Ok(o) = identity::open_matching(&self.cfg.path, &id, pos) else {
            return Ok(false);
        };
        if o.compression != Compression::None {
            return Ok(false);
        }
        tracing::info!(journal = %self.cfg.name, copy = %seg.path.display(), offset = pos, "the rotated file is a copy still being made; reading on in the live file");
        let seg = self.seg.as_mut().expect("segment");
        *seg.reader.get_mut() = o.source;
        seg.origin = Origin::Live;
        seg.key = o.key;
        seg.path = o.path;
        self.draining = false;
        Ok(true)
    }

    /// Is there a rotated file newer than the current segment (so the
    /// current one is complete even if the live path is empty)?
    fn has_newer_rotated(&self) -> Result<bool, FollowError> {
        let seg = self.seg.as_ref().expect("segment");
        let Some(key) = seg.key else { return Ok(true) };
        let candidates = self.candidates()?;
        let pos = candidates
            .iter()
            .position(|c| std::fs::metadata(&c.path).is_ok_and(|m| FileKey::of(&m) == key));
        Ok(match pos {
            Some(i) if i + 1 < candidates.len() => true,
            // The names put no file after ours; a rotated file created after
            // ours says the writer moved on all the same (names that count
            // the other way, which the successor choice then refuses).
            Some(i) => {
                // Created and last written after ours: a compressor gives
                // an older file a new birth time, not a later last write.
                let times = |p: &std::path::Path| {
                    let m = std::fs::metadata(p).ok()?;
                    let born = super::locate::unproven::birth_time(&m).ok()?;
                    Some((born, m.modified().ok()?))
                };
                times(&candidates[i].path).is_some_and(|(born, written)| {
                    candidates[..i]
                        .iter()
                        .any(|c| times(&c.path).is_some_and(|(b, w)| b > born && w > written))
                })
            }
            None => false,
        })
    }

    /// Delivers the cut-off tail of the current segment (if any) and moves to
    /// the next one. Returns whether there is something to read.
    fn finish_and_advance(&mut self, batch: &mut Batch) -> Result<bool, FollowError> {
        let seg = self.seg.as_mut().expect("segment");
        let plain = seg.file().is_some();
        // The copy of a truncated live file that ends inside a record, when
        // the live file was seen to hold more: the rest of that record is
        // in the copytruncate window, so the record goes whole into the gap
        // rather than half of it to the listeners.
        let data_end = seg.reader.offset() + seg.reader.buffered() as u64;
        let withhold_cut = seg
            .truncated_live
            .is_some_and(|max_seen| max_seen > data_end);
        let mut gap_from = None;
        loop {
            let rec = seg
                .reader
                .finish()
                .map_err(|e| io_err(&self.cfg, &seg.path, e))?;
            let Some(r) = rec else { break };
            if r.incomplete && withhold_cut {
                tracing::warn!(journal = %self.cfg.name, file = %seg.path.display(), offset = r.offset, bytes = r.bytes.len(), "the copy ends inside a record whose rest was truncated away; the record is reported with the gap");
                gap_from = Some((r.offset, r.line));
                break;
            }
            let mut flags = 0;
            if seg.did_rotate {
                flags |= logdaemon_sdk::abi::FLAG_DID_ROTATE;
                seg.did_rotate = false;
            }
            if r.incomplete {
                flags |= FLAG_INCOMPLETE;
                tracing::warn!(journal = %self.cfg.name, file = %seg.path.display(), offset = r.offset, "record cut off at the end of a rotated file; delivered as incomplete");
            }
            let meta = Meta {
                sequence: seg.sequence,
                offset: r.offset,
                len: r.bytes.len() as u64,
                line: r.line,
                lines: r.lines,
                flags,
                start: 0,
            };
            if !plain {
                seg.ring.feed(r.bytes);
            }
            batch.push(meta, r.bytes);
        }
        self.draining = false;
        if let Some(max_seen) = seg.truncated_live.take() {
            // The live file the copy was made of is its new content now.
            self.live_truncated = true;
            let (end, line) = gap_from.unwrap_or((seg.reader.offset(), seg.reader.line()));
            if max_seen > end {
                let m = Missing {
                    journal: self.cfg.name.clone(),
                    live: self.cfg.path.clone(),
                    from: Position { sequence: seg.sequence, offset: end, line },
                    to: Some(Position { sequence: seg.sequence, offset: max_seen, line: 0 }),
                    cause: GapCause::Copytruncate,
                    looked_at: vec![(seg.path.clone(), format!("the copy ends at offset {end}; the live file had been seen at {max_seen} bytes before it was truncated"))],
                    state_dir: self.state_dir.clone(),
                    resume_in: None,
                    gone: None,
                    bytes: Some(max_seen - end),
                };
                self.report_gap(m);
            }
        }
        self.open_successor()
    }
}

mod truncation;

#[cfg(test)]
mod tests;
