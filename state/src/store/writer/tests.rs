//! Saves of only what changed, on real files: the log, its folding, the
//! migration from version 1, and the operator's edits around a log.

use std::fs;
use std::path::Path;

use super::*;
use crate::model::{Cursor, Identity, JournalState};
use crate::{StateError, FILE_NAME, PREVIOUS_FILE_NAME};

/// `n` journals `j000`.., each with one listener, at `offset`.
fn many(n: usize, offset: u64) -> Checkpoint {
    let mut cp = Checkpoint::default();
    for i in 0..n {
        let cursor = Cursor {
            sequence: 1,
            offset,
            line: 1,
            identity: Some(Identity {
                path: format!("/var/log/app/{i}.log"),
                dev: 2049,
                inode: 1000 + i as u64,
                head_len: 1,
                head_hash: Hash(1),
                tail_len: offset.min(1),
                tail_hash: Hash(2),
            }),
        };
        let mut j = JournalState {
            reader: cursor.clone(),
            ..Default::default()
        };
        j.listeners.insert("copy".into(), cursor);
        cp.journals.insert(format!("j{i:03}"), j);
    }
    cp
}

/// Moves journal `name` to `offset`.
fn moved(cp: &mut Checkpoint, name: &str, offset: u64) {
    let j = cp.journals.get_mut(name).unwrap();
    j.reader.offset = offset;
    j.listeners.get_mut("copy").unwrap().offset = offset;
}

fn open(dir: &Path, log_from: u64) -> (Writer<RealFs>, Option<Checkpoint>) {
    let loaded = load_state(dir).unwrap();
    let w = Writer::new(RealFs, dir, loaded.as_ref(), log_from);
    (w, loaded.map(|l| l.checkpoint))
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    fs::read(dir.join(name)).unwrap_or_default()
}

#[test]
fn a_small_checkpoint_is_always_saved_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(dir.path(), LOG_FROM);
    let mut cp = many(3, 0);
    w.save_changed(&cp, ["j000", "j001", "j002"]).unwrap();
    moved(&mut cp, "j001", 5);
    w.save_changed(&cp, ["j001"]).unwrap();
    assert!(!dir.path().join(LOG_FILE_NAME).exists());
    assert_eq!(
        Checkpoint::load_file(&dir.path().join(FILE_NAME)).unwrap(),
        cp
    );
}

#[test]
fn a_large_checkpoint_appends_only_the_changed_journals_then_folds_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(dir.path(), 1);
    let mut cp = many(50, 0);
    w.save(&cp).unwrap();
    let whole = read(dir.path(), FILE_NAME);
    for (k, name) in ["j007", "j030", "j007"].iter().enumerate() {
        moved(&mut cp, name, k as u64 + 10);
        let before = read(dir.path(), LOG_FILE_NAME).len();
        w.save_changed(&cp, [*name]).unwrap();
        assert_eq!(
            read(dir.path(), FILE_NAME),
            whole,
            "checkpoint.toml untouched"
        );
        let log = String::from_utf8(read(dir.path(), LOG_FILE_NAME)).unwrap();
        let added = &log[before..];
        let named: std::collections::BTreeSet<&str> = added
            .split("\n[journal.")
            .skip(1)
            .map(|t| t.split(['.', ']']).next().unwrap())
            .collect();
        assert_eq!(
            named,
            [*name].into(),
            "only the journal that moved: {added}"
        );
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), Some(cp.clone()));
    }
    // Stopping folds the log into checkpoint.toml and removes it.
    w.compact(&cp).unwrap();
    assert!(!dir.path().join(LOG_FILE_NAME).exists());
    assert_eq!(
        Checkpoint::load_file(&dir.path().join(FILE_NAME)).unwrap(),
        cp
    );
    w.compact(&cp).unwrap();
    assert_eq!(
        Checkpoint::load_file(&dir.path().join(PREVIOUS_FILE_NAME)).unwrap(),
        many(50, 0),
        "a compaction with nothing logged writes nothing"
    );
}

#[test]
fn the_log_is_folded_once_it_is_as_large_as_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(dir.path(), 1);
    let mut cp = many(8, 0);
    w.save(&cp).unwrap();
    let whole = read(dir.path(), FILE_NAME).len();
    let (mut appends, mut folds) = (0, 0);
    for k in 1..=40u64 {
        moved(&mut cp, "j003", k);
        w.save_changed(&cp, ["j003"]).unwrap();
        let log = read(dir.path(), LOG_FILE_NAME).len();
        assert!(
            log <= whole + 600,
            "the log grew to {log} bytes past {whole}"
        );
        if log == 0 {
            folds += 1;
        } else {
            appends += 1;
        }
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), Some(cp.clone()));
    }
    assert!(appends > 0 && folds > 0, "{appends} appends, {folds} folds");
}

#[test]
fn a_log_left_by_a_crash_is_read_then_folded_by_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cp = many(20, 0);
    {
        let (mut w, _) = open(dir.path(), 1);
        w.save(&cp).unwrap();
        moved(&mut cp, "j002", 9);
        w.save_changed(&cp, ["j002"]).unwrap();
        // Killed here: no compaction.
    }
    let (mut w, loaded) = open(dir.path(), 1);
    assert_eq!(loaded.as_ref(), Some(&cp));
    moved(&mut cp, "j004", 3);
    w.save_changed(&cp, ["j004"]).unwrap();
    assert!(
        !dir.path().join(LOG_FILE_NAME).exists(),
        "the first save after a start is whole"
    );
    assert_eq!(
        Checkpoint::load_file(&dir.path().join(FILE_NAME)).unwrap(),
        cp
    );
}

#[test]
fn a_log_older_than_the_checkpoint_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(dir.path(), 1);
    let mut cp = many(20, 0);
    w.save(&cp).unwrap();
    moved(&mut cp, "j002", 9);
    w.save_changed(&cp, ["j002"]).unwrap();
    let stale = read(dir.path(), LOG_FILE_NAME);
    moved(&mut cp, "j002", 4); // moved back by hand, saved whole
    w.save(&cp).unwrap();
    // The removal of the log did not last (a power loss).
    fs::write(dir.path().join(LOG_FILE_NAME), stale).unwrap();
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), Some(cp));
}

/// The log and checkpoint.toml of a run killed after one logged save.
fn killed_with_a_log(dir: &Path) -> Checkpoint {
    let (mut w, _) = open(dir, 1);
    let mut cp = many(20, 0);
    w.save(&cp).unwrap();
    moved(&mut cp, "j002", 9);
    w.save_changed(&cp, ["j002"]).unwrap();
    cp
}

#[test]
fn a_hand_edited_checkpoint_with_a_log_beside_it_is_refused_naming_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    killed_with_a_log(dir.path());
    let file = dir.path().join(FILE_NAME);
    let text = fs::read_to_string(&file).unwrap();
    fs::write(&file, text.replacen("offset = 0", "offset = 1", 1)).unwrap();
    let e = Checkpoint::load(dir.path()).unwrap_err();
    assert!(matches!(e, StateError::LogMismatch { .. }), "{e:?}");
    let msg = e.to_string();
    let log = dir.path().join(LOG_FILE_NAME).display().to_string();
    assert!(
        msg.starts_with(&format!("checkpoint {log}: "))
            && msg.contains("was changed after this log was started")
            && msg.contains("journals [j002]")
            && msg.contains(&format!("move {log} aside")),
        "{msg}"
    );
    // The documented way out: the edit stands, the log's positions go.
    fs::rename(dir.path().join(LOG_FILE_NAME), dir.path().join("aside")).unwrap();
    let cp = Checkpoint::load(dir.path()).unwrap().unwrap();
    assert_eq!(cp.journals["j000"].reader.offset, 1);
    assert_eq!(cp.journals["j002"].reader.offset, 0);
}

#[test]
fn an_older_checkpoint_put_back_under_a_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    killed_with_a_log(dir.path());
    // The previous save: generation 0 (none), older than the log's base.
    fs::write(dir.path().join(FILE_NAME), many(20, 0).to_toml()).unwrap();
    let e = Checkpoint::load(dir.path()).unwrap_err();
    assert!(
        e.to_string().contains("(an older save put back?)") && e.to_string().contains("[j002]"),
        "{e}"
    );
    fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
    let e = Checkpoint::load(dir.path()).unwrap_err();
    assert!(
        matches!(e, StateError::LogMismatch { .. }) && e.to_string().contains("which is missing"),
        "{e}"
    );
}

#[test]
fn checkpoint_set_folds_the_log_into_its_whole_save() {
    let dir = tempfile::tempdir().unwrap();
    let mut cp = killed_with_a_log(dir.path());
    let mut loaded = Checkpoint::load(dir.path()).unwrap().unwrap();
    assert_eq!(loaded, cp);
    moved(&mut loaded, "j005", 2);
    loaded.save(dir.path()).unwrap();
    assert!(!dir.path().join(LOG_FILE_NAME).exists());
    moved(&mut cp, "j005", 2);
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), Some(cp));
}

#[test]
fn a_change_that_breaks_a_rule_is_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(dir.path(), 1);
    let mut cp = many(20, 0);
    w.save(&cp).unwrap();
    cp.journals
        .get_mut("j001")
        .unwrap()
        .listeners
        .get_mut("copy")
        .unwrap()
        .offset = 7;
    let e = w.save_changed(&cp, ["j001"]).unwrap_err();
    assert!(matches!(e, StateError::Refused { .. }), "{e:?}");
    assert!(!dir.path().join(LOG_FILE_NAME).exists());
}

/// A checkpoint written by logdaemon before the log existed, by a real
/// run (`logdaemon run --once` over a p4 journal and a line log).
const VERSION_1: &str = include_str!("../../../tests/data/checkpoint-v1.toml");

#[test]
fn a_version_1_checkpoint_is_read_and_migrated_by_the_first_compaction() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(FILE_NAME), VERSION_1).unwrap();
    let (mut store, loaded) = Store::open(dir.path()).unwrap();
    let loaded = loaded.unwrap();
    assert_eq!(
        loaded.journals.keys().collect::<Vec<_>>(),
        ["app", "p4"],
        "every journal of the version-1 file"
    );
    assert_eq!(loaded.journals["app"].listeners.len(), 2);
    assert_eq!(
        loaded.journals["p4"].listeners["copy"].line,
        loaded.journals["p4"].reader.line
    );
    store.compact(&loaded).unwrap();
    let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
    assert!(
        text.contains("\nversion = 2\ngeneration = 1\n"),
        "written in the current format: {text}"
    );
    assert_eq!(
        Checkpoint::load(dir.path()).unwrap().as_ref(),
        Some(&loaded)
    );
    assert_eq!(
        fs::read_to_string(dir.path().join(PREVIOUS_FILE_NAME)).unwrap(),
        VERSION_1,
        "the version-1 file is kept as the previous save"
    );
    // Migrated once: the next start has nothing to do.
    let (mut store, again) = Store::open(dir.path()).unwrap();
    store.compact(again.as_ref().unwrap()).unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
        text
    );
}

#[test]
fn a_journal_saved_in_the_log_is_dated_by_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let cp = killed_with_a_log(dir.path());
    let mtime = |name| {
        fs::metadata(dir.path().join(name))
            .unwrap()
            .modified()
            .unwrap()
    };
    let (js, at) = Checkpoint::load_journal(dir.path(), "j002")
        .unwrap()
        .unwrap();
    assert_eq!(
        (js, at),
        (cp.journals["j002"].clone(), mtime(LOG_FILE_NAME))
    );
    let (js, at) = Checkpoint::load_journal(dir.path(), "j003")
        .unwrap()
        .unwrap();
    assert_eq!((js, at), (cp.journals["j003"].clone(), mtime(FILE_NAME)));
    assert_eq!(Checkpoint::load_journal(dir.path(), "nope").unwrap(), None);
}
