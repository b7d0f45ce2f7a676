//! A journal whose path is a symbolic link (`current.log -> a.log`) that
//! was pointed elsewhere while the daemon was down.
//!
//! Such a retarget is not a rotation the follower can prove by content: the
//! old target is in no rotated name, so the follower alone would say the
//! unread entries are in no file any more and suggest skipping them, while
//! the old target still holds them. So the checkpoint remembers the file the
//! link resolved to ([`remember`], at each save), and a start that finds it
//! pointing elsewhere with bytes left unread in the old file stops first
//! ([`check`]), naming both files, the unread bytes and a way that reads
//! them.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use logdaemon_state::{Checkpoint, Cursor};

use crate::config::{Config, JournalConfig};

/// The file `link` resolves to, if it is a symbolic link.
fn link_target(link: &Path) -> Option<PathBuf> {
    let md = std::fs::symlink_metadata(link).ok()?;
    if !md.file_type().is_symlink() {
        return None;
    }
    std::fs::canonicalize(link).ok()
}

/// Whether `c`'s proof names the file at `path` (same device and inode).
fn proves(c: &Cursor, path: &Path) -> bool {
    let Some(id) = &c.identity else { return false };
    std::fs::metadata(path).is_ok_and(|m| id.inode != 0 && m.dev() == id.dev && m.ino() == id.inode)
}

/// Records, for each journal of `touched` (`None`: every journal) whose
/// path is a link, the file it resolves to when that file is the one the
/// reader's position is in. The engine passes every journal at the start
/// and at a clean stop, and at each save in between the journals whose
/// position moved: only those can have moved into another file, and the
/// others are not looked at (no `lstat` of thousands of idle journals at
/// every save).
pub(crate) fn remember(
    cfg: &Config,
    checkpoint: &mut Checkpoint,
    touched: Option<&BTreeSet<String>>,
) {
    let journals = cfg.journals.iter();
    for j in journals.filter(|j| touched.is_none_or(|t| t.contains(&j.name))) {
        let Some(js) = checkpoint.journals.get_mut(&j.name) else {
            continue;
        };
        match link_target(&j.path) {
            Some(t) if proves(&js.reader, &t) => js.target = Some(t.display().to_string()),
            Some(_) => {}
            None => js.target = None,
        }
    }
}

/// Refuses to start when a journal's link points at another file than the
/// one the checkpoint remembers and that file still holds unread bytes.
pub(crate) fn check(cfg: &Config, checkpoint: &Checkpoint) -> Result<(), String> {
    for j in &cfg.journals {
        let Some(js) = checkpoint.journals.get(&j.name) else {
            continue;
        };
        let (Some(old), Some(now)) = (
            js.target.as_deref().map(PathBuf::from),
            link_target(&j.path),
        ) else {
            continue;
        };
        if old == now {
            continue;
        }
        // A position moved by hand (`checkpoint set`) is no longer proven
        // to be in the old file: nothing to tell.
        if !proves(&js.reader, &old) {
            continue;
        }
        let Ok(md) = std::fs::metadata(&old) else {
            continue;
        };
        // The slowest listener still in the old file says what is unread.
        let from = js
            .listeners
            .values()
            .filter(|c| c.sequence == js.reader.sequence)
            .map(|c| c.offset)
            .min()
            .unwrap_or(js.reader.offset);
        if md.len() > from {
            return Err(message(
                cfg,
                j,
                &old,
                &now,
                from,
                md.len() - from,
                js.reader.sequence,
            ));
        }
    }
    Ok(())
}

fn message(
    cfg: &Config,
    j: &JournalConfig,
    old: &Path,
    now: &Path,
    from: u64,
    unread: u64,
    sequence: u64,
) -> String {
    let link = j.path.display();
    format!(
        "journal {:?}: {link} is a symbolic link that pointed at {} when the checkpoint was saved and now points at {}; \
         {} still holds {unread} bytes after offset {from} (sequence {sequence}) that not every listener has read. \
         Nothing was delivered and the checkpoint was not moved. To read them: point the link back \
         (`ln -sfn {} {link}`), start the daemon and let it read that file to its end, then point the link at {} \
         again while the daemon runs: it follows that like a rotation. To skip them instead: \
         logdaemon checkpoint set --state-dir {} --journal {} --sequence {} --offset 0 --force",
        j.name,
        old.display(),
        now.display(),
        old.display(),
        old.display(),
        now.display(),
        cfg.state_dir.display(),
        j.name,
        sequence + 1
    )
}
