//! The serde layer: the TOML file exactly as written, with the location of
//! every key, before it is checked and turned into the model.
//!
//! Every struct denies unknown keys, so a misspelt key is an error at its own
//! line instead of a silently dropped field. Values keep their spans
//! ([`toml::Spanned`]) so a broken rule found later, on the model, can be
//! reported at the line of the key that broke it — located through the table
//! structure, never by searching the text.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::hash::Hash;
use crate::model::{Checkpoint, Cursor, Field, Finished, Identity, JournalState, Part, PendingGap};

/// Reads only `version`, ignoring the rest: when a file does not have the
/// checkpoint's shape, this tells whether it is from another format version,
/// which is then reported instead of its unknown keys.
#[derive(Deserialize)]
pub(crate) struct VersionProbe {
    pub version: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub version: Option<Spanned<toml::Value>>,
    /// Which full save this is (version 2); `checkpoint.log` names it.
    #[serde(default)]
    generation: Option<Spanned<U64>>,
    #[serde(default)]
    journal: BTreeMap<Spanned<String>, Spanned<RawJournal>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    sequence: Spanned<U64>,
    offset: Spanned<U64>,
    line: Spanned<U64>,
    #[serde(default)]
    target: Option<Spanned<String>>,
    identity: Option<Spanned<RawIdentity>>,
    #[serde(default)]
    finished: Vec<Spanned<RawFinished>>,
    #[serde(default)]
    listener: BTreeMap<Spanned<String>, Spanned<RawListener>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    sequence: Spanned<U64>,
    offset: Spanned<U64>,
    line: Spanned<U64>,
    identity: Option<Spanned<RawIdentity>>,
    pending_gap: Option<Spanned<RawPendingGap>>,
}

/// `[journal.NAME.listener.L.pending_gap]`: optional; absent in every
/// checkpoint without an operator's skip.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPendingGap {
    from_sequence: Spanned<U64>,
    from_offset: Spanned<U64>,
    from_line: Spanned<U64>,
    to_sequence: Spanned<U64>,
    to_offset: Spanned<U64>,
    to_line: Spanned<U64>,
    cause: Spanned<String>,
    #[serde(default)]
    detail: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    #[serde(default)]
    path: Option<Spanned<String>>,
    dev: Spanned<U64>,
    inode: Spanned<U64>,
    head_len: Spanned<U64>,
    head_hash: Spanned<String>,
    tail_len: Spanned<U64>,
    tail_hash: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFinished {
    sequence: Spanned<U64>,
    size: Spanned<U64>,
    head_len: Spanned<U64>,
    head_hash: Spanned<String>,
    tail_len: Spanned<U64>,
    tail_hash: Spanned<String>,
    #[serde(default)]
    path: Option<Spanned<String>>,
}

/// A `u64` written as a TOML integer, or as a decimal string for values past
/// `i64::MAX` (which TOML integers cannot hold).
struct U64(u64);

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = U64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<U64, E> {
                u64::try_from(v).map(U64).map_err(|_| {
                    E::custom(format!("{v} is negative; expected a non-negative integer"))
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<U64, E> {
                Ok(U64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<U64, E> {
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    if let Ok(n) = v.parse() {
                        return Ok(U64(n));
                    }
                }
                Err(E::custom(format!("\"{v}\" is not a non-negative integer")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A hash or number that failed its own check, at a byte offset in the text.
pub(crate) struct BadValue {
    pub at: usize,
    pub field: Field,
    pub problem: String,
}

impl RawFile {
    /// The `generation` key's value; 0 when absent (version 1, hand-made).
    pub fn generation(&self) -> u64 {
        self.generation.as_ref().map_or(0, |g| g.get_ref().0)
    }

    /// Turns the raw file into the model; only per-value checks (hash syntax)
    /// happen here, the rules across values are [`Checkpoint::check`]'s.
    pub fn to_model(&self) -> Result<Checkpoint, BadValue> {
        let mut journals = BTreeMap::new();
        for (name, j) in &self.journal {
            let at = |listener: Option<&str>, part| {
                let (journal, listener) = (name.get_ref().clone(), listener.map(str::to_string));
                move |key| Field {
                    journal: journal.clone(),
                    listener: listener.clone(),
                    part,
                    key: Some(key),
                }
            };
            let reader = cursor(
                &j.get_ref().sequence,
                &j.get_ref().offset,
                &j.get_ref().line,
                &j.get_ref().identity,
                &at(None, Part::Identity),
            )?;
            let mut finished = Vec::new();
            for (i, f) in j.get_ref().finished.iter().enumerate() {
                let f = f.get_ref();
                let at = at(None, Part::Finished(i));
                finished.push(Finished {
                    sequence: f.sequence.get_ref().0,
                    size: f.size.get_ref().0,
                    head_len: f.head_len.get_ref().0,
                    head_hash: hash(&f.head_hash, at("head_hash"))?,
                    tail_len: f.tail_len.get_ref().0,
                    tail_hash: hash(&f.tail_hash, at("tail_hash"))?,
                    path: f
                        .path
                        .as_ref()
                        .map(|p| p.get_ref().clone())
                        .unwrap_or_default(),
                });
            }
            let mut listeners = crate::Listeners::new();
            let mut pending_gaps = BTreeMap::new();
            for (lname, l) in &j.get_ref().listener {
                let l = l.get_ref();
                let c = cursor(
                    &l.sequence,
                    &l.offset,
                    &l.line,
                    &l.identity,
                    &at(Some(lname.get_ref()), Part::Identity),
                )?;
                listeners.insert(lname.get_ref().clone(), c);
                if let Some(g) = &l.pending_gap {
                    pending_gaps.insert(lname.get_ref().clone(), pending_gap(g.get_ref()));
                }
            }
            journals.insert(
                name.get_ref().clone(),
                JournalState {
                    reader,
                    listeners,
                    finished,
                    target: j.get_ref().target.as_ref().map(|t| t.get_ref().clone()),
                    pending_gaps,
                },
            );
        }
        Ok(Checkpoint { journals })
    }

    /// The byte offset of `field` in the text: the key's value, or for
    /// `key: None` the table's header.
    pub fn locate(&self, field: &Field) -> Option<usize> {
        let (name, j) = self
            .journal
            .iter()
            .find(|(n, _)| n.get_ref() == &field.journal)?;
        let (table_start, seq, off, line, identity) = match (&field.listener, field.part) {
            (_, Part::Finished(i)) => {
                let f = j.get_ref().finished.get(i)?;
                let r = f.get_ref();
                let span = match field.key {
                    None => f.span(),
                    Some("sequence") => r.sequence.span(),
                    Some("size") => r.size.span(),
                    Some("head_len") => r.head_len.span(),
                    Some("head_hash") => r.head_hash.span(),
                    Some("tail_len") => r.tail_len.span(),
                    Some("tail_hash") => r.tail_hash.span(),
                    Some("path") => r.path.as_ref()?.span(),
                    Some(_) => f.span(),
                };
                return Some(span.start);
            }
            (None, _) => {
                let r = j.get_ref();
                (
                    start(j.span(), name.span()),
                    &r.sequence,
                    &r.offset,
                    &r.line,
                    &r.identity,
                )
            }
            (Some(l), _) => {
                let (lname, c) = j
                    .get_ref()
                    .listener
                    .iter()
                    .find(|(n, _)| n.get_ref() == l)?;
                let r = c.get_ref();
                (
                    start(c.span(), lname.span()),
                    &r.sequence,
                    &r.offset,
                    &r.line,
                    &r.identity,
                )
            }
        };
        let span = match (field.part, field.key) {
            (Part::Cursor, None) => return Some(table_start),
            (Part::Cursor, Some("sequence")) => seq.span(),
            (Part::Cursor, Some("offset")) => off.span(),
            (Part::Cursor, Some("line")) => line.span(),
            (Part::Cursor, Some(_)) => return Some(table_start),
            (Part::Identity, key) => {
                let id = identity.as_ref()?;
                let r = id.get_ref();
                match key {
                    Some("path") => r.path.as_ref()?.span(),
                    Some("dev") => r.dev.span(),
                    Some("inode") => r.inode.span(),
                    Some("head_len") => r.head_len.span(),
                    Some("head_hash") => r.head_hash.span(),
                    Some("tail_len") => r.tail_len.span(),
                    Some("tail_hash") => r.tail_hash.span(),
                    _ => id.span(),
                }
            }
            (Part::Finished(_), _) => unreachable!("handled above"),
        };
        Some(span.start)
    }
}

/// Where a table begins: its header, or its name when the table has no
/// header of its own (defined only through its sub-tables).
fn start(table: Range<usize>, name: Range<usize>) -> usize {
    table.start.min(name.start)
}

fn cursor(
    sequence: &Spanned<U64>,
    offset: &Spanned<U64>,
    line: &Spanned<U64>,
    identity: &Option<Spanned<RawIdentity>>,
    at: &dyn Fn(&'static str) -> Field,
) -> Result<Cursor, BadValue> {
    let identity = match identity {
        None => None,
        Some(id) => {
            let r = id.get_ref();
            Some(Identity {
                path: r
                    .path
                    .as_ref()
                    .map(|p| p.get_ref().clone())
                    .unwrap_or_default(),
                dev: r.dev.get_ref().0,
                inode: r.inode.get_ref().0,
                head_len: r.head_len.get_ref().0,
                head_hash: hash(&r.head_hash, at("head_hash"))?,
                tail_len: r.tail_len.get_ref().0,
                tail_hash: hash(&r.tail_hash, at("tail_hash"))?,
            })
        }
    };
    Ok(Cursor {
        sequence: sequence.get_ref().0,
        offset: offset.get_ref().0,
        line: line.get_ref().0,
        identity,
    })
}

fn pending_gap(g: &RawPendingGap) -> PendingGap {
    let n = |v: &Spanned<U64>| v.get_ref().0;
    PendingGap {
        from: (n(&g.from_sequence), n(&g.from_offset), n(&g.from_line)),
        to: (n(&g.to_sequence), n(&g.to_offset), n(&g.to_line)),
        cause: g.cause.get_ref().clone(),
        detail: g
            .detail
            .as_ref()
            .map(|d| d.get_ref().clone())
            .unwrap_or_default(),
    }
}

fn hash(text: &Spanned<String>, field: Field) -> Result<Hash, BadValue> {
    Hash::parse(text.get_ref()).ok_or_else(|| BadValue {
        at: text.span().start,
        problem: format!(
            "{} {:?} is not a hash: expected \"xxh3:\" followed by 16 hex digits, like \"xxh3:0123456789abcdef\"",
            field.key.unwrap_or("hash"),
            text.get_ref()
        ),
        field,
    })
}

/// Reads the table structure alone, to name a table removed by hand in an
/// operator's words: its sub-tables (`identity`, `listener`) are left, so
/// serde sees a table without any of its own keys and reports only a type
/// error about the sub-table's name.
#[derive(Deserialize)]
pub(crate) struct ShapeProbe {
    #[serde(default)]
    journal: BTreeMap<Spanned<String>, toml::Table>,
}

/// A position table of which only the tables below it are left.
pub(crate) struct RemovedTable {
    /// Byte offset of the journal's name in its first table header.
    pub at: usize,
    /// The table's header, e.g. `[journal.p4]`.
    pub table: String,
    /// What the table records, for the message.
    pub holds: String,
    pub journal: String,
    pub listener: Option<String>,
}

/// Whether a position table has none of its own keys.
fn removed(t: &toml::Table) -> bool {
    ["sequence", "offset", "line"]
        .iter()
        .all(|k| !t.contains_key(*k))
}

impl ShapeProbe {
    /// The first journal or listener table of which only sub-tables are left.
    pub fn removed_table(&self) -> Option<RemovedTable> {
        for (name, t) in &self.journal {
            let journal = name.get_ref().clone();
            let found = |table: String, holds: String, listener| RemovedTable {
                at: name.span().start,
                table,
                holds,
                journal: journal.clone(),
                listener,
            };
            if removed(t) {
                let holds = format!("the furthest position read in journal {journal:?}");
                return Some(found(format!("[journal.{journal}]"), holds, None));
            }
            let listeners = t.get("listener").and_then(toml::Value::as_table);
            for (l, v) in listeners.into_iter().flatten() {
                if v.as_table().is_some_and(removed) {
                    let holds = format!("what listener {l:?} has acknowledged");
                    let table = format!("[journal.{journal}.listener.{l}]");
                    return Some(found(table, holds, Some(l.clone())));
                }
            }
        }
        None
    }
}
