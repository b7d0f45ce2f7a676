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
//!
//! A record with an odd number of unescaped `@` (a writer's bug, a cut
//! copy) would otherwise swallow the rest of the journal as one string. In
//! a valid journal a string's closing `@` is followed by the space that
//! separates fields, so a line that starts inside a string with `@` and a
//! byte other than `@`, space, CR or LF (`@pv@ …`, `@ex@ …`) proves that
//! the string was never closed: the record is cut before that line and
//! returned as one that can never complete ([`Framer::unclosed`]), and
//! framing goes on at that line.

use super::blocks::BlockScanner;
use super::Framer;

/// The p4 journal framer. See the module documentation.
#[derive(Debug, Clone)]
pub struct P4Framer {
    scan: BlockScanner,
    /// Newlines before this index of the current record were checked.
    checked: usize,
    /// The record just returned can never close (see the module docs).
    unclosed: bool,
}

impl P4Framer {
    pub fn new() -> Self {
        P4Framer {
            scan: BlockScanner::new(true),
            checked: 0,
            unclosed: false,
        }
    }

    /// Where a line inside a string of the record at the start of `buf`
    /// begins with a record start, among the newlines in `buf[..limit]`
    /// (each inside a string: the record did not end there).
    fn line_proving_unclosed(&mut self, buf: &[u8], limit: usize) -> Option<usize> {
        for j in memchr::memchr_iter(b'\n', &buf[self.checked.min(limit)..limit]) {
            let j = j + self.checked;
            match (buf.get(j + 1), buf.get(j + 2)) {
                (Some(b'@'), Some(c)) if !matches!(c, b'@' | b' ' | b'\r' | b'\n') => {
                    return Some(j + 1)
                }
                (Some(_), Some(_)) => {}
                // The line's first bytes are not there yet: look again then.
                _ => {
                    self.checked = j;
                    return None;
                }
            }
        }
        self.checked = limit;
        None
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
        let found = self.scan.next(buf);
        let limit = match found {
            Some(n) if self.scan.record_is_one_line() => return Some(n),
            // The record's own last newline ends it; the ones before are
            // inside strings.
            Some(n) => n - 1,
            None => buf.len(),
        };
        match self.line_proving_unclosed(buf, limit) {
            Some(at) => {
                self.unclosed = true;
                Some(at)
            }
            None => found,
        }
    }

    #[inline]
    fn take_lines(&mut self, buf: &[u8], limit: usize, ends: &mut [usize]) -> usize {
        // A one-line record is returned by `next` as the scanner finds it,
        // without the check for an unclosed string.
        let n = self.scan.take_lines(buf, limit, ends);
        if n > 0 {
            self.checked = 0;
            self.unclosed = false;
        }
        n
    }

    fn finish(&mut self, buf: &[u8]) -> Option<(usize, bool)> {
        if buf.is_empty() {
            return None;
        }
        match self.next(buf) {
            Some(n) => Some((n, self.unclosed)),
            None => Some((buf.len(), true)),
        }
    }

    fn reset(&mut self) {
        self.scan.reset();
        self.checked = 0;
        self.unclosed = false;
    }

    fn release(&mut self) {
        self.scan.release();
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        if self.unclosed {
            // What was scanned beyond assumed the string went on.
            self.scan.reset();
        } else {
            self.scan.consume(n);
        }
        self.checked = 0;
        self.unclosed = false;
    }

    #[inline]
    fn record_is_one_line(&self) -> bool {
        !self.unclosed && self.scan.record_is_one_line()
    }

    fn unclosed(&self) -> bool {
        self.unclosed
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
            let (n, inc) = match f.next(&buf[at..]) {
                Some(n) => (n, f.unclosed()),
                None => f.finish(&buf[at..]).unwrap(),
            };
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
        // The second physical line is text inside a string, its `@` doubled
        // as p4d writes them.
        let j = b"@pv@ 0 @db.desc@ 7 @text\n@@pv@@ 0 @@db.fake@@ @@x@@ \n@ \n";
        let r = frame(j);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(!r[0].1);
    }

    #[test]
    fn a_record_that_never_closes_is_cut_at_the_next_record_start() {
        // An odd number of `@`: unescaped, `@pv@` at a line start inside a
        // string cannot be, so the string was never closed.
        let good = b"@pv@ 1 @db.x@ @a@ \n";
        let broken = b"@pv@ 1 @db.x@ @broken \n";
        let mut j = good.to_vec();
        j.extend_from_slice(broken);
        for _ in 0..3 {
            j.extend_from_slice(good);
        }
        j.extend_from_slice(b"@ex@ 1 2\n");
        let r = frame(&j);
        assert_eq!(r.len(), 6, "{r:?}");
        assert_eq!(r[0], (&good[..], false));
        assert_eq!(r[1], (&broken[..], true));
        assert!(r[2..5].iter().all(|x| *x == (&good[..], false)), "{r:?}");
        assert_eq!(r[5], (&b"@ex@ 1 2\n"[..], false));
        // Fed byte by byte, the same.
        let mut f = P4Framer::new();
        let (mut at, mut end, mut got) = (0, 0, Vec::new());
        while end <= j.len() {
            match f.next(&j[at..end]) {
                Some(n) => {
                    got.push((at, n, f.unclosed()));
                    at += n;
                    f.consume(n);
                }
                None => end += 1,
            }
        }
        let want: Vec<(usize, usize, bool)> = r
            .iter()
            .scan(0, |pos, (b, inc)| {
                let x = (*pos, b.len(), *inc);
                *pos += b.len();
                Some(x)
            })
            .collect();
        assert_eq!(got, want);
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
    fn a_run_of_one_line_records_leaves_no_stale_scan_for_the_record_after_it() {
        // The first record was looked at while incomplete (long enough to
        // reach past where the broken record's proof lies once the run is
        // taken), then completed; the record after the run never closes.
        let first = format!("@pv@ 1 @db.x@ @{}@ \n", "a".repeat(100));
        let broken = b"@pv@ 1 @db.x@ @open \n@ex@ 1 2\n";
        let mut j = first.as_bytes().to_vec();
        let mut f = P4Framer::new();
        assert_eq!(f.next(&j[..first.len() - 1]), None);
        j.extend_from_slice(broken);
        let mut ends = [0; 4];
        assert_eq!(f.take_lines(&j, usize::MAX, &mut ends), 1);
        assert_eq!(ends[0], first.len());
        let rest = &j[first.len()..];
        assert_eq!(f.next(rest), Some(21), "cut where the next record starts");
        assert!(f.unclosed());
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
