//! Secret files (password, token, NKey seed, `.creds`, TLS client key):
//! refused when group or others can read or change them, or when they
//! belong to another user than root or the daemon's, as ssh does for a
//! private key. [`Secret`] keeps the text out of every `Debug` print.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// A secret. `Debug` shows `Secret(***)`; [`Secret::expose`] is the one
/// way to the text, for the connection options.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Checks that `p` is a regular file private to its owner, and that the
/// owner is root or this process's user.
pub fn check(p: &Path) -> Result<(), String> {
    let md = std::fs::metadata(p).map_err(|e| {
        format!(
            "cannot read {}: {e}; create it (mode 0600) or fix the path",
            p.display()
        )
    })?;
    if !md.is_file() {
        return Err(format!("{} is not a regular file", p.display()));
    }
    let mode = md.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is accessible by group or others (mode {mode:04o}); a secret must be private: run `chmod 600 {}`",
            p.display(),
            p.display()
        ));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if md.uid() != 0 && md.uid() != me {
        return Err(format!(
            "{} is owned by uid {}, neither root nor this daemon's user (uid {me}); fix: chown it to root or to uid {me}",
            p.display(),
            md.uid()
        ));
    }
    Ok(())
}

/// Checks `p` and reads its first line.
pub fn read(p: &Path) -> Result<Secret, String> {
    check(p)?;
    let text =
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return Err(format!("{} is empty", p.display()));
    }
    Ok(Secret(line.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_or_other_access_is_refused_and_the_secret_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("seed");
        std::fs::write(&p, "SUAKEY\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.contains("mode 0640") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = read(&p).unwrap();
        assert_eq!(s.expose(), "SUAKEY");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        std::fs::write(&p, "\n").unwrap();
        assert!(read(&p).unwrap_err().contains("is empty"));
        assert!(read(&dir.path().join("nope"))
            .unwrap_err()
            .contains("cannot read"));
    }

    #[test]
    fn a_secret_owned_by_another_user_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root to give a file to another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "t\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.contains("owned by uid 65534"), "{e}");
    }
}
