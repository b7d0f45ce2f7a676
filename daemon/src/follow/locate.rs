//! Finding where a position is: at start-up (the checkpoint's cursor), and
//! after a finished file (its successor).
//!
//! Content proves which file holds a position. Where several files hold
//! the same bytes up to it (banners, identical short files, a new file
//! that got a deleted file's inode back), the order files are read in and
//! the time the checkpoint was saved decide ([`Follower::choose`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use logdaemon_sdk::abi::GapCause;
use logdaemon_sdk::Position;
use logdaemon_state::Cursor;

use super::{io_err, FollowError, Follower, Missing};
use crate::compress::Compression;
use crate::config::Start;
use crate::identity::{self, FileKey, Opened};
use crate::rotation::Candidate;
use crate::segment::{Origin, PlainFile, Segment, Source};
use resume::Placed;

impl Follower {
    /// One attempt of [`Follower::open_at_start`].
    fn try_open_at_start(&mut self) -> Result<(), FollowError> {
        let candidates = self.candidates()?;
        let next_seq = candidates
            .iter()
            .filter_map(|c| c.number)
            .max()
            .map_or(1, |n| n + 1);
        let next_seq = match self.said_number(&candidates) {
            Some(n) => n,
            None => next_seq,
        };
        self.next_sequence_hint = next_seq;
        match self.cfg.start.clone() {
            Start::Beginning => {
                self.try_open_live()?;
            }
            Start::End => {
                if self.try_open_live()? {
                    let seg = self.seg.as_mut().expect("segment");
                    let size = seg
                        .file()
                        .and_then(|f| f.metadata().ok())
                        .map_or(0, |m| m.len());
                    let (offset, line) = end::end_boundary(
                        &seg.path,
                        seg.file().expect("plain"),
                        size,
                        &self.cfg.format,
                    )
                    .map_err(|e| io_err(&self.cfg, &seg.path, e))?;
                    let path = seg.path.clone();
                    let seq = seg.sequence;
                    self.open_segment_at(path, seq, Origin::Live, offset, line, false)?;
                }
            }
            Start::New(seen) => {
                let fresh = candidates.iter().find(|c| {
                    c.path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_none_or(|n| !seen.contains(n))
                });
                match fresh {
                    Some(c) => {
                        let seq = c.number.unwrap_or(next_seq);
                        tracing::info!(journal = %self.cfg.name, file = %c.path.display(), "a new file, rotated before it was seen: reading from its oldest rotated file");
                        self.open_segment_at(c.path.clone(), seq, Origin::Rotated, 0, 1, false)?;
                    }
                    None => {
                        self.try_open_live()?;
                    }
                }
            }
            Start::Journal(n) => {
                if let Some(c) = candidates.iter().find(|c| c.number == Some(n)) {
                    tracing::info!(journal = %self.cfg.name, file = %c.path.display(), sequence = n, "reading rotated file");
                    self.open_segment_at(c.path.clone(), n, Origin::Rotated, 0, 1, false)?;
                } else if n == next_seq
                    || !candidates.iter().any(|c| c.number.is_some_and(|k| k >= n))
                {
                    // No rotated journal numbered n or above: the live
                    // journal is number n (the operator says so).
                    if n != next_seq {
                        tracing::info!(journal = %self.cfg.name, file = %self.cfg.path.display(), sequence = n, "start = {n}: the live journal is number {n}");
                    }
                    self.next_sequence_hint = n;
                    self.try_open_live()?;
                } else {
                    let names: Vec<String> = candidates
                        .iter()
                        .map(|c| c.path.display().to_string())
                        .collect();
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

    /// The live p4 journal's number as its `journal` counter record says
    /// (see [`counter`]), where nothing else numbers it: no rotated journal
    /// carries a number and no `start = N` names it.
    fn said_number(&self, candidates: &[crate::rotation::Candidate]) -> Option<u64> {
        if !matches!(self.cfg.format, crate::format::Format::P4)
            || matches!(self.cfg.start, Start::Journal(_))
            || candidates.iter().any(|c| c.number.is_some())
        {
            return None;
        }
        let n = match counter::journal_counter(&self.cfg.path) {
            Ok(n) => n?,
            Err(e) => {
                tracing::debug!(journal = %self.cfg.name, file = %self.cfg.path.display(), error = %e, "cannot read the journal for its number");
                return None;
            }
        };
        tracing::info!(journal = %self.cfg.name, file = %self.cfg.path.display(), journal_counter = n, sequence = n, "the live journal is number {n}, as its db.counters journal record says");
        Some(n)
    }

    /// Opens the live file from offset 0 if it exists. Returns whether it did.
    pub(super) fn try_open_live(&mut self) -> Result<bool, FollowError> {
        let path = self.cfg.path.clone();
        match File::open(&path) {
            Ok(f) => {
                let seq = self.next_sequence_hint;
                let key = f.metadata().ok().map(|m| FileKey::of(&m));
                let source = Source::Plain(PlainFile::new(Arc::new(f), 0));
                let mut seg = Segment::new(
                    seq,
                    path,
                    Origin::Live,
                    Compression::None,
                    key,
                    source,
                    &self.cfg.format,
                    0,
                    1,
                );
                seg.did_rotate = false;
                seg.nul_fill = self.live_truncated;
                self.seg = Some(seg);
                self.guard_live();
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&self.cfg, &path, e)),
        }
    }

    fn open_segment_at(
        &mut self,
        path: PathBuf,
        sequence: u64,
        origin: Origin,
        offset: u64,
        line: u64,
        did_rotate: bool,
    ) -> Result<(), FollowError> {
        let o =
            identity::open_unverified(&path, offset).map_err(|e| io_err(&self.cfg, &path, e))?;
        self.install(o, sequence, origin, offset, line, did_rotate);
        Ok(())
    }

    fn install(
        &mut self,
        o: Opened,
        sequence: u64,
        origin: Origin,
        offset: u64,
        line: u64,
        did_rotate: bool,
    ) {
        if let Some(old) = self.seg.take() {
            self.remember(&old);
        }
        let mut seg = Segment::new(
            sequence,
            o.path,
            origin,
            o.compression,
            o.key,
            o.source,
            &self.cfg.format,
            offset,
            line,
        );
        seg.head = o.head;
        seg.did_rotate = did_rotate;
        self.live_truncated = false;
        self.seg = Some(seg);
        self.guard_live();
        self.draining = false;
    }

    pub(super) fn remember(&mut self, seg: &Segment) {
        self.recent.push(seg.info());
        if self.recent.len() > 4 {
            // Its proof stays known: a file finished in this run is never
            // taken for an unread one, however many rotations ago.
            let old = &self.recent[0];
            let proof = self
                .finished()
                .into_iter()
                .find(|f| f.sequence == old.sequence);
            self.recent.remove(0);
            if let Some(f) = proof {
                self.history.retain(|h| h.sequence != f.sequence);
                self.history.push(f);
                let keep = self.history.len().saturating_sub(64);
                self.history.drain(..keep);
            }
        }
    }

    pub(super) fn candidates(&self) -> Result<Vec<Candidate>, FollowError> {
        let listed = self.cfg.scheme.candidates().map_err(|e| {
            io_err(
                &self.cfg,
                self.cfg.path.parent().unwrap_or(Path::new(".")),
                e,
            )
        });
        #[cfg(test)]
        tests::after_listing();
        listed
    }

    /// Where the checkpoint's position is, judged on one listing of the
    /// rotated files ([`Follower::open_at_cursor`] lists again when the
    /// answer may come from a listing made stale by a rotation).
    fn place_cursor(&self, c: &Cursor, candidates: &[Candidate]) -> Result<Placed, FollowError> {
        let Some(id) = &c.identity else {
            // An operator-set position: trust it. p4 journal numbers name the file.
            let path = candidates
                .iter()
                .find(|k| k.number == Some(c.sequence))
                .map(|k| k.path.clone())
                .unwrap_or_else(|| self.cfg.path.clone());
            let origin = if path == self.cfg.path {
                Origin::Live
            } else {
                Origin::Rotated
            };
            let o = identity::open_unverified(&path, c.offset)
                .map_err(|e| io_err(&self.cfg, &path, e))?;
            return Ok(Placed::Found(o, origin, false));
        };
        let mut looked_at = Vec::new();
        // The live file first, then rotated files newest first.
        let mut order: Vec<(PathBuf, Origin)> = vec![(self.cfg.path.clone(), Origin::Live)];
        order.extend(
            candidates
                .iter()
                .rev()
                .map(|k| (k.path.clone(), Origin::Rotated)),
        );
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
        // Prefer the file with the recorded inode when several match
        // (identical content), unless that file was created after the
        // checkpoint was saved: an inode freed and handed out again.
        let saved = self.saved_at(c);
        let untrusted = self.times_untrusted(saved);
        let mut live_by_inode = false;
        let order = if settled { Vec::new() } else { order };
        let mut matches: Vec<(Opened, Origin)> = Vec::new();
        for (path, origin) in order {
            match identity::open_matching(&path, id, c.offset) {
                // A live file created after the checkpoint was saved is a
                // newer file that starts with the same bytes (a banner),
                // whatever its inode: the checkpoint's file is elsewhere,
                // or gone. (An empty proof is left to `empty_file_now`.)
                Ok(o)
                    if origin == Origin::Live
                        && id.head_len > 0
                        && saved.is_some_and(|t| born_after(&o.path, t)) =>
                {
                    looked_at.push((o.path, "starts with the same bytes, but was created after the checkpoint was saved: a newer file".into()));
                }
                Ok(o) => {
                    let same_inode = o.key.is_some_and(|k| k.dev == id.dev && k.ino == id.inode);
                    let reborn = same_inode && saved.is_some_and(|t| born_after(&o.path, t));
                    // Without trustworthy birth times the live file's inode
                    // may be a reused one: look at the other files too.
                    let doubt = untrusted.is_some() && origin == Origin::Live;
                    live_by_inode |= same_inode && doubt;
                    matches.push((o, origin));
                    if same_inode && !reborn && !doubt {
                        break;
                    }
                }
                Err(m) => looked_at.push((m.path, m.why)),
            }
        }
        if let Some(why) = untrusted.as_deref() {
            if !settled && live_by_inode && id.head_len > 0 && matches.len() > 1 {
                return Err(self.cannot_tell(c, &matches, why));
            }
        }
        if !settled {
            if let Some((o, origin, same_inode)) = self.choose(c, id, matches, candidates, saved) {
                found = Some((o, origin));
                settled = same_inode;
            }
        }
        if id.head_len == 0 && !settled && found.is_some() {
            // The file was empty when the position was acknowledged: every
            // file matches an empty proof, so content says nothing.
            if let Some((path, origin)) = self.empty_file_now(c, candidates) {
                let o = identity::open_unverified(&path, c.offset)
                    .map_err(|e| io_err(&self.cfg, &path, e))?;
                found = Some((o, origin));
            }
        }
        Ok(match found {
            Some((o, origin)) => Placed::Found(o, origin, true),
            None => Placed::Missing(Missing {
                journal: self.cfg.name.clone(),
                live: self.cfg.path.clone(),
                from: Position {
                    sequence: c.sequence,
                    offset: c.offset,
                    line: c.line,
                },
                to: None,
                cause: GapCause::Deleted,
                looked_at,
                state_dir: self.state_dir.clone(),
                resume_in: None,
                gone: Some(self.gone_file(c, &id.path)),
                bytes: None,
            }),
        })
    }

    /// Which of the files holding the bytes the cursor proves (`matches`:
    /// the live file first, then rotated files newest first) is the
    /// cursor's file, and whether it has the recorded inode. Several hold
    /// them when files start alike (banners, identical short files):
    ///
    /// 1. A file cannot be it if it ends at the cursor yet was written
    ///    after the checkpoint holding the cursor was saved (`saved`): the
    ///    cursor's file held all those bytes then. This only breaks ties:
    ///    a file no other one contends with stays. (A live file created
    ///    after the save is not among `matches` at all.)
    /// 2. The file with the recorded inode (not created since the save).
    /// 3. The file after the one finished just before the cursor's (the
    ///    checkpoint's `finished` list): files are read in order.
    /// 4. A rotated file rather than the live one (the live file is then a
    ///    newer one starting alike), the newest.
    fn choose(
        &self,
        c: &Cursor,
        id: &logdaemon_state::Identity,
        mut matches: Vec<(Opened, Origin)>,
        candidates: &[Candidate],
        saved: Option<SystemTime>,
    ) -> Option<(Opened, Origin, bool)> {
        if let (true, Some(t)) = (matches.len() > 1, saved) {
            let impossible: Vec<bool> = matches
                .iter()
                .map(|(o, _)| written_after(&o.path, t) && ends_at(&o.path, id, c.offset))
                .collect();
            if impossible.iter().any(|&x| !x) {
                let mut keep = impossible.into_iter().map(|x| !x);
                matches.retain(|_| keep.next().unwrap_or(true));
            }
        }
        // The recorded inode, unless the file having it now was created
        // after the save (the inode was freed and handed out again: to the
        // new live file, or to a compressed copy of another file).
        let recorded = |o: &Opened| {
            o.key.is_some_and(|k| k.dev == id.dev && k.ino == id.inode)
                && !saved.is_some_and(|t| born_after(&o.path, t))
        };
        if let Some(i) = matches.iter().position(|(o, _)| recorded(o)) {
            let (o, origin) = matches.swap_remove(i);
            return Some((o, origin, true));
        }
        let index = |p: &Path| candidates.iter().position(|k| k.path == p);
        if matches
            .iter()
            .filter(|(_, origin)| *origin == Origin::Rotated)
            .count()
            > 1
        {
            if let Some(prev) = self.finished_in(c, candidates) {
                let after = matches
                    .iter()
                    .enumerate()
                    .filter_map(|(m, (o, _))| index(&o.path).filter(|&i| i > prev).map(|i| (i, m)))
                    .min();
                if let Some((_, m)) = after {
                    let (o, origin) = matches.swap_remove(m);
                    return Some((o, origin, false));
                }
            }
        }
        let m = matches
            .iter()
            .position(|(_, origin)| *origin == Origin::Rotated)
            .unwrap_or(0);
        (m < matches.len()).then(|| {
            let (o, origin) = matches.swap_remove(m);
            (o, origin, false)
        })
    }

    /// The index among `candidates` of the file finished just before the
    /// cursor's (its sequence one less), proven by content, if listed.
    fn finished_in(&self, c: &Cursor, candidates: &[Candidate]) -> Option<usize> {
        let prev = self
            .history
            .iter()
            .rev()
            .find(|f| f.sequence + 1 == c.sequence)?;
        let proof = logdaemon_state::Identity {
            path: prev.path.clone(),
            dev: 0,
            inode: 0,
            head_len: prev.head_len,
            head_hash: prev.head_hash,
            tail_len: prev.tail_len,
            tail_hash: prev.tail_hash,
        };
        candidates
            .iter()
            .rposition(|k| ends_at(&k.path, &proof, prev.size))
    }

    /// When the checkpoint that holds `c` (as the journal's or a listener's
    /// position) was saved: `c`'s proof was made before then. `None` if the
    /// checkpoint does not hold it (a position acknowledged since, being
    /// re-read after a listener failure) or cannot be read.
    fn saved_at(&self, c: &Cursor) -> Option<SystemTime> {
        let state_dir = self.state_dir.as_ref()?;
        let (js, saved) =
            logdaemon_state::Checkpoint::load_journal(state_dir, &self.cfg.name).ok()??;
        (js.reader == *c || js.listeners.values().any(|l| l == c)).then_some(saved)
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
        if let Some(i) = self.finished_in(c, candidates) {
            return candidates
                .get(i + 1)
                .map(|k| (k.path.clone(), Origin::Rotated));
        }
        let id = c.identity.as_ref()?;
        let was_live = Path::new(&id.path) == self.cfg.path;
        let live_key = std::fs::metadata(&self.cfg.path)
            .ok()
            .map(|m| FileKey::of(&m));
        let rotated_away = was_live
            && id.inode != 0
            && live_key.is_none_or(|k| k.dev != id.dev || k.ino != id.inode);
        if rotated_away {
            return candidates.last().map(|k| (k.path.clone(), Origin::Rotated));
        }
        None
    }
}

impl Follower {
    /// The file holding cursor `c`, for an operator to restore: its
    /// journal number (p4), last known name and the bytes it held at least.
    fn gone_file(&self, c: &Cursor, last_seen: &str) -> String {
        let name = if last_seen.is_empty() {
            "a name not recorded".to_string()
        } else {
            format!("last seen as {last_seen}")
        };
        match self.cfg.format {
            crate::format::Format::P4 => format!(
                "journal {} ({name}; restore it as {}.{}), at least {} bytes long",
                c.sequence,
                self.cfg.path.display(),
                c.sequence,
                c.offset
            ),
            _ => format!(
                "the file of generation {} ({name}), at least {} bytes long",
                c.sequence, c.offset
            ),
        }
    }
}

/// "journal 5" or "journals 5 to 7": the numbers `from..to`.
fn numbers(from: u64, to: u64) -> String {
    if to - from == 1 {
        format!("journal {from}")
    } else {
        format!("journals {from} to {}", to - 1)
    }
}

/// Whether the file at `path` was created after `t` (birth time; false
/// where the file system does not keep it).
fn born_after(path: &Path, t: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|m| unproven::birth_time(&m))
        .is_ok_and(|b| b > t)
}

/// Whether the file at `path` was last written after `t` (compressors keep
/// the original's modification time).
fn written_after(path: &Path, t: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|w| w > t)
}

/// Whether `path` (plain or compressed) holds what `id` proves up to
/// `offset` and nothing after it.
fn ends_at(path: &Path, id: &logdaemon_state::Identity, offset: u64) -> bool {
    match identity::open_matching(path, id, offset) {
        Ok(mut o) => matches!(std::io::Read::read(&mut o.source, &mut [0u8; 1]), Ok(0)),
        Err(_) => false,
    }
}

/// The rotated files as names and the files they name, to notice that
/// something was rotated between two looks.
fn files_of(candidates: &[Candidate]) -> Vec<(PathBuf, Option<FileKey>)> {
    candidates
        .iter()
        .map(|c| {
            (
                c.path.clone(),
                std::fs::metadata(&c.path).ok().map(|m| FileKey::of(&m)),
            )
        })
        .collect()
}

mod counter;
mod cut;
mod end;
#[cfg(test)]
mod gap_tests;
mod order;
#[cfg(test)]
mod order_tests;
mod resume;
mod successor;
#[cfg(test)]
mod tests;
pub(super) mod unproven;
