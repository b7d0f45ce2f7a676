//! Framing of the p4d journal format.
//!
//! A journal record is fields separated by spaces, strings quoted with `@`
//! and a literal `@` inside a string doubled (`@@`). A newline inside a
//! string belongs to the string; a newline outside one ends the record.
//!
//! Every `@` toggles "inside a string" (an escaped `@@` toggles twice, and
//! the empty string `@@` opens and closes), so a record ends at the first
//! `\n` before which the record holds an even number of `@`. The framer finds
//! newlines with `memchr` and counts `@` per line with a loop the compiler
//! vectorises; it remembers how far it scanned and the parity so far, so a
//! growing buffer is never rescanned. Splitting a record into fields is
//! [`logdaemon_sdk::p4`]'s job.

use super::Framer;

/// The p4 journal framer. See the module documentation.
#[derive(Debug, Default, Clone)]
pub struct P4Framer {
    /// Bytes of the current record already scanned (the `@` parity of
    /// `buf[..scanned]` is `odd`).
    scanned: usize,
    /// Whether an odd number of `@` was seen in `buf[..scanned]`.
    odd: bool,
}

impl P4Framer {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Parity (1 = odd) of the number of `@` in `bytes`.
#[inline]
pub fn at_parity(bytes: &[u8]) -> u8 {
    // Chunked so the inner loop is a fixed-width XOR reduction that LLVM
    // turns into SIMD compares; the tail is done bytewise.
    let mut chunks = bytes.chunks_exact(32);
    let mut acc = [0u8; 32];
    for c in &mut chunks {
        for i in 0..32 {
            acc[i] ^= (c[i] == b'@') as u8;
        }
    }
    let mut p = acc.iter().fold(0u8, |a, &b| a ^ b);
    for &b in chunks.remainder() {
        p ^= (b == b'@') as u8;
    }
    p
}

impl Framer for P4Framer {
    fn next(&mut self, buf: &[u8]) -> Option<usize> {
        debug_assert!(self.scanned <= buf.len(), "buffer shrank under the framer");
        let mut at = self.scanned;
        let mut odd = self.odd;
        let result = loop {
            let rest = &buf[at..];
            match memchr::memchr(b'\n', rest) {
                Some(n) => {
                    odd ^= at_parity(&rest[..n]) == 1;
                    at += n + 1;
                    if !odd {
                        break Some(at);
                    }
                }
                None => {
                    odd ^= at_parity(rest) == 1;
                    at = buf.len();
                    break None;
                }
            }
        };
        self.scanned = at;
        self.odd = odd;
        result
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
        self.scanned = 0;
        self.odd = false;
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
            let (n, inc) = f.next(&buf[at..]).map(|n| (n, false)).or_else(|| f.finish(&buf[at..])).unwrap();
            out.push((&buf[at..at + n], inc));
            at += n;
            f.reset();
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
            // Scan state never passes the bytes seen.
            assert!(f.scanned <= end);
        }
        let (end, n) = got.unwrap();
        assert_eq!(n, j.len() - 9);
        assert_eq!(end, n, "the record is reported as soon as its newline arrives");
    }

    #[test]
    fn parity_counts_every_at() {
        for len in 0..100 {
            let mut v = vec![b'x'; len];
            for i in (0..len).step_by(3) {
                v[i] = b'@';
            }
            let slow = v.iter().filter(|&&b| b == b'@').count() as u8 & 1;
            assert_eq!(at_parity(&v), slow, "len {len}");
        }
    }

    #[test]
    fn finish_on_empty_is_none() {
        assert_eq!(P4Framer::new().finish(b""), None);
    }
}
