//! Where each listener keeps its own records: `STATE/listeners/JOURNAL@LISTENER`.
//!
//! One directory per (journal, listener), side by side in one parent: a
//! first start with thousands of listeners creates one directory each and
//! syncs their parent once. The earlier layout, `listeners/JOURNAL/LISTENER`,
//! made two directories per listener and needed a sync of every journal's
//! directory: on a file system without a journal each of those is a write
//! of its own (1,000 of them took about half a second here).
//!
//! `@` is in no journal or listener name (`config::name_ok`), so a
//! directory's name splits at its last `@`. The streams of a glob journal
//! are named `GLOB/FILE`: theirs sit in `listeners/GLOB/`.
//!
//! A directory of the earlier layout is moved into place by [`migrate`]
//! at start, once; a rename keeps everything the listener saved in it.

use std::io;
use std::path::{Path, PathBuf};

use logdaemon_state::StateError;

fn io_err(path: &Path, op: &'static str, error: io::Error) -> StateError {
    StateError::Io {
        path: path.to_path_buf(),
        op,
        error,
    }
}

/// The directory of listener `listener` of journal `journal`.
pub(crate) fn path(state: &Path, journal: &str, listener: &str) -> PathBuf {
    state
        .join("listeners")
        .join(format!("{journal}@{listener}"))
}

/// The same directory in the earlier layout.
fn old_path(state: &Path, journal: &str, listener: &str) -> PathBuf {
    state.join("listeners").join(journal).join(listener)
}

/// Moves the directories these (journal, listener) pairs have in the
/// earlier layout, where the new one does not exist yet, then syncs the
/// directories that changed. A journal's old directory is removed once
/// it is empty; one still holding a listener that is no longer configured
/// is left as it is. Returns how many were moved.
///
/// A directory that is a symbolic link is not followed or moved: the
/// listener then starts with an empty directory, as on a first start,
/// and the link is left for the operator.
pub(crate) fn migrate<'a>(
    state: &Path,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<usize, StateError> {
    let mut moved = 0;
    let mut emptied: Vec<PathBuf> = Vec::new();
    let mut changed: Vec<PathBuf> = Vec::new();
    for (journal, listener) in pairs {
        let old = old_path(state, journal, listener);
        let new = path(state, journal, listener);
        let is_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
        if !is_dir(&old) || std::fs::symlink_metadata(&new).is_ok() {
            continue;
        }
        std::fs::rename(&old, &new).map_err(|e| {
            io_err(
                &old,
                "move a listener's state directory into the layout listeners/JOURNAL@LISTENER",
                e,
            )
        })?;
        moved += 1;
        let (Some(from), Some(to)) = (old.parent(), new.parent()) else {
            continue;
        };
        for d in [from, to] {
            if !changed.iter().any(|c| c == d) {
                changed.push(d.to_path_buf());
            }
        }
        if !emptied.iter().any(|c| c == from) {
            emptied.push(from.to_path_buf());
        }
    }
    for d in &emptied {
        match std::fs::remove_dir(d) {
            Ok(()) => changed.retain(|c| c != d),
            // Another listener's directory, not configured now: kept.
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => {}
            Err(e) => return Err(io_err(d, "remove an emptied state directory", e)),
        }
    }
    for d in &changed {
        std::fs::File::open(d)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_err(d, "sync a state directory after moving", e))?;
    }
    if moved > 0 {
        tracing::info!(
            moved,
            state_dir = %state.display(),
            "listener state directories moved to the layout listeners/JOURNAL@LISTENER"
        );
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn directories_of_the_earlier_layout_move_into_place_with_what_they_hold() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path();
        write(&s.join("listeners/app/copy/file.pos"), "app copy");
        write(&s.join("listeners/app/mail/state.json"), "app mail");
        // A glob journal's stream.
        write(&s.join("listeners/logs/a.log/copy/file.pos"), "a.log copy");
        // A listener no longer configured: left where it is.
        write(&s.join("listeners/old/gone/file.pos"), "gone");
        // Already in the new layout: the old one is not moved over it.
        write(&s.join("listeners/db@copy/file.pos"), "new");
        write(&s.join("listeners/db/copy/file.pos"), "stale");
        let pairs = [
            ("app", "copy"),
            ("app", "mail"),
            ("logs/a.log", "copy"),
            ("db", "copy"),
            ("fresh", "copy"),
        ];
        assert_eq!(migrate(s, pairs).unwrap(), 3);
        let read = |p: &str| std::fs::read_to_string(s.join(p)).unwrap();
        assert_eq!(read("listeners/app@copy/file.pos"), "app copy");
        assert_eq!(read("listeners/app@mail/state.json"), "app mail");
        assert_eq!(read("listeners/logs/a.log@copy/file.pos"), "a.log copy");
        assert_eq!(read("listeners/db@copy/file.pos"), "new");
        assert_eq!(read("listeners/db/copy/file.pos"), "stale");
        assert_eq!(read("listeners/old/gone/file.pos"), "gone");
        assert!(!s.join("listeners/app").exists(), "emptied: removed");
        assert!(!s.join("listeners/logs/a.log").exists());
        assert!(!s.join("listeners/fresh@copy").exists(), "nothing to move");
        assert_eq!(migrate(s, pairs).unwrap(), 0, "done once");
    }

    #[test]
    fn a_symbolic_link_in_the_earlier_layout_is_not_moved() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path();
        write(&d.path().join("elsewhere/file.pos"), "x");
        std::fs::create_dir_all(s.join("listeners/app")).unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), s.join("listeners/app/copy"))
            .unwrap();
        assert_eq!(migrate(s, [("app", "copy")]).unwrap(), 0);
        assert!(!s.join("listeners/app@copy").exists());
    }

    #[test]
    fn names_split_at_the_last_at_sign() {
        let p = path(Path::new("/s"), "logs/a@b.log", "copy");
        assert_eq!(p, Path::new("/s/listeners/logs/a@b.log@copy"));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.rsplit_once('@'), Some(("a@b.log", "copy")));
    }
}
