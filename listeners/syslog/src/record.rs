//! The listener's own record of how far the target has taken the journal
//! (`syslog.pos` in its state directory), so that entries the host
//! redelivers after a crash (its checkpoint lags by up to a second) are not
//! sent twice. Written after the target acknowledged, via a synced
//! temporary file and a rename: after a crash it is never ahead of what
//! the target has, at worst behind (then those entries are sent again).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use logdaemon_sdk::Position;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct Saved {
    target: String,
    sequence: u64,
    offset: u64,
    line: u64,
}

pub struct Record {
    path: PathBuf,
    tmp: PathBuf,
    target: String,
}

impl Record {
    pub fn new(state_dir: &Path, target: &str) -> Record {
        Record {
            path: state_dir.join("syslog.pos"),
            tmp: state_dir.join("syslog.pos.tmp"),
            target: target.to_string(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The recorded position, if one was recorded for this same target.
    /// `Err` names the file and what to do.
    pub fn load(&self) -> Result<Option<Position>, String> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        let s: Saved = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} does not parse ({e}); remove it to send again everything after the daemon's checkpoint",
                self.path.display()
            )
        })?;
        if s.target != self.target {
            return Ok(None);
        }
        Ok(Some(Position {
            sequence: s.sequence,
            offset: s.offset,
            line: s.line,
        }))
    }

    pub fn store(&self, p: Position) -> Result<(), String> {
        let s = Saved {
            target: self.target.clone(),
            sequence: p.sequence,
            offset: p.offset,
            line: p.line,
        };
        let text = serde_json::to_vec(&s).expect("plain struct");
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&self.tmp)?;
            f.write_all(&text)?;
            f.sync_data()?;
            fs::rename(&self.tmp, &self.path)
        };
        write().map_err(|e| format!("cannot record the position in {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_loads_and_ignores_another_target() {
        let d = tempfile::tempdir().unwrap();
        let r = Record::new(d.path(), "relp://h:1");
        assert_eq!(r.load(), Ok(None));
        let p = Position {
            sequence: 2,
            offset: 300,
            line: 9,
        };
        r.store(p).unwrap();
        assert_eq!(r.load(), Ok(Some(p)));
        assert_eq!(Record::new(d.path(), "tcp://h:1").load(), Ok(None));
        fs::write(r.path(), "{").unwrap();
        let e = r.load().unwrap_err();
        assert!(
            e.contains("syslog.pos does not parse") && e.contains("remove it"),
            "{e}"
        );
    }
}
