//! After a finished file: finding and opening the file written after it
//! (the next rotated file, or the live one), proving by content that no
//! file was skipped.

use super::*;

impl Follower {
    /// After the current segment is finished: open the file written after
    /// it. Returns false if there is none yet.
    pub(in crate::follow) fn open_successor(&mut self) -> Result<bool, FollowError> {
        // A rotation between listing the rotated files and opening the live
        // file would make us take the new live file for the successor and
        // skip the file just rotated: try again with a fresh listing.
        for _ in 0..20 {
            if let Some(r) = self.try_successor()? {
                return Ok(r);
            }
        }
        Ok(false)
    }

    /// One attempt of [`Follower::open_successor`]; `None` if the live file
    /// changed while we looked.
    fn try_successor(&mut self) -> Result<Option<bool>, FollowError> {
        let live_before = std::fs::metadata(&self.cfg.path)
            .ok()
            .map(|m| FileKey::of(&m));
        let seg = self.seg.as_ref().expect("segment");
        let candidates = self.candidates()?;
        let listed = files_of(&candidates);
        self.report_late_writes(&candidates);
        let our_key = seg.key;
        let our_end = seg.reader.offset();
        let our_seq = seg.sequence;
        let our_mtime = seg
            .file()
            .and_then(|f| f.metadata().ok())
            .and_then(|m| m.modified().ok());
        let id = self.identity_at(Position {
            sequence: our_seq,
            offset: our_end,
            line: 0,
        });
        // Which candidates are this very segment (renamed, or compressed)?
        // The file itself, if it is listed: then files holding the same
        // bytes (identical short files) are others. Else its compressed
        // copy, by content.
        let key_of = |k: &Candidate| std::fs::metadata(&k.path).ok().map(|m| FileKey::of(&m));
        let listed_by_key = our_key.is_some() && candidates.iter().any(|k| key_of(k) == our_key);
        let is_us = |k: &Candidate| -> bool {
            if listed_by_key {
                return key_of(k) == our_key;
            }
            match &id {
                Some(id) if id.head_len > 0 => {
                    match identity::open_matching(&k.path, id, our_end) {
                        Ok(mut o) => {
                            let mut b = [0u8; 1];
                            matches!(std::io::Read::read(&mut o.source, &mut b), Ok(0))
                        }
                        Err(_) => false,
                    }
                }
                _ => false,
            }
        };
        let mut last_us = None;
        for (i, k) in candidates.iter().enumerate() {
            if is_us(k) {
                last_us = Some(i);
            }
        }
        // What the names say against what the files prove (`order`).
        let done = self.finished_before(our_seq, id.as_ref(), our_end);
        // Journal numbers (`{N}`) say the order themselves; only names
        // without them can count the other way unnoticed.
        let numbered = candidates.iter().any(|k| k.number.is_some());
        if let Some(i) = last_us.filter(|_| !numbered) {
            let older: Vec<&Candidate> = candidates[..i].iter().filter(|k| !is_us(k)).collect();
            if let Some(stop) = self.names_contradict(&candidates[i].path, &older, &done) {
                return Err(stop);
            }
        }
        let unread = |k: &Candidate| {
            let read = Self::read_before(k, &done);
            if read {
                tracing::info!(journal = %self.cfg.name, file = %k.path.display(), "read before (its content is in the finished list): passed over although the rotated names put it next");
            }
            !read
        };
        let next: Option<&Candidate> = match last_us {
            Some(i) => candidates[i + 1..].iter().find(|k| !is_us(k) && unread(k)),
            // We are in no listed file (it was deleted, or it was the live
            // file). Journal numbers say which file comes next: the lowest
            // above ours (a p4 sequence is its journal's number). Without
            // numbers, only modification times do.
            None if candidates.iter().any(|k| k.number.is_some()) => candidates
                .iter()
                .filter(|k| k.number.is_some_and(|n| n > our_seq) && !is_us(k))
                .min_by_key(|k| k.number),
            None => candidates.iter().find(|k| match (k.mtime, our_mtime) {
                (Some(a), Some(b)) => a > b && !is_us(k) && unread(k),
                _ => false,
            }),
        };
        tracing::debug!(
            journal = %self.cfg.name,
            file = %seg.path.display(),
            sequence = our_seq,
            end = our_end,
            candidates = ?candidates.iter().map(|c| c.path.display().to_string()).collect::<Vec<_>>(),
            last_us = ?last_us,
            next = ?next.map(|k| k.path.display().to_string()),
            "choosing the successor"
        );
        let seq = our_seq + 1;
        // p4 numbers its journals one by one: when the file just finished
        // is `journal.N` read as sequence N, a next number above N + 1 means
        // the journals in between were deleted before we read them.
        // The number of the journal just finished, by its name (p4d may
        // have numbered it otherwise than we did, when it was the live
        // journal at a first start: then its name is right).
        let our_number = candidates
            .iter()
            .filter(|k| is_us(k))
            .find_map(|k| k.number.filter(|&n| n >= our_seq));
        let skipped = match (next.and_then(|k| k.number), our_number) {
            (Some(n), Some(ours)) if n > ours + 1 => Some((ours, n)),
            _ => None,
        };
        match next {
            Some(k) => {
                let seq = k.number.filter(|&n| n > our_seq).unwrap_or(seq);
                let path = k.path.clone();
                if let Some((ours, n)) = skipped {
                    let dir = self
                        .cfg
                        .path
                        .parent()
                        .map(Path::to_path_buf)
                        .unwrap_or_default();
                    let m = Missing {
                        journal: self.cfg.name.clone(),
                        live: self.cfg.path.clone(),
                        from: Position { sequence: ours + 1, offset: 0, line: 1 },
                        to: Some(Position { sequence: n, offset: 0, line: 1 }),
                        cause: GapCause::Deleted,
                        looked_at: vec![(dir, format!("journal {ours} was read to its end; the next journal there is number {n}, so {} are missing", numbers(ours + 1, n)))],
                        state_dir: self.state_dir.clone(),
                        resume_in: None,
                        gone: Some(format!("{}, named like {}.{} (never read: sizes unknown)", numbers(ours + 1, n), self.cfg.path.display(), ours + 1)),
                        bytes: None,
                    };
                    self.on_gap(m)?;
                }
                let o = match identity::open_unverified(&path, 0) {
                    Ok(o) => o,
                    // Renamed or compressed away since the listing (logrotate
                    // shifting names): look again.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_err(&self.cfg, &path, e)),
                };
                // Names shift under logrotate: the file we opened must be
                // the one we chose, so nothing may have moved meanwhile.
                if files_of(&self.candidates()?) != listed {
                    return Ok(None);
                }
                tracing::info!(journal = %self.cfg.name, file = %path.display(), sequence = seq, "reading rotated file");
                self.install(o, seq, Origin::Rotated, 0, 1, true);
                Ok(Some(true))
            }
            None => {
                // The live file, unless it is still the segment we just finished.
                let md = match std::fs::metadata(&self.cfg.path) {
                    Ok(m) => m,
                    Err(_) => return Ok(Some(false)),
                };
                if Some(FileKey::of(&md)) == our_key {
                    return Ok(Some(false));
                }
                let old = self.seg.take().expect("segment");
                let hint = self.next_sequence_hint;
                self.next_sequence_hint = seq;
                if !self.try_open_live()? {
                    self.seg = Some(old);
                    self.next_sequence_hint = hint;
                    return Ok(Some(false));
                }
                // A listing is not atomic: a file created while it ran (the
                // copy of a copytruncate, a rename) can be missing from it.
                // Any rotation that changed the live file we just opened
                // created its rotated file before our open, so a listing
                // made now shows it: if one appeared, start again.
                let moved = files_of(&self.candidates()?) != listed;
                if moved || self.seg.as_ref().and_then(|s| s.key) != live_before {
                    // Rotated since the listing: the rotated file may be the successor.
                    self.seg = Some(old);
                    self.next_sequence_hint = hint;
                    return Ok(None);
                }
                self.remember(&old);
                self.seg.as_mut().expect("segment").did_rotate = true;
                tracing::info!(journal = %self.cfg.name, sequence = seq, "following the new live file");
                Ok(Some(true))
            }
        }
    }
}
