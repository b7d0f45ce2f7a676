//! Rotated names against what the files prove.
//!
//! The successor of a finished file is chosen by the rotation scheme's name
//! order. A scheme that assumes the wrong direction (logrotate's `name.1`
//! is newest, an application that renames `name` to `name.1`, then
//! `name.2`, makes `name.2` newest) would re-read files already delivered
//! or skip newer ones. Two checks keep a wrong guess from doing either:
//!
//! - a file the names put after ours whose content is in the `finished`
//!   list (finished before ours) was read: it is passed over, never read
//!   again from its start;
//! - where the names carry no journal numbers (`{N}` says the order
//!   itself), a file the names put before ours (older), never finished, yet
//!   created after ours (and, where either is compressed, last written
//!   after ours too) contradicts the names and content cannot say where
//!   it belongs: the follower stops naming both files and the `rotated`
//!   setting that fits.
//!
//! The engine's planned single reader per journal will own this choice;
//! until then it lives in the follower's successor step.

use std::path::Path;

use logdaemon_state::{Finished, Identity};

use super::{ends_at, FollowError, Follower};
use crate::rotation::Candidate;

impl Follower {
    /// The proofs of the files finished before the one of sequence
    /// `our_seq` (proved by `ours` at its end `our_end`), except those that
    /// `ours` matches too: identical files prove nothing about each other.
    pub(super) fn finished_before(
        &self,
        our_seq: u64,
        ours: Option<&Identity>,
        our_end: u64,
    ) -> Vec<Finished> {
        let same = |f: &Finished| {
            ours.is_some_and(|id| {
                // A proof without a tail (a file resumed at its end) is
                // compared on what both have.
                f.size == our_end
                    && f.head_len == id.head_len
                    && f.head_hash == id.head_hash
                    && (f.tail_len == 0
                        || id.tail_len == 0
                        || (f.tail_len == id.tail_len && f.tail_hash == id.tail_hash))
            })
        };
        self.finished()
            .into_iter()
            .filter(|f| f.sequence < our_seq && !same(f))
            .collect()
    }

    /// Whether `k` holds one of the files in `done`, whole, by content.
    pub(super) fn read_before(k: &Candidate, done: &[Finished]) -> bool {
        done.iter().any(|f| {
            let proof = Identity {
                path: f.path.clone(),
                dev: 0,
                inode: 0,
                head_len: f.head_len,
                head_hash: f.head_hash,
                tail_len: f.tail_len,
                tail_hash: f.tail_hash,
            };
            f.size > 0 && ends_at(&k.path, &proof, f.size)
        })
    }

    /// A stop when a file the names put before `ours` (older) was created
    /// after it and was never read: the names count the other way.
    pub(super) fn names_contradict(
        &self,
        ours: &Path,
        older: &[&Candidate],
        done: &[Finished],
    ) -> Option<FollowError> {
        let born = |p: &Path| {
            std::fs::metadata(p)
                .and_then(|m| super::unproven::birth_time(&m))
                .ok()
        };
        let written = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let plain = |p: &Path| {
            let mut magic = [0u8; 8];
            std::fs::File::open(p)
                .and_then(|f| std::os::unix::fs::FileExt::read_at(&f, &mut magic, 0))
                .is_ok_and(|n| {
                    crate::compress::detect(&magic[..n]) == crate::compress::Compression::None
                })
        };
        // A compressed file is born when it is compressed (logrotate's
        // delaycompress compresses an older file after ours was created);
        // compressors keep the last write time, which then must agree.
        // Ours compressed: born when compressed, written (as kept by the
        // compressor) when the original was last written; the earlier counts.
        let our_birth = born(ours).map(|b| written(ours).map_or(b, |w| b.min(w)))?;
        let our_plain = plain(ours);
        let written_after = |k: &Candidate| {
            written(&k.path)
                .zip(written(ours))
                .is_some_and(|(a, b)| a > b)
        };
        // File times come from a clock that ticks every few milliseconds:
        // a writer that renames its file and at once creates the next one
        // gives the new file the very time of the old one's last write. A
        // tie is "after" when the other file was also written after ours
        // (a truly older file was last written before ours was created).
        let k = older.iter().find(|k| {
            born(&k.path).is_some_and(|b| b > our_birth || b == our_birth && written_after(k))
                && (our_plain && plain(&k.path) || written_after(k))
                && !Self::read_before(k, done)
        })?;
        Some(FollowError::Other {
            journal: self.cfg.name.clone(),
            message: format!(
                "the rotated file names say {} is older than {}, which was just read to its end, but it was created after it and was never read: \
                 the rotated files are numbered the other way round from what the `rotated` setting assumes. Delivery stops at the end of {}; nothing of {} was delivered. \
                 If a higher number is newer (the application renames {} to .1, then .2, …), set rotated = [\"{{name}}.{{N}}{{ext}}\"] for this journal and start again",
                k.path.display(),
                ours.display(),
                ours.display(),
                k.path.display(),
                self.cfg.path.display(),
            ),
        })
    }

    /// Reports, once each, finished plain files that grew after they were
    /// read to their end and left: a writer held the renamed file open for
    /// longer than `late_writes`. Those bytes are not delivered (the stream
    /// has moved on); the log says which file and how many.
    pub(super) fn report_late_writes(&self, candidates: &[Candidate]) {
        for f in self.finished() {
            if f.tail_len == 0 {
                continue;
            }
            let proof = Identity {
                path: f.path.clone(),
                dev: 0,
                inode: 0,
                head_len: f.head_len,
                head_hash: f.head_hash,
                tail_len: f.tail_len,
                tail_hash: f.tail_hash,
            };
            for k in candidates {
                let Ok(now) = std::fs::metadata(&k.path).map(|m| m.len()) else {
                    continue;
                };
                if now <= f.size || self.late_reported.borrow().contains(&(f.sequence, now)) {
                    continue;
                }
                let Ok(o) = crate::identity::open_matching(&k.path, &proof, f.size) else {
                    continue;
                };
                if o.compression != crate::compress::Compression::None {
                    continue;
                }
                self.late_reported.borrow_mut().push((f.sequence, now));
                tracing::error!(
                    journal = %self.cfg.name,
                    file = %k.path.display(),
                    sequence = f.sequence,
                    read_to = f.size,
                    size = now,
                    bytes = now - f.size,
                    late_writes = ?self.cfg.late_writes,
                    "bytes were appended to a rotated file after it was read to its end and left: they were not delivered. A writer held the renamed file open longer than late_writes; raise late_writes for this journal"
                );
            }
        }
    }
}
