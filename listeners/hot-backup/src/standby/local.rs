//! Filling a hole from the local journal: the standby ends before the
//! run to ship (it was restored or truncated), and the missing bytes are
//! resent from the live journal once it is proved to be the very file the
//! standby mirrors (same bytes at the run, same bytes before the hole).

use super::*;

impl Standby {
    /// Proves the local journal is the file the standby's `file` mirrors and
    /// returns the range `[size, run.offset)` to send from it.
    pub(super) fn local_fill(
        &mut self,
        link: &mut Link,
        file: &str,
        seq: u64,
        size: u64,
        run: &Run<'_>,
    ) -> Result<Fill> {
        let (dir, journal, recovery) = (
            self.layout.dir.clone(),
            self.journal_path.display().to_string(),
            self.recovery(file),
        );
        let behind = |why: String| {
            fatal(format!(
                "the standby's {dir}/{file} ends at offset {size} but the journal (sequence {seq}) continues at offset {}, and the missing bytes cannot be taken from {journal}: {why}. \
                 Recovery: copy the journal's bytes from offset {size} to {} onto the standby by hand, or {recovery}",
                run.offset,
                run.offset,
            ))
        };
        let mut f = std::fs::File::open(&self.journal_path).map_err(|e| behind(e.to_string()))?;
        let k = run.bytes.len().min(TAIL);
        let local = read_local(&mut f, run.offset, k).map_err(|e| behind(e.to_string()))?;
        if local != run.bytes[..k] {
            return Err(behind(format!(
                "it holds other bytes at offset {} (it is no longer sequence {seq})",
                run.offset
            )));
        }
        if size > 0 {
            let k = size.min(TAIL as u64);
            let theirs = self.read_remote(link, file, size - k, k)?;
            let mine =
                read_local(&mut f, size - k, k as usize).map_err(|e| behind(e.to_string()))?;
            if theirs != mine {
                return Err(behind(format!(
                    "the standby's last bytes before offset {size} differ from the journal's"
                )));
            }
        }
        self.log.warn(&format!(
            "the standby's {file} is behind: resending bytes {size}..{} of sequence {seq} from {}",
            run.offset,
            self.journal_path.display()
        ));
        Ok(Fill {
            from: size,
            len: run.offset - size,
        })
    }
}

/// A range of the local journal to send ahead of a run.
pub(super) struct Fill {
    pub(super) from: u64,
    pub(super) len: u64,
}

pub(super) fn copy_local(
    path: &std::path::Path,
    f: &Fill,
    w: &mut dyn Write,
    dest: &str,
) -> Result<()> {
    let err = |e: std::io::Error| fatal(format!("reading {} for the standby: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(err)?;
    file.seek(SeekFrom::Start(f.from)).map_err(err)?;
    let mut left = f.len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = file.read(&mut buf[..want]).map_err(err)?;
        if n == 0 {
            return Err(fatal(format!(
                "{} ended while resending it to the standby",
                path.display()
            )));
        }
        w.write_all(&buf[..n])
            .map_err(|e| transient(format!("sending to the standby {dest}: {e}")))?;
        left -= n as u64;
    }
    Ok(())
}

pub(super) fn read_local(
    f: &mut std::fs::File,
    offset: u64,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(&mut v)?;
    Ok(v)
}
