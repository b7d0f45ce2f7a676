//! With `fsync = true`, large batches (a catch-up's) are synced together:
//! each is acknowledged only once a sync covers it, a crash before that
//! sync loses and doubles nothing, and a redelivery of bytes that wait for
//! their sync writes them once.

use super::*;
use logdaemon_listener_file::record::RecordFile;

/// `n` records of about 100 bytes from `offset` of sequence 7: one batch
/// of a catch-up when `n` is in the thousands.
fn big(offset: u64, n: usize) -> (Batch, Vec<u8>) {
    let recs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            format!(
                "@pv@ 0 @db.rev@ @//depot/catch/up/{offset}/{i:08}.c@ 1 0 0 0 1367791575 @x@ \n"
            )
            .into_bytes()
        })
        .collect();
    let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
    (Batch::p4("p4", 7, offset, &refs), recs.concat())
}

/// The end of the last record of `b`.
fn end_of(b: &Batch) -> Position {
    b.entries().last().unwrap().end()
}

/// The `done` position the record on disk holds.
fn recorded_done(dir: &Path) -> Option<(u64, u64)> {
    let r = RecordFile::new(&dir.join("state")).load().unwrap().unwrap();
    r.done.map(|d| (d.sequence, d.offset))
}

fn key(p: Position) -> Option<(u64, u64)> {
    Some((p.sequence, p.offset))
}

/// A listener that synced the five records, then wrote a large batch that
/// waits for its sync: the listener, the synced end, that batch and its bytes.
fn one_batch_waiting(dir: &Path) -> (FileListener, Position, Batch, Vec<u8>) {
    let mut l = open(dir, RAW, start()).unwrap();
    let first = batch(0, 5);
    assert_eq!(
        l.listen_runs(first.runs().get()),
        Ok(Ack::All),
        "nothing synced before: synced at once"
    );
    let synced = end_of(&first);
    let (b, bytes) = big(synced.offset, 4000);
    assert!(bytes.len() >= 256 << 10);
    assert_eq!(l.listen_runs(b.runs().get()), Ok(Ack::Upto(synced)));
    (l, synced, b, bytes)
}

#[test]
fn large_batches_are_acknowledged_once_a_sync_covers_them() {
    let d = tempfile::tempdir().unwrap();
    let (mut l, synced, b1, bytes1) = one_batch_waiting(d.path());
    let (b2, bytes2) = big(end_of(&b1).offset, 4000);
    assert_eq!(l.listen(b2.entries()), Ok(Ack::Upto(synced)));
    assert_eq!(
        out(d.path()),
        [&all()[..], &bytes1, &bytes2].concat(),
        "written at once"
    );
    assert_eq!(
        recorded_done(d.path()),
        key(synced),
        "recorded only as far as synced"
    );
    assert_eq!(
        l.no_data(true),
        Ok(Ack::All),
        "the quiet journal's call syncs them"
    );
    assert_eq!(recorded_done(d.path()), key(end_of(&b2)));
    // A small batch (a live journal's) is synced as it comes.
    let (b3, _) = big(end_of(&b2).offset, 10);
    assert_eq!(l.listen_runs(b3.runs().get()), Ok(Ack::All));
    assert_eq!(recorded_done(d.path()), key(end_of(&b3)));
}

#[test]
fn the_batch_that_brings_the_waiting_bytes_to_8_mib_syncs_them_all() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path(), RAW, start()).unwrap();
    l.listen_runs(batch(0, 5).runs().get()).unwrap();
    let (mut at, mut waiting) = (end_of(&batch(0, 5)), 0usize);
    loop {
        let (b, bytes) = big(at.offset, 4000);
        waiting += bytes.len();
        at = end_of(&b);
        match l.listen_runs(b.runs().get()).unwrap() {
            Ack::All => break,
            Ack::Upto(_) => assert!(waiting < 8 << 20, "{waiting} bytes wait for a sync"),
        }
    }
    assert!(waiting >= 8 << 20, "synced after {waiting} bytes only");
    assert_eq!(recorded_done(d.path()), key(at));
}

#[test]
fn a_crash_before_the_group_sync_cuts_off_what_waited_and_it_comes_again() {
    let d = tempfile::tempdir().unwrap();
    let (l, synced, b, bytes) = one_batch_waiting(d.path());
    drop(l); // a crash: the host resumes from what was acknowledged
    let mut l = open(d.path(), RAW, synced).unwrap();
    assert_eq!(
        out(d.path()),
        all(),
        "what waited for its sync is cut off at open"
    );
    l.listen_runs(b.runs().get()).unwrap();
    assert_eq!(l.flush(), Ok(Ack::All));
    assert_eq!(
        out(d.path()),
        [&all()[..], &bytes].concat(),
        "delivered again, once"
    );
    assert_eq!(recorded_done(d.path()), key(end_of(&b)));
}

#[test]
fn a_redelivery_of_bytes_that_wait_for_their_sync_writes_them_once() {
    let d = tempfile::tempdir().unwrap();
    let (mut l, synced, b, bytes) = one_batch_waiting(d.path());
    // The host delivers from its acknowledgement again (after a failed call).
    assert_eq!(
        l.listen_runs(b.runs().get()),
        Ok(Ack::Upto(synced)),
        "still not synced"
    );
    assert_eq!(l.listen(b.entries()), Ok(Ack::Upto(synced)));
    assert_eq!(l.flush(), Ok(Ack::All));
    assert_eq!(out(d.path()), [&all()[..], &bytes].concat());
}

#[test]
fn without_fsync_large_batches_are_acknowledged_at_once() {
    let d = tempfile::tempdir().unwrap();
    let cfg = "path = \"out/journal.raw\"\nfsync = false";
    let mut l = open(d.path(), cfg, start()).unwrap();
    l.listen_runs(batch(0, 5).runs().get()).unwrap();
    let (b, _) = big(end_of(&batch(0, 5)).offset, 4000);
    assert_eq!(l.listen_runs(b.runs().get()), Ok(Ack::All));
}
