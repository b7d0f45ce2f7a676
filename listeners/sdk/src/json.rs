//! One JSON object per entry (and per gap), the shape every built-in
//! listener that writes JSON uses (`file` with `format = "jsonl"`, `exec`
//! with `stdin = "jsonl"`), so consumers see one format.
//!
//! `{"journal":…,"sequence":…,"offset":…,"len":…,"line":…,"lines":…,`
//! then for p4 journals `"op":…,"fields":[…]`, then `"raw":…`, and
//! `"did_rotate":true` / `"incomplete":true` only when set. Byte strings are
//! lossy UTF-8 (invalid sequences become U+FFFD); the raw bytes are exact in
//! `raw` outputs. Written by hand (same bytes as serde_json would write) so
//! the SDK needs no serializer.

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

/// Appends one entry as a JSON object and a newline. With `p4`, the op and
/// fields are included (split from the raw bytes if the host did not).
pub fn write_entry(out: &mut Vec<u8>, e: &Entry<'_>, p4: bool) {
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
        out.extend_from_slice(b",\"fields\":[");
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_bytes(out, f);
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"raw\":");
    push_bytes(out, e.raw());
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
