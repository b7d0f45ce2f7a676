//! The live file no longer holds the bytes before the read position:
//! truncated in place (maybe regrown), or copied to its numbered name and
//! truncated. The rest of our bytes are found in the copy or reported
//! lost, then the file's new content is read.

use super::*;

impl Follower {
    /// Checks that the live file still holds the bytes before our read
    /// position. If not (truncated in place, maybe regrown), finds the rest
    /// of our bytes in a copy or reports them lost, then moves on to the
    /// file's new content. Returns true if it changed segments.
    pub(in crate::follow) fn check_truncated(
        &mut self,
        batch: &mut Batch,
    ) -> Result<bool, FollowError> {
        let Some(seg) = self.seg.as_mut() else {
            return Ok(false);
        };
        if seg.origin != Origin::Live {
            return Ok(false);
        }
        let Source::Plain(pf) = seg.reader.get_mut() else {
            return Ok(false);
        };
        let md = pf
            .file
            .metadata()
            .map_err(|e| io_err(&self.cfg, &seg.path, e))?;
        let read_pos = pf.pos;
        // Less of the file known than proves it was not replaced: its first
        // bytes as known before `still_there` learns more of them (which may
        // already be a regrown file's).
        let weak = (pf.first().len() < crate::segment::VERIFY_LEN)
            .then(|| (pf.first().to_vec(), pf.last().to_vec()));
        if md.len() >= read_pos {
            match pf.still_there() {
                Ok(true) if weak.is_some() => {
                    // The few bytes we know do not prove that the file was not
                    // copied and truncated (and regrown alike) before we looked.
                    let (head, last) = weak.expect("weak");
                    let max_seen = seg.max_size_seen.max(read_pos);
                    if self.continue_in_numbered_copy(&head, &last, read_pos, max_seen)? {
                        return Ok(true);
                    }
                    let seg = self.seg.as_mut().expect("segment");
                    seg.max_size_seen = seg.max_size_seen.max(md.len());
                    return Ok(false);
                }
                Ok(true) => {
                    // Only a size measured on our own content counts as seen.
                    seg.max_size_seen = seg.max_size_seen.max(md.len());
                    return Ok(false);
                }
                Ok(false) => {}
                Err(e) => return Err(io_err(&self.cfg, &seg.path, e)),
            }
        }
        // Truncated. Where did the bytes after `read_pos` go?
        let Source::Plain(pf) = seg.reader.get_ref() else {
            return Ok(false);
        };
        let last = pf.last().to_vec();
        // The longest prefix we know: what we read, or what we first saw.
        let head = if pf.first().len() > seg.head.bytes().len() {
            pf.first().to_vec()
        } else {
            seg.head.bytes().to_vec()
        };
        let seq = seg.sequence;
        let max_seen = seg.max_size_seen.max(read_pos);
        let nlink = md.nlink();
        let path = seg.path.clone();
        tracing::info!(journal = %self.cfg.name, file = %path.display(), read_pos, size = md.len(), nlink, "file truncated in place");
        let id = Identity {
            path: String::new(),
            dev: 0,
            inode: 0,
            head_len: head.len() as u64,
            head_hash: logdaemon_state::Hash::of(&head),
            tail_len: last.len() as u64,
            tail_hash: logdaemon_state::Hash::of(&last),
        };
        let candidates = self.candidates()?;
        let mut looked_at = Vec::new();
        // A copy that holds our first bytes but ends before the position.
        let mut copy_short = false;
        // With journal numbers, the copy of journal N is `journal.N`: other
        // journals can share a few first bytes with ours but hold none of it.
        let numbered = candidates.iter().any(|c| c.number.is_some());
        for c in candidates
            .iter()
            .rev()
            .filter(|c| !numbered || c.number == Some(seq))
        {
            match identity::open_matching(&c.path, &id, read_pos) {
                Ok(o) => {
                    // Continue in the copy: same sequence, same buffer.
                    tracing::info!(journal = %self.cfg.name, copy = %o.path.display(), offset = read_pos, "reading the rest from the rotated copy");
                    let seg = self.seg.as_mut().expect("segment");
                    *seg.reader.get_mut() = o.source;
                    seg.origin = Origin::Rotated;
                    seg.compression = o.compression;
                    seg.key = o.key;
                    seg.path = o.path;
                    seg.truncated_live = Some(max_seen);
                    return Ok(true);
                }
                Err(m) => {
                    copy_short |= m.kind == MismatchKind::TooShort;
                    looked_at.push((m.path, m.why));
                }
            }
        }
        // No copy holds our position. If we had read everything we ever saw,
        // nothing is known to be lost: the file simply starts again.
        let lost = max_seen > read_pos;
        let (from, line) = self.restart_live_after_truncation(batch, lost)?;
        if lost {
            // A copy that ends before the bytes we saw but did not read is a
            // copytruncate window: those bytes exist in no file. Without any
            // copy, the truncation destroyed them.
            // Stopping drops the batch: its entries of this file, read before
            // the truncation and held nowhere else now, are lost with the
            // rest, so the stop names the first of them.
            let stops = !copy_short && self.cfg.on_gap == crate::config::OnGap::Stop;
            let (from, line) = match batch.entries.iter().find(|e| e.sequence == seq) {
                Some(e) if stops => (e.offset, e.line),
                _ => (from, line),
            };
            let m = Missing {
                journal: self.cfg.name.clone(),
                live: self.cfg.path.clone(),
                from: Position {
                    sequence: seq,
                    offset: from,
                    line,
                },
                to: Some(Position {
                    sequence: seq,
                    offset: max_seen,
                    line: 0,
                }),
                cause: if copy_short {
                    GapCause::Copytruncate
                } else {
                    GapCause::Truncated
                },
                looked_at,
                state_dir: self.state_dir.clone(),
                resume_in: None,
                gone: None,
                bytes: Some(max_seen - from),
            };
            if copy_short {
                self.report_gap(m);
            } else {
                self.on_gap(m)?;
            }
        }
        Ok(true)
    }

    /// The live file we hold, of which we know too few bytes to prove it was
    /// not replaced: if a rotated file carries its journal number (p4 names
    /// the copy of journal N `journal.N`), is another file, and holds what
    /// we know up to `read_pos`, the live file was copied and truncated, and
    /// the rest of its records are in the copy only. Continues in the copy
    /// (same sequence); the live file's new content is the next sequence.
    /// `max_seen` is the largest size seen of the live file's content.
    /// Returns whether it switched.
    fn continue_in_numbered_copy(
        &mut self,
        head: &[u8],
        last: &[u8],
        read_pos: u64,
        max_seen: u64,
    ) -> Result<bool, FollowError> {
        let seg = self.seg.as_ref().expect("segment");
        let seq = seg.sequence;
        let our_key = seg.key;
        let candidates = self.candidates()?;
        let Some(o) = numbered_copy(&candidates, seq, our_key, head, last, read_pos) else {
            return Ok(false);
        };
        tracing::info!(journal = %self.cfg.name, copy = %o.path.display(), sequence = seq, offset = read_pos, "the live file was copied and truncated; reading the rest from the copy");
        let seg = self.seg.as_mut().expect("segment");
        *seg.reader.get_mut() = o.source;
        seg.origin = Origin::Rotated;
        seg.compression = o.compression;
        seg.key = o.key;
        seg.path = o.path;
        if read_pos == 0 {
            seg.head = o.head;
        }
        seg.truncated_live = Some(max_seen);
        self.draining = false;
        Ok(true)
    }

    /// Makes the live file's reads, while too little of it is known to
    /// prove it was not replaced, check that it was not copied to its
    /// numbered name (`journal.N`) and truncated between the follower's
    /// last look and the read: the look and the read are two system calls.
    /// Line logs carry no journal numbers: nothing to check by name.
    pub(in crate::follow) fn guard_live(&mut self) {
        if !self.cfg.scheme.patterns().any(|p| p.contains("{N}")) {
            return;
        }
        let Some(seg) = self.seg.as_mut().filter(|s| s.origin == Origin::Live) else {
            return;
        };
        let (cfg, seq, ours) = (self.cfg.clone(), seg.sequence, seg.key);
        let Source::Plain(pf) = seg.reader.get_mut() else {
            return;
        };
        pf.guard(Arc::new(move |head: &[u8], last: &[u8], read_pos: u64| {
            let Ok(candidates) = cfg.scheme.candidates() else { return false };
            let copy = numbered_copy(&candidates, seq, ours, head, last, read_pos);
            if let Some(o) = &copy {
                tracing::info!(journal = %cfg.name, copy = %o.path.display(), sequence = seq, offset = read_pos, "the live file was copied before this read; it is read from the copy instead");
            }
            copy.is_some()
        }));
    }

    /// After a truncation: the records of the old content still buffered
    /// are delivered, and its cut-off tail as incomplete, unless `lost`
    /// (the file was seen to hold bytes after our position, now gone): then
    /// the rest of that record is gone with them and the record belongs in
    /// the gap. Returns the offset and line where the old content's
    /// delivery ends (where a gap begins). The live file's new content is
    /// the next sequence, from offset 0.
    fn restart_live_after_truncation(
        &mut self,
        batch: &mut Batch,
        lost: bool,
    ) -> Result<(u64, u64), FollowError> {
        let mut seg = self.seg.take().expect("segment");
        let mut end = (seg.reader.offset(), seg.reader.line());
        while let Some(r) = seg
            .reader
            .finish()
            .map_err(|e| io_err(&self.cfg, &seg.path, e))?
        {
            if r.incomplete && lost {
                tracing::warn!(journal = %self.cfg.name, file = %seg.path.display(), offset = r.offset, bytes = r.bytes.len(), "record cut by a truncation, its rest gone; reported with the gap");
                break;
            }
            if r.incomplete {
                tracing::warn!(journal = %self.cfg.name, file = %seg.path.display(), offset = r.offset, bytes = r.bytes.len(), "partial record before a truncation is cut off; delivered as incomplete");
            }
            end = (r.offset + r.bytes.len() as u64, r.line + r.lines);
            let mut flags = if r.incomplete { FLAG_INCOMPLETE } else { 0 };
            if seg.did_rotate {
                flags |= logdaemon_sdk::abi::FLAG_DID_ROTATE;
                seg.did_rotate = false;
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
            batch.push(meta, r.bytes);
        }
        // The file now holds other bytes: prove positions in the old content
        // from what we kept of it, not by reading the file again.
        let mut info = seg.info();
        if let Some(pf) = seg.reader.get_ref().plain() {
            let mut ring = crate::identity::TailRing::new(
                crate::segment::VERIFY_LEN,
                pf.pos - pf.last().len() as u64,
            );
            ring.feed(pf.last());
            info.tail = ring;
        }
        info.file = None;
        self.recent.push(info);
        if self.recent.len() > 4 {
            self.recent.remove(0);
        }
        self.next_sequence_hint = seg.sequence + 1;
        // The new content is in the file we hold, from offset 0: not
        // necessarily the file at the live path, which may be another one
        // if ours was renamed away since it was truncated.
        let Some(file) = seg.file().cloned() else {
            self.live_truncated = true;
            if self.try_open_live()? {
                self.seg.as_mut().expect("segment").did_rotate = true;
            }
            return Ok(end);
        };
        let source = Source::Plain(crate::segment::PlainFile::new(file, 0));
        let mut new = crate::segment::Segment::new(
            seg.sequence + 1,
            self.cfg.path.clone(),
            Origin::Live,
            Compression::None,
            seg.key,
            source,
            &self.cfg.format,
            0,
            1,
        );
        new.did_rotate = true;
        new.nul_fill = true;
        self.seg = Some(new);
        self.guard_live();
        self.draining = false;
        // What the file holds now may itself have been copied and truncated
        // since (a copytruncate after the truncation, before we looked).
        self.continue_in_numbered_copy(&[], &[], 0, 0)?;
        Ok(end)
    }
}

/// The rotated file carrying journal number `seq` (p4 names the copy of
/// journal N `journal.N`), if it is another file than `ours` and holds
/// `head` and `last` up to `read_pos`: opened there.
fn numbered_copy(
    candidates: &[Candidate],
    seq: u64,
    ours: Option<FileKey>,
    head: &[u8],
    last: &[u8],
    read_pos: u64,
) -> Option<Opened> {
    let c = candidates.iter().find(|c| c.number == Some(seq))?;
    let md = std::fs::metadata(&c.path).ok()?;
    if Some(FileKey::of(&md)) == ours {
        return None;
    }
    let id = Identity {
        path: String::new(),
        dev: 0,
        inode: 0,
        head_len: head.len() as u64,
        head_hash: logdaemon_state::Hash::of(head),
        tail_len: last.len() as u64,
        tail_hash: logdaemon_state::Hash::of(last),
    };
    identity::open_matching(&c.path, &id, read_pos).ok()
}
