//! Waiting for a compressed file that is still being written.
//!
//! A compressor writes `X.gz` while `X` still exists, and p4d `-z` writes a
//! rotated journal compressed with no plain copy at all, so a compressed
//! predecessor can be read before it is complete: its data ends too soon.
//! Calling that corrupt would stop the daemon (or report a gap) for bytes
//! that exist a moment later. [`Settling`] waits while the file keeps
//! changing, then decodes it again and reads on from the same uncompressed
//! offset; a file unchanged for the whole wait is truncated for good.
//!
//! The wait runs from the file's modification time, which every write
//! moves: a file left half-written long ago is reported at once, and a
//! test (or an operator) can make a file "old" without waiting.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::{read_opened, DecodeError, DecodeErrorKind};

/// The wait used by [`open`], in milliseconds (see [`set_truncated_wait`]).
static TRUNCATED_WAIT_MS: AtomicU64 = AtomicU64::new(DEFAULT_TRUNCATED_WAIT.as_millis() as u64);

/// How long a compressed file that ends too soon may stay unchanged before
/// it is called truncated, unless configured otherwise: long enough for a
/// compressor that writes its output in large blocks (xz, zstd -T).
pub const DEFAULT_TRUNCATED_WAIT: Duration = Duration::from_secs(60);

/// The wait [`open`] gives a compressed file that ends too soon.
pub fn truncated_wait() -> Duration {
    Duration::from_millis(TRUNCATED_WAIT_MS.load(Ordering::Relaxed))
}

/// Sets the wait [`open`] gives a compressed file that ends too soon (the
/// daemon's config); zero reports such a file at once.
pub fn set_truncated_wait(wait: Duration) {
    TRUNCATED_WAIT_MS.store(
        wait.as_millis().min(u64::MAX as u128) as u64,
        Ordering::Relaxed,
    );
}

/// What to do when a compressed file ends before its stream does.
///
/// The file is being written if it changed less than `wait` ago (by its
/// modification time, which every write moves): then the reader polls it
/// every `poll` until it grows, reopens it and reads on from the same
/// uncompressed offset. A file unchanged for `wait` is truncated for good.
/// `now` is the clock the modification time is compared with.
#[derive(Clone, Copy, Debug)]
pub struct Settle {
    pub wait: Duration,
    pub poll: Duration,
    pub now: fn() -> SystemTime,
}

impl Settle {
    pub fn new(wait: Duration) -> Settle {
        Settle {
            wait,
            poll: (wait / 20).clamp(Duration::from_millis(1), Duration::from_millis(100)),
            now: SystemTime::now,
        }
    }
}

/// What a compressed file that ended too soon turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// Longer than `len`: read it again.
    Grew,
    /// Unchanged for the whole wait: truncated for good.
    Settled { unchanged: Duration },
}

/// Watches `file` (of `len` bytes when its data ended too soon) until it
/// grows or has been unchanged for `settle.wait`.
pub fn wait_for_growth(file: &File, len: u64, settle: &Settle) -> io::Result<Growth> {
    loop {
        let md = file.metadata()?;
        if md.len() > len {
            return Ok(Growth::Grew);
        }
        let changed = md.modified()?;
        let unchanged = (settle.now)()
            .duration_since(changed)
            .unwrap_or(Duration::ZERO);
        if unchanged >= settle.wait {
            return Ok(Growth::Settled { unchanged });
        }
        std::thread::sleep(settle.poll.min(settle.wait - unchanged));
    }
}

/// The decoded bytes of a compressed file that may still be being written:
/// at a premature end, waits for the file to grow, then decodes it again
/// from the start and skips what was already returned.
pub(super) struct Settling {
    pub(super) path: PathBuf,
    /// The file itself (followed through renames), to watch it grow.
    pub(super) watch: File,
    pub(super) inner: Box<dyn Read + Send>,
    /// Uncompressed bytes returned so far.
    pub(super) offset: u64,
    pub(super) settle: Settle,
}

impl Settling {
    fn reopen(&mut self) -> io::Result<()> {
        // The file we watch, wherever it is now: a rotation may have
        // renamed it meanwhile, and another file may have its old name.
        let again = super::reopen(&self.watch)?;
        let o = read_opened(again, &self.path)
            .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.to_string()))?;
        let mut inner = o.reader;
        let copied = io::copy(&mut (&mut inner).take(self.offset), &mut io::sink())?;
        if copied < self.offset {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: now holds {copied} uncompressed bytes, fewer than the {} read before",
                    self.path.display(),
                    self.offset
                ),
            ));
        }
        self.inner = inner;
        Ok(())
    }
}

impl Read for Settling {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let e = match self.inner.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) => e,
            };
            let Some(d) = DecodeError::find(&e).filter(|d| d.kind == DecodeErrorKind::Truncated)
            else {
                return Err(e);
            };
            let len = self.watch.metadata()?.len();
            tracing::info!(file = %self.path.display(), offset = d.offset, size = len, "compressed file ends too soon; waiting while it is written");
            match wait_for_growth(&self.watch, len, &self.settle)? {
                Growth::Grew => self.reopen()?,
                Growth::Settled { unchanged } => {
                    let d = DecodeError {
                        path: d.path.clone(),
                        compression: d.compression,
                        offset: d.offset,
                        kind: d.kind,
                        detail: d.detail.clone(),
                        settled: Some(unchanged),
                    };
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, d));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::tests::{gzip, read_settling, write_tmp, ALL};
    use crate::compress::DecodeError;
    use std::io::Write;

    fn lines(n: u32) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("@pv@ 0 @db.counters@ @c{i}@ @{i}@ \n").into_bytes())
            .collect()
    }

    #[test]
    fn a_file_still_being_written_is_waited_for_and_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let big = lines(20_000);
        for (c, enc) in ALL {
            let full = enc(&big);
            let p = write_tmp(&dir, "growing", &full[..full.len() / 3]);
            let (p2, rest) = (p.clone(), full[full.len() / 3..].to_vec());
            // The compressor writes the rest in two pieces, a while apart.
            let writer = std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new().append(true).open(&p2).unwrap();
                for piece in rest.chunks(rest.len() / 2 + 1) {
                    std::thread::sleep(Duration::from_millis(60));
                    f.write_all(piece).unwrap();
                }
            });
            let got = read_settling(&p, Settle::new(Duration::from_secs(30)))
                .unwrap_or_else(|e| panic!("{c}: {e}"));
            writer.join().unwrap();
            assert!(got == big, "{c}: {} of {} bytes", got.len(), big.len());
        }
    }

    #[test]
    fn a_truncated_file_unchanged_for_the_wait_is_truncated_and_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let big = lines(20_000);
        for (c, enc) in ALL {
            let full = enc(&big);
            let p = write_tmp(&dir, "cut", &full[..full.len() / 2]);
            // Last written an hour ago: settled long since, no wait.
            let hour_ago = SystemTime::now() - Duration::from_secs(3600);
            File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
            let started = std::time::Instant::now();
            let e = read_settling(&p, Settle::new(Duration::from_secs(60))).expect_err("truncated");
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{c}: waited {:?}",
                started.elapsed()
            );
            let d = DecodeError::find(&e).unwrap_or_else(|| panic!("{c}: {e}"));
            assert_eq!(
                (d.kind, e.kind()),
                (DecodeErrorKind::Truncated, io::ErrorKind::UnexpectedEof),
                "{c}: {d}"
            );
            let msg = d.to_string();
            let head = format!(
                "{}: {c} data ends unexpectedly at uncompressed offset {} (unchanged for 360",
                p.display(),
                d.offset
            );
            let tail = " s): the file is truncated (a compressor that stopped half-way, or a partial copy); restore the \
                        complete file (or the uncompressed one) under this name, or move past its end with `logdaemon checkpoint set`";
            assert!(msg.starts_with(&head) && msg.ends_with(tail), "{c}: {msg}");
        }
    }

    #[test]
    fn the_wait_runs_on_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let full = gzip(&lines(10_000));
        let p = write_tmp(&dir, "cut.gz", &full[..full.len() / 2]);
        // Just written, but the clock says two minutes later.
        let settle = Settle {
            now: || SystemTime::now() + Duration::from_secs(120),
            ..Settle::new(Duration::from_secs(60))
        };
        let f = File::open(&p).unwrap();
        assert!(
            matches!(wait_for_growth(&f, full.len() as u64 / 2, &settle).unwrap(), Growth::Settled { unchanged } if unchanged >= Duration::from_secs(119))
        );
        // A short wait on the real clock ends once the file is that old.
        let started = std::time::Instant::now();
        let short = Settle::new(Duration::from_millis(150));
        assert!(matches!(
            wait_for_growth(&f, full.len() as u64 / 2, &short).unwrap(),
            Growth::Settled { .. }
        ));
        assert!(started.elapsed() < Duration::from_secs(10));
        // Growth is seen at once.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(&full[full.len() / 2..])
            .unwrap();
        assert_eq!(
            wait_for_growth(
                &f,
                full.len() as u64 / 2,
                &Settle::new(Duration::from_secs(60))
            )
            .unwrap(),
            Growth::Grew
        );
    }

    #[test]
    fn corrupt_data_is_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = gzip(&lines(50_000));
        let mid = data.len() / 2;
        for b in &mut data[mid..mid + 64] {
            *b ^= 0x5a;
        }
        let p = write_tmp(&dir, "bad.gz", &data);
        let started = std::time::Instant::now();
        let e = read_settling(&p, Settle::new(Duration::from_secs(60))).expect_err("corrupt");
        assert_eq!(
            DecodeError::find(&e).map(|d| d.kind),
            Some(DecodeErrorKind::Corrupt),
            "{e}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "waited {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_file_renamed_while_being_written_is_read_on_from_where_it_went() {
        let dir = tempfile::tempdir().unwrap();
        let big = lines(20_000);
        let full = gzip(&big);
        let p = write_tmp(&dir, "app.log.1.gz", &full[..full.len() / 3]);
        let moved = dir.path().join("app.log.2.gz");
        let (from, to, rest) = (p.clone(), moved.clone(), full[full.len() / 3..].to_vec());
        // Renamed (a rotation shifting names), another file takes the old
        // name, then the compressor finishes the renamed one.
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&from)
                .unwrap();
            std::thread::sleep(Duration::from_millis(60));
            std::fs::rename(&from, &to).unwrap();
            std::fs::write(&from, gzip(b"another file\n")).unwrap();
            std::thread::sleep(Duration::from_millis(60));
            f.write_all(&rest).unwrap();
        });
        let got = read_settling(&p, Settle::new(Duration::from_secs(30))).unwrap();
        writer.join().unwrap();
        assert!(got == big, "{} of {} bytes", got.len(), big.len());
    }
}
