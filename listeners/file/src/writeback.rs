//! Starting the disk write of output bytes early.
//!
//! Without per-batch syncs the output's bytes stay dirty in the page cache
//! until the final `flush` (a clean stop, the end of `run --once`) syncs
//! them. On a disk file system that sync then writes the whole catch-up at
//! once, after the reading is done: reading and writing take turns instead
//! of overlapping, and a 1 GiB catch-up with `fsync = false` takes as long
//! as one with per-batch syncs. Asking the kernel to start writing each
//! batch as soon as it is written (`sync_file_range` with
//! `SYNC_FILE_RANGE_WRITE`, which does not wait for the disk, as RocksDB's
//! `bytes_per_sync` does) keeps the disk busy during the catch-up, and the
//! final sync finds little left to do. Nothing is promised by it: it is a
//! hint, and a file system that does not take it (tmpfs ignores it) loses
//! nothing.
//!
//! With `fsync = true` the same keeps the disk busy while batches that
//! share one sync are written (see [`crate::group`]): that sync then
//! waits for the last of them only.
//!
//! Writeback is started per [`EVERY`] bytes, not per batch: a live log
//! delivered a few lines at a time would otherwise write the same page to
//! disk again for every batch.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Bytes written between two starts of writeback.
pub(crate) const EVERY: u64 = 1 << 20;

/// Where the bytes not yet handed to writeback begin, in one output.
#[derive(Debug)]
pub(crate) struct Pacer {
    from: u64,
}

impl Pacer {
    /// A pacer for an output whose first `len` bytes are not its concern.
    pub(crate) fn new(len: u64) -> Pacer {
        Pacer { from: len }
    }

    /// The output now ends at `end`: starts writeback of what was written
    /// since the last start, once that is [`EVERY`] bytes or more. An
    /// output cut back (`end` below the last start) starts over there.
    pub(crate) fn written(&mut self, file: &File, end: u64) {
        if end < self.from {
            self.from = end;
        } else if end - self.from >= EVERY {
            start(file, self.from, end - self.from);
            self.from = end;
        }
    }
}

/// Starts writing `len` bytes of `file` at `offset` to disk, without
/// waiting for them. Errors are ignored: durability comes from the sync
/// in `flush`, not from this.
fn start(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    if len == 0 {
        return;
    }
    // SAFETY: a valid open descriptor; the call reads no memory of ours.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    #[test]
    fn starting_writeback_leaves_the_bytes_as_written() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out");
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(b"hello, disk\n").unwrap();
        super::start(&f, 0, 12);
        super::start(&f, 12, 0);
        super::start(&f, u64::MAX, 1);
        assert_eq!(std::fs::read(&p).unwrap(), b"hello, disk\n");
    }

    #[test]
    fn the_pacer_starts_writeback_per_every_bytes_and_follows_a_cut() {
        let d = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(d.path().join("out")).unwrap();
        let mut p = super::Pacer::new(10);
        p.written(&f, 10 + super::EVERY - 1);
        assert_eq!(p.from, 10, "below EVERY: nothing started yet");
        p.written(&f, 10 + super::EVERY);
        assert_eq!(p.from, 10 + super::EVERY);
        p.written(&f, 5);
        assert_eq!(p.from, 5, "cut back: starts over at the new end");
    }
}
