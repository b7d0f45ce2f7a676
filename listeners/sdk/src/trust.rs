//! Whether a file may be run or written by this process, which is often
//! root: one rule for the host's plugin libraries, the `exec` listener's
//! commands and the `file` listener's outputs.
//!
//! Whoever can write a file, its directory or any directory above it can
//! replace what we run or make us write through a link of their choosing
//! (they can rename the directory below and put another in its place). So
//! every one of them must be owned by root or by this process's user and
//! must not be writable by group or others. A sticky world-writable
//! directory (like `/tmp`) lets others create entries but not rename or
//! replace ours, and is accepted.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What an [`Untrusted`] finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Directory => "directory",
        }
    }
}

/// Why a path cannot be trusted.
#[derive(Debug)]
pub enum Untrusted {
    /// `target` is writable by group or others.
    Writable {
        kind: Kind,
        target: PathBuf,
        mode: u32,
    },
    /// `target` belongs to a user who is neither root nor us.
    Owner {
        kind: Kind,
        target: PathBuf,
        owner: u32,
        me: u32,
    },
    /// The file is not a regular file.
    NotAFile { target: PathBuf },
    /// `target` cannot be examined.
    Io {
        target: PathBuf,
        source: std::io::Error,
    },
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::Writable { kind, target, mode } => write!(
                f,
                "{} {} is writable by group or others (mode {mode:04o})",
                kind.word(),
                target.display()
            ),
            Untrusted::Owner {
                kind,
                target,
                owner,
                me,
            } => write!(
                f,
                "{} {} is owned by uid {owner}, neither root nor this daemon's user (uid {me})",
                kind.word(),
                target.display()
            ),
            Untrusted::NotAFile { target } => {
                write!(f, "{} is not a regular file", target.display())
            }
            Untrusted::Io { target, source } => write!(f, "{}: {source}", target.display()),
        }
    }
}

impl std::error::Error for Untrusted {}

impl Untrusted {
    /// The command that fixes it, for messages.
    pub fn fix(&self) -> String {
        match self {
            Untrusted::Writable { target, .. } => format!("chmod go-w {}", target.display()),
            Untrusted::Owner { target, me, .. } => {
                format!(
                    "chown it to root or to uid {me} (chown {me} {})",
                    target.display()
                )
            }
            Untrusted::NotAFile { .. } | Untrusted::Io { .. } => String::new(),
        }
    }
}

/// What a file that is not a regular file is, in words (`None`: a regular
/// file), for messages that refuse a FIFO, a device or a link.
pub fn kind_of(t: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_symlink() {
        Some("a symbolic link")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// This process's effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Checks a file to be run or loaded: it must be a regular file, and it and
/// every directory above it must pass [`vet`]. Symbolic links are followed;
/// pass a canonical path to check the file that will really be used.
pub fn check_file(path: &Path) -> Result<(), Untrusted> {
    let md = std::fs::metadata(path).map_err(|source| Untrusted::Io {
        target: path.to_path_buf(),
        source,
    })?;
    if !md.is_file() {
        return Err(Untrusted::NotAFile {
            target: path.to_path_buf(),
        });
    }
    vet(Kind::File, path, &md)?;
    check_directories(path)
}

/// Checks every directory above `path` (up to `/`, or `.` for a relative
/// path) with [`vet`]; `path` itself is not looked at.
pub fn check_directories(path: &Path) -> Result<(), Untrusted> {
    for dir in path.ancestors().skip(1) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let md = std::fs::metadata(dir).map_err(|source| Untrusted::Io {
            target: dir.to_path_buf(),
            source,
        })?;
        vet(Kind::Directory, dir, &md)?;
        if dir == Path::new(".") {
            break;
        }
    }
    Ok(())
}

/// Refuses what group or others can write (a sticky directory excepted) and
/// what belongs to a user other than root or this process's.
pub fn vet(kind: Kind, target: &Path, m: &std::fs::Metadata) -> Result<(), Untrusted> {
    let mode = m.mode() & 0o7777;
    let sticky = kind == Kind::Directory && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Err(Untrusted::Writable {
            kind,
            target: target.to_path_buf(),
            mode,
        });
    }
    let me = euid();
    if m.uid() != 0 && m.uid() != me {
        return Err(Untrusted::Owner {
            kind,
            target: target.to_path_buf(),
            owner: m.uid(),
            me,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn a_writable_file_or_directory_is_refused_a_sticky_directory_is_not() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("a");
        std::fs::create_dir(&sub).unwrap();
        mode(d.path(), 0o755);
        mode(&sub, 0o755);
        let f = sub.join("x");
        std::fs::write(&f, b"x").unwrap();
        mode(&f, 0o755);
        check_file(&f).unwrap();
        mode(&f, 0o775);
        let e = check_file(&f).unwrap_err();
        assert!(
            matches!(
                e,
                Untrusted::Writable {
                    kind: Kind::File,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.fix(), format!("chmod go-w {}", f.display()));
        mode(&f, 0o755);
        mode(&sub, 0o777);
        let e = check_file(&f).unwrap_err();
        assert!(
            matches!(&e, Untrusted::Writable { kind: Kind::Directory, target, .. } if target == &sub),
            "{e}"
        );
        assert!(matches!(
            check_directories(&f),
            Err(Untrusted::Writable { .. })
        ));
        mode(&sub, 0o1777);
        check_file(&f).unwrap();
        let e = check_file(&sub).unwrap_err();
        assert!(matches!(e, Untrusted::NotAFile { .. }), "{e}");
    }
}
