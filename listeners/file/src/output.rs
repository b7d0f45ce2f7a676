//! Opening an output file safely as root: never through a symbolic link,
//! never a device or FIFO, never in a directory another user could use to
//! swap the file for a link to one of their choosing.
//!
//! The directory check is the plugin libraries' rule
//! ([`logdaemon_sdk::trust`]); `O_NOFOLLOW` on the last component and the
//! check of what was opened (`fstat`) close the window between a check and
//! the open.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use logdaemon_sdk::trust;

/// Why an output cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("output {}: {why}; anyone who can change it can make this daemon overwrite any file through a link; fix: {fix}, or point config key \"path\" into a directory only root (or the daemon's user) can write", path.display())]
    Untrusted {
        path: PathBuf,
        why: trust::Untrusted,
        fix: String,
    },
    #[error("output {} is a symbolic link; the file listener writes only to a regular file, never through a link (which another user may have planted): remove the link, or point config key \"path\" at the file itself", path.display())]
    Link { path: PathBuf },
    #[error("output {} is {kind}, not a regular file; the file listener appends to a regular file it can sync and cut back after a crash: point config key \"path\" at a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("output {} is owned by uid {owner}, neither root nor this daemon's user (uid {me}); another user's file is not written: move it away, or chown it to uid {me}", path.display())]
    Owner { path: PathBuf, owner: u32, me: u32 },
    #[error("cannot open output {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Refuses an output whose directory, or any directory above it, another
/// user could change.
pub fn check_directories(path: &Path) -> Result<(), OutputError> {
    trust::check_directories(path).map_err(|why| OutputError::Untrusted {
        path: path.to_path_buf(),
        fix: why.fix(),
        why,
    })
}

/// Opens (creating it if missing) `path` for reading and writing, without
/// following a link in its last component and without blocking on a FIFO,
/// and checks that what was opened is a regular file of root or ours.
pub fn open(path: &Path) -> Result<File, OutputError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => OutputError::Link {
                path: path.to_path_buf(),
            },
            _ => OutputError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
    let md = file.metadata().map_err(|source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(kind) = trust::kind_of(md.file_type()) {
        return Err(OutputError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    let me = trust::euid();
    if md.uid() != 0 && md.uid() != me {
        return Err(OutputError::Owner {
            path: path.to_path_buf(),
            owner: md.uid(),
            me,
        });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_a_fifo_and_a_device_are_refused_and_left_as_they_are() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open(&link).unwrap_err();
        assert!(matches!(e, OutputError::Link { .. }), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        let dangling = d.path().join("dangling");
        std::os::unix::fs::symlink(d.path().join("created"), &dangling).unwrap();
        assert!(matches!(open(&dangling), Err(OutputError::Link { .. })));
        assert!(!d.path().join("created").exists());
        let e = open(Path::new("/dev/null")).unwrap_err();
        assert!(
            e.to_string()
                .contains("is a character device, not a regular file"),
            "{e}"
        );
        open(&d.path().join("new")).unwrap();
    }
}
