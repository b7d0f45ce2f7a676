//! Saving and loading real files in a temporary state directory.

use super::*;
use crate::hash::Hash;
use crate::model::{Cursor, Identity, JournalState};
use std::os::unix::fs::PermissionsExt;

fn sample(offset: u64) -> Checkpoint {
    let mut j = JournalState {
        reader: Cursor {
            sequence: 3,
            offset,
            line: offset / 10 + 1,
            identity: Some(Identity {
                path: "/p4/root/journal".into(),
                dev: 1,
                inode: 2,
                head_len: 10,
                head_hash: Hash(3),
                tail_len: offset.min(10),
                tail_hash: Hash(4),
            }),
        },
        ..Default::default()
    };
    j.listeners.insert(
        "copy".into(),
        Cursor {
            sequence: 3,
            offset: offset / 2,
            line: 1,
            identity: None,
        },
    );
    Checkpoint {
        journals: [("p4".to_string(), j)].into(),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn first_start_has_no_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), None);
}

#[test]
fn save_then_load_gives_the_same_checkpoint_in_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    sample(100).save(dir.path()).unwrap();
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), Some(sample(100)));
    let file = dir.path().join(FILE_NAME);
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    assert!(fs::read_to_string(&file)
        .unwrap()
        .starts_with("# logdaemon checkpoint"));
    assert_eq!(
        names(dir.path()),
        [FILE_NAME],
        "nothing but the checkpoint after the first save"
    );
}

#[test]
fn each_save_keeps_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    sample(100).save(dir.path()).unwrap();
    sample(200).save(dir.path()).unwrap();
    sample(300).save(dir.path()).unwrap();
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), Some(sample(300)));
    assert_eq!(
        Checkpoint::load_file(&dir.path().join(PREVIOUS_FILE_NAME)).unwrap(),
        sample(200)
    );
    assert_eq!(names(dir.path()), [FILE_NAME, PREVIOUS_FILE_NAME]);
}

#[test]
fn a_removed_checkpoint_with_a_previous_save_is_not_a_first_start() {
    let dir = tempfile::tempdir().unwrap();
    sample(100).save(dir.path()).unwrap();
    sample(200).save(dir.path()).unwrap();
    fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
    let e = Checkpoint::load(dir.path()).unwrap_err();
    assert!(matches!(e, StateError::MissingWithPrevious { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&dir.path().join(PREVIOUS_FILE_NAME).display().to_string())
            && msg.contains("mv "),
        "{msg}"
    );
}

#[test]
fn leftover_temporary_files_do_not_break_loads_and_go_with_the_next_save() {
    let dir = tempfile::tempdir().unwrap();
    sample(100).save(dir.path()).unwrap();
    // What a process killed in mid-save leaves: a half-written new checkpoint
    // and a link to the previous one, under its own (dead) process's token.
    let half = sample(200).to_toml();
    fs::write(
        dir.path().join(format!("{TEMP_PREFIX}1-abc.0")),
        &half[..half.len() / 2],
    )
    .unwrap();
    fs::write(dir.path().join(format!("{TEMP_PREFIX}1-abc.0.prev")), "").unwrap();
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), Some(sample(100)));
    sample(300).save(dir.path()).unwrap();
    assert_eq!(names(dir.path()), [FILE_NAME, PREVIOUS_FILE_NAME]);
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), Some(sample(300)));
}

#[test]
fn saving_after_a_crash_between_the_two_renames_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    sample(100).save(dir.path()).unwrap();
    // The crash left the previous save and the checkpoint as one file.
    fs::hard_link(
        dir.path().join(FILE_NAME),
        dir.path().join(PREVIOUS_FILE_NAME),
    )
    .unwrap();
    sample(200).save(dir.path()).unwrap();
    assert_eq!(names(dir.path()), [FILE_NAME, PREVIOUS_FILE_NAME]);
    assert_eq!(
        Checkpoint::load_file(&dir.path().join(PREVIOUS_FILE_NAME)).unwrap(),
        sample(100)
    );
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), Some(sample(200)));
}

#[test]
fn save_refuses_a_checkpoint_that_could_not_be_loaded_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    sample(100).save(dir.path()).unwrap();
    let mut bad = sample(200);
    bad.journals
        .get_mut("p4")
        .unwrap()
        .listeners
        .get_mut("copy")
        .unwrap()
        .offset = 201;
    let e = bad.save(dir.path()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StateError::Refused { .. }), "{e:?}");
    assert!(
        msg.contains("[journal.p4.listener.copy]") && msg.contains("ahead of the journal's reader"),
        "{msg}"
    );
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), Some(sample(100)));
    assert_eq!(names(dir.path()), [FILE_NAME]);
}

#[test]
fn damaged_files_on_disk_are_errors_never_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(FILE_NAME);
    let shown = file.display().to_string();

    fs::write(&file, "").unwrap();
    let e = Checkpoint::load(dir.path()).unwrap_err();
    assert!(matches!(e, StateError::Empty { .. }), "{e:?}");
    assert!(e.to_string().contains(&shown) && e.to_string().contains("empty"));

    fs::write(&file, vec![0u8; 4096]).unwrap();
    let e = Checkpoint::load(dir.path()).unwrap_err();
    assert!(matches!(e, StateError::Corrupt { line: 1, .. }), "{e:?}");
    assert!(e.to_string().contains(&shown) && e.to_string().contains("corrupt"));

    fs::write(&file, b"version = 1\n\n[journal.p4]\npath = \"\xff\xfe\"\n").unwrap();
    let e = Checkpoint::load(dir.path()).unwrap_err();
    assert_eq!(e.line(), Some(4), "{e}");
    assert!(e.to_string().contains("not UTF-8"), "{e}");
}

#[test]
fn read_errors_name_the_path_and_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let e = Checkpoint::load_file(&missing).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("checkpoint {}: cannot read: ", missing.display())),
        "{msg}"
    );
}

#[test]
fn state_dir_and_its_parents_are_created_private() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("a/b/state");
    ensure_state_dir(&state).unwrap();
    for d in [dir.path().join("a"), dir.path().join("a/b"), state.clone()] {
        assert_eq!(
            fs::metadata(&d).unwrap().mode() & 0o777,
            0o700,
            "{}",
            d.display()
        );
    }
    ensure_state_dir(&state).expect("an existing private directory is fine");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o750)).unwrap();
    ensure_state_dir(&state).expect("readable by group is fine");
}

#[test]
fn many_state_dirs_are_made_at_once_private_and_an_unsafe_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..50)
        .map(|i| dir.path().join(format!("s/listeners/j{i}/copy")))
        .collect();
    crate::ensure_state_dirs(&dirs).unwrap();
    for d in &dirs {
        assert_eq!(
            fs::metadata(d).unwrap().mode() & 0o777,
            0o700,
            "{}",
            d.display()
        );
    }
    crate::ensure_state_dirs(&dirs).expect("existing private directories are fine");
    fs::set_permissions(&dirs[7], fs::Permissions::from_mode(0o777)).unwrap();
    let e = crate::ensure_state_dirs(&dirs).unwrap_err();
    assert!(
        matches!(&e, StateError::UnsafeStateDir { path, .. } if path == &dirs[7]),
        "{e:?}"
    );
}

#[test]
fn state_dir_writable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o770, 0o702, 0o777] {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
        let e = ensure_state_dir(dir.path()).unwrap_err();
        assert!(
            matches!(e, StateError::UnsafeStateDir { mode: m, .. } if m == mode),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("chmod 700 {}", dir.path().display()))
                && msg.contains(&format!("{mode:04o}")),
            "{msg}"
        );
    }
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn a_file_is_not_a_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    fs::write(&file, "").unwrap();
    assert!(matches!(
        ensure_state_dir(&file),
        Err(StateError::NotADirectory { .. })
    ));
}

#[test]
fn one_lock_holder_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = StateLock::acquire(dir.path()).unwrap();
    let e = StateLock::acquire(dir.path()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StateError::Locked { .. }), "{e:?}");
    assert!(
        msg.contains(&format!("held by pid {}", std::process::id())),
        "{msg}"
    );
    drop(first);
    let again = StateLock::acquire(dir.path()).expect("free once dropped");
    assert_eq!(again.path(), dir.path().join(LOCK_FILE_NAME));
}
