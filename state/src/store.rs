//! The checkpoint on disk: the state directory, atomic durable saves, loads
//! that tell "first start" from "damaged", and the lock that keeps two
//! daemons from sharing one state directory.
//!
//! Crash safety rests on one rename: the new checkpoint is complete and on
//! disk (fsync) under a temporary name before it replaces the old one, so
//! `checkpoint.toml` is always either the previous or the new save. The
//! previous save survives as `checkpoint.toml.prev` (a hard link made before
//! the rename, so the main file is never missing) for an operator to fall
//! back on.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::error::StateError;
use crate::hash::Hash;
use crate::model::{Checkpoint, JournalState};
use crate::parse::{parse_file, Parsed};
use crate::FILE_NAME;

mod disk;
pub(crate) mod log;
mod writer;

use self::disk::{Fs, RealFs};
pub use self::log::LOG_FILE_NAME;
pub use self::writer::Store;

/// The previous save, kept beside the checkpoint.
pub const PREVIOUS_FILE_NAME: &str = "checkpoint.toml.prev";

/// The lock file held by the daemon using the state directory.
pub const LOCK_FILE_NAME: &str = "logdaemon.lock";

/// Prefix of every temporary file a save creates.
const TEMP_PREFIX: &str = "checkpoint.toml.tmp.";

impl Checkpoint {
    /// Loads `checkpoint.toml` from `state_dir`. `Ok(None)` when it does not
    /// exist and never did (first start). Any other problem is an error,
    /// including a missing checkpoint whose previous save
    /// (`checkpoint.toml.prev`) still exists.
    pub fn load(state_dir: &Path) -> Result<Option<Checkpoint>, StateError> {
        Ok(load_state(state_dir)?.map(|l| l.checkpoint))
    }

    /// The saved state of journal `name`, with the time the file holding it
    /// was last written (`checkpoint.toml`, or `checkpoint.log` when the
    /// journal was saved there since): the state was saved no later.
    /// `Ok(None)` when there is no checkpoint or it does not name `name`.
    pub fn load_journal(
        state_dir: &Path,
        name: &str,
    ) -> Result<Option<(JournalState, SystemTime)>, StateError> {
        let Some(loaded) = cached_state(state_dir)? else {
            return Ok(None);
        };
        let Some(js) = loaded.checkpoint.journals.get(name).cloned() else {
            return Ok(None);
        };
        let file = match loaded.logged.iter().any(|l| l == name) {
            true => LOG_FILE_NAME,
            false => FILE_NAME,
        };
        let path = state_dir.join(file);
        let saved = fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|e| StateError::io(path, "read the modification time", e))?;
        Ok(Some((js, saved)))
    }

    /// Loads and checks the checkpoint at `path` (which must exist).
    pub fn load_file(path: &Path) -> Result<Checkpoint, StateError> {
        let bytes = fs::read(path).map_err(|e| StateError::io(path, "read", e))?;
        decode(&bytes, path).map(|p| p.checkpoint)
    }

    /// Writes the checkpoint to `state_dir/checkpoint.toml`, atomically and
    /// durably: a uniquely named temporary file in the same directory is
    /// written and fsynced, the current checkpoint (if any) is hard-linked
    /// to `checkpoint.toml.prev`, the temporary file is renamed over
    /// `checkpoint.toml`, and the directory is fsynced. Returns only once
    /// the new checkpoint is durable. Temporary files left by an earlier,
    /// interrupted process are removed. A checkpoint that breaks a rule (see
    /// the crate docs) is refused and nothing is written.
    pub fn save(&self, state_dir: &Path) -> Result<(), StateError> {
        self.save_on(&RealFs, state_dir)
    }

    /// [`Checkpoint::save`] through the file system `fs`.
    pub(crate) fn save_on<F: Fs>(&self, fs: &F, state_dir: &Path) -> Result<(), StateError> {
        save_whole(fs, state_dir, self, next_generation(fs, state_dir)).map(drop)
    }
}

/// The generation a whole save replacing what is in `state_dir` gets: past
/// both `checkpoint.toml`'s and the base of `checkpoint.log`, so that log
/// is stale from then on. Unreadable files count as 0.
fn next_generation<F: Fs>(fs: &F, state_dir: &Path) -> u64 {
    let of = |name: &str, key: &str| {
        fs.read(&state_dir.join(name))
            .ok()
            .and_then(|b| log::top_level_number(&b, key))
            .unwrap_or(0)
    };
    of(FILE_NAME, "generation").max(of(LOG_FILE_NAME, "base")) + 1
}

/// Writes `cp` whole as `checkpoint.toml`, generation `generation`, durably
/// (see [`Checkpoint::save`]), then removes `checkpoint.log`, which it
/// includes. Returns the length and hash of the text written.
pub(crate) fn save_whole<F: Fs>(
    fs: &F,
    state_dir: &Path,
    cp: &Checkpoint,
    generation: u64,
) -> Result<(u64, Hash), StateError> {
    let path = state_dir.join(FILE_NAME);
    if let Err(p) = cp.check() {
        return Err(StateError::Refused {
            path,
            problem: p.to_string(),
        });
    }
    let text = cp.render(generation);
    let temp = temp_path(state_dir, "");
    let result = write_new(fs, &temp, text.as_bytes())
        .and_then(|()| keep_previous(fs, state_dir, &path, &temp))
        .and_then(|()| {
            fs.rename(&temp, &path)
                .map_err(|e| StateError::io(&path, "rename the new checkpoint into place", e))
        });
    if let Err(e) = result {
        let _ = fs.remove_file(&temp);
        return Err(e);
    }
    fs.sync_dir(state_dir)
        .map_err(|e| StateError::io(state_dir, "fsync the state directory", e))?;
    // Folded into the new checkpoint; should the removal not last, a
    // log naming an older generation is stale and ignored.
    let _ = fs.remove_file(&state_dir.join(LOG_FILE_NAME));
    remove_stale_temps(fs, state_dir);
    Ok((text.len() as u64, Hash::of(text.as_bytes())))
}

/// A new, unique temporary file name in `state_dir`, ending in `suffix`.
pub(crate) fn temp_path(state_dir: &Path, suffix: &str) -> PathBuf {
    let n = SAVES.fetch_add(1, Ordering::Relaxed);
    state_dir.join(format!("{TEMP_PREFIX}{}.{n}{suffix}", token()))
}

/// What a load found on disk.
pub(crate) struct Loaded {
    /// `checkpoint.toml` with the records of `checkpoint.log` applied.
    pub checkpoint: Checkpoint,
    /// `checkpoint.toml`'s format version.
    pub version: u32,
    /// `checkpoint.toml`'s generation.
    pub generation: u64,
    /// Length and hash of `checkpoint.toml`'s bytes.
    pub text: (u64, Hash),
    /// Whether a `checkpoint.log` is beside it (applied, or stale).
    pub has_log: bool,
    /// The journals whose state came from the log.
    pub logged: Vec<String>,
}

/// Loads `checkpoint.toml` and applies `checkpoint.log` when the log
/// continues it; see [`Checkpoint::load`].
/// What `stat` says of a file: length and modification time, or nothing.
type Stamp = Option<(u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let m = fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// The checkpoint [`Checkpoint::load_journal`] read last, with the stamps
/// of its two files: thousands of journals opening at start ask for their
/// own part one after the other, and parsing the whole checkpoint for each
/// made the start grow with the square of their number.
#[allow(clippy::type_complexity)]
static CACHE: std::sync::Mutex<Option<(PathBuf, Stamp, Stamp, std::sync::Arc<Loaded>)>> =
    std::sync::Mutex::new(None);

fn cached_state(state_dir: &Path) -> Result<Option<std::sync::Arc<Loaded>>, StateError> {
    let (a, b) = (
        stamp(&state_dir.join(FILE_NAME)),
        stamp(&state_dir.join(LOG_FILE_NAME)),
    );
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((dir, ca, cb, loaded)) = cache.as_ref() {
        // A write within the same modification-time tick changes the length
        // or is caught by the next tick; `a` is `None` when there is no file.
        if dir == state_dir && *ca == a && *cb == b && a.is_some() {
            return Ok(Some(loaded.clone()));
        }
    }
    let Some(loaded) = load_state(state_dir)? else {
        *cache = None;
        return Ok(None);
    };
    let loaded = std::sync::Arc::new(loaded);
    *cache = Some((state_dir.to_path_buf(), a, b, loaded.clone()));
    Ok(Some(loaded))
}

pub(crate) fn load_state(state_dir: &Path) -> Result<Option<Loaded>, StateError> {
    let path = state_dir.join(FILE_NAME);
    let log_path = state_dir.join(LOG_FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let previous = state_dir.join(PREVIOUS_FILE_NAME);
            return match previous.try_exists() {
                Ok(true) => Err(StateError::MissingWithPrevious { path, previous }),
                Ok(false) if log_path.exists() => Err(StateError::LogMismatch {
                    journals: String::new(),
                    problem: format!("it continues {}, which is missing", path.display()),
                    path: log_path,
                }),
                Ok(false) => Ok(None),
                Err(e) => Err(StateError::io(
                    previous,
                    "check whether the previous save exists",
                    e,
                )),
            };
        }
        Err(e) => return Err(StateError::io(path, "read", e)),
    };
    let parsed = decode(&bytes, &path)?;
    let mut loaded = Loaded {
        checkpoint: parsed.checkpoint,
        version: parsed.version,
        generation: parsed.generation,
        text: (bytes.len() as u64, Hash::of(&bytes)),
        has_log: false,
        logged: Vec::new(),
    };
    let log = match fs::read(&log_path) {
        Ok(b) => log::read(&b, &log_path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(loaded)),
        Err(e) => return Err(StateError::io(log_path, "read", e)),
    };
    loaded.has_log = true;
    let problem = if log.base < loaded.generation {
        return Ok(Some(loaded)); // from before the last whole save
    } else if log.base > loaded.generation {
        format!(
            "it continues generation {} of {}, which is generation {} (an older save put back?)",
            log.base,
            path.display(),
            loaded.generation
        )
    } else if log.base_hash != loaded.text.1 {
        format!("{} was changed after this log was started", path.display())
    } else {
        loaded.logged = log.journals.keys().cloned().collect();
        loaded.checkpoint.journals.extend(log.journals);
        return Ok(Some(loaded));
    };
    let journals: Vec<&str> = log.journals.keys().map(String::as_str).collect();
    Err(StateError::LogMismatch {
        path: log_path,
        problem,
        journals: journals.join(", "),
    })
}

/// Creates the state directory (and missing parents) with mode 0700,
/// durably. Refuses an existing directory that group or others may write,
/// and a path that is not a directory.
pub fn ensure_state_dir(dir: &Path) -> Result<(), StateError> {
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dirs(&RealFs, dir)
                .map_err(|e| StateError::io(dir, "create the state directory", e))?;
            fs::metadata(dir).map_err(|e| StateError::io(dir, "inspect the state directory", e))?
        }
        Err(e) => return Err(StateError::io(dir, "inspect the state directory", e)),
    };
    if !meta.is_dir() {
        return Err(StateError::NotADirectory { path: dir.into() });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StateError::UnsafeStateDir {
            path: dir.into(),
            mode,
        });
    }
    Ok(())
}

/// Like [`ensure_state_dir`] for many directories at once (one per
/// listener): every missing one is created first, then the parent of each
/// is synced, once. A journaling file system commits all the new names
/// with the first sync, so the others find nothing left to write: a first
/// start with thousands of listeners no longer waits for one commit each.
pub fn ensure_state_dirs(dirs: &[PathBuf]) -> Result<(), StateError> {
    let mut parents = Vec::new();
    for dir in dirs {
        if fs::symlink_metadata(dir).is_err() {
            create_dirs_unsynced(&RealFs, dir, &mut parents)
                .map_err(|e| StateError::io(dir, "create the state directory", e))?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    for p in parents.iter().filter(|p| seen.insert(p.as_path())) {
        RealFs
            .sync_dir(p)
            .map_err(|e| StateError::io(p, "sync the directory of a new state directory", e))?;
    }
    dirs.iter().try_for_each(|d| ensure_state_dir(d))
}

/// Creates `dir` and its missing parents (mode 0700), like `mkdir -p`, and
/// fsyncs the parent of each: a new directory's name is durable only then,
/// and until it is, a power loss may take the state directory away with
/// every checkpoint saved in it (a first start again, delivering twice).
pub(crate) fn create_dirs<F: Fs>(fs: &F, dir: &Path) -> io::Result<()> {
    let mut parents = Vec::new();
    create_dirs_unsynced(fs, dir, &mut parents)?;
    parents.iter().try_for_each(|p| fs.sync_dir(p))
}

/// [`create_dirs`] without the syncs: the parents to sync are added to
/// `parents`, outermost first.
fn create_dirs_unsynced<F: Fs>(fs: &F, dir: &Path, parents: &mut Vec<PathBuf>) -> io::Result<()> {
    let parent = match dir.parent() {
        None => return fs.create_dir(dir), // the root, or an empty path
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
    };
    let created = match fs.create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dirs_unsynced(fs, parent, parents)?;
            fs.create_dir(dir)
        }
        other => other,
    };
    match created {
        // Created by another process at the same time: durable only once
        // the parent is fsynced all the same.
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => parents.push(parent.to_path_buf()),
    }
    Ok(())
}

/// Exclusive use of a state directory, held until dropped (or until the
/// process dies: the kernel releases it, so a crash never leaves it stuck).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock file `logdaemon.lock` in `state_dir` without waiting,
    /// and writes this process's id into it. Fails with
    /// [`StateError::Locked`] when another process holds it.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, StateError> {
        let path = state_dir.join(LOCK_FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StateError::io(&path, "open the lock file", e))?;
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::new(),
                    pid => format!("pid {pid}"),
                };
                return Err(StateError::Locked {
                    path: state_dir.into(),
                    lock: path,
                    holder,
                });
            }
            return Err(StateError::io(&path, "lock the lock file", e));
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all(pid.as_bytes()))
            .map_err(|e| StateError::io(&path, "write the lock file", e))?;
        Ok(StateLock { _file: file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

static SAVES: AtomicU64 = AtomicU64::new(0);

/// Names this process's temporary files: the pid alone is not enough (a
/// daemon in a container is often pid 1 on every start), so the start time
/// is added, and a later process recognises an earlier one's leftovers.
fn token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{}-{nanos:x}", std::process::id())
    })
}

/// Turns the file's bytes into a checkpoint, telling damage from content errors.
fn decode(bytes: &[u8], path: &Path) -> Result<Parsed, StateError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_file(text, path),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            Err(StateError::Corrupt {
                path: path.into(),
                line: good.iter().filter(|&&b| b == b'\n').count() + 1,
                what: format!("byte {} is not UTF-8 text", e.valid_up_to()),
            })
        }
    }
}

/// Creates `temp` (which must not exist), writes `bytes`, fsyncs.
fn write_new<F: Fs>(fs: &F, temp: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let mut f = fs
        .create_new(temp)
        .map_err(|e| StateError::io(temp, "create a temporary checkpoint", e))?;
    fs.write_all(&mut f, bytes)
        .map_err(|e| StateError::io(temp, "write the temporary checkpoint", e))?;
    fs.sync_file(&mut f)
        .map_err(|e| StateError::io(temp, "fsync the temporary checkpoint", e))
}

/// Hard-links the current checkpoint to `checkpoint.toml.prev`, replacing
/// the older one atomically (link under a temporary name, then rename).
fn keep_previous<F: Fs>(
    fs: &F,
    state_dir: &Path,
    current: &Path,
    temp: &Path,
) -> Result<(), StateError> {
    let mut link = temp.as_os_str().to_owned();
    link.push(".prev");
    let link = PathBuf::from(link);
    match fs.hard_link(current, &link) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StateError::io(
                current,
                "keep the previous checkpoint (hard link)",
                e,
            ))
        }
    }
    let previous = state_dir.join(PREVIOUS_FILE_NAME);
    let renamed = fs.rename(&link, &previous);
    // When `previous` already is a link to the current checkpoint (a crash
    // came between this rename and the next one), rename(2) succeeds
    // without doing anything and leaves `link` behind.
    let _ = fs.remove_file(&link);
    renamed.map_err(|e| StateError::io(previous, "keep the previous checkpoint (rename)", e))
}

/// Removes temporary files that other (dead or concurrent-by-mistake)
/// processes left; this process's own are removed by the save that made
/// them. Best effort: a leftover is harmless, loads never read it.
fn remove_stale_temps<F: Fs>(fs: &F, dir: &Path) {
    let Ok(names) = fs.list_dir(dir) else {
        return;
    };
    let own = format!("{TEMP_PREFIX}{}.", token());
    for name in names {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TEMP_PREFIX) && !name.starts_with(&own) {
            let _ = fs.remove_file(&dir.join(name));
        }
    }
}

#[cfg(test)]
mod powerloss;
#[cfg(test)]
mod simfs;
#[cfg(test)]
mod tests;
