//! What `stat` says of a file or directory, compared to tell whether it
//! may have changed: its identity (device, inode), size, link count, and
//! modification and status change times to the nanosecond. Anything that
//! writes to, truncates, renames, replaces or adds a name to it moves at
//! least one of them.
//!
//! The idle follower's check, the directory listings kept for rotated
//! names and the status's reuse of a journal's state all decide on it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub nlink: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl FileStamp {
    pub(crate) fn of(m: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            nlink: m.nlink(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// The stamp of `path` (following links); `None` when it cannot be had.
    pub(crate) fn at(path: &Path) -> Option<FileStamp> {
        std::fs::metadata(path).ok().map(|m| FileStamp::of(&m))
    }

    /// The last change, as the file system's clock said.
    pub(crate) fn changed(&self) -> SystemTime {
        let (s, ns) = self.mtime.max(self.ctime);
        match u64::try_from(s) {
            Ok(s) => SystemTime::UNIX_EPOCH + Duration::new(s, ns.clamp(0, 999_999_999) as u32),
            Err(_) => SystemTime::UNIX_EPOCH,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_a_rename_over_and_a_new_name_each_change_the_stamp() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"a").unwrap();
        let (file, dir) = (FileStamp::at(&f).unwrap(), FileStamp::at(d.path()).unwrap());
        assert_eq!(FileStamp::at(&f), Some(file), "unchanged");
        std::fs::write(d.path().join("g"), b"ab").unwrap();
        assert_ne!(FileStamp::at(d.path()), Some(dir), "a new name");
        std::fs::rename(d.path().join("g"), &f).unwrap();
        assert_ne!(FileStamp::at(&f), Some(file), "another file at the path");
        assert!(FileStamp::at(&d.path().join("none")).is_none());
    }
}
