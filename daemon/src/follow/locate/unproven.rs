//! When file times cannot tell apart the files that hold a position.
//!
//! A checkpoint's position is proven by the bytes before it. Where several
//! files hold those bytes (a banner every file starts with) and one of them
//! is the live file with the recorded inode, the live file may be a newer
//! one that got the old file's inode back; its birth time, later than the
//! checkpoint's save, is what tells. Without birth times (a file system
//! that keeps none), or after the clock was set back (the save looks later
//! than now), that proof is gone, and guessing would resume in the new file
//! and skip the old file's rest silently. The follower stops instead,
//! naming the files and the command that says which one it is.

use std::path::Path;
use std::time::SystemTime;

use logdaemon_state::Cursor;

use super::{FollowError, Follower};
use crate::identity::Opened;
use crate::segment::Origin;

impl Follower {
    /// Why birth times cannot decide between files (`None`: they can).
    pub(super) fn times_untrusted(&self, saved: Option<SystemTime>) -> Option<String> {
        if let Some(ahead) = saved.and_then(|t| t.duration_since(SystemTime::now()).ok()) {
            return Some(format!(
                "the checkpoint was saved {} s later than now: the clock was set back since",
                ahead.as_secs()
            ));
        }
        match std::fs::metadata(&self.cfg.path).map(|m| birth_time(&m)) {
            Ok(Err(_)) => Some(format!(
                "the file system of {} keeps no file birth times",
                self.cfg.path.display()
            )),
            _ => None,
        }
    }

    /// The stop when the live file with the recorded inode and other files
    /// all hold the bytes that prove cursor `c`, and times cannot decide.
    pub(super) fn cannot_tell(
        &self,
        c: &Cursor,
        matches: &[(Opened, Origin)],
        why: &str,
    ) -> FollowError {
        let names: Vec<String> = matches
            .iter()
            .map(|(o, _)| o.path.display().to_string())
            .collect();
        let state = self
            .state_dir
            .as_ref()
            .map(|p| format!(" --state-dir {}", p.display()))
            .unwrap_or_default();
        let ways: Vec<String> = matches
            .iter()
            .map(|(o, _)| {
                format!(
                    "\n    if it is {}: logdaemon checkpoint set{state} --journal {} --sequence {} --offset {} --file {}",
                    o.path.display(),
                    self.cfg.name,
                    c.sequence,
                    c.offset,
                    shell_word(&o.path)
                )
            })
            .collect();
        FollowError::Other {
            journal: self.cfg.name.clone(),
            message: format!(
                "the position sequence {} offset {} (line {}) is proven only by bytes that these files all hold: {}; the live file has the recorded inode, but that inode may have been handed out again to a newer file, and {why}. \
                 Nothing was delivered and the checkpoint was not moved. Say which file held the position (the older one, compressed or renamed, unless the live file is the very file the checkpoint was written for):{}",
                c.sequence,
                c.offset,
                c.line,
                names.join(", "),
                ways.concat()
            ),
        }
    }
}

/// The file's birth time, as the file system keeps it (an error where it
/// keeps none). Tests can make it keep none ([`without_birth_times`]).
pub(in crate::follow) fn birth_time(m: &std::fs::Metadata) -> std::io::Result<SystemTime> {
    #[cfg(test)]
    if NO_BIRTH_TIMES.with(std::cell::Cell::get) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "no birth time (test)",
        ));
    }
    m.created()
}

#[cfg(test)]
thread_local! {
    static NO_BIRTH_TIMES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on this thread as on a file system that keeps no birth times
/// (ext4 made with 128-byte inodes, some network file systems).
#[cfg(test)]
pub(super) fn without_birth_times<T>(f: impl FnOnce() -> T) -> T {
    NO_BIRTH_TIMES.with(|c| c.set(true));
    let r = f();
    NO_BIRTH_TIMES.with(|c| c.set(false));
    r
}

/// A path as one word of the printed command (paths with spaces quoted).
fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    if s.contains(|ch: char| ch.is_whitespace() || ch == '\'') {
        format!("'{}'", s.replace('\'', "'\\''"))
    } else {
        s
    }
}
