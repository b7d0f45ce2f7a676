//! Parsing: round trips of arbitrary checkpoints, and every error naming the
//! file, the right line and the problem.

use super::*;
use crate::hash::Hash;
use crate::model::{Cursor, Finished, Identity, JournalState, MAX_WINDOW};
use proptest::prelude::*;

const PATH: &str = "/var/lib/logdaemon/checkpoint.toml";

fn parse(text: &str) -> Result<Checkpoint, StateError> {
    Checkpoint::parse(text, Path::new(PATH))
}

/// The 1-based line carrying the marker comment `# HERE`.
fn marked_line(text: &str) -> usize {
    let lines: Vec<_> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("# HERE"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one `# HERE` marker expected in:\n{text}"
    );
    lines[0].0 + 1
}

/// Asserts that parsing `text` fails at the marked line, with a message that
/// names the file, that line, and contains every piece of `problem`.
fn assert_error_at_mark(text: &str, kind: InvalidKind, problem: &[&str]) -> String {
    let line = marked_line(text);
    let err = parse(text).expect_err("must not parse");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("checkpoint {PATH}, line {line}: ")),
        "expected file and line {line} at the start of: {msg}"
    );
    for p in problem {
        assert!(msg.contains(p), "expected {p:?} in: {msg}");
    }
    match &err {
        StateError::Invalid {
            kind: k, line: l, ..
        } => {
            assert_eq!(*k, kind, "{msg}");
            assert_eq!(*l, Some(line));
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    msg
}

const GOOD: &str = r#"
# a comment
version = 1

[journal.p4]
sequence = 12
offset = 4096
line = 57

[journal.p4.identity]
path = "/p4/root/journal"
dev = 2049
inode = 131075
head_len = 4096
head_hash = "xxh3:0123456789abcdef"
tail_len = 4096
tail_hash = "xxh3:fedcba9876543210"

[[journal.p4.finished]]
sequence = 11
size = 1234
head_len = 1234
head_hash = "xxh3:0000000000000001"
tail_len = 1000
tail_hash = "xxh3:0000000000000002"
path = "/p4/root/journal.11"

[journal.p4.listener.copy]
sequence = 12
offset = 4000
line = 56

[journal.p4.listener.copy.identity]
dev = 2049
inode = 131075
head_len = 4096
head_hash = "xxh3:0123456789abcdef"
tail_len = 4000
tail_hash = "xxh3:fedcba9876543211"
"#;

#[test]
fn the_documented_layout_parses_to_the_expected_model() {
    let c = parse(GOOD).unwrap();
    let j = &c.journals["p4"];
    assert_eq!(j.reader.position(), (12, 4096));
    assert_eq!(j.reader.line, 57);
    let id = j.reader.identity.as_ref().unwrap();
    assert_eq!(
        (id.path.as_str(), id.dev, id.inode),
        ("/p4/root/journal", 2049, 131075)
    );
    assert_eq!(
        (id.head_hash, id.tail_hash),
        (Hash(0x0123456789abcdef), Hash(0xfedcba9876543210))
    );
    assert_eq!(j.finished.len(), 1);
    assert_eq!(
        (
            j.finished[0].sequence,
            j.finished[0].size,
            j.finished[0].tail_len
        ),
        (11, 1234, 1000)
    );
    let copy = &j.listeners["copy"];
    assert_eq!((copy.sequence, copy.offset, copy.line), (12, 4000, 56));
    assert_eq!(copy.identity.as_ref().unwrap().path, "", "path is optional");
}

#[test]
fn a_version_only_file_has_no_journals_and_identity_is_optional() {
    assert_eq!(parse("version = 1\n").unwrap(), Checkpoint::default());
    let c = parse("version = 1\n[journal.x]\nsequence = 0\noffset = 0\nline = 1\n").unwrap();
    assert_eq!(
        c.journals["x"].reader,
        Cursor {
            sequence: 0,
            offset: 0,
            line: 1,
            identity: None
        }
    );
}

#[test]
fn numbers_past_i64_may_be_decimal_strings() {
    let c = parse(&GOOD.replace("inode = 131075\nhead_len = 4096\nhead_hash = \"xxh3:0123456789abcdef\"\ntail_len = 4096", "inode = \"18446744073709551615\"\nhead_len = 4096\nhead_hash = \"xxh3:0123456789abcdef\"\ntail_len = 4096")).unwrap();
    assert_eq!(
        c.journals["p4"].reader.identity.as_ref().unwrap().inode,
        u64::MAX
    );
}

#[test]
fn toml_syntax_error_names_its_line() {
    let bad = GOOD.replace("line = 57", "line = 57\n= oops # HERE");
    assert_error_at_mark(&bad, InvalidKind::Syntax, &["restore the previous save"]);
}

#[test]
fn unknown_key_is_an_error_at_its_line_not_a_dropped_field() {
    let text = GOOD.replace("tail_len = 4000\n", "tial_len = 4000 # HERE\n");
    assert_error_at_mark(
        &text,
        InvalidKind::Syntax,
        &["unknown key `tial_len`", "`tail_len`"],
    );
    let text = GOOD.replace("version = 1\n", "version = 1\ncolour = 2 # HERE\n");
    assert_error_at_mark(&text, InvalidKind::Syntax, &["unknown key `colour`"]);
}

#[test]
fn missing_key_points_at_its_table() {
    let text = GOOD.replace(
        "[journal.p4.listener.copy]\nsequence = 12\n",
        "[journal.p4.listener.copy] # HERE\n",
    );
    assert_error_at_mark(
        &text,
        InvalidKind::Syntax,
        &["missing key `sequence` in the table that starts here"],
    );
    let text = GOOD.replace(
        "[[journal.p4.finished]]\nsequence = 11\nsize = 1234\n",
        "[[journal.p4.finished]] # HERE\nsequence = 11\n",
    );
    assert_error_at_mark(&text, InvalidKind::Syntax, &["missing key `size`"]);
}

#[test]
fn negative_and_fractional_numbers_are_errors_at_their_line() {
    let text = GOOD.replace("offset = 4000", "offset = -4000 # HERE");
    assert_error_at_mark(&text, InvalidKind::Syntax, &["-4000 is negative"]);
    let text = GOOD.replace("size = 1234", "size = 12.5 # HERE");
    assert_error_at_mark(&text, InvalidKind::Syntax, &["non-negative integer"]);
    let text = GOOD.replace("dev = 2049\ninode = 131075\nhead_len = 4096\nhead_hash = \"xxh3:0123456789abcdef\"\ntail_len = 4000", "dev = \"20x9\" # HERE\ninode = 131075\nhead_len = 4096\nhead_hash = \"xxh3:0123456789abcdef\"\ntail_len = 4000");
    assert_error_at_mark(
        &text,
        InvalidKind::Syntax,
        &["\"20x9\" is not a non-negative integer"],
    );
}

#[test]
fn missing_version_is_reported_where_it_belongs() {
    let text = GOOD
        .replace("version = 1\n", "")
        .replace("[journal.p4]\n", "[journal.p4] # HERE\n");
    assert_error_at_mark(
        &text,
        InvalidKind::Version,
        &["no `version` key", "version = 2"],
    );
}

#[test]
fn other_versions_are_refused_as_newer_before_their_unknown_keys() {
    let text = GOOD.replace("version = 1", "version = 3 # HERE\nnew_feature = true");
    assert_error_at_mark(
        &text,
        InvalidKind::Version,
        &["version 3 is not 2 (or 1)", "newer logdaemon"],
    );
    let text = GOOD.replace("version = 1", "version = \"1\" # HERE");
    assert_error_at_mark(
        &text,
        InvalidKind::Version,
        &["version must be the integer 2, not \"1\""],
    );
}

#[test]
fn malformed_hash_is_an_error_at_its_line() {
    let text = GOOD.replace(
        "tail_hash = \"xxh3:fedcba9876543211\"",
        "tail_hash = \"xxh3:fedcba987654321\" # HERE",
    );
    assert_error_at_mark(
        &text,
        InvalidKind::Value,
        &[
            "[journal.p4.listener.copy.identity]",
            "tail_hash \"xxh3:fedcba987654321\" is not a hash",
            "16 hex digits",
        ],
    );
    let text = GOOD.replace(
        "head_hash = \"xxh3:0000000000000001\"",
        "head_hash = \"md5:0000000000000001\" # HERE",
    );
    assert_error_at_mark(
        &text,
        InvalidKind::Value,
        &[
            "[[journal.p4.finished]] (entry 1 of the list)",
            "is not a hash",
        ],
    );
}

#[test]
fn tail_len_past_offset_is_found_in_the_right_table() {
    // The reader's identity has `tail_len = 4096` too; only the listener's,
    // whose offset is 4000, is wrong. A text search for the key would find
    // the reader's line first.
    let text = GOOD.replace("tail_len = 4000", "tail_len = 4096 # HERE");
    let msg = assert_error_at_mark(
        &text,
        InvalidKind::Value,
        &[
            "tail_len 4096 is larger than offset 4000",
            "[journal.p4.listener.copy.identity]",
            "remove the [journal.p4.listener.copy.identity] table",
            "logdaemon checkpoint set",
        ],
    );
    assert!(!msg.contains("line 17"), "{msg}");
}

#[test]
fn line_zero_is_an_error_at_its_line() {
    let text = GOOD.replace("line = 56", "line = 0 # HERE");
    assert_error_at_mark(
        &text,
        InvalidKind::Value,
        &["[journal.p4.listener.copy]", "line is 0", "numbered from 1"],
    );
}

#[test]
fn oversized_hash_windows_are_errors() {
    let big = MAX_WINDOW + 1;
    let text = GOOD.replace(
        "head_len = 4096\nhead_hash = \"xxh3:0123456789abcdef\"\ntail_len = 4096",
        &format!("head_len = {big} # HERE\nhead_hash = \"xxh3:0123456789abcdef\"\ntail_len = 4096"),
    );
    assert_error_at_mark(
        &text,
        InvalidKind::Value,
        &[
            &format!("head_len {big} is larger than the largest hash window"),
            "[journal.p4.identity]",
        ],
    );
    let text = GOOD.replace("tail_len = 1000", "tail_len = 1235 # HERE");
    assert_error_at_mark(
        &text,
        InvalidKind::Value,
        &["tail_len 1235 is larger than the file's size 1234"],
    );
}

#[test]
fn listener_ahead_of_its_reader_is_an_error_at_the_deciding_key() {
    let text = GOOD
        .replace("offset = 4000", "offset = 5000 # HERE")
        .replace("tail_len = 4000", "tail_len = 10");
    assert_error_at_mark(&text, InvalidKind::Value, &["listener `copy` is at sequence 12 offset 5000, ahead of the journal's reader at sequence 12 offset 4096"]);
    let text = GOOD.replace(
        "[journal.p4.listener.copy]\nsequence = 12",
        "[journal.p4.listener.copy]\nsequence = 13 # HERE",
    );
    assert_error_at_mark(
        &text,
        InvalidKind::Value,
        &["sequence 13 offset 4000, ahead"],
    );
}

#[test]
fn empty_names_point_at_their_table() {
    let text = "version = 1\n[journal.\"\"] # HERE\nsequence = 1\noffset = 0\nline = 1\n";
    assert_error_at_mark(text, InvalidKind::Value, &["journal name is empty"]);
}

#[test]
fn empty_and_nul_files_are_reported_as_damaged_with_the_way_out() {
    for text in ["", "\n  \n\t"] {
        let msg = parse(text).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!("checkpoint {PATH}: the checkpoint is empty; restore the previous save from checkpoint.toml.prev beside it (`cp checkpoint.toml.prev checkpoint.toml`), or move both files aside and set the positions with `logdaemon checkpoint set`")
        );
    }
    let e = parse("\0\0\0\0\0\0\0\0").unwrap_err();
    assert!(matches!(e, StateError::Corrupt { line: 1, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(PATH)
            && msg.contains("line 1")
            && msg.contains("corrupt")
            && msg.contains("NUL")
            && msg.contains("checkpoint.toml.prev"),
        "{msg}"
    );
    let e = parse(&format!("{}\0\0\0", &GOOD[..40])).unwrap_err();
    assert_eq!(e.line(), Some(line_of(GOOD, 40)));
}

// ---- round trip ----

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_-]{0,8}",
        any::<String>().prop_map(|s| if s.is_empty() { "x".to_string() } else { s }),
    ]
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![0..10_000u64, any::<u64>()]
}

fn identity() -> impl Strategy<Value = Identity> {
    (
        any::<String>(),
        any::<u64>(),
        any::<u64>(),
        0..=MAX_WINDOW,
        any::<u64>(),
        0..=MAX_WINDOW,
        any::<u64>(),
    )
        .prop_map(|(path, dev, inode, head_len, h, tail_len, t)| Identity {
            path,
            dev,
            inode,
            head_len,
            head_hash: Hash(h),
            tail_len,
            tail_hash: Hash(t),
        })
}

fn cursor() -> impl Strategy<Value = Cursor> {
    (
        number(),
        number(),
        1..u64::MAX,
        proptest::option::of(identity()),
    )
        .prop_map(|(sequence, offset, line, identity)| {
            let mut c = Cursor {
                sequence,
                offset,
                line,
                identity,
            };
            fit_tail(&mut c);
            c
        })
}

fn fit_tail(c: &mut Cursor) {
    if let Some(id) = &mut c.identity {
        id.tail_len = id.tail_len.min(c.offset);
    }
}

fn finished() -> impl Strategy<Value = Finished> {
    (
        number(),
        any::<String>(),
        any::<(u64, u64)>(),
        0..=MAX_WINDOW,
        0..=MAX_WINDOW,
    )
        .prop_map(|(sequence, path, (h, t), a, b)| Finished {
            sequence,
            size: a.max(b) + (sequence % 7),
            head_len: a,
            head_hash: Hash(h),
            tail_len: b,
            tail_hash: Hash(t),
            path,
        })
}

fn journal() -> impl Strategy<Value = JournalState> {
    (
        cursor(),
        proptest::collection::btree_map(name(), cursor(), 0..4),
        proptest::collection::vec(finished(), 0..3),
    )
        .prop_map(|(reader, listeners, finished)| {
            let listeners = listeners
                .into_iter()
                .map(|(n, mut c)| {
                    if c.position() > reader.position() {
                        (c.sequence, c.offset) = (reader.sequence, reader.offset / 2);
                        fit_tail(&mut c);
                    }
                    (n, c)
                })
                .collect();
            JournalState {
                reader,
                listeners,
                finished,
                target: None,
                pending_gaps: Default::default(),
            }
        })
}

fn checkpoint() -> impl Strategy<Value = Checkpoint> {
    proptest::collection::btree_map(name(), journal(), 0..4)
        .prop_map(|journals| Checkpoint { journals })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_checkpoint_round_trips_through_toml(c in checkpoint()) {
        prop_assert_eq!(c.check(), Ok(()));
        let text = c.to_toml();
        let back = parse(&text);
        prop_assert!(back.is_ok(), "{}\n{}", back.unwrap_err(), text);
        prop_assert_eq!(back.unwrap(), c);
    }

    #[test]
    fn damaged_checkpoints_fail_with_a_line_inside_the_file(c in checkpoint(), cut in any::<prop::sample::Index>(), junk in "[\\[\\]=\"a-z0-9 .\n-]{0,6}") {
        let text = c.to_toml();
        let at = cut.index(text.len() + 1);
        let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap();
        let damaged = format!("{}{}{}", &text[..at], junk, &text[at..]);
        if let Err(e) = parse(&damaged) {
            let msg = e.to_string();
            prop_assert!(msg.starts_with(&format!("checkpoint {PATH}")), "{}", msg);
            if let Some(line) = e.line() {
                prop_assert!(line >= 1 && line <= damaged.split('\n').count(), "line {} outside the file: {}", line, msg);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse(&text);
    }
}

#[test]
fn a_removed_journal_table_is_named_with_what_it_records() {
    // The `[journal.p4]` table with its keys removed by hand: only the
    // tables below it are left.
    let text = GOOD.replace(
        "[journal.p4]\nsequence = 12\noffset = 4096\nline = 57\n",
        "",
    );
    let text = text.replace("[journal.p4.identity]", "[journal.p4.identity] # HERE");
    let msg = assert_error_at_mark(
        &text,
        InvalidKind::Syntax,
        &[
            "table [journal.p4] is missing (its keys `sequence`, `offset` and `line`",
            "the furthest position read in journal \"p4\"",
            "logdaemon checkpoint set --journal p4 --sequence N",
        ],
    );
    assert!(!msg.contains("borrowed string"), "{msg}");
    // A listener's table removed, its identity left.
    let text = GOOD
        .replace(
            "[journal.p4.listener.copy]\nsequence = 12\noffset = 4000\nline = 56\n",
            "",
        )
        .replace("[journal.p4]\n", "[journal.p4] # HERE\n");
    let msg = assert_error_at_mark(
        &text,
        InvalidKind::Syntax,
        &[
            "table [journal.p4.listener.copy] is missing",
            "what listener \"copy\" has acknowledged",
            "--journal p4 --listener copy",
        ],
    );
    assert!(!msg.contains("borrowed string"), "{msg}");
}

#[test]
fn the_target_of_a_linked_journal_is_kept_across_a_save() {
    let mut c = parse(GOOD).unwrap();
    assert_eq!(c.journals["p4"].target, None);
    c.journals.get_mut("p4").unwrap().target = Some("/p4/root/journal.real".into());
    let text = c.to_toml();
    assert!(
        text.contains("line = 57\ntarget = \"/p4/root/journal.real\"\n"),
        "{text}"
    );
    assert_eq!(parse(&text).unwrap(), c);
}
