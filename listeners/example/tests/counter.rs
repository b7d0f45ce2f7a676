//! The example listener through the `Listener` trait, with owned test
//! batches, and a check that the README shows the real source.

use std::path::Path;

use logdaemon_listener_example::Counter;
use logdaemon_sdk::testing::Batch;
use logdaemon_sdk::{Ack, Failure, FailureKind, Listener, Logger, OpenContext, Position};

fn open(config: &str) -> Result<Counter, Failure> {
    let dir = Path::new("/nonexistent");
    let ctx = OpenContext {
        listener: "stats",
        journal: "p4",
        format: "p4",
        journal_path: dir,
        config_toml: config,
        config_dir: dir,
        state_dir: dir,
        cursor: Position::default(),
        logger: Logger::discard(),
    };
    Counter::open(&ctx)
}

fn journal() -> Batch {
    Batch::p4(
        "p4",
        1,
        0,
        &[
            b"@pv@ 7 @db.change@ 12 12 @c@ @bob@ 1 1 @d@ \n",
            b"@pv@ 0 @db.desc@ 12 @text@ \n",
            b"@dv@ 7 @db.change@ 11 11 @c@ @bob@ 1 1 @d@ \n",
            b"@pv@ 7 @db.change@ 13 13 @c@ @amy@ 1 1 @d@ \n",
            b"@ex@ 42 1367791575\n",
        ],
    )
}

/// Delivers the handled entries of `b` as the host does.
fn deliver(l: &mut Counter, b: &Batch) -> Result<Ack, Failure> {
    let handled: Vec<_> = b
        .entries()
        .iter()
        .filter(|e| l.is_handled(e))
        .map(|e| *e.as_raw())
        .collect();
    // SAFETY: the raw entries point into `b`, alive for this call.
    l.listen(unsafe { logdaemon_sdk::Entry::from_raw_slice(&handled) })
}

#[test]
fn counts_per_op_and_table() {
    let mut l = open("").ok().unwrap();
    assert_eq!(deliver(&mut l, &journal()), Ok(Ack::All));
    assert_eq!(
        l.summary(),
        "5 entries: dv db.change=1, ex=1, pv db.change=2, pv db.desc=1"
    );
}

#[test]
fn the_filter_keeps_only_configured_tables() {
    let mut l = open("tables = [\"db.desc\", \"db.rev\"]").ok().unwrap();
    deliver(&mut l, &journal()).unwrap();
    assert_eq!(l.summary(), "1 entries: pv db.desc=1");
}

#[test]
fn a_summary_is_taken_only_after_data() {
    let mut l = open("").ok().unwrap();
    deliver(&mut l, &journal()).unwrap();
    assert_eq!(l.no_data(false), Ok(Ack::All));
    assert!(
        l.summary().starts_with("5 entries"),
        "periodic quiet calls keep the counts"
    );
    assert_eq!(l.no_data(true), Ok(Ack::All));
    assert_eq!(l.summary(), "0 entries: ");
}

#[test]
fn line_logs_count_lines() {
    let mut l = open("").ok().unwrap();
    deliver(&mut l, &Batch::lines("app", 1, 0, &[b"a\n", b"b\n"])).unwrap();
    assert_eq!(l.summary(), "2 entries: line=2");
}

#[test]
fn an_unknown_key_is_fatal_and_named() {
    let f = open("table = [\"db.change\"]").err().unwrap();
    assert_eq!(f.kind, FailureKind::Fatal);
    assert!(
        f.message.starts_with("listener \"stats\": ") && f.message.contains("table"),
        "{}",
        f.message
    );
}

#[test]
fn the_readme_shows_this_source() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{src}```")),
        "README.md must quote src/lib.rs verbatim"
    );
}
