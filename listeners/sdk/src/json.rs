//! One JSON object per entry (and per gap), the shape every built-in
//! listener that writes JSON uses (`file` with `format = "jsonl"`, `exec`
//! with `stdin = "jsonl"`), so consumers see one format.
//!
//! `{"journal":…,"sequence":…,"offset":…,"len":…,"line":…,"lines":…,`
//! then for p4 journals `"op":…,"fields":[…]`, then `"raw":…`, and
//! `"did_rotate":true` / `"incomplete":true` only when set.
//!
//! JSON strings are Unicode, journal bytes need not be (a non-Unicode p4
//! server writes Latin-1 or Shift-JIS). Two forms, chosen per listener
//! ([`RawForm`]): `text` (the default) writes `raw` and `fields` as UTF-8
//! with every invalid sequence replaced by U+FFFD, so such bytes cannot be
//! recovered; `base64` writes `raw_b64` and `fields_b64` instead, the exact
//! bytes in standard base64 (RFC 4648, with padding). Written by hand (same
//! bytes as serde_json would write) so the SDK needs no serializer.

use std::io::Write as _;

use crate::entry::{Entry, Gap, Position};

/// Appends `s` as a JSON string.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&b[start..i]);
                let _ = write!(out, "\\u{:04x}", c);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

fn push_bytes(out: &mut Vec<u8>, b: &[u8]) {
    push_str(out, &String::from_utf8_lossy(b));
}

fn push_position(out: &mut Vec<u8>, p: Position) {
    let _ = write!(
        out,
        "{{\"sequence\":{},\"offset\":{},\"line\":{}}}",
        p.sequence, p.offset, p.line
    );
}

/// How an entry's bytes are written in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RawForm {
    /// `raw` and `fields` as UTF-8; invalid sequences become U+FFFD (lossy).
    #[default]
    Text,
    /// `raw_b64` and `fields_b64`: the exact bytes, base64 (lossless).
    Base64,
}

impl RawForm {
    /// The form named in a listener's config (`"text"` or `"base64"`).
    pub fn from_name(name: &str) -> Option<RawForm> {
        match name {
            "text" => Some(RawForm::Text),
            "base64" => Some(RawForm::Base64),
            _ => None,
        }
    }
}

fn push_b64(out: &mut Vec<u8>, b: &[u8]) {
    use base64::Engine as _;
    out.push(b'"');
    let start = out.len();
    out.resize(start + b.len().div_ceil(3) * 4, 0);
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(b, &mut out[start..])
        .expect("sized for the padded encoding");
    out.truncate(start + n);
    out.push(b'"');
}

/// Appends one entry as a JSON object and a newline, in the `text` form.
/// With `p4`, the op and fields are included (split from the raw bytes if
/// the host did not).
pub fn write_entry(out: &mut Vec<u8>, e: &Entry<'_>, p4: bool) {
    write_entry_as(out, e, p4, RawForm::Text)
}

/// [`write_entry`] in the given form.
pub fn write_entry_as(out: &mut Vec<u8>, e: &Entry<'_>, p4: bool, form: RawForm) {
    let bytes = |out: &mut Vec<u8>, b: &[u8]| match form {
        RawForm::Text => push_bytes(out, b),
        RawForm::Base64 => push_b64(out, b),
    };
    let (fields_key, raw_key): (&[u8], &[u8]) = match form {
        RawForm::Text => (b",\"fields\":[", b",\"raw\":"),
        RawForm::Base64 => (b",\"fields_b64\":[", b",\"raw_b64\":"),
    };
    out.extend_from_slice(b"{\"journal\":");
    push_bytes(out, e.journal());
    let _ = write!(
        out,
        ",\"sequence\":{},\"offset\":{},\"len\":{},\"line\":{},\"lines\":{}",
        e.sequence(),
        e.offset(),
        e.len(),
        e.line(),
        e.lines()
    );
    if p4 {
        let (op, fields) = crate::p4::split(e.raw());
        out.extend_from_slice(b",\"op\":");
        push_bytes(out, &op);
        out.extend_from_slice(fields_key);
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            bytes(out, f);
        }
        out.push(b']');
    }
    out.extend_from_slice(raw_key);
    bytes(out, e.raw());
    if e.did_rotate() {
        out.extend_from_slice(b",\"did_rotate\":true");
    }
    if e.incomplete() {
        out.extend_from_slice(b",\"incomplete\":true");
    }
    out.extend_from_slice(b"}\n");
}

/// Appends `{"gap":{…}}` and a newline.
pub fn write_gap(out: &mut Vec<u8>, g: &Gap<'_>) {
    out.extend_from_slice(b"{\"gap\":{\"journal\":");
    push_bytes(out, g.journal);
    out.extend_from_slice(b",\"from\":");
    push_position(out, g.from);
    out.extend_from_slice(b",\"to\":");
    push_position(out, g.to);
    out.extend_from_slice(b",\"cause\":");
    push_str(out, g.cause);
    out.extend_from_slice(b",\"detail\":");
    push_str(out, g.detail);
    out.extend_from_slice(b"}}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Batch;

    #[test]
    fn p4_entry_with_flags() {
        let mut b = Batch::p4(
            "p4",
            3,
            10,
            &[b"@pv@ 0 @db.desc@ @a@@b@ \n", b"@ex@ 1 \xff"],
        );
        b.set_did_rotate(0);
        let mut out = Vec::new();
        for e in b.entries() {
            write_entry(&mut out, e, true);
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"journal":"p4","sequence":3,"offset":10,"len":25,"line":1,"lines":1,"op":"pv","fields":["0","db.desc","a@b"],"raw":"@pv@ 0 @db.desc@ @a@@b@ \n","did_rotate":true}"#
        );
        assert_eq!(
            lines[1],
            "{\"journal\":\"p4\",\"sequence\":3,\"offset\":35,\"len\":8,\"line\":2,\"lines\":1,\"op\":\"ex\",\"fields\":[\"1\",\"\u{fffd}\"],\"raw\":\"@ex@ 1 \u{fffd}\",\"incomplete\":true}"
        );
    }

    #[test]
    fn the_base64_form_keeps_bytes_that_are_not_utf8() {
        let b = Batch::p4("p4", 3, 10, &[b"@pv@ 0 @db.desc@ @caf\xe9@ \n"]);
        let mut out = Vec::new();
        write_entry_as(&mut out, &b.entries()[0], true, RawForm::Base64);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"journal\":\"p4\",\"sequence\":3,\"offset\":10,\"len\":25,\"line\":1,\"lines\":1,\"op\":\"pv\",\"fields_b64\":[\"MA==\",\"ZGIuZGVzYw==\",\"Y2Fm6Q==\"],\"raw_b64\":\"QHB2QCAwIEBkYi5kZXNjQCBAY2Fm6UAgCg==\"}\n"
        );
        assert_eq!(RawForm::from_name("base64"), Some(RawForm::Base64));
        assert_eq!(RawForm::from_name("text"), Some(RawForm::Text));
        assert_eq!(RawForm::from_name("hex"), None);
    }

    #[test]
    fn line_entry_has_no_op_and_escapes_are_json() {
        let b = Batch::lines("app", 1, 0, &[b"hello \"world\"\t\\ \x01\x1f\n"]);
        let mut out = Vec::new();
        write_entry(&mut out, &b.entries()[0], false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"journal\":\"app\",\"sequence\":1,\"offset\":0,\"len\":19,\"line\":1,\"lines\":1,\"raw\":\"hello \\\"world\\\"\\t\\\\ \\u0001\\u001f\\n\"}\n"
        );
    }

    #[test]
    fn gap_object() {
        let g = Gap {
            journal: b"p4",
            from: Position {
                sequence: 1,
                offset: 5,
                line: 2,
            },
            to: Position {
                sequence: 2,
                offset: 0,
                line: 1,
            },
            cause: "deleted",
            kind: Some(crate::abi::GapCause::Deleted),
            detail: "journal.1 removed",
        };
        let mut out = Vec::new();
        write_gap(&mut out, &g);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"gap\":{\"journal\":\"p4\",\"from\":{\"sequence\":1,\"offset\":5,\"line\":2},\"to\":{\"sequence\":2,\"offset\":0,\"line\":1},\"cause\":\"deleted\",\"detail\":\"journal.1 removed\"}}\n"
        );
    }
}
