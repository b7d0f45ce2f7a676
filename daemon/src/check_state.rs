//! `logdaemon check` on the state directory, as `run` would see it at
//! start, without creating or changing anything: a state directory others
//! can write, a path that is no directory, a checkpoint that does not load,
//! and a journal link pointed elsewhere with bytes left unread (see
//! [`crate::retarget`]) are each refused here as `run` refuses them, with
//! the same message.

use std::os::unix::fs::MetadataExt;

use logdaemon_state::{Checkpoint, StateError};

use crate::config::Config;

/// One line on the state for `check`'s report, or why `run` would refuse it.
pub(crate) fn check(cfg: &Config) -> Result<String, String> {
    let dir = &cfg.state_dir;
    let md = match std::fs::metadata(dir) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(format!(
                "state {}: not there yet; run creates it (mode 0700)",
                dir.display()
            ))
        }
        Err(e) => return Err(format!("state directory {}: {e}", dir.display())),
    };
    if !md.is_dir() {
        return Err(StateError::NotADirectory { path: dir.clone() }.to_string());
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StateError::UnsafeStateDir {
            path: dir.clone(),
            mode,
        }
        .to_string());
    }
    match Checkpoint::load(dir).map_err(|e| e.to_string())? {
        None => Ok(format!("state {}: no checkpoint yet", dir.display())),
        Some(cp) => {
            crate::retarget::check(cfg, &cp)?;
            Ok(format!(
                "state {}: checkpoint of {} journals loads",
                dir.display(),
                cp.journals.len()
            ))
        }
    }
}
