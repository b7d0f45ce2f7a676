//! Splitting one p4d journal record into its op and fields.
//!
//! A record is fields separated by single spaces; strings are quoted with
//! `@`, and `@@` inside a string is a literal `@` (so `@@` alone is the empty
//! string and `@@@@` is `@`). Unquoted fields are numbers. Data records end
//! with a space before the newline; markers (`@ex@ pid time`) do not.
//!
//! Finding where a record *ends* is the framer's job (in the daemon); this
//! module only takes one whole record apart, for the host and for listeners
//! that want fields of records they hold.

use std::borrow::Cow;

/// Appends the record's fields to `out`: `out[0]` is the op (`pv`, `ex`, ...),
/// the rest are the values, unquoted. The trailing newline (LF or CR LF) and
/// the trailing space are not part of any field. A string left open at the
/// end of the bytes (an incomplete record) ends there.
pub fn split_into<'a>(raw: &'a [u8], out: &mut Vec<Cow<'a, [u8]>>) {
    let mut s = raw;
    if let Some(rest) = s.strip_suffix(b"\n") {
        s = rest.strip_suffix(b"\r").unwrap_or(rest);
    }
    let mut i = 0;
    while i < s.len() {
        if s[i] == b' ' {
            i += 1;
            continue;
        }
        if s[i] == b'@' {
            let (field, next) = quoted(s, i + 1);
            out.push(field);
            i = next;
        } else {
            let end = memchr_space(&s[i..]).map_or(s.len(), |n| i + n);
            let tok = &s[i..end];
            out.push(Cow::Borrowed(tok.strip_suffix(b"\r").unwrap_or(tok)));
            i = end;
        }
    }
}

/// Convenience: the op and the fields as a new vector.
pub fn split(raw: &[u8]) -> (Cow<'_, [u8]>, Vec<Cow<'_, [u8]>>) {
    let mut v = Vec::new();
    split_into(raw, &mut v);
    if v.is_empty() {
        return (Cow::Borrowed(&[]), v);
    }
    let op = v.remove(0);
    (op, v)
}

fn memchr_space(s: &[u8]) -> Option<usize> {
    memchr::memchr(b' ', s)
}

/// Parses a string whose opening `@` is just before `start`; returns the
/// unquoted value and the index after the closing `@`.
fn quoted(s: &[u8], start: usize) -> (Cow<'_, [u8]>, usize) {
    let mut owned: Option<Vec<u8>> = None;
    let mut seg = start;
    let mut i = start;
    loop {
        match memchr::memchr(b'@', &s[i..]) {
            None => {
                // Unterminated: the rest is the value.
                return (append(owned, &s[seg..], s, start, s.len()), s.len());
            }
            Some(n) => {
                let at = i + n;
                if s.get(at + 1) == Some(&b'@') {
                    let o = owned.get_or_insert_with(Vec::new);
                    o.extend_from_slice(&s[seg..=at]);
                    seg = at + 2;
                    i = at + 2;
                } else {
                    return (append(owned, &s[seg..at], s, start, at), at + 1);
                }
            }
        }
    }
}

fn append<'a>(
    owned: Option<Vec<u8>>,
    tail: &'a [u8],
    s: &'a [u8],
    start: usize,
    end: usize,
) -> Cow<'a, [u8]> {
    match owned {
        None => Cow::Borrowed(&s[start..end]),
        Some(mut o) => {
            o.extend_from_slice(tail);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(raw: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        split_into(raw, &mut v);
        v.iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    }

    #[test]
    fn data_record() {
        assert_eq!(
            strs(b"@pv@ 1 @db.counters@ @change@ @1@ \n"),
            ["pv", "1", "db.counters", "change", "1"]
        );
    }

    #[test]
    fn escapes_and_empty_strings() {
        assert_eq!(
            strs(b"@pv@ 3 @db.user@ @a@@b@ @@ @@@@ -5 \r\n"),
            ["pv", "3", "db.user", "a@b", "", "@", "-5"]
        );
    }

    #[test]
    fn marker_without_trailing_space_and_multiline_string() {
        assert_eq!(
            strs(b"@ex@ 68438 1367791575\r\n"),
            ["ex", "68438", "1367791575"]
        );
        assert_eq!(
            strs(b"@pv@ 0 @db.desc@ 1 @line one\n@@pv@@ two@ \n"),
            ["pv", "0", "db.desc", "1", "line one\n@pv@ two"]
        );
    }

    #[test]
    fn unterminated_string_ends_at_the_end() {
        assert_eq!(
            strs(b"@pv@ 0 @db.desc@ @half"),
            ["pv", "0", "db.desc", "half"]
        );
    }
}
