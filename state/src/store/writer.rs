//! [`Store`]: the daemon's side of the checkpoint, which saves only the
//! journals that changed once the checkpoint is large.
//!
//! A save of a small checkpoint (under [`LOG_FROM`] bytes) rewrites
//! `checkpoint.toml` whole, as [`Checkpoint::save`] does: it costs no more
//! than an append, and the file alone stays the whole truth. A larger one
//! appends the changed journals to `checkpoint.log` (see `log.rs`) with one
//! fsync, until the log has grown as large as `checkpoint.toml`; then the
//! save is whole again. The log is this process's: a log found at start is
//! folded in by the first save, never appended to.

use std::path::{Path, PathBuf};

use super::disk::{Fs, RealFs};
use super::log::{self, LOG_FILE_NAME};
use super::{load_state, save_whole, temp_path, Loaded};
use crate::error::StateError;
use crate::hash::Hash;
use crate::model::{check_journal, Checkpoint};
use crate::FORMAT_VERSION;

/// Size of `checkpoint.toml` from which saves go to `checkpoint.log`.
pub(crate) const LOG_FROM: u64 = 64 * 1024;

/// The checkpoint of one state directory, as the daemon holding its lock
/// saves it.
pub struct Store(Writer<RealFs>);

impl Store {
    /// Loads the checkpoint as [`Checkpoint::load`] does and returns it
    /// with the store that saves it.
    pub fn open(state_dir: &Path) -> Result<(Store, Option<Checkpoint>), StateError> {
        let loaded = load_state(state_dir)?;
        let writer = Writer::new(RealFs, state_dir, loaded.as_ref(), LOG_FROM);
        Ok((Store(writer), loaded.map(|l| l.checkpoint)))
    }

    /// Writes `cp` whole: a new `checkpoint.toml`, as [`Checkpoint::save`].
    pub fn save(&mut self, cp: &Checkpoint) -> Result<(), StateError> {
        self.0.save(cp)
    }

    /// Saves `cp`, of which only the journals named in `changed` differ
    /// from the last save: durable when it returns, at a cost that grows
    /// with those journals, not with the others (see the module docs).
    pub fn save_changed<I, S>(&mut self, cp: &Checkpoint, changed: I) -> Result<(), StateError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.0.save_changed(cp, changed)
    }

    /// Leaves `checkpoint.toml` alone the whole checkpoint, in the current
    /// format: a whole save when a log is beside it or the file is from an
    /// older version (the migration at start); nothing otherwise. The
    /// daemon calls it at start and at stop.
    pub fn compact(&mut self, cp: &Checkpoint) -> Result<(), StateError> {
        self.0.compact(cp)
    }
}

/// [`Store`] over any file system, for the power-loss test.
pub(crate) struct Writer<F: Fs> {
    fs: F,
    dir: PathBuf,
    /// `checkpoint.toml`'s generation on disk (or being written).
    generation: u64,
    /// Length and hash of `checkpoint.toml`'s bytes.
    base: (u64, Hash),
    /// This process's log, open for appends, and its length.
    log: Option<(F::File, u64)>,
    /// The next save is whole: a log or an older format is on disk, or a
    /// save failed and what is on disk is not known for sure.
    whole_next: bool,
    log_from: u64,
}

impl<F: Fs> Writer<F> {
    pub(crate) fn new(fs: F, dir: &Path, loaded: Option<&Loaded>, log_from: u64) -> Writer<F> {
        Writer {
            fs,
            dir: dir.into(),
            generation: loaded.map_or(0, |l| l.generation),
            base: loaded.map_or((0, Hash::default()), |l| l.text),
            log: None,
            whole_next: loaded.is_some_and(|l| l.has_log || l.version < FORMAT_VERSION),
            log_from,
        }
    }

    pub(crate) fn save(&mut self, cp: &Checkpoint) -> Result<(), StateError> {
        self.log = None;
        self.whole_next = true;
        // Past anything a failed save may have left, too.
        self.generation += 1;
        self.base = save_whole(&self.fs, &self.dir, cp, self.generation)?;
        self.whole_next = false;
        Ok(())
    }

    pub(crate) fn save_changed<I, S>(
        &mut self,
        cp: &Checkpoint,
        changed: I,
    ) -> Result<(), StateError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if self.whole_next || self.base.0 < self.log_from {
            return self.save(cp);
        }
        let names: Vec<S> = changed.into_iter().collect();
        let names: std::collections::BTreeSet<&str> = names.iter().map(AsRef::as_ref).collect();
        for &name in &names {
            if let Some(p) = cp
                .journals
                .get(name)
                .and_then(|j| check_journal(name, j).err())
            {
                return Err(StateError::Refused {
                    path: self.dir.join(LOG_FILE_NAME),
                    problem: p.to_string(),
                });
            }
        }
        let Some(record) = log::record(cp, names) else {
            return Ok(());
        };
        let logged = self.log.as_ref().map_or(0, |l| l.1);
        if logged + record.len() as u64 > self.base.0 {
            return self.save(cp);
        }
        self.append(&record).inspect_err(|_| {
            self.log = None;
            self.whole_next = true;
        })
    }

    pub(crate) fn compact(&mut self, cp: &Checkpoint) -> Result<(), StateError> {
        if self.whole_next || self.log.is_some() {
            return self.save(cp);
        }
        Ok(())
    }

    /// Appends `record` to this process's log, creating the log (whole,
    /// then renamed into place) on the first one.
    fn append(&mut self, record: &str) -> Result<(), StateError> {
        let path = self.dir.join(LOG_FILE_NAME);
        if let Some((file, len)) = &mut self.log {
            let path_ref = &path;
            let io = |op| move |e| StateError::io(path_ref, op, e);
            self.fs
                .write_all(file, record.as_bytes())
                .map_err(io("append to the checkpoint log"))?;
            self.fs
                .sync_file(file)
                .map_err(io("fsync the checkpoint log"))?;
            *len += record.len() as u64;
            return Ok(());
        }
        let text = log::new_log(self.generation, self.base.1, record);
        let temp = temp_path(&self.dir, ".log");
        let temp_ref = &temp;
        let io = |op| move |e| StateError::io(temp_ref, op, e);
        let mut file = self
            .fs
            .create_new(&temp)
            .map_err(io("create a temporary checkpoint log"))?;
        let written = self
            .fs
            .write_all(&mut file, text.as_bytes())
            .map_err(io("write the temporary checkpoint log"))
            .and_then(|()| {
                self.fs
                    .sync_file(&mut file)
                    .map_err(io("fsync the temporary checkpoint log"))
            })
            .and_then(|()| {
                self.fs.rename(&temp, &path).map_err(|e| {
                    StateError::io(&path, "rename the new checkpoint log into place", e)
                })
            });
        if let Err(e) = written {
            let _ = self.fs.remove_file(&temp);
            return Err(e);
        }
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| StateError::io(&self.dir, "fsync the state directory", e))?;
        self.log = Some((file, text.len() as u64));
        Ok(())
    }

    /// The file system, for tests that look at what a save did.
    #[cfg(test)]
    pub(crate) fn fs(&self) -> &F {
        &self.fs
    }
}

#[cfg(test)]
mod tests;
