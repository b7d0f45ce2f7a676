//! On every (re)connect: asking the standby where it stands and checking
//! it against the listener's durable record, by checksum and content,
//! before anything is shipped.

use super::*;

impl Standby {
    /// Connects and reconciles with the standby unless already connected.
    pub fn connect(&mut self) -> Result<()> {
        if self.link.is_some() {
            return Ok(());
        }
        let mut conn = Conn::open(&self.cfg)?;
        let rec = match record::load(&self.record_path) {
            Ok(r) => r,
            Err(e) => {
                // Only a check is lost: the standby is still compared with
                // every redelivered byte.
                self.log
                    .warn(&format!("ignoring the listener's record: {e}"));
                None
            }
        };
        let rec = match rec {
            Some(r) if r.target != self.target => {
                self.log.warn(&format!(
                    "{} describes the standby {}, not {}: ignoring it and checking the new standby against the journal",
                    self.record_path.display(),
                    r.target,
                    self.target
                ));
                None
            }
            r => r,
        };
        let seqs: Vec<u64> = rec.iter().map(|r| r.sequence).collect();
        let out = conn.capture(&self.layout.query(&seqs))?;
        let view = View::parse(&String::from_utf8_lossy(&out), &self.layout)?.ok_or_else(|| {
            fatal(format!(
                "remote_dir {} does not exist on {} (or `{}` cannot enter it): create it, owned by `{}`",
                self.cfg.remote_dir, self.cfg.host, self.cfg.user, self.cfg.user
            ))
        })?;
        self.log.info(&format!(
            "connected to {} ({}): live sequence {:?}, {} bytes, applied {:?}",
            self.target,
            conn.cipher(),
            view.live_seq,
            view.live_size.map_or("no".into(), |n| n.to_string()),
            view.applied
        ));
        let mut link = Link { conn, view };
        if let Some(r) = &rec {
            if let Some(tail) = self.check_record(&mut link, r)? {
                self.tail = Some(tail);
                if self.cfg.apply.is_some() {
                    // A batch appended but not applied before a crash or a
                    // failure: apply it now rather than wait for more data.
                    let live_seq = link.view.live_seq.unwrap_or(r.sequence);
                    let from = link.view.applied.unwrap_or((live_seq, 0));
                    let pieces =
                        shell::apply_pieces(&self.layout, from, (r.sequence, r.size), live_seq);
                    if !pieces.is_empty() {
                        self.log.info(&format!(
                            "applying the standby from {from:?} up to {:?}",
                            (r.sequence, r.size)
                        ));
                        let batch = Batch {
                            apply: pieces,
                            fsync: self.cfg.fsync,
                            apply_timeout_s: self.apply_timeout_s(),
                            ..Default::default()
                        };
                        let script = batch.script(&self.layout, self.cfg.apply.as_deref());
                        let out = link.conn.run(
                            &script,
                            0,
                            &mut |_| Ok(()),
                            self.answer_wait(),
                            false,
                        )?;
                        self.check_status(&out)?;
                        link.view.applied = Some((r.sequence, r.size));
                    }
                }
            }
        }
        self.link = Some(link);
        Ok(())
    }

    /// Checks the standby against our record. Returns the verified tail, or
    /// `None` when the standby is shorter than recorded (it is then treated
    /// as behind and filled from the journal where possible).
    fn check_record(&self, link: &mut Link, r: &Record) -> Result<Option<Tail>> {
        let (file, size) = link.view.file_of(&self.layout, r.sequence);
        match size {
            Some(n) if n >= r.size => {
                let from = r.size - r.tail_len;
                let bytes = read(&mut link.conn, &self.layout, &file, from, r.tail_len)?;
                if !r.matches_tail(&bytes) {
                    return Err(fatal(format!(
                        "the standby's {}/{file} differs from what was sent: its {} bytes before offset {} (sequence {}) are not the bytes shipped there. \
                         The standby was changed or replaced. Nothing more is sent. Recovery: {}",
                        self.layout.dir,
                        r.tail_len,
                        r.size,
                        r.sequence,
                        self.recovery(&file)
                    )));
                }
                let sum = if self.cfg.verify {
                    self.check_whole(link, &file, r)?
                } else {
                    None
                };
                Ok(Some(Tail {
                    seq: r.sequence,
                    end: r.size,
                    bytes,
                    sum,
                }))
            }
            _ => {
                self.log.warn(&format!(
                    "the standby's {}/{file} has {} bytes but {} were shipped (sequence {}): it was truncated or restored; the missing part is resent from the journal if it is still there",
                    self.layout.dir,
                    size.map_or("no".into(), |n| n.to_string()),
                    r.size,
                    r.sequence
                ));
                Ok(None)
            }
        }
    }

    /// Checks the standby's `file` up to the record's size with one
    /// `cksum` there (`verify`). Against the record's checksum a difference
    /// is fatal, naming the first differing offset when the local journal
    /// holds the bytes that were sent; without one (an older record, bytes
    /// resent from the journal) the checksum is taken from the local
    /// journal if the standby matches it, else the file stays unchecked
    /// until the next connection after a run from offset 0.
    fn check_whole(&self, link: &mut Link, file: &str, r: &Record) -> Result<Option<Cksum>> {
        let out = link.conn.capture(&self.layout.cksum(file, r.size))?;
        let text = String::from_utf8_lossy(&out);
        let theirs = cksum::parse(&text).ok_or_else(|| {
            transient(format!(
                "unexpected `cksum` output from the standby: `{}`",
                text.trim()
            ))
        })?;
        let Some(ours) = r.cksum.map(|s| Cksum::resume(s, r.size)) else {
            return Ok(self
                .local_cksum(r.size)
                .filter(|l| (l.value(), l.covered()) == theirs));
        };
        if (ours.value(), ours.covered()) == theirs {
            return Ok(Some(ours));
        }
        let at = match self.local_cksum(r.size) {
            Some(l) if l == ours => self
                .first_difference_with_journal(link, file, r.size)?
                .map_or(String::new(), |o| format!(", first at offset {o}")),
            _ => String::new(),
        };
        Err(fatal(format!(
            "the standby's {}/{file} differs from what was sent (sequence {}): its first {} bytes have cksum {} {}, the bytes shipped there {} {}{at}. \
             The standby was changed or replaced. Nothing more is sent. Recovery: {}",
            self.layout.dir,
            r.sequence,
            r.size,
            theirs.0,
            theirs.1,
            ours.value(),
            ours.covered(),
            self.recovery(file)
        )))
    }

    /// The checksum of the local journal's first `len` bytes, if it has them.
    fn local_cksum(&self, len: u64) -> Option<Cksum> {
        let mut f = std::fs::File::open(&self.journal_path).ok()?;
        let mut sum = Cksum::new();
        let mut buf = vec![0u8; 1 << 20];
        while sum.covered() < len {
            let want = (len - sum.covered()).min(buf.len() as u64) as usize;
            let n = f.read(&mut buf[..want]).ok()?;
            if n == 0 {
                return None;
            }
            sum.update(&buf[..n]);
        }
        Some(sum)
    }

    /// The first offset where the standby's `file` and the local journal
    /// differ within the first `len` bytes: `cksum` of at most 256 pieces
    /// on the standby, then the bytes of the first piece that differs.
    fn first_difference_with_journal(
        &self,
        link: &mut Link,
        file: &str,
        len: u64,
    ) -> Result<Option<u64>> {
        let piece = len.div_ceil(256).max(64 << 10);
        let out = link
            .conn
            .capture(&self.layout.cksum_pieces(file, len, piece))?;
        let theirs: Vec<Option<(u32, u64)>> = String::from_utf8_lossy(&out)
            .lines()
            .map(cksum::parse)
            .collect();
        let mut f = std::fs::File::open(&self.journal_path)
            .map_err(|e| transient(format!("{}: {e}", self.journal_path.display())))?;
        let mut from = 0;
        for t in theirs {
            let n = piece.min(len - from);
            let mine = read_local(&mut f, from, n as usize)
                .map_err(|e| transient(format!("{}: {e}", self.journal_path.display())))?;
            let mut c = Cksum::new();
            c.update(&mine);
            if t != Some((c.value(), n)) {
                let remote = read(&mut link.conn, &self.layout, file, from, n)?;
                return Ok(first_difference(&remote, &mine).map(|i| from + i as u64));
            }
            from += n;
        }
        Ok(None)
    }

    pub(super) fn recovery(&self, file: &str) -> String {
        format!(
            "check {dir}/{file} on the standby against the journal; to rebuild the standby from the journal, \
             remove (or truncate to the last good transaction) {dir}/{file} and every later file and the markers {dir}/{m} and {dir}/{a}, \
             delete {rec}, and set this listener's checkpoint to match (`logdaemon checkpoint set`); see the hot-backup documentation",
            dir = self.layout.dir,
            m = shell::MARKER,
            a = shell::APPLIED,
            rec = self.record_path.display()
        )
    }
}
