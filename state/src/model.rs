//! The checkpoint as the engine sees it, and the rules every checkpoint obeys.
//!
//! The rules live here, on the model, so that one set of checks serves both
//! directions: [`crate::Checkpoint::parse`] maps a broken rule to the line of
//! the offending key, and [`crate::Checkpoint::save`] refuses to write a
//! checkpoint that the next start could not load.

use std::collections::BTreeMap;
use std::fmt;

use crate::hash::Hash;

/// Largest `head_len` / `tail_len` accepted: hash windows are small by design,
/// so a bigger value is a typo (or a corrupt file), not a choice.
pub const MAX_WINDOW: u64 = 1 << 20;

/// Proof of which file a position is in.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Identity {
    /// Where the file was when last seen (informational; may be "").
    pub path: String,
    pub dev: u64,
    pub inode: u64,
    /// How many leading bytes of the (uncompressed) file `head_hash` covers.
    pub head_len: u64,
    pub head_hash: Hash,
    /// How many bytes just before `offset` `tail_hash` covers (≤ offset).
    pub tail_len: u64,
    pub tail_hash: Hash,
}

/// A position in one journal stream, with the proof of which file it is in.
/// Positions order by `(sequence, offset)`; see [`Cursor::position`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Journal number (p4) or rotation generation (line logs).
    pub sequence: u64,
    /// Byte offset in that journal file (uncompressed).
    pub offset: u64,
    /// 1-based line number at `offset`.
    pub line: u64,
    /// `None`: operator-set position not yet verified ("trust me").
    pub identity: Option<Identity>,
}

impl Cursor {
    /// The key positions are ordered by: `(sequence, offset)`.
    pub fn position(&self) -> (u64, u64) {
        (self.sequence, self.offset)
    }
}

/// A file the reader finished completely (kept so a restarted daemon knows
/// which rotated files it already consumed).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Finished {
    pub sequence: u64,
    /// Its full (uncompressed) length.
    pub size: u64,
    pub head_len: u64,
    pub head_hash: Hash,
    /// How many bytes at the end of the file `tail_hash` covers (≤ size).
    pub tail_len: u64,
    pub tail_hash: Hash,
    /// Where it was when finished (informational; may be "").
    pub path: String,
}

/// Everything remembered about one followed journal.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct JournalState {
    /// Furthest position read and delivered to any listener.
    pub reader: Cursor,
    /// Each listener's acknowledged position; never ahead of `reader`.
    pub listeners: crate::Listeners,
    /// Most recent last; the engine keeps it bounded.
    pub finished: Vec<Finished>,
    /// The file the journal's path, a symbolic link, resolved to when the
    /// reader's position was saved (`None`: not a link, or not known), so a
    /// link pointed elsewhere while the daemon was down is told as such.
    pub target: Option<String>,
    /// Per listener: entries it was moved past without receiving them
    /// (`logdaemon checkpoint set`), to report to it as a gap before its
    /// next entry; removed once it acknowledged the gap.
    pub pending_gaps: BTreeMap<String, PendingGap>,
}

/// A gap a listener is owed: the range `from..to` it will never receive.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PendingGap {
    /// `(sequence, offset, line)` of the first entry not delivered.
    pub from: (u64, u64, u64),
    /// `(sequence, offset, line)` where delivery resumes.
    pub to: (u64, u64, u64),
    /// Why, as the ABI's gap call says it (`operator`).
    pub cause: String,
    /// Free text for the operator.
    pub detail: String,
}

/// The whole checkpoint: one [`JournalState`] per followed journal, by name.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Checkpoint {
    pub journals: BTreeMap<String, JournalState>,
}

/// Which part of a journal's state a [`Field`] is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// The cursor's own keys (`sequence`, `offset`, `line`).
    Cursor,
    /// The cursor's identity table.
    Identity,
    /// The n-th (0-based) `[[journal.X.finished]]` entry.
    Finished(usize),
}

/// Where a rule was broken: a key (or, with `key: None`, a table header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub journal: String,
    /// `None`: the journal's reader cursor. Ignored for [`Part::Finished`].
    pub listener: Option<String>,
    pub part: Part,
    pub key: Option<&'static str>,
}

impl Field {
    /// The TOML header of the table the field is in, e.g. `[journal.p4.identity]`.
    pub fn table(&self) -> String {
        let mut t = format!("journal.{}", crate::render::key(&self.journal));
        if let (Some(l), false) = (&self.listener, matches!(self.part, Part::Finished(_))) {
            t.push_str(".listener.");
            t.push_str(&crate::render::key(l));
        }
        match self.part {
            Part::Cursor => format!("[{t}]"),
            Part::Identity => format!("[{t}.identity]"),
            Part::Finished(i) => format!("[[{t}.finished]] (entry {} of the list)", i + 1),
        }
    }
}

/// A broken rule: where, what, and what the operator can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub at: Field,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in {}: {}", self.at.table(), self.problem)
    }
}

const SET: &str = "set the position with `logdaemon checkpoint set`";

impl Checkpoint {
    /// Checks every rule; returns the first broken one in file order.
    pub(crate) fn check(&self) -> Result<(), Box<Problem>> {
        for (name, j) in &self.journals {
            check_journal(name, j)?;
        }
        Ok(())
    }
}

/// Checks the rules of one journal's state (no rule spans journals), so a
/// save of the journals that changed checks only those.
pub(crate) fn check_journal(name: &str, j: &JournalState) -> Result<(), Box<Problem>> {
    let at = |listener: Option<&String>, part, key| Field {
        journal: name.to_string(),
        listener: listener.cloned(),
        part,
        key,
    };
    if name.is_empty() {
        return Err(Box::new(Problem {
            at: at(None, Part::Cursor, None),
            problem: "the journal name is empty".into(),
            fix: "use the journal's name from the configuration".into(),
        }));
    }
    check_cursor(&j.reader, &|part, key| at(None, part, key))?;
    for (i, f) in j.finished.iter().enumerate() {
        check_finished(f, &|key| at(None, Part::Finished(i), key))?;
    }
    for (lname, c) in &j.listeners {
        let at = |part, key| at(Some(lname), part, key);
        if lname.is_empty() {
            return Err(Box::new(Problem {
                at: at(Part::Cursor, None),
                problem: "the listener name is empty".into(),
                fix: "use the listener's name from the configuration".into(),
            }));
        }
        check_cursor(c, &at)?;
        if c.position() > j.reader.position() {
            let key = if c.sequence > j.reader.sequence {
                "sequence"
            } else {
                "offset"
            };
            return Err(Box::new(Problem {
                at: at(Part::Cursor, Some(key)),
                problem: format!(
                    "listener `{lname}` is at sequence {} offset {}, ahead of the journal's reader at sequence {} offset {} \
                     (a listener cannot have acknowledged what was never read)",
                    c.sequence, c.offset, j.reader.sequence, j.reader.offset
                ),
                fix: format!("lower the listener's position or raise the reader's in [journal.{}], or {SET}", crate::render::key(name)),
            }));
        }
    }
    Ok(())
}

fn check_cursor(
    c: &Cursor,
    at: &dyn Fn(Part, Option<&'static str>) -> Field,
) -> Result<(), Box<Problem>> {
    if c.line == 0 {
        return Err(Box::new(Problem {
            at: at(Part::Cursor, Some("line")),
            problem: "line is 0, but lines are numbered from 1 (offset 0 is line 1)".into(),
            fix: format!("fix the line or {SET}"),
        }));
    }
    let Some(id) = &c.identity else { return Ok(()) };
    let table = at(Part::Identity, None).table();
    let fix = || format!("fix the line or remove the {table} table, or {SET}");
    for (key, len) in [("head_len", id.head_len), ("tail_len", id.tail_len)] {
        if len > MAX_WINDOW {
            return Err(Box::new(Problem {
                at: at(Part::Identity, Some(key)),
                problem: format!(
                    "{key} {len} is larger than the largest hash window, {MAX_WINDOW} bytes"
                ),
                fix: fix(),
            }));
        }
    }
    if id.tail_len > c.offset {
        return Err(Box::new(Problem {
            at: at(Part::Identity, Some("tail_len")),
            problem: format!(
                "tail_len {} is larger than offset {}",
                id.tail_len, c.offset
            ),
            fix: fix(),
        }));
    }
    Ok(())
}

fn check_finished(
    f: &Finished,
    at: &dyn Fn(Option<&'static str>) -> Field,
) -> Result<(), Box<Problem>> {
    let fix = "fix the line (the entry describes a rotated file already read completely; \
               `logdaemon checkpoint show` lists them)";
    for (key, len) in [("head_len", f.head_len), ("tail_len", f.tail_len)] {
        if len > MAX_WINDOW {
            return Err(Box::new(Problem {
                at: at(Some(key)),
                problem: format!(
                    "{key} {len} is larger than the largest hash window, {MAX_WINDOW} bytes"
                ),
                fix: fix.into(),
            }));
        }
        if len > f.size {
            return Err(Box::new(Problem {
                at: at(Some(key)),
                problem: format!("{key} {len} is larger than the file's size {}", f.size),
                fix: fix.into(),
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(sequence: u64, offset: u64) -> Cursor {
        Cursor {
            sequence,
            offset,
            line: 1,
            identity: None,
        }
    }

    fn one(reader: Cursor, listener: Cursor) -> Checkpoint {
        let mut j = JournalState {
            reader,
            ..Default::default()
        };
        j.listeners.insert("copy".into(), listener);
        Checkpoint {
            journals: [("p4".to_string(), j)].into(),
        }
    }

    #[test]
    fn listener_at_or_behind_reader_is_fine() {
        assert_eq!(one(cursor(3, 10), cursor(3, 10)).check(), Ok(()));
        assert_eq!(one(cursor(3, 10), cursor(2, 99)).check(), Ok(()));
    }

    #[test]
    fn listener_ahead_points_at_the_deciding_key() {
        let p = one(cursor(3, 10), cursor(3, 11)).check().unwrap_err();
        assert_eq!(p.at.key, Some("offset"));
        assert_eq!(p.at.listener.as_deref(), Some("copy"));
        let p = one(cursor(3, 10), cursor(4, 0)).check().unwrap_err();
        assert_eq!(p.at.key, Some("sequence"));
        assert!(
            p.problem
                .contains("ahead of the journal's reader at sequence 3 offset 10"),
            "{}",
            p.problem
        );
    }

    #[test]
    fn table_names_quote_odd_keys() {
        let f = Field {
            journal: "a b".into(),
            listener: Some("x.y".into()),
            part: Part::Identity,
            key: None,
        };
        assert_eq!(f.table(), r#"[journal."a b".listener."x.y".identity]"#);
        let f = Field {
            journal: "p4".into(),
            listener: None,
            part: Part::Finished(2),
            key: None,
        };
        assert_eq!(f.table(), "[[journal.p4.finished]] (entry 3 of the list)");
    }

    #[test]
    fn finished_windows_must_fit_the_file() {
        let mut j = JournalState {
            reader: cursor(1, 0),
            ..Default::default()
        };
        j.finished.push(Finished {
            size: 10,
            head_len: 11,
            ..Default::default()
        });
        let c = Checkpoint {
            journals: [("p4".to_string(), j)].into(),
        };
        let p = c.check().unwrap_err();
        assert_eq!((p.at.part, p.at.key), (Part::Finished(0), Some("head_len")));
    }
}
