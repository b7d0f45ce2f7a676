//! The `jsonl` rendering of entries and gaps: one JSON object per line, for
//! consumers that want fields without parsing journal syntax themselves.
//!
//! Byte strings are rendered as lossy UTF-8 (invalid sequences become
//! U+FFFD); use `raw` output when the exact bytes matter.

use logdaemon_sdk::{Entry, Gap, Position};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// One entry as a JSON object: `journal`, `sequence`, `offset`, `len`,
/// `line`, `lines`, for p4 journals `op` and `fields`, `raw`, and
/// `did_rotate` / `incomplete` only when true.
pub struct EntryJson<'a, 'e> {
    pub entry: &'a Entry<'e>,
    /// Whether to render `op` and `fields` (p4 journals).
    pub p4: bool,
}

impl Serialize for EntryJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Fields<'a>(&'a [std::borrow::Cow<'a, [u8]>]);
        impl Serialize for Fields<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|f| lossy(f)))
            }
        }
        let e = self.entry;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("journal", &lossy(e.journal()))?;
        m.serialize_entry("sequence", &e.sequence())?;
        m.serialize_entry("offset", &e.offset())?;
        m.serialize_entry("len", &e.len())?;
        m.serialize_entry("line", &e.line())?;
        m.serialize_entry("lines", &e.lines())?;
        if self.p4 {
            // The listener asks the host for raw bytes only, and splits here.
            let (op, fields) = logdaemon_sdk::p4::split(e.raw());
            m.serialize_entry("op", &lossy(&op))?;
            m.serialize_entry("fields", &Fields(&fields))?;
        }
        m.serialize_entry("raw", &lossy(e.raw()))?;
        if e.did_rotate() {
            m.serialize_entry("did_rotate", &true)?;
        }
        if e.incomplete() {
            m.serialize_entry("incomplete", &true)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct PositionJson {
    sequence: u64,
    offset: u64,
    line: u64,
}

impl From<Position> for PositionJson {
    fn from(p: Position) -> Self {
        PositionJson { sequence: p.sequence, offset: p.offset, line: p.line }
    }
}

#[derive(Serialize)]
struct GapBody<'a> {
    journal: std::borrow::Cow<'a, str>,
    from: PositionJson,
    to: PositionJson,
    cause: &'a str,
    detail: &'a str,
}

#[derive(Serialize)]
struct GapJson<'a> {
    gap: GapBody<'a>,
}

/// Appends one entry and a newline to `out`.
pub fn write_entry(out: &mut Vec<u8>, entry: &Entry<'_>, p4: bool) {
    // Writing to a Vec cannot fail and the map keys are strings.
    serde_json::to_writer(&mut *out, &EntryJson { entry, p4 }).expect("JSON into a Vec");
    out.push(b'\n');
}

/// Appends `{"gap": {...}}` and a newline to `out`.
pub fn write_gap(out: &mut Vec<u8>, gap: &Gap<'_>) {
    let g = GapJson {
        gap: GapBody { journal: lossy(gap.journal), from: gap.from.into(), to: gap.to.into(), cause: gap.cause, detail: gap.detail },
    };
    serde_json::to_writer(&mut *out, &g).expect("JSON into a Vec");
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use logdaemon_sdk::testing::Batch;

    #[test]
    fn p4_entry_with_flags() {
        let mut b = Batch::p4("p4", 3, 10, &[b"@pv@ 0 @db.desc@ @a@@b@ \n", b"@ex@ 1 \xff"]);
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
    fn line_entry_has_no_op() {
        let b = Batch::lines("app", 1, 0, &[b"hello \"world\"\n"]);
        let mut out = Vec::new();
        write_entry(&mut out, &b.entries()[0], false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"journal\":\"app\",\"sequence\":1,\"offset\":0,\"len\":14,\"line\":1,\"lines\":1,\"raw\":\"hello \\\"world\\\"\\n\"}\n"
        );
    }

    #[test]
    fn gap_object() {
        let g = Gap {
            journal: b"p4",
            from: Position { sequence: 1, offset: 5, line: 2 },
            to: Position { sequence: 2, offset: 0, line: 1 },
            cause: "deleted",
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
