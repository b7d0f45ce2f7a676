//! The `file` listener driven through the `Listener` trait as the host
//! drives it: real files in a temp dir, crashes simulated by dropping the
//! listener and tampering with what a crash could leave behind.

use std::fs;
use std::path::Path;

use logdaemon_listener_file::FileListener;
use logdaemon_sdk::testing::Batch;
use logdaemon_sdk::{Ack, FailureKind, Gap, Listener, Logger, OpenContext, Position};

const RECORDS: [&[u8]; 5] = [
    b"@pv@ 0 @db.counters@ @change@ 1 \n",
    b"@pv@ 0 @db.desc@ 1 @two\nlines@ \n",
    b"@ex@ 1234 1367791575\n",
    b"@pv@ 7 @db.change@ 1 1 @c@ @u@ 1367791575 1 @d@ \n",
    b"@rv@ 0 @db.counters@ @change@ 2 \n",
];

fn all() -> Vec<u8> {
    RECORDS.concat()
}

/// Entries `from..to` of `RECORDS` at their real offsets in sequence 7.
fn batch(from: usize, to: usize) -> Batch {
    let offset: usize = RECORDS[..from].iter().map(|r| r.len()).sum();
    Batch::p4("p4", 7, offset as u64, &RECORDS[from..to])
}

fn open(
    dir: &Path,
    config: &str,
    cursor: Position,
) -> Result<FileListener, logdaemon_sdk::Failure> {
    let state = dir.join("state");
    fs::create_dir_all(&state).unwrap();
    let journal = dir.join("journal");
    let ctx = OpenContext {
        listener: "copy",
        journal: "p4",
        format: "p4",
        journal_path: &journal,
        config_toml: config,
        config_dir: dir,
        state_dir: &state,
        cursor,
        logger: Logger::discard(),
    };
    FileListener::open(&ctx)
}

const RAW: &str = "path = \"out/journal.raw\"\nformat = \"raw\"";
const JSONL: &str = "path = \"out/j.jsonl\"\nformat = \"jsonl\"";

fn out(dir: &Path) -> Vec<u8> {
    fs::read(dir.join("out/journal.raw")).unwrap()
}

fn start() -> Position {
    Position {
        sequence: 7,
        offset: 0,
        line: 1,
    }
}

fn fatal_message(r: Result<FileListener, logdaemon_sdk::Failure>) -> String {
    match r {
        Ok(_) => panic!("open succeeded, expected a fatal failure"),
        Err(f) => {
            assert_eq!(f.kind, FailureKind::Fatal, "{f}");
            f.message
        }
    }
}

#[test]
fn raw_output_is_the_journal_bytes() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    assert_eq!(l.listen(batch(0, 2).entries()), Ok(Ack::All));
    assert_eq!(l.listen(batch(2, 5).entries()), Ok(Ack::All));
    assert_eq!(l.flush(), Ok(Ack::All));
    assert_eq!(out(d.path()), all());
    let end = batch(4, 5).entries()[0].end();
    assert_eq!(
        l.done().map(|p| (p.sequence, p.offset)),
        Some((end.sequence, end.offset))
    );
}

#[test]
fn raw_keeps_rotated_and_incomplete_entries_as_they_are() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    let mut b = Batch::p4("p4", 7, 0, &[b"@pv@ 0 @db.a@ \n", b"@pv@ 0 @db.b@ @cut"]);
    b.set_did_rotate(0);
    assert!(b.entries()[1].incomplete());
    l.listen(b.entries()).unwrap();
    assert_eq!(out(d.path()), b"@pv@ 0 @db.a@ \n@pv@ 0 @db.b@ @cut");
}

#[test]
fn raw_output_takes_runs_and_writes_the_journal_bytes() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    assert!(l.takes_runs());
    assert_eq!(l.listen_runs(batch(0, 2).runs().get()), Ok(Ack::All));
    // Entries and runs may come in turn (a replay hands entries).
    assert_eq!(l.listen(batch(2, 3).entries()), Ok(Ack::All));
    assert_eq!(l.listen_runs(batch(3, 5).runs().get()), Ok(Ack::All));
    assert_eq!(l.flush(), Ok(Ack::All));
    assert_eq!(out(d.path()), all());
    let end = batch(3, 5).entries()[1].end();
    assert_eq!(l.done(), Some(end));
    let mut b = Batch::p4("p4", 8, 0, &[b"@pv@ 0 @db.a@ \n", b"@pv@ 0 @db.b@ @cut"]);
    b.set_did_rotate(0);
    let runs = b.runs();
    assert_eq!(
        runs.get().len(),
        2,
        "an incomplete record is a run of its own"
    );
    l.listen_runs(runs.get()).unwrap();
    assert_eq!(
        out(d.path()),
        [&all()[..], b"@pv@ 0 @db.a@ \n@pv@ 0 @db.b@ @cut"].concat()
    );
}

#[test]
fn runs_redelivered_after_a_crash_are_written_from_where_the_output_ends() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen_runs(batch(0, 3).runs().get()).unwrap();
    drop(l); // crash before the host checkpointed: it resumes from the start
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen_runs(batch(0, 2).runs().get()).unwrap();
    assert_eq!(out(d.path()), RECORDS[..3].concat(), "nothing twice");
    // A run that straddles what was written: only its new records are.
    l.listen_runs(batch(1, 5).runs().get()).unwrap();
    assert_eq!(out(d.path()), all());
}

#[test]
fn a_jsonl_output_takes_entries_not_runs() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), JSONL, start()).unwrap();
    assert!(!l.takes_runs());
    let f = l.listen_runs(batch(0, 2).runs().get()).unwrap_err();
    assert_eq!(f.kind, FailureKind::Fatal, "{f}");
}

#[test]
fn jsonl_output_is_one_object_per_entry() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), JSONL, start()).unwrap();
    l.listen(batch(0, 3).entries()).unwrap();
    let text = fs::read_to_string(d.path().join("out/j.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[1],
        r#"{"journal":"p4","sequence":7,"offset":33,"len":32,"line":2,"lines":2,"op":"pv","fields":["0","db.desc","1","two\nlines"],"raw":"@pv@ 0 @db.desc@ 1 @two\nlines@ \n"}"#
    );
    assert_eq!(
        lines[2],
        r#"{"journal":"p4","sequence":7,"offset":65,"len":21,"line":4,"lines":1,"op":"ex","fields":["1234","1367791575"],"raw":"@ex@ 1234 1367791575\n"}"#
    );
}

#[test]
fn redelivery_after_a_crash_writes_nothing_twice() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen(batch(0, 3).entries()).unwrap();
    drop(l); // crash before the host checkpointed: it resumes from the start
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen(batch(0, 2).entries()).unwrap();
    assert_eq!(
        out(d.path()),
        RECORDS[..3].concat(),
        "a fully redelivered batch adds nothing"
    );
    l.listen(batch(2, 5).entries()).unwrap();
    assert_eq!(out(d.path()), all());
}

#[test]
fn bytes_written_after_the_record_are_cut_off_and_delivered_again() {
    let d = tempfile::tempdir().unwrap();
    let record = d.path().join("state/file.pos");
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen(batch(0, 2).entries()).unwrap();
    let before = fs::read(&record).unwrap();
    l.listen(batch(2, 4).entries()).unwrap();
    drop(l);
    // A crash after the data write and before the record update: the old
    // record and the new data, plus half of a further write.
    fs::write(&record, before).unwrap();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(d.path().join("out/journal.raw"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"@pv@ 0 @db.half").unwrap();
    let mut l = open(d.path(), RAW, batch(2, 3).entries()[0].start()).unwrap();
    assert_eq!(
        out(d.path()),
        RECORDS[..2].concat(),
        "cut back to the recorded length on open"
    );
    l.listen(batch(2, 5).entries()).unwrap();
    assert_eq!(out(d.path()), all());
}

#[test]
fn a_shorter_output_than_recorded_is_fatal() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen(batch(0, 3).entries()).unwrap();
    drop(l);
    let p = d.path().join("out/journal.raw");
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(10)
        .unwrap();
    let msg = fatal_message(open(d.path(), RAW, start()));
    let recorded = RECORDS[..3].concat().len();
    assert!(msg.starts_with("listener \"copy\": "), "{msg}");
    assert!(msg.contains(&p.display().to_string()), "{msg}");
    assert!(msg.contains("is 10 bytes"), "{msg}");
    assert!(msg.contains(&format!("records {recorded} bytes")), "{msg}");
    assert_eq!(
        fs::metadata(&p).unwrap().len(),
        10,
        "the output is left alone"
    );
}

#[test]
fn a_cursor_ahead_of_the_record_is_accepted() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen(batch(0, 1).entries()).unwrap();
    drop(l);
    // The operator moved the cursor past entries 1 and 2.
    let mut l = open(d.path(), RAW, batch(3, 4).entries()[0].start()).unwrap();
    l.listen(batch(3, 5).entries()).unwrap();
    assert_eq!(out(d.path()), [RECORDS[0], RECORDS[3], RECORDS[4]].concat());
}

#[test]
fn a_later_sequence_is_never_skipped() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen(batch(0, 5).entries()).unwrap();
    // The next journal starts at offset 0 again; positions order by sequence first.
    let next = Batch::p4("p4", 8, 0, &[b"@pv@ 0 @db.next@ \n"]);
    l.listen(next.entries()).unwrap();
    assert_eq!(
        out(d.path()),
        [all(), b"@pv@ 0 @db.next@ \n".to_vec()].concat()
    );
}

#[test]
fn existing_output_without_a_record_is_refused() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("out")).unwrap();
    fs::write(d.path().join("out/journal.raw"), b"someone else's data\n").unwrap();
    let msg = fatal_message(open(d.path(), RAW, start()));
    assert!(
        msg.contains("already holds 20 bytes") && msg.contains("file.pos"),
        "{msg}"
    );
    assert_eq!(out(d.path()), b"someone else's data\n");
}

#[test]
fn changing_path_or_format_under_a_record_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen(batch(0, 1).entries()).unwrap();
    drop(l);
    let msg = fatal_message(open(d.path(), "path = \"elsewhere\"", start()));
    assert!(msg.contains("config key \"path\" is now"), "{msg}");
    let msg = fatal_message(open(
        d.path(),
        "path = \"out/journal.raw\"\nformat = \"jsonl\"",
        start(),
    ));
    assert!(
        msg.contains("config key \"format\" is now \"jsonl\""),
        "{msg}"
    );
}

#[test]
fn config_errors_name_the_listener_and_key() {
    let d = tempfile::tempdir().unwrap();
    let msg = fatal_message(open(d.path(), "path = \"o\"\nformat = \"xml\"", start()));
    assert_eq!(
        msg,
        "listener \"copy\": config key \"format\": expected \"raw\" or \"jsonl\", got \"xml\""
    );
    let msg = fatal_message(open(d.path(), "path = \"o\"\nsync = true", start()));
    assert!(
        msg.starts_with("listener \"copy\": ") && msg.contains("sync"),
        "{msg}"
    );
}

/// A gap where entry 2 was.
fn gap() -> Gap<'static> {
    Gap {
        journal: b"p4",
        from: Position {
            sequence: 7,
            offset: 65,
            line: 4,
        },
        to: Position {
            sequence: 7,
            offset: 86,
            line: 5,
        },
        cause: "corrupt",
        kind: Some(logdaemon_sdk::abi::GapCause::Corrupt),
        detail: "bad record",
    }
}

#[test]
fn raw_gaps_go_to_a_side_file_once() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen(batch(0, 2).entries()).unwrap();
    // Entry 2 is lost; the gap covers it.
    let g = gap();
    l.gap(&g).unwrap();
    l.listen(batch(3, 5).entries()).unwrap();
    drop(l);
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen(batch(0, 2).entries()).unwrap();
    l.gap(&g).unwrap();
    l.listen(batch(3, 5).entries()).unwrap();
    assert_eq!(
        out(d.path()),
        [RECORDS[0], RECORDS[1], RECORDS[3], RECORDS[4]].concat()
    );
    let gaps = fs::read_to_string(d.path().join("out/journal.raw.gaps")).unwrap();
    assert_eq!(
        gaps,
        "{\"gap\":{\"journal\":\"p4\",\"from\":{\"sequence\":7,\"offset\":65,\"line\":4},\"to\":{\"sequence\":7,\"offset\":86,\"line\":5},\"cause\":\"corrupt\",\"detail\":\"bad record\"}}\n"
    );
}

#[test]
fn jsonl_gaps_are_inline() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), "path = \"o.jsonl\"\nformat = \"jsonl\"", start()).unwrap();
    l.listen(batch(0, 2).entries()).unwrap();
    l.gap(&gap()).unwrap();
    l.listen(batch(3, 4).entries()).unwrap();
    let text = fs::read_to_string(d.path().join("o.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(
        lines[2].starts_with("{\"gap\":{\"journal\":\"p4\",\"from\":{\"sequence\":7,\"offset\":65"),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains("\"offset\":86"), "{}", lines[3]);
    assert!(!d.path().join("o.jsonl.gaps").exists());
}

#[test]
fn without_fsync_the_output_is_the_same_and_flush_records_it() {
    // Only a power loss shows the difference in durability, which a test
    // cannot cause; this checks the unsynced path writes the same bytes
    // and the same record.
    let d = tempfile::tempdir().unwrap();
    let cfg = "path = \"out/journal.raw\"\nfsync = false";
    let mut l = open(d.path(), cfg, start()).unwrap();
    l.listen(batch(0, 3).entries()).unwrap();
    l.listen(batch(3, 5).entries()).unwrap();
    assert_eq!(l.flush(), Ok(Ack::All));
    drop(l);
    assert_eq!(out(d.path()), all());
    let rec = fs::read_to_string(d.path().join("state/file.pos")).unwrap();
    assert!(
        rec.contains(&format!("\"output_len\":{}", all().len())),
        "{rec}"
    );
    let mut l = open(d.path(), cfg, start()).unwrap();
    l.listen(batch(0, 5).entries()).unwrap();
    assert_eq!(out(d.path()), all());
}

#[test]
fn a_device_or_fifo_as_output_is_refused_at_open_not_retried_for_ever() {
    // A failed write is retried (the full-disk test of the end-to-end suite
    // shows it on a real full tmpfs); an output that can never hold the
    // entries (a character device, a FIFO) is refused when the listener
    // opens, with what it is.
    let d = tempfile::tempdir().unwrap();
    for dev in ["/dev/full", "/dev/null"] {
        let cfg = format!("path = \"{dev}\"");
        let f = open(d.path(), &cfg, start()).err().expect("refused");
        assert_eq!(f.kind, FailureKind::Fatal, "{f}");
        assert!(
            f.message.contains(&format!(
                "output {dev} is a character device, not a regular file"
            )),
            "{}",
            f.message
        );
    }
    let fifo = d.path().join("fifo");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let f = open(d.path(), "path = \"fifo\"", start())
        .err()
        .expect("refused");
    assert!(
        f.message
            .contains("is a FIFO (named pipe), not a regular file"),
        "{}",
        f.message
    );
    assert!(
        !d.path().join("state/file.pos").exists(),
        "no record is written for an output that was refused"
    );
}

/// The descriptors this process has open on `path`.
fn open_on(path: &Path) -> usize {
    let want = fs::canonicalize(path).unwrap();
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| fs::read_link(e.unwrap().path()).ok())
        .filter(|t| *t == want)
        .count()
}

#[test]
fn a_quiet_journal_keeps_no_file_open_and_writing_resumes_exactly() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    assert_eq!(l.listen(batch(0, 2).entries()), Ok(Ack::All));
    assert_eq!(l.no_data(true), Ok(Ack::All));
    let output = d.path().join("out/journal.raw");
    assert_eq!(open_on(&output), 0, "quiet: the output is closed");
    assert_eq!(
        open_on(&d.path().join("state/file.pos")),
        0,
        "and the record"
    );
    assert_eq!(l.listen(batch(2, 5).entries()), Ok(Ack::All));
    assert_eq!(out(d.path()), all());
    assert_eq!(l.no_data(true), Ok(Ack::All));
    assert_eq!(l.flush(), Ok(Ack::All), "a flush opens what it syncs");
    let done = l.done();
    assert_eq!(done.map(|p| p.offset), Some(all().len() as u64));
    drop(l);
    let l = open(d.path(), RAW, start()).unwrap();
    assert_eq!(
        l.done(),
        done,
        "the record was stored through the reopened file"
    );
}

#[test]
fn an_output_replaced_while_closed_is_refused_not_written() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    assert_eq!(l.listen(batch(0, 2).entries()), Ok(Ack::All));
    assert_eq!(l.no_data(true), Ok(Ack::All));
    let output = d.path().join("out/journal.raw");
    let before = fs::read(&output).unwrap();
    // Another file of the same length put in its place.
    let other = d.path().join("out/other");
    fs::write(&other, vec![b'x'; before.len()]).unwrap();
    fs::rename(&other, &output).unwrap();
    let e = l.listen(batch(2, 5).entries()).unwrap_err();
    assert_eq!(e.kind, FailureKind::Fatal, "{e}");
    assert!(
        e.message
            .contains("is no longer the file this listener wrote")
            && e.message.contains(&output.display().to_string()),
        "{e}"
    );
    assert_eq!(
        fs::read(&output).unwrap(),
        vec![b'x'; before.len()],
        "untouched"
    );
}

#[path = "exactly_once/group_commit.rs"]
mod group_commit;
