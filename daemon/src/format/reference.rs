//! Slow, obviously correct parsers to check the framers against. They share
//! no code with the framers: the p4 one is a character-by-character state
//! machine that knows about escapes instead of counting `@` parity.

use regex::bytes::Regex;

/// A record as the reference sees it: start offset, length, incomplete.
pub type Span = (usize, usize, bool);

/// p4 journal records of `buf`, the last one incomplete if cut off.
pub fn p4(buf: &[u8]) -> Vec<Span> {
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        Outside,
        InString,
        /// Just saw `@` inside a string: an escape if another `@` follows,
        /// the closing quote otherwise.
        AtInString,
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut s = S::Outside;
    for (i, &c) in buf.iter().enumerate() {
        // A line inside a string that starts with a record start: the
        // string was never closed; the record ends before this line.
        let at_line_start = i > start && buf[i - 1] == b'\n';
        if s == S::InString && at_line_start && c == b'@' {
            if let Some(&d) = buf.get(i + 1) {
                if !matches!(d, b'@' | b' ' | b'\r' | b'\n') {
                    out.push((start, i - start, true));
                    start = i;
                    s = S::Outside;
                }
            }
        }
        if s == S::AtInString {
            if c == b'@' {
                s = S::InString;
                continue;
            }
            s = S::Outside;
        }
        match (s, c) {
            (S::Outside, b'@') => s = S::InString,
            (S::Outside, b'\n') => {
                out.push((start, i + 1 - start, false));
                start = i + 1;
            }
            (S::InString, b'@') => s = S::AtInString,
            _ => {}
        }
    }
    if start < buf.len() {
        out.push((start, buf.len() - start, true));
    }
    out
}

/// The op of a p4 record: the first `@`-quoted string, unescaped.
pub fn p4_op(record: &[u8]) -> Vec<u8> {
    let mut op = Vec::new();
    let mut i = 1;
    if record.first() != Some(&b'@') {
        return op;
    }
    while i < record.len() {
        if record[i] == b'@' {
            if record.get(i + 1) == Some(&b'@') {
                op.push(b'@');
                i += 2;
                continue;
            }
            break;
        }
        op.push(record[i]);
        i += 1;
    }
    op
}

/// Physical lines of `buf`, each with its terminator; the last one may lack it.
fn physical_lines(buf: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &c) in buf.iter().enumerate() {
        if c == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < buf.len() {
        out.push((start, buf.len()));
    }
    out
}

/// Line-log records of a finished stream.
pub fn lines(buf: &[u8], start_re: Option<&Regex>) -> Vec<Span> {
    let lines = physical_lines(buf);
    let complete = |end: usize| buf[..end].ends_with(b"\n");
    let Some(re) = start_re else {
        return lines
            .into_iter()
            .map(|(s, e)| (s, e - s, !complete(e)))
            .collect();
    };
    let starts = |&(s, e): &(usize, usize)| {
        let mut l = &buf[s..e];
        if let Some(x) = l.strip_suffix(b"\n") {
            l = x;
        }
        if let Some(x) = l.strip_suffix(b"\r") {
            l = x;
        }
        re.is_match(l)
    };
    let mut out: Vec<Span> = Vec::new();
    let mut cur: Option<(usize, usize)> = None;
    for (idx, line) in lines.iter().enumerate() {
        if idx > 0 && starts(line) {
            if let Some((s, e)) = cur.take() {
                out.push((s, e - s, false));
            }
        }
        cur = Some(match cur {
            None => *line,
            Some((s, _)) => (s, line.1),
        });
    }
    if let Some((s, e)) = cur {
        out.push((s, e - s, !complete(e)));
    }
    out
}
