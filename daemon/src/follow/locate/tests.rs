//! Restart positioning by content where content alone is ambiguous:
//! banners, identical short files, an inode handed out again.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use logdaemon_sdk::Position;
use logdaemon_state::Cursor;

use crate::config::JournalConfig;
use crate::follow::{Batch, Fill, Follower};
use crate::format::Format;

thread_local! {
    /// What happens in the directory right after each listing of the
    /// rotated files, in turn: a rotation racing the follower's looks.
    static AFTER_LISTING: RefCell<VecDeque<Box<dyn FnOnce()>>> = RefCell::new(VecDeque::new());
}

/// Called by the follower after each listing of the rotated files.
pub(super) fn after_listing() {
    if let Some(f) = AFTER_LISTING.with(|q| q.borrow_mut().pop_front()) {
        f();
    }
}

/// Runs `f` right after the next listing of the rotated files on this thread.
pub(super) fn after_next_listing(f: impl FnOnce() + 'static) {
    AFTER_LISTING.with(|q| q.borrow_mut().push_back(Box::new(f)));
}

/// Drops the actions still queued for coming listings; how many there were.
pub(super) fn drop_queued_listings() -> usize {
    AFTER_LISTING.with(|q| q.borrow_mut().drain(..).count())
}

pub(super) fn config(path: &Path) -> Arc<JournalConfig> {
    Arc::new(JournalConfig::for_test(
        "app",
        path,
        Format::Lines { record_start: None },
    ))
}

pub(super) fn drain(f: &mut Follower) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for _ in 0..10 {
        let mut b = Batch::default();
        let fill = f.fill(&mut b, 1 << 20).unwrap();
        out.extend(
            b.entries
                .iter()
                .map(|m| (m.sequence, String::from_utf8_lossy(b.raw(m)).into_owned())),
        );
        if matches!(fill, Fill::Idle) && b.is_empty() {
            break;
        }
    }
    out
}

/// A banner and identical first lines in every file of a line log: the
/// old file, compressed since (its inode gone), and the new live file
/// (another inode) hold the same bytes up to the checkpoint. The old one
/// is ours: the restart reads its rest, then the new file from its start.
/// (With the old inode back as well, the times tell them apart: see
/// the next test.)
#[test]
fn identical_first_lines_resume_in_the_compressed_old_file() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("app.log");
    std::fs::write(&live, "time,level,msg\nstart\n").unwrap();
    let cfg = config(&live);
    let mut f = Follower::open(cfg.clone(), None, None).unwrap();
    let got = drain(&mut f);
    assert_eq!(got.len(), 2);
    let end = Position {
        sequence: 1,
        offset: 21,
        line: 3,
    };
    let cursor = Cursor {
        sequence: 1,
        offset: 21,
        line: 3,
        identity: f.identity_at(end),
    };
    drop(f);
    // Written after the checkpoint, then rotated and compressed while stopped.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap()
        .write_all(b"old-3\n")
        .unwrap();
    let data = std::fs::read(&live).unwrap();
    let gz = std::fs::File::create(d.path().join("app.log.1.gz")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
    enc.write_all(&data).unwrap();
    enc.finish().unwrap();
    // The new live file is made while the old one exists (so it cannot
    // get the old inode back), then takes its name.
    let fresh = d.path().join("app.log.new");
    std::fs::write(&fresh, "time,level,msg\nstart\nnew-1\n").unwrap();
    std::fs::rename(&fresh, &live).unwrap();
    let mut f = Follower::open(cfg, Some(&cursor), None).unwrap();
    let got = drain(&mut f);
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        ["old-3\n", "time,level,msg\n", "start\n", "new-1\n"],
        "{got:?}"
    );
    assert_eq!(got[0].0, 1);
    assert!(got[1..].iter().all(|(s, _)| *s == 2), "{got:?}");
}

pub(super) fn gzip(data: &[u8], to: &Path) {
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(to).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(data).unwrap();
    enc.finish().unwrap();
}

/// A checkpoint holding `cursor` (as the journal's and a listener's
/// position), saved `ago` before now.
pub(super) fn saved(state: &Path, cursor: &Cursor, ago: Duration) {
    let mut js = logdaemon_state::JournalState {
        reader: cursor.clone(),
        ..Default::default()
    };
    js.listeners.insert("copy".into(), cursor.clone());
    let mut cp = logdaemon_state::Checkpoint::default();
    cp.journals.insert("app".into(), js);
    let path = state.join(logdaemon_state::FILE_NAME);
    std::fs::write(&path, cp.to_toml()).unwrap();
    set_mtime(&path, ago);
}

fn set_mtime(path: &Path, ago: Duration) {
    let f = std::fs::File::options().append(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - ago).unwrap();
}

pub(super) fn cursor_at(path: &Path, sequence: u64, offset: u64, line: u64) -> Cursor {
    Cursor {
        sequence,
        offset,
        line,
        identity: Some(crate::identity::compute(path, offset).unwrap()),
    }
}

pub(super) fn texts(got: &[(u64, String)]) -> Vec<&str> {
    got.iter().map(|(_, t)| t.as_str()).collect()
}

/// The hard case of the test above: the new live file gets the old
/// inode back (the old one was compressed, which freed it) and holds
/// the same bytes up to the checkpoint. It was created after the
/// checkpoint was saved, so it is not the checkpoint's file: the
/// compressed old one is.
#[test]
fn a_new_live_file_with_the_old_inode_and_the_same_first_bytes_is_not_resumed() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let live = d.path().join("app.log");
    std::fs::write(&live, "time,level,msg\n").unwrap();
    let mut cursor = cursor_at(&live, 1, 15, 2);
    saved(&state, &cursor, Duration::from_secs(10));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap()
        .write_all(b"old-2\n")
        .unwrap();
    gzip(
        &std::fs::read(&live).unwrap(),
        &d.path().join("app.log.1.gz"),
    );
    std::fs::remove_file(&live).unwrap();
    std::fs::write(&live, "time,level,msg\nnew-1\n").unwrap();
    // The inode the old file had, as the new one may well get it back.
    let md = std::fs::metadata(&live).unwrap();
    let id = cursor.identity.as_mut().unwrap();
    (id.dev, id.inode) = (
        std::os::unix::fs::MetadataExt::dev(&md),
        std::os::unix::fs::MetadataExt::ino(&md),
    );
    saved(&state, &cursor, Duration::from_secs(10));
    assert!(
        md.created().is_ok(),
        "this file system keeps no birth times"
    );
    let mut f = Follower::open(config(&live), Some(&cursor), Some(state.clone())).unwrap();
    assert_eq!(
        texts(&drain(&mut f)),
        ["old-2\n", "time,level,msg\n", "new-1\n"]
    );
    // A position acknowledged since the save (a listener re-reading
    // after a failure) is in the live file, created before it: resumed.
    let again = cursor_at(&live, 2, 15, 2);
    let mut f = Follower::open(config(&live), Some(&again), Some(state.clone())).unwrap();
    assert_eq!(texts(&drain(&mut f)), ["new-1\n"]);
    // The old file deleted instead: its unread record is in no file, and
    // the new file is not taken for it.
    std::fs::remove_file(d.path().join("app.log.1.gz")).unwrap();
    match Follower::open(config(&live), Some(&cursor), Some(state)) {
        Err(crate::follow::FollowError::Missing(m)) => {
            assert_eq!((m.from.sequence, m.from.offset), (1, 15));
            assert!(
                m.looked_at
                    .iter()
                    .any(|(p, why)| *p == live
                        && why.contains("created after the checkpoint was saved")),
                "{m}"
            );
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("resumed in the new file"),
    }
}

/// Rotated files whose whole content is the same few bytes, the
/// checkpoint at the end of the oldest: it is found by its inode, and
/// the two others, which hold the same bytes, are read after it.
#[test]
fn identical_short_rotated_files_are_each_read_once() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("app.log");
    std::fs::write(&live, "beat\n").unwrap();
    let cursor = cursor_at(&live, 1, 5, 2);
    for n in [3, 2, 1] {
        std::fs::rename(&live, d.path().join(format!("app.log.{n}"))).unwrap();
        std::fs::write(&live, if n == 1 { "next\n" } else { "beat\n" }).unwrap();
    }
    let mut f = Follower::open(config(&live), Some(&cursor), None).unwrap();
    let got = drain(&mut f);
    assert_eq!(texts(&got), ["beat\n", "beat\n", "next\n"]);
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [2, 3, 4]);
}

/// The same, compressed (inodes gone): the two newer files were written
/// after the checkpoint was saved and end where it is, so neither can
/// be its file; the oldest is.
#[test]
fn identical_short_compressed_files_are_told_apart_by_the_save_time() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let live = d.path().join("app.log");
    std::fs::write(&live, "beat\n").unwrap();
    let cursor = cursor_at(&live, 1, 5, 2);
    saved(&state, &cursor, Duration::from_secs(10));
    for (n, ago) in [(3, 20), (2, 5), (1, 1)] {
        let gz = d.path().join(format!("app.log.{n}.gz"));
        gzip(b"beat\n", &gz);
        set_mtime(&gz, Duration::from_secs(ago));
    }
    std::fs::write(&live, "next\n").unwrap();
    let mut f = Follower::open(config(&live), Some(&cursor), Some(state)).unwrap();
    assert_eq!(texts(&drain(&mut f)), ["beat\n", "beat\n", "next\n"]);
}

/// Every file starts with the same banner and the checkpoint is at its
/// end; two files were rotated and compressed since. The file finished
/// before the checkpoint's (the checkpoint's `finished` list) says
/// which one is next: the checkpoint's file. The recorded inode, now a
/// newer compressed file's, does not.
#[test]
fn with_identical_banners_the_file_after_the_finished_one_is_resumed() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("app.log");
    std::fs::write(&live, "banner\nfirst-1\n").unwrap();
    let first = crate::identity::compute(&live, 15).unwrap();
    let finished = logdaemon_state::Finished {
        sequence: 1,
        size: 15,
        head_len: first.head_len,
        head_hash: first.head_hash,
        tail_len: first.tail_len,
        tail_hash: first.tail_hash,
        path: String::new(),
    };
    gzip(b"banner\nfirst-1\n", &d.path().join("app.log.3.gz"));
    std::fs::write(&live, "banner\n").unwrap();
    let cursor = cursor_at(&live, 2, 7, 2);
    gzip(b"banner\nsecond-1\n", &d.path().join("app.log.2.gz"));
    gzip(b"banner\nthird-1\n", &d.path().join("app.log.1.gz"));
    // Compressed away, its inode still in use: the new live file is another.
    std::fs::rename(&live, d.path().join("held")).unwrap();
    std::fs::write(d.path().join("app.log.new"), "banner\nfourth-1\n").unwrap();
    std::fs::rename(d.path().join("app.log.new"), &live).unwrap();
    // The checkpoint's file, compressed, freed its inode, and the copy
    // compressed next got it: that copy was made after the save.
    let mut cursor = cursor;
    let md = std::fs::metadata(d.path().join("app.log.1.gz")).unwrap();
    let id = cursor.identity.as_mut().unwrap();
    (id.dev, id.inode) = (
        std::os::unix::fs::MetadataExt::dev(&md),
        std::os::unix::fs::MetadataExt::ino(&md),
    );
    let state = d.path().join("state");
    std::fs::create_dir(&state).unwrap();
    saved(&state, &cursor, Duration::from_secs(10));
    let mut f = Follower::open_with_history(config(&live), Some(&cursor), &[finished], Some(state))
        .unwrap();
    let got = drain(&mut f);
    assert_eq!(
        texts(&got),
        [
            "second-1\n",
            "banner\n",
            "third-1\n",
            "banner\n",
            "fourth-1\n"
        ]
    );
}

/// The case of
/// `a_new_live_file_with_the_old_inode_and_the_same_first_bytes_is_not_resumed`
/// on a file system without birth times: nothing tells
/// whether the live file with the recorded inode is the checkpoint's file
/// or a newer one that got its inode back, so the follower stops, naming
/// both files and the command for each, instead of guessing.
#[test]
fn without_birth_times_a_reused_inode_and_the_same_first_bytes_stop_with_the_choice() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let live = d.path().join("app.log");
    std::fs::write(&live, "time,level,msg\n").unwrap();
    let mut cursor = cursor_at(&live, 1, 15, 2);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap()
        .write_all(b"old-2\n")
        .unwrap();
    let old = d.path().join("app.log.1.gz");
    gzip(&std::fs::read(&live).unwrap(), &old);
    std::fs::remove_file(&live).unwrap();
    std::fs::write(&live, "time,level,msg\nnew-1\n").unwrap();
    let md = std::fs::metadata(&live).unwrap();
    let id = cursor.identity.as_mut().unwrap();
    (id.dev, id.inode) = (
        std::os::unix::fs::MetadataExt::dev(&md),
        std::os::unix::fs::MetadataExt::ino(&md),
    );
    saved(&state, &cursor, Duration::from_secs(10));
    let opened = super::unproven::without_birth_times(|| {
        Follower::open(config(&live), Some(&cursor), Some(state.clone()))
    });
    let msg = match opened {
        Err(e @ crate::follow::FollowError::Other { .. }) => e.to_string(),
        Err(e) => panic!("another stop: {e}"),
        Ok(mut f) => panic!("resumed by a guess: {:?}", texts(&drain(&mut f))),
    };
    for w in [
        "keeps no file birth times".to_string(),
        format!(
            "--journal app --sequence 1 --offset 15 --file {}",
            live.display()
        ),
        format!(
            "--journal app --sequence 1 --offset 15 --file {}",
            old.display()
        ),
    ] {
        assert!(msg.contains(&w), "the stop does not say {w:?}: {msg}");
    }
    // With birth times the same files are told apart: the old one resumes.
    let mut f = Follower::open(config(&live), Some(&cursor), Some(state)).unwrap();
    assert_eq!(
        texts(&drain(&mut f)),
        ["old-2\n", "time,level,msg\n", "new-1\n"]
    );
}
