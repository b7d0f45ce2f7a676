//! Finding where a position is: at start-up (the checkpoint's cursor), and
//! after a finished file (its successor).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use logdaemon_sdk::Position;
use logdaemon_state::Cursor;

use super::{io_err, FollowError, Follower, Missing};
use crate::compress::Compression;
use crate::config::Start;
use crate::identity::{self, FileKey, Opened};
use crate::rotation::Candidate;
use crate::segment::{Origin, PlainFile, Segment, Source};

impl Follower {
    pub(super) fn open_at_start(&mut self) -> Result<(), FollowError> {
        let candidates = self.candidates()?;
        let next_seq = candidates.iter().filter_map(|c| c.number).max().map_or(1, |n| n + 1);
        self.next_sequence_hint = next_seq;
        match self.cfg.start.clone() {
            Start::Beginning => {
                self.try_open_live()?;
            }
            Start::End => {
                if self.try_open_live()? {
                    let seg = self.seg.as_mut().expect("segment");
                    let size = seg.file().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len());
                    let (offset, line) = end_boundary(seg.file().expect("plain"), size).map_err(|e| io_err(&self.cfg, &seg.path, e))?;
                    let path = seg.path.clone();
                    let seq = seg.sequence;
                    self.open_segment_at(path, seq, Origin::Live, offset, line, false)?;
                }
            }
            Start::Journal(n) => {
                if let Some(c) = candidates.iter().find(|c| c.number == Some(n)) {
                    self.open_segment_at(c.path.clone(), n, Origin::Rotated, 0, 1, false)?;
                } else if n == next_seq {
                    self.next_sequence_hint = n;
                    self.try_open_live()?;
                } else {
                    let names: Vec<String> = candidates.iter().map(|c| c.path.display().to_string()).collect();
                    return Err(FollowError::Other {
                        journal: self.cfg.name.clone(),
                        message: format!(
                            "start = {n}: no journal number {n} next to {} (found: {}); restore it or choose another start",
                            self.cfg.path.display(),
                            if names.is_empty() { "none".to_string() } else { names.join(", ") }
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Opens the live file from offset 0 if it exists. Returns whether it did.
    pub(super) fn try_open_live(&mut self) -> Result<bool, FollowError> {
        let path = self.cfg.path.clone();
        match File::open(&path) {
            Ok(f) => {
                let seq = self.next_sequence_hint;
                let key = f.metadata().ok().map(|m| FileKey::of(&m));
                let source = Source::Plain(PlainFile::new(Arc::new(f), 0));
                let mut seg = Segment::new(seq, path, Origin::Live, Compression::None, key, source, &self.cfg.format, 0, 1);
                seg.did_rotate = false;
                self.seg = Some(seg);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&self.cfg, &path, e)),
        }
    }

    fn open_segment_at(&mut self, path: PathBuf, sequence: u64, origin: Origin, offset: u64, line: u64, did_rotate: bool) -> Result<(), FollowError> {
        let o = identity::open_unverified(&path, offset).map_err(|e| io_err(&self.cfg, &path, e))?;
        self.install(o, sequence, origin, offset, line, did_rotate);
        Ok(())
    }

    fn install(&mut self, o: Opened, sequence: u64, origin: Origin, offset: u64, line: u64, did_rotate: bool) {
        if let Some(old) = self.seg.take() {
            self.remember(&old);
        }
        let mut seg = Segment::new(sequence, o.path, origin, o.compression, o.key, o.source, &self.cfg.format, offset, line);
        seg.head = o.head;
        seg.did_rotate = did_rotate;
        self.seg = Some(seg);
        self.draining = false;
    }

    pub(super) fn remember(&mut self, seg: &Segment) {
        self.recent.push(seg.info());
        if self.recent.len() > 4 {
            self.recent.remove(0);
        }
    }

    pub(super) fn candidates(&self) -> Result<Vec<Candidate>, FollowError> {
        self.cfg.scheme.candidates().map_err(|e| io_err(&self.cfg, self.cfg.path.parent().unwrap_or(Path::new(".")), e))
    }

    /// Opens the file holding the checkpoint's position, proven by content.
    pub(super) fn open_at_cursor(&mut self, c: &Cursor) -> Result<(), FollowError> {
        let candidates = self.candidates()?;
        self.next_sequence_hint = c.sequence;
        let Some(id) = &c.identity else {
            // An operator-set position: trust it. p4 journal numbers name the file.
            let path = candidates.iter().find(|k| k.number == Some(c.sequence)).map(|k| k.path.clone()).unwrap_or_else(|| self.cfg.path.clone());
            let origin = if path == self.cfg.path { Origin::Live } else { Origin::Rotated };
            tracing::info!(journal = %self.cfg.name, file = %path.display(), sequence = c.sequence, offset = c.offset, "starting at an unverified position");
            return self.open_segment_at(path, c.sequence, origin, c.offset, c.line.max(1), false);
        };
        let mut looked_at = Vec::new();
        // The live file first, then rotated files newest first.
        let mut order: Vec<(PathBuf, Origin)> = vec![(self.cfg.path.clone(), Origin::Live)];
        order.extend(candidates.iter().rev().map(|k| (k.path.clone(), Origin::Rotated)));
        let mut found: Option<(Opened, Origin)> = None;
        let mut settled = false;
        // A p4 sequence is its journal's number: once `journal.N` exists and
        // holds the position, it is the file, whichever file has the
        // recorded inode (the live file, copied and truncated since).
        if let Some(k) = candidates.iter().find(|k| k.number == Some(c.sequence)) {
            order.retain(|(p, _)| *p != k.path);
            match identity::open_matching(&k.path, id, c.offset) {
                Ok(o) => {
                    found = Some((o, Origin::Rotated));
                    settled = true;
                }
                Err(m) => looked_at.push((m.path, m.why)),
            }
        }
        // Prefer the file with the recorded inode when several match (identical content).
        let order = if settled { Vec::new() } else { order };
        for (path, origin) in order {
            match identity::open_matching(&path, id, c.offset) {
                Ok(o) => {
                    let same_inode = o.key.is_some_and(|k| k.dev == id.dev && k.ino == id.inode);
                    // A live file that is not the recorded one (another
                    // inode) and a rotated file both hold the same bytes up
                    // to the position (a banner, identical first lines): the
                    // live file is a newer file, the rotated one is ours.
                    let better = match &found {
                        None => true,
                        Some((_, Origin::Live)) => origin == Origin::Rotated,
                        Some(_) => false,
                    };
                    if better || same_inode {
                        found = Some((o, origin));
                    }
                    if same_inode {
                        settled = true;
                        break;
                    }
                }
                Err(m) => looked_at.push((m.path, m.why)),
            }
        }
        if id.head_len == 0 && !settled && found.is_some() {
            // The file was empty when the position was acknowledged: every
            // file matches an empty proof, so content says nothing.
            if let Some((path, origin)) = self.empty_file_now(c, &candidates) {
                let o = identity::open_unverified(&path, c.offset).map_err(|e| io_err(&self.cfg, &path, e))?;
                found = Some((o, origin));
            }
        }
        match found {
            Some((o, origin)) => {
                tracing::info!(journal = %self.cfg.name, file = %o.path.display(), sequence = c.sequence, offset = c.offset, "resuming");
                self.install(o, c.sequence, origin, c.offset, c.line.max(1), false);
                Ok(())
            }
            None => {
                let from = Position { sequence: c.sequence, offset: c.offset, line: c.line };
                // Delivery resumes in the file written after the lost one:
                // the lowest journal number above ours, else the live file.
                let next = candidates.iter().filter(|k| k.number.is_some_and(|n| n > c.sequence)).min_by_key(|k| k.number);
                let m = Missing {
                    journal: self.cfg.name.clone(),
                    live: self.cfg.path.clone(),
                    from,
                    to: next.and_then(|k| k.number).map(|n| Position { sequence: n, offset: 0, line: 1 }),
                    cause: "deleted",
                    looked_at,
                    state_dir: self.state_dir.clone(),
                };
                self.on_gap(m)?;
                if let Some(k) = next {
                    let n = k.number.expect("numbered");
                    tracing::info!(journal = %self.cfg.name, file = %k.path.display(), sequence = n, "going on with the next rotated file");
                    return self.open_segment_at(k.path.clone(), n, Origin::Rotated, 0, 1, true);
                }
                // Reporting: go on with the live file as the next sequence.
                self.next_sequence_hint = c.sequence + 1;
                if self.try_open_live()? {
                    if let Some(s) = self.seg.as_mut() {
                        s.did_rotate = true;
                    }
                }
                Ok(())
            }
        }
    }

    /// Where the file of a cursor acknowledged while it was empty (at offset
    /// 0, its file not found by inode) is now, when content cannot say: the
    /// rotated file carrying its journal number; else, if it was the live
    /// file and the live path now holds another file, it was rotated away
    /// since, into the newest rotated file. `None`: the live file.
    fn empty_file_now(&self, c: &Cursor, candidates: &[Candidate]) -> Option<(PathBuf, Origin)> {
        if let Some(k) = candidates.iter().find(|k| k.number == Some(c.sequence)) {
            return Some((k.path.clone(), Origin::Rotated));
        }
        if candidates.iter().any(|k| k.number.is_some()) {
            return None;
        }
        // The file finished just before it proves where it was: the next one.
        if let Some(prev) = self.history.iter().rev().find(|f| f.sequence + 1 == c.sequence) {
            let proof = logdaemon_state::Identity {
                path: prev.path.clone(),
                dev: 0,
                inode: 0,
                head_len: prev.head_len,
                head_hash: prev.head_hash,
                tail_len: prev.tail_len,
                tail_hash: prev.tail_hash,
            };
            let whole = |k: &Candidate| match identity::open_matching(&k.path, &proof, prev.size) {
                Ok(mut o) => matches!(std::io::Read::read(&mut o.source, &mut [0u8; 1]), Ok(0)),
                Err(_) => false,
            };
            if let Some(i) = candidates.iter().rposition(whole) {
                return match candidates.get(i + 1) {
                    Some(k) => Some((k.path.clone(), Origin::Rotated)),
                    None => None,
                };
            }
        }
        let id = c.identity.as_ref()?;
        let was_live = Path::new(&id.path) == self.cfg.path;
        let live_key = std::fs::metadata(&self.cfg.path).ok().map(|m| FileKey::of(&m));
        let rotated_away = was_live && id.inode != 0 && live_key.is_none_or(|k| k.dev != id.dev || k.ino != id.inode);
        if rotated_away {
            return candidates.last().map(|k| (k.path.clone(), Origin::Rotated));
        }
        None
    }

    /// After the current segment is finished: open the file written after
    /// it. Returns false if there is none yet.
    pub(super) fn open_successor(&mut self) -> Result<bool, FollowError> {
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
        let live_before = std::fs::metadata(&self.cfg.path).ok().map(|m| FileKey::of(&m));
        let seg = self.seg.as_ref().expect("segment");
        let candidates = self.candidates()?;
        let listed = files_of(&candidates);
        let our_key = seg.key;
        let our_end = seg.reader.offset();
        let our_seq = seg.sequence;
        let our_mtime = seg.file().and_then(|f| f.metadata().ok()).and_then(|m| m.modified().ok());
        let id = self.identity_at(Position { sequence: our_seq, offset: our_end, line: 0 });
        // Which candidates are this very segment (renamed, or compressed)?
        let is_us = |k: &Candidate| -> bool {
            if let (Some(key), Ok(md)) = (our_key, std::fs::metadata(&k.path)) {
                if FileKey::of(&md) == key {
                    return true;
                }
            }
            match &id {
                Some(id) if id.head_len > 0 => match identity::open_matching(&k.path, id, our_end) {
                    Ok(mut o) => {
                        let mut b = [0u8; 1];
                        matches!(std::io::Read::read(&mut o.source, &mut b), Ok(0))
                    }
                    Err(_) => false,
                },
                _ => false,
            }
        };
        let mut last_us = None;
        for (i, k) in candidates.iter().enumerate() {
            if is_us(k) {
                last_us = Some(i);
            }
        }
        let next: Option<&Candidate> = match last_us {
            Some(i) => candidates[i + 1..].iter().find(|k| !is_us(k)),
            // We are in no listed file (it was deleted, or it was the live
            // file). Journal numbers say which file comes next: the lowest
            // above ours (a p4 sequence is its journal's number). Without
            // numbers, only modification times do.
            None if candidates.iter().any(|k| k.number.is_some()) => candidates
                .iter()
                .filter(|k| k.number.is_some_and(|n| n > our_seq) && !is_us(k))
                .min_by_key(|k| k.number),
            None => candidates.iter().find(|k| match (k.mtime, our_mtime) {
                (Some(a), Some(b)) => a > b && !is_us(k),
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
        match next {
            Some(k) => {
                let seq = k.number.filter(|&n| n > our_seq).unwrap_or(seq);
                let path = k.path.clone();
                let o = identity::open_unverified(&path, 0).map_err(|e| io_err(&self.cfg, &path, e))?;
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

/// The rotated files as names and the files they name, to notice that
/// something was rotated between two looks.
fn files_of(candidates: &[Candidate]) -> Vec<(PathBuf, Option<FileKey>)> {
    candidates.iter().map(|c| (c.path.clone(), std::fs::metadata(&c.path).ok().map(|m| FileKey::of(&m)))).collect()
}

/// The end of the last complete line at or before `size`, and its line number.
fn end_boundary(f: &File, size: u64) -> std::io::Result<(u64, u64)> {
    use std::io::Read;
    let mut lines = 1u64;
    let mut last_nl = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    let mut r = (&*f).take(size);
    let mut rd = std::io::BufReader::new(&mut r);
    loop {
        let n = rd.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' {
                lines += 1;
                last_nl = pos + i as u64 + 1;
            }
        }
        pos += n as u64;
    }
    Ok((last_nl, lines))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use logdaemon_sdk::Position;
    use logdaemon_state::Cursor;

    use crate::config::{JournalConfig, OnGap, Start};
    use crate::follow::{Batch, Fill, Follower};
    use crate::format::Format;
    use crate::rotation::Scheme;

    fn config(path: &Path) -> Arc<JournalConfig> {
        let format = Format::Lines { record_start: None };
        Arc::new(JournalConfig {
            name: "app".into(),
            path: path.to_path_buf(),
            scheme: Scheme::default_for(&format, path),
            format,
            quiet_after: Duration::from_secs(2),
            reconcile_every: Duration::from_secs(1),
            start: Start::Beginning,
            on_gap: OnGap::Stop,
            batch_bytes: 1 << 20,
            listeners: Vec::new(),
        })
    }

    fn drain(f: &mut Follower) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for _ in 0..10 {
            let mut b = Batch::default();
            let fill = f.fill(&mut b, 1 << 20).unwrap();
            out.extend(b.entries.iter().map(|m| (m.sequence, String::from_utf8_lossy(b.raw(m)).into_owned())));
            if matches!(fill, Fill::Idle) && b.is_empty() {
                break;
            }
        }
        out
    }

    /// A banner and identical first lines in every file of a line log: the
    /// old file, compressed since (its inode gone), and the new live file
    /// (another inode) hold the same bytes up to the checkpoint. The old one
    /// is ours: the restart reads its rest, then the new file from its start.
    /// (Were the new live file to get the old inode back as well, nothing
    /// would tell the two apart.)
    #[test]
    fn identical_first_lines_resume_in_the_compressed_old_file() {
        let d = tempfile::tempdir().unwrap();
        let live = d.path().join("app.log");
        std::fs::write(&live, "time,level,msg\nstart\n").unwrap();
        let cfg = config(&live);
        let mut f = Follower::open(cfg.clone(), None, None).unwrap();
        let got = drain(&mut f);
        assert_eq!(got.len(), 2);
        let end = Position { sequence: 1, offset: 21, line: 3 };
        let cursor = Cursor { sequence: 1, offset: 21, line: 3, identity: f.identity_at(end) };
        drop(f);
        // Written after the checkpoint, then rotated and compressed while stopped.
        std::fs::OpenOptions::new().append(true).open(&live).unwrap().write_all(b"old-3\n").unwrap();
        let data = std::fs::read(&live).unwrap();
        let gz = std::fs::File::create(d.path().join("app.log.1.gz")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        enc.finish().unwrap();
        // The new live file is made while the old one exists (so it cannot
        // get the old inode back), then takes its name.
        let fresh = d.path().join("app.log.new");
        std::fs::write(&fresh, "time,level,msg\nstart\nnew-1\n").unwrap();
        std::fs::rename(&fresh, &live).unwrap();
        let mut f = Follower::open(cfg, Some(&cursor), None).unwrap();
        let got = drain(&mut f);
        let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["old-3\n", "time,level,msg\n", "start\n", "new-1\n"], "{got:?}");
        assert_eq!(got[0].0, 1);
        assert!(got[1..].iter().all(|(s, _)| *s == 2), "{got:?}");
    }
}
