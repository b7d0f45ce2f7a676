//! Keeping an idle follower cheap.
//!
//! Thousands of quiet journals are checked every `reconcile_every`. A check
//! that finds nothing costs reads (the bytes before the position, the
//! first bytes) and allocations; repeated a thousand times a second that is
//! most of an idle daemon's CPU. So when a follower finds nothing to read
//! it takes a *stamp* of its files' `stat`, and the next check compares
//! the stamp first: only when something changed (size, times, inode) does
//! it read and prove content again.
//!
//! The stamp is taken only when the file was read to its end (its size is
//! the read position: a write that raced the last read is never hidden)
//! and only in the steady state, where nothing but the
//! files can change what the follower would do: reading the live file at
//! the live path, not draining a renamed file, no gap or record held.
//! Anything that writes to, truncates, renames or replaces the live file
//! changes its `stat` (size, mtime or ctime, inode).

use crate::compress::Compression;
use crate::segment::Origin;
use crate::stamp::FileStamp;

use super::Follower;

/// What `stat` says of the live path (which leads to the file the
/// follower reads, when it reads one: one `stat` covers both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    path: Option<FileStamp>,
}

impl Follower {
    /// The stamp of the steady state, or `None` when the follower is not in it.
    fn stamp(&self) -> Option<Stamp> {
        if self.draining || self.pending_gap.is_some() || self.held.is_some() {
            return None;
        }
        let path = FileStamp::at(&self.cfg.path);
        let Some(seg) = self.seg.as_ref() else {
            // Nothing to follow yet: only the live path can change that,
            // and a file that is there already is something to open.
            return path.is_none().then_some(Stamp { path });
        };
        if seg.origin != Origin::Live || seg.compression != Compression::None {
            return None;
        }
        if seg.reader.buffered() > 0 {
            return None;
        }
        seg.file()?;
        // The live path must still lead to the file we read.
        let key = seg.key?;
        if path.as_ref().map(|p| (p.dev, p.ino)) != Some((key.dev, key.ino)) {
            return None;
        }
        // Bytes written after the read that found nothing (and before this
        // `stat`) would be in the stamp without being read: only a file
        // read to its very end is stamped.
        if path.as_ref().map(|p| p.size) != Some(seg.read_pos()) {
            return None;
        }
        Some(Stamp { path })
    }

    /// When this follower must look again though no file event comes: the
    /// end of the watch for late writes to a renamed file (after which it
    /// finishes that file and reads the new one). `None` when nothing but
    /// the files can change what it would do, or when that time is past.
    pub fn wake_at(&self) -> Option<std::time::Instant> {
        let seg = self.seg.as_ref()?;
        let at = seg.moved_on_at? + self.cfg.late_writes;
        (at > std::time::Instant::now()).then_some(at)
    }

    /// Called when a fill found nothing to read: remembers the stamp.
    pub fn note_idle(&mut self) {
        self.idle_stamp = self.stamp();
    }

    /// Whether nothing changed since [`note_idle`](Self::note_idle): the
    /// next fill would find nothing either. A changed or missing stamp is
    /// forgotten, so the fill that follows does the full check.
    pub fn idle_unchanged(&mut self) -> bool {
        let Some(was) = self.idle_stamp.take() else {
            return false;
        };
        if self.stamp().as_ref() == Some(&was) {
            self.idle_stamp = Some(was);
            return true;
        }
        false
    }

    /// Gives back the read buffer while nothing is buffered in it.
    pub fn release_buffers(&mut self) {
        if let Some(seg) = self.seg.as_mut() {
            seg.reader.release();
        }
    }
}

#[cfg(test)]
mod tests_support {

    use crate::config::Config;
    use crate::follow::Follower;

    pub(super) fn follower(dir: &std::path::Path) -> Follower {
        let text = "[[journal]]\nname = \"app\"\npath = \"app.log\"\nformat = \"lines\"\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n";
        let cfg = Config::parse(text, &dir.join("cfg.toml")).unwrap();
        Follower::open(cfg.journals[0].clone(), None, None).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::tests_support::follower;
    use crate::follow::{Batch, Fill, Follower};

    fn drain(f: &mut Follower) -> usize {
        let mut n = 0;
        loop {
            let mut b = Batch::default();
            let fill = f.fill(&mut b, 1 << 20).unwrap();
            n += b.entries.len();
            if matches!(fill, Fill::Idle) && b.is_empty() {
                return n;
            }
        }
    }

    #[test]
    fn an_idle_stamp_holds_until_the_file_is_appended_to_truncated_or_replaced() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("app.log");
        std::fs::write(&path, b"one\ntwo\n").unwrap();
        let mut f = follower(d.path());
        assert_eq!(drain(&mut f), 2);
        f.note_idle();
        assert!(f.idle_unchanged(), "nothing changed");
        assert!(f.idle_unchanged(), "still nothing");

        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        w.write_all(b"three\n").unwrap();
        assert!(!f.idle_unchanged(), "an append changes the stamp");
        assert!(
            !f.idle_unchanged(),
            "a changed stamp is forgotten until the next idle"
        );
        assert_eq!(drain(&mut f), 1);
        f.note_idle();
        assert!(f.idle_unchanged());

        // Same size, other bytes: a truncation and a rewrite.
        std::fs::write(&path, b"ONE\nTWO\nTHREE\n").unwrap();
        assert!(!f.idle_unchanged(), "a rewrite changes the stamp");
        drain(&mut f);
        f.note_idle();

        // Replaced by a rename.
        std::fs::write(d.path().join("new"), b"x\n").unwrap();
        std::fs::rename(&path, d.path().join("app.log.1")).unwrap();
        std::fs::rename(d.path().join("new"), &path).unwrap();
        assert!(!f.idle_unchanged(), "a new live file changes the stamp");
    }

    #[test]
    fn a_released_reader_reads_on_where_it_was() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("app.log");
        std::fs::write(&path, b"one\n").unwrap();
        let mut f = follower(d.path());
        assert_eq!(drain(&mut f), 1);
        f.release_buffers();
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        w.write_all(b"two\nthree\n").unwrap();
        let mut b = Batch::default();
        f.fill(&mut b, 1 << 20).unwrap();
        let lines: Vec<&[u8]> = b.entries.iter().map(|m| b.raw(m)).collect();
        assert_eq!(lines, [&b"two\n"[..], b"three\n"]);
    }
}

#[cfg(test)]
mod race {
    use std::io::Write;

    use super::tests_support::follower;

    /// A write between the read that found nothing and the stamp: the
    /// stamp must not hide it.
    #[test]
    fn bytes_written_after_the_last_read_are_never_stamped_as_nothing_new() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("app.log");
        std::fs::write(&path, b"one\n").unwrap();
        let mut f = follower(d.path());
        let mut b = crate::follow::Batch::default();
        f.fill(&mut b, 1 << 20).unwrap();
        let mut b = crate::follow::Batch::default();
        f.fill(&mut b, 1 << 20).unwrap();
        assert!(b.is_empty());
        // The write lands after the empty read, before the stamp.
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        w.write_all(b"two\n").unwrap();
        f.note_idle();
        assert!(!f.idle_unchanged(), "the unread line is not hidden");
    }
}
