//! Resuming at a checkpoint's position while logrotate may be renaming.
//!
//! Listing the rotated files and opening them is not atomic: logrotate
//! renames `name.N` to `name.N+1` one file at a time and compresses, so a
//! listing can name a file that has moved by the time it is opened, or
//! miss one that has just got its new name. Concluding "missing" (or
//! failing on a file that is not there any more) from such a listing
//! would stop the daemon, or report a gap, for bytes that are on disk.
//! So a conclusion that bytes are missing stands only when the listing
//! it came from still holds after it; otherwise the directory is listed
//! and the position looked for again.
//!
//! Where bytes are truly gone, delivery goes on with the first file
//! written after the lost one that the listener has not read: a rotated
//! file if any is left, not the live file, which would skip them.

use std::path::PathBuf;

use logdaemon_state::Cursor;

use super::{ends_at, files_of, io_err, FollowError, Follower, Missing};
use crate::identity::{self, FileKey, Opened};
use crate::rotation::Candidate;
use crate::segment::Origin;

/// How many listings a restart looks at before it concludes on the last
/// one: a logrotate run moves each name once, so a few suffice.
const ROUNDS: usize = 5;

/// Where a cursor is, on one listing.
pub(in crate::follow) enum Placed {
    /// The file holding it, opened at it; whether content proved it.
    Found(Opened, Origin, bool),
    /// In no file.
    Missing(Missing),
}

/// What a restart does, on one listing.
// One value per restart, moved a few times: boxing the large variant would
// buy nothing.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    /// Resume in this file, opened at the position; whether content proved it.
    Resume(Opened, Origin, bool),
    /// Stop or report the missing bytes; then go on at `Next`.
    Gap(Missing, Next),
}

/// Where delivery goes on after a gap, on one listing.
enum Next {
    /// A rotated file, opened at its start, with its sequence.
    Rotated(Opened, u64),
    /// The live file.
    Live,
}

/// The rotated files and the live file as they are now: two looks that
/// agree saw no rotation in between.
type Snapshot = (Vec<(PathBuf, Option<FileKey>)>, Option<FileKey>);

impl Follower {
    /// Opens the journal at its configured start. A rotated file listed and
    /// renamed before it was opened is looked for in a new listing.
    pub(in crate::follow) fn open_at_start(&mut self) -> Result<(), FollowError> {
        for round in 1..ROUNDS {
            match self.try_open_at_start() {
                Err(FollowError::Io { source, path, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    tracing::debug!(journal = %self.cfg.name, file = %path.display(), round, "a listed file was renamed before it was opened: looking again");
                }
                r => return r,
            }
        }
        self.try_open_at_start()
    }

    fn snapshot(&self, candidates: &[Candidate]) -> Snapshot {
        (
            files_of(candidates),
            std::fs::metadata(&self.cfg.path)
                .ok()
                .map(|m| FileKey::of(&m)),
        )
    }

    /// Opens the file holding the checkpoint's position, proven by content.
    pub(in crate::follow) fn open_at_cursor(&mut self, c: &Cursor) -> Result<(), FollowError> {
        self.next_sequence_hint = c.sequence;
        let mut candidates = self.candidates()?;
        let mut round = 1;
        loop {
            let seen = self.snapshot(&candidates);
            let outcome = self.place_cursor(c, &candidates).and_then(|p| match p {
                Placed::Found(o, origin, proven) => Ok(Outcome::Resume(o, origin, proven)),
                Placed::Missing(m) => self
                    .after_gap(c, &candidates)
                    .map(|next| Outcome::Gap(m, next)),
            });
            let vanished = matches!(&outcome, Err(FollowError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound);
            let concluding = matches!(outcome, Ok(Outcome::Gap(..))) || vanished;
            if concluding && round < ROUNDS {
                // A file listed a moment ago is gone, or nothing holds the
                // position: unless the directory is as it was listed, a
                // rotation ran meanwhile and the bytes may be under a new name.
                let again = self.candidates()?;
                let agree = self.snapshot(&again) == seen;
                if vanished || !agree {
                    tracing::debug!(
                        journal = %self.cfg.name,
                        sequence = c.sequence,
                        offset = c.offset,
                        round,
                        vanished,
                        "the rotated files changed while the position was looked for: looking again"
                    );
                    candidates = again;
                    round += 1;
                    continue;
                }
            }
            match outcome? {
                Outcome::Resume(o, origin, proven) => {
                    if proven {
                        tracing::info!(journal = %self.cfg.name, file = %o.path.display(), sequence = c.sequence, offset = c.offset, "resuming");
                    } else {
                        tracing::info!(journal = %self.cfg.name, file = %o.path.display(), sequence = c.sequence, offset = c.offset, "starting at an unverified position");
                    }
                    self.install(o, c.sequence, origin, c.offset, c.line.max(1), false);
                    self.report_late_writes(&candidates);
                    return Ok(());
                }
                Outcome::Gap(mut m, next) => {
                    if let Next::Rotated(o, seq) = &next {
                        m.to = Some(logdaemon_sdk::Position {
                            sequence: *seq,
                            offset: 0,
                            line: 1,
                        });
                        if !candidates.iter().any(|k| k.number.is_some()) {
                            m.resume_in = Some(o.path.clone());
                        }
                    }
                    self.on_gap(m)?;
                    match next {
                        Next::Rotated(o, seq) => {
                            tracing::info!(journal = %self.cfg.name, file = %o.path.display(), sequence = seq, "going on with the next rotated file");
                            self.install(o, seq, Origin::Rotated, 0, 1, true);
                        }
                        Next::Live => {
                            // Reporting: go on with the live file as the next sequence.
                            self.next_sequence_hint = c.sequence + 1;
                            if self.try_open_live()? {
                                if let Some(s) = self.seg.as_mut() {
                                    s.did_rotate = true;
                                }
                            }
                        }
                    }
                    return Ok(());
                }
            }
        }
    }

    /// The file written after the lost one that the listener has not read.
    /// p4 journal numbers say it: the lowest above ours. Logrotate's
    /// names (higher is older) and dates do not number the stream, so it
    /// is the oldest rotated file after the last one the listener finished
    /// (the checkpoint's `finished` list, proven by content); with none of
    /// those left, the oldest rotated file. With no rotated file left, or
    /// no finished list to tell read files from unread ones, it is the live
    /// file.
    fn after_gap(&self, c: &Cursor, candidates: &[Candidate]) -> Result<Next, FollowError> {
        let next = if candidates.iter().any(|k| k.number.is_some()) {
            candidates
                .iter()
                .filter(|k| k.number.is_some_and(|n| n > c.sequence))
                .min_by_key(|k| k.number)
                .map(|k| (k, k.number.expect("numbered")))
        } else {
            let before: Vec<_> = self
                .history
                .iter()
                .filter(|f| f.sequence < c.sequence)
                .collect();
            let read = |k: &Candidate| {
                before
                    .iter()
                    .any(|f| ends_at(&k.path, &finished_proof(f), f.size))
            };
            match candidates.iter().rposition(read) {
                Some(i) => candidates.get(i + 1),
                // logrotate deletes the oldest first: with the files finished
                // before ours gone too (or none finished: ours was the
                // stream's first), every rotated file left is newer than ours.
                None if !before.is_empty() || c.sequence == 1 => candidates.first(),
                None => {
                    if !candidates.is_empty() {
                        tracing::warn!(
                            journal = %self.cfg.name,
                            sequence = c.sequence,
                            rotated = ?candidates.iter().map(|k| k.path.display().to_string()).collect::<Vec<_>>(),
                            "no list of finished files to tell the rotated files read from those not read: going on with the live file"
                        );
                    }
                    None
                }
            }
            .map(|k| (k, c.sequence + 1))
        };
        match next {
            Some((k, seq)) => {
                let o = identity::open_unverified(&k.path, 0)
                    .map_err(|e| io_err(&self.cfg, &k.path, e))?;
                Ok(Next::Rotated(o, seq))
            }
            None => Ok(Next::Live),
        }
    }
}

/// The proof of a finished file's whole content.
fn finished_proof(f: &logdaemon_state::Finished) -> logdaemon_state::Identity {
    logdaemon_state::Identity {
        path: f.path.clone(),
        dev: 0,
        inode: 0,
        head_len: f.head_len,
        head_hash: f.head_hash,
        tail_len: f.tail_len,
        tail_hash: f.tail_hash,
    }
}
