//! The where-was-I checkpoint of logdaemon.
//!
//! For each followed journal and each of its listeners the daemon remembers a
//! position — sequence number, byte offset and line number — together with
//! the identity of the file at that position (device, inode, and hashes of
//! the file's head and of the bytes just before the offset), so that a later
//! run can prove it is looking at the same stream before it resumes. Nothing
//! here ever resets a position: a file that does not parse or breaks a rule is
//! an error naming the file, the line and the problem.
//!
//! # The file
//!
//! `checkpoint.toml` in the daemon's state directory, versioned and meant to
//! be read and edited by operators while the daemon is stopped:
//!
//! ```toml
//! version = 2                  # 1: the same tables, no generation, never a log
//! generation = 12              # which whole save this is; checkpoint.log names it
//!
//! [journal.p4]                 # the reader: furthest position read and delivered
//! sequence = 12                # journal number (p4) or rotation generation (line logs)
//! offset = 4096                # byte offset in that journal file (uncompressed)
//! line = 57                    # 1-based line number at that offset
//!
//! [journal.p4.identity]        # optional; remove it to make the daemon trust the position
//! path = "/p4/root/journal"    # informational
//! dev = 2049
//! inode = 131075
//! head_len = 4096              # head_hash covers the file's first head_len bytes
//! head_hash = "xxh3:0123456789abcdef"
//! tail_len = 4096              # tail_hash covers the tail_len bytes before offset (≤ offset)
//! tail_hash = "xxh3:fedcba9876543210"
//!
//! [[journal.p4.finished]]      # rotated files already read completely, most recent last
//! sequence = 11
//! size = 1234
//! head_len = 1234
//! head_hash = "xxh3:..."
//! tail_len = 1234              # tail_hash covers the last tail_len bytes of the file
//! tail_hash = "xxh3:..."
//! path = "/p4/root/journal.11"
//!
//! [journal.p4.listener.copy]   # what listener `copy` acknowledged; never ahead of the reader
//! sequence = 12
//! offset = 4096
//! line = 57
//! # ... and optionally [journal.p4.listener.copy.identity]
//! ```
//!
//! Unknown keys are errors. Numbers above `i64::MAX` (TOML's limit) are
//! written as decimal strings. Rules: `line ≥ 1`; hash windows at most
//! [`MAX_WINDOW`] bytes; `tail_len ≤ offset` (identity) and
//! `head_len, tail_len ≤ size` (finished); a listener's `(sequence, offset)`
//! not past its journal's.
//!
//! # The log of changes
//!
//! A large checkpoint (from 64 KiB, about a hundred journals) is not
//! rewritten whole at every save of the daemon's [`Store`]: the journals
//! that changed are appended to `checkpoint.log` beside it, with one fsync,
//! until the log is as large as `checkpoint.toml`; the next save is whole
//! again (a new generation) and the log starts over. A save so costs what
//! changed, amortised, not what is followed. The log names the generation
//! and the hash of the `checkpoint.toml` it continues: an older log is
//! stale and ignored, one beside a file edited or put back by hand is an
//! error that names the ways out. [`Checkpoint::load`] applies the log;
//! [`Checkpoint::save`] writes whole and removes it. The daemon folds the
//! log in at start and stop ([`Store::compact`]), which also migrates a
//! version-1 file, so a stopped daemon's `checkpoint.toml` is the whole
//! checkpoint. The record format and its torn-tail rule are in
//! `store/log.rs`.
//!
//! # Durability
//!
//! [`Checkpoint::save`] writes a uniquely named temporary file, fsyncs it,
//! hard-links the current checkpoint to `checkpoint.toml.prev`, renames the
//! new file over `checkpoint.toml` and fsyncs the directory: after a crash
//! at any moment the checkpoint is the old or the new one, never missing or
//! partial. Temporary files left by a crash are removed by the next save.
//! An append to the log is fsynced before the save returns; a new log is
//! written whole and fsynced under a temporary name, renamed into place,
//! and the directory fsynced.
//! [`ensure_state_dir`] fsyncs the parent of each directory it creates, so
//! a power loss cannot take a new state directory away after a save into
//! it returned. The power-loss test (`store/powerloss.rs`) checks all this,
//! whole saves, saves to the log and the migration from version 1, against
//! a model of a disk that keeps only what was fsynced.

mod error;
mod hash;
mod listeners;
mod model;
mod parse;
mod raw;
mod render;
mod store;

pub use error::{InvalidKind, StateError};
pub use hash::{Hash, Hasher, HASH_PREFIX};
pub use listeners::Listeners;
pub use model::{Checkpoint, Cursor, Finished, Identity, JournalState, PendingGap, MAX_WINDOW};
pub use store::{
    ensure_state_dir, ensure_state_dirs, StateLock, Store, LOCK_FILE_NAME, LOG_FILE_NAME,
    PREVIOUS_FILE_NAME,
};

/// The checkpoint format this version writes (it also reads version 1).
pub const FORMAT_VERSION: u32 = 2;

/// The checkpoint's file name inside the state directory.
pub const FILE_NAME: &str = "checkpoint.toml";
