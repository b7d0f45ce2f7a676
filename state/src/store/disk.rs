//! The file-system calls a save (and the creation of the state directory)
//! makes, behind a trait, so that the real
//! [`Checkpoint::save`](crate::Checkpoint::save) can also run against a model
//! of a disk that loses power (the power-loss test in `store/powerloss.rs`).
//!
//! Production uses [`RealFs`], a zero-sized type whose methods are the plain
//! `std::fs` calls; the save is generic over [`Fs`], so the trait costs no
//! indirection at run time.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// The operations of a durable save, in the vocabulary of POSIX: what each
/// makes durable is exactly what its system call does, no more.
pub(crate) trait Fs {
    /// An open file created by [`Fs::create_new`].
    type File;

    /// Creates `path` (mode 0600) for writing; fails when it exists.
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;

    /// Appends all of `bytes` to `file`.
    fn write_all(&self, file: &mut Self::File, bytes: &[u8]) -> io::Result<()>;

    /// Makes `file`'s contents durable (fsync). Not its name: that takes
    /// [`Fs::sync_dir`].
    fn sync_file(&self, file: &mut Self::File) -> io::Result<()>;

    /// Gives the file named `original` the second name `link`, which must
    /// not exist.
    fn hard_link(&self, original: &Path, link: &Path) -> io::Result<()>;

    /// Renames `from` to `to`, replacing `to` atomically. When both already
    /// name the same file, does nothing and succeeds (as rename(2) does).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the name `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Creates the directory `path` (mode 0700); its parent must exist.
    fn create_dir(&self, path: &Path) -> io::Result<()>;

    /// Makes the creations, links, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// The names in `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>>;

    /// The whole contents of `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
}

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RealFs;

impl Fs for RealFs {
    type File = File;

    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }

    fn write_all(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)
    }

    fn sync_file(&self, file: &mut File) -> io::Result<()> {
        file.sync_all()
    }

    fn hard_link(&self, original: &Path, link: &Path) -> io::Result<()> {
        fs::hard_link(original, link)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        DirBuilder::new().mode(0o700).create(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        // An entry that cannot be read is skipped, not an error: the names
        // serve only to tidy up leftovers.
        Ok(fs::read_dir(dir)?
            .filter_map(|entry| entry.ok().map(|e| e.file_name()))
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
}
