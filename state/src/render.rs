//! Writes a [`Checkpoint`] as the TOML operators read and edit.
//!
//! Hand-written rather than serialized so the file keeps a stable, documented
//! order (reader, its identity, finished files, then listeners), carries an
//! explanatory comment header, and can hold every `u64`: TOML integers stop at
//! `i64::MAX`, so larger values (possible for `dev` and `inode`) are written as
//! decimal strings, which [`crate::Checkpoint::parse`] accepts for any number.

use std::fmt::Write;

use crate::model::{Checkpoint, Cursor, Finished, Identity, JournalState, PendingGap};

/// The comment header at the top of every written checkpoint.
pub(crate) const HEADER: &str = "\
# logdaemon checkpoint — where each journal and each listener was.
# Edit only while the daemon is stopped; `logdaemon checkpoint show|set` do it for you.
# sequence: journal number (p4) or rotation generation (line logs); offset: byte offset in that
# journal file (uncompressed); line: line number at that offset. The identity tables prove which
# file the position is in; remove an identity table to make the daemon trust the position as is.
# [journal.NAME] is the furthest position read; [journal.NAME.listener.LISTENER] is what that
# listener acknowledged (never ahead of the journal's); [[journal.NAME.finished]] lists rotated
# files already read completely, most recent last. [journal.NAME.listener.LISTENER.pending_gap] is a
# range that listener was moved past (`checkpoint set`) and is told about as a gap before its next entry.
# The previous save is kept in checkpoint.toml.prev. A large checkpoint's later saves of the journals
# that moved go to checkpoint.log beside it (it names this file's generation); the daemon folds them
# in here at start and stop, and `logdaemon checkpoint show|set` read them.
";

impl Checkpoint {
    /// The checkpoint as TOML, with a comment header explaining the file to
    /// operators. [`Checkpoint::parse`] of the result gives back `self`
    /// whenever `self` obeys the checkpoint's rules.
    pub fn to_toml(&self) -> String {
        self.render(0)
    }

    /// [`Checkpoint::to_toml`] as full save number `generation` (written
    /// when above 0), which `checkpoint.log` names as its base.
    pub(crate) fn render(&self, generation: u64) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str(HEADER);
        let _ = writeln!(out, "version = {}", crate::FORMAT_VERSION);
        if generation > 0 {
            int(&mut out, "generation", generation);
        }
        for (name, j) in &self.journals {
            write_journal(&mut out, name, j);
        }
        out
    }
}

/// Every table of one journal, as in `checkpoint.toml` (and in a record of
/// `checkpoint.log`).
pub(crate) fn write_journal(out: &mut String, name: &str, j: &JournalState) {
    let base = format!("journal.{}", key(name));
    write_cursor(out, &base, &j.reader, j.target.as_deref());
    for f in &j.finished {
        write_finished(out, &base, f);
    }
    for (lname, c) in &j.listeners {
        let table = format!("{base}.listener.{}", key(lname));
        write_cursor(out, &table, c, None);
        if let Some(g) = j.pending_gaps.get(lname) {
            write_pending_gap(out, &table, g);
        }
    }
}

fn write_cursor(out: &mut String, table: &str, c: &Cursor, target: Option<&str>) {
    let _ = writeln!(out, "\n[{table}]");
    int(out, "sequence", c.sequence);
    int(out, "offset", c.offset);
    int(out, "line", c.line);
    if let Some(t) = target {
        let _ = writeln!(out, "target = {}", string(t));
    }
    if let Some(id) = &c.identity {
        write_identity(out, table, id);
    }
}

fn write_identity(out: &mut String, table: &str, id: &Identity) {
    let _ = writeln!(out, "\n[{table}.identity]");
    let _ = writeln!(out, "path = {}", string(&id.path));
    int(out, "dev", id.dev);
    int(out, "inode", id.inode);
    int(out, "head_len", id.head_len);
    let _ = writeln!(out, "head_hash = \"{}\"", id.head_hash);
    int(out, "tail_len", id.tail_len);
    let _ = writeln!(out, "tail_hash = \"{}\"", id.tail_hash);
}

fn write_pending_gap(out: &mut String, table: &str, g: &PendingGap) {
    let _ = writeln!(out, "\n[{table}.pending_gap]");
    for (name, (s, o, l)) in [("from", g.from), ("to", g.to)] {
        int(out, &format!("{name}_sequence"), s);
        int(out, &format!("{name}_offset"), o);
        int(out, &format!("{name}_line"), l);
    }
    let _ = writeln!(out, "cause = {}", string(&g.cause));
    let _ = writeln!(out, "detail = {}", string(&g.detail));
}

fn write_finished(out: &mut String, table: &str, f: &Finished) {
    let _ = writeln!(out, "\n[[{table}.finished]]");
    int(out, "sequence", f.sequence);
    int(out, "size", f.size);
    int(out, "head_len", f.head_len);
    let _ = writeln!(out, "head_hash = \"{}\"", f.head_hash);
    int(out, "tail_len", f.tail_len);
    let _ = writeln!(out, "tail_hash = \"{}\"", f.tail_hash);
    let _ = writeln!(out, "path = {}", string(&f.path));
}

/// `name = 123`, or `name = "18446744073709551615"` past `i64::MAX`.
fn int(out: &mut String, name: &str, v: u64) {
    if i64::try_from(v).is_ok() {
        let _ = writeln!(out, "{name} = {v}");
    } else {
        let _ = writeln!(out, "{name} = \"{v}\"");
    }
}

/// A TOML key: bare when it can be, otherwise a quoted basic string.
pub(crate) fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        k.to_string()
    } else {
        string(k)
    }
}

/// A TOML basic string: quotes, backslashes and all control characters escaped.
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;

    #[test]
    fn keys_are_bare_only_when_safe() {
        assert_eq!(key("p4"), "p4");
        assert_eq!(key("hot-backup_2"), "hot-backup_2");
        assert_eq!(key("a.b"), "\"a.b\"");
        assert_eq!(key(""), "\"\"");
        assert_eq!(key("é"), "\"é\"");
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(
            string("a\"b\\c\nd\u{7f}\u{1}"),
            r#""a\"b\\c\nd\u007F\u0001""#
        );
    }

    #[test]
    fn layout_matches_the_documented_one() {
        let mut j = JournalState {
            reader: Cursor {
                sequence: 12,
                offset: 4096,
                line: 57,
                identity: Some(Identity {
                    path: "/p4/root/journal".into(),
                    dev: 2049,
                    inode: u64::MAX,
                    head_len: 4096,
                    head_hash: Hash(0x0123456789abcdef),
                    tail_len: 4096,
                    tail_hash: Hash(0xfedcba9876543210),
                }),
            },
            ..Default::default()
        };
        j.listeners.insert(
            "copy".into(),
            Cursor {
                sequence: 12,
                offset: 4000,
                line: 56,
                identity: None,
            },
        );
        let c = Checkpoint {
            journals: [("p4".to_string(), j)].into(),
        };
        let text = c.to_toml();
        let body = text.strip_prefix(HEADER).expect("header first");
        assert_eq!(
            body,
            "version = 2\n\n[journal.p4]\nsequence = 12\noffset = 4096\nline = 57\n\n\
             [journal.p4.identity]\npath = \"/p4/root/journal\"\ndev = 2049\ninode = \"18446744073709551615\"\n\
             head_len = 4096\nhead_hash = \"xxh3:0123456789abcdef\"\ntail_len = 4096\n\
             tail_hash = \"xxh3:fedcba9876543210\"\n\n[journal.p4.listener.copy]\nsequence = 12\noffset = 4000\nline = 56\n"
        );
    }

    #[test]
    fn a_pending_gap_is_a_table_of_its_listener_and_reads_back() {
        let mut j = JournalState {
            reader: Cursor {
                sequence: 8,
                offset: 0,
                line: 1,
                identity: None,
            },
            ..Default::default()
        };
        j.listeners.insert("copy".into(), j.reader.clone());
        j.pending_gaps.insert(
            "copy".into(),
            PendingGap {
                from: (7, 360, 11),
                to: (8, 0, 1),
                cause: "operator".into(),
                detail: "moved \"by hand\"".into(),
            },
        );
        let c = Checkpoint {
            journals: [("p4".to_string(), j)].into(),
        };
        let text = c.to_toml();
        assert!(
            text.ends_with(
                "[journal.p4.listener.copy]\nsequence = 8\noffset = 0\nline = 1\n\n\
                 [journal.p4.listener.copy.pending_gap]\nfrom_sequence = 7\nfrom_offset = 360\nfrom_line = 11\n\
                 to_sequence = 8\nto_offset = 0\nto_line = 1\ncause = \"operator\"\ndetail = \"moved \\\"by hand\\\"\"\n"
            ),
            "{text}"
        );
        let back = Checkpoint::parse(&text, std::path::Path::new("checkpoint.toml")).unwrap();
        assert_eq!(back, c);
        // Without the table, the listener owes nothing.
        let plain = text[..text
            .find("\n[journal.p4.listener.copy.pending_gap]")
            .unwrap()]
            .to_string();
        let back = Checkpoint::parse(&plain, std::path::Path::new("checkpoint.toml")).unwrap();
        assert!(back.journals["p4"].pending_gaps.is_empty());
    }
}
