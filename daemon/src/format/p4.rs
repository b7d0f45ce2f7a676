//! Framing of the p4d journal format.
//!
//! A journal record is fields separated by spaces, strings quoted with `@`
//! and a literal `@` inside a string doubled (`@@`). A newline inside a
//! string belongs to the string; a newline outside one ends the record.
//!
//! Every `@` toggles "inside a string" (an escaped `@@` toggles twice, and
//! the empty string `@@` opens and closes), so a record ends at the first
//! `\n` before which the record holds an even number of `@`. The scan itself
//! (64-byte blocks, bit masks, prefix XOR) is in [`super::blocks`]; it
//! remembers how far it scanned and the parity so far, so a growing buffer
//! is never rescanned. Splitting a record into fields is
//! [`logdaemon_sdk::p4`]'s job.

use super::blocks::BlockScanner;
use super::Framer;

/// The p4 journal framer. See the module documentation.
#[derive(Debug, Clone)]
pub struct P4Framer {
    scan: BlockScanner,
}

impl P4Framer {
    pub fn new() -> Self {
        P4Framer {
            scan: BlockScanner::new(true),
        }
    }
}

impl Default for P4Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer for P4Framer {
    #[inline]
    fn next(&mut self, buf: &[u8]) -> Option<usize> {
        self.scan.next(buf)
    }

    fn finish(&mut self, buf: &[u8]) -> Option<(usize, bool)> {
        if buf.is_empty() {
            return None;
        }
        match self.next(buf) {
            Some(n) => Some((n, false)),
            None => Some((buf.len(), true)),
        }
    }

    fn reset(&mut self) {
        self.scan.reset();
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.scan.consume(n);
    }

    #[inline]
    fn record_is_one_line(&self) -> bool {
        self.scan.record_is_one_line()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(buf: &[u8]) -> Vec<(&[u8], bool)> {
        let mut f = P4Framer::new();
        let mut at = 0;
        let mut out = Vec::new();
        while at < buf.len() {
            let (n, inc) = f
                .next(&buf[at..])
                .map(|n| (n, false))
                .or_else(|| f.finish(&buf[at..]))
                .unwrap();
            out.push((&buf[at..at + n], inc));
            at += n;
            f.consume(n);
        }
        out
    }

    #[test]
    fn simple_records_and_markers() {
        let j = b"@pv@ 1 @db.counters@ @change@ @1@ \n@ex@ 49260 1373376891\n@nx@ 4 1 @34@ @@ \n";
        let r = frame(j);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].0, b"@pv@ 1 @db.counters@ @change@ @1@ \n");
        assert_eq!(r[1].0, b"@ex@ 49260 1373376891\n");
        assert_eq!(r[2].0, b"@nx@ 4 1 @34@ @@ \n");
        assert!(r.iter().all(|(_, inc)| !inc));
    }

    #[test]
    fn newline_inside_string_does_not_end_record() {
        let j = b"@pv@ 0 @db.desc@ 1 @line one\n@@pv@@ 0 @@db.x@@ \nthird@ \n@ex@ 1 2\n";
        let r = frame(j);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, &j[..j.len() - 9]);
        assert_eq!(r[1].0, b"@ex@ 1 2\n");
    }

    #[test]
    fn description_line_that_looks_like_a_record() {
        // The second physical line starts with "@pv@ " but is inside a string.
        let j = b"@pv@ 0 @db.desc@ 7 @text\n@pv@ 0 @db.fake@ @x@ \n@ \n";
        let r = frame(j);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(!r[0].1);
    }

    #[test]
    fn escapes_and_empty_strings() {
        let j = b"@pv@ 3 @db.user@ @a@@b@ @@ @@@@ @@@@@@ -5 \r\n@pv@ 0 @t@ @@@@@@@@ \n";
        let r = frame(j);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, b"@pv@ 3 @db.user@ @a@@b@ @@ @@@@ @@@@@@ -5 \r\n");
    }

    #[test]
    fn crlf_inside_string() {
        let j = b"@pv@ 0 @db.desc@ 1 @a\r\nb\r\n@ \r\n";
        let r = frame(j);
        assert_eq!(r, vec![(&j[..], false)]);
    }

    #[test]
    fn incomplete_tail_is_reported_not_invented() {
        let j = b"@pv@ 0 @db.desc@ 1 @done@ \n@pv@ 0 @db.desc@ 2 @open\nstill open";
        let r = frame(j);
        assert_eq!(r.len(), 2);
        assert!(!r[0].1);
        assert_eq!(r[1], (&j[27..], true));
        // A complete last line with no newline is still incomplete: the
        // newline that ends it has not been written yet.
        let r = frame(b"@ex@ 1 2");
        assert_eq!(r, vec![(&b"@ex@ 1 2"[..], true)]);
    }

    #[test]
    fn growing_buffer_is_not_rescanned_and_gives_the_same_answer() {
        let j = b"@pv@ 0 @db.desc@ 1 @a\nb\nc@@\nd@ \n@ex@ 1 2\n";
        let mut f = P4Framer::new();
        let mut got = None;
        for end in 0..=j.len() {
            if let Some(n) = f.next(&j[..end]) {
                got = Some((end, n));
                break;
            }
            // Everything seen was scanned once; the next call resumes there.
            assert_eq!(f.scan.scanned(), end);
        }
        let (end, n) = got.unwrap();
        assert_eq!(n, j.len() - 9);
        assert_eq!(
            end, n,
            "the record is reported as soon as its newline arrives"
        );
    }

    #[test]
    fn records_ending_at_every_block_position() {
        // Record ends land on every offset within and across 64-byte blocks.
        for pad in 0..140 {
            let first = format!("@pv@ 0 @db.desc@ 1 @{}\n@@x@ \n", "y".repeat(pad));
            let j = format!("{first}@ex@ 1 2\n");
            let r = frame(j.as_bytes());
            assert_eq!(r.len(), 2, "pad {pad}");
            assert_eq!(r[0].0, first.as_bytes(), "pad {pad}");
        }
    }

    #[test]
    fn finish_on_empty_is_none() {
        assert_eq!(P4Framer::new().finish(b""), None);
    }
}
