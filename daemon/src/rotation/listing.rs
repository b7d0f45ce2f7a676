//! The names in a directory, shared by every journal that lives in it.
//!
//! Finding a journal's rotated files means listing its directory. A daemon
//! following a thousand logs in one directory listed that directory a
//! thousand times at start (and at each rotation check), so the cost grew
//! with the square of the number of logs. The names are kept once per
//! directory and listed again only when the directory may have changed.
//!
//! A directory's modification time moves with every name added, removed
//! or renamed in it, but only as finely as the kernel's clock ticks: a
//! change made in the same tick as the listing would leave it as it was.
//! So a listing is trusted only when it began well after the directory's
//! last change ([`SETTLED`]): any change after that carries a newer time.
//! A listing made while the directory was changing is not kept, and the
//! next look lists again (the rule git uses for its "racily clean" index).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::stamp::FileStamp;

/// How long after a directory's last change a listing of it is trusted:
/// far longer than a clock tick of any file system's timestamps.
const SETTLED: Duration = Duration::from_millis(100);

/// Directories listed, by path.
static CACHE: Mutex<Option<HashMap<PathBuf, Listed>>> = Mutex::new(None);

/// One listing and the directory's `stat` when it began (a name added,
/// removed or renamed moves its times and maybe its size).
struct Listed {
    stamp: FileStamp,
    names: Arc<[OsString]>,
}

/// The names in `dir` (not `.` and `..`), sorted by their bytes. `fresh`:
/// list it whatever the cache holds (a listed file vanished: the names are
/// known stale).
pub(crate) fn names(dir: &Path, fresh: bool) -> std::io::Result<Arc<[OsString]>> {
    let stamp = FileStamp::of(&std::fs::metadata(dir)?);
    if !fresh {
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = cache.as_ref().and_then(|c| c.get(dir)) {
            if l.stamp == stamp {
                return Ok(l.names.clone());
            }
        }
    }
    let began = SystemTime::now();
    let mut names = Vec::new();
    for ent in std::fs::read_dir(dir)? {
        names.push(ent?.file_name());
    }
    names.sort_unstable();
    let names: Arc<[OsString]> = names.into();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    let settled = began
        .duration_since(stamp.changed())
        .is_ok_and(|d| d >= SETTLED);
    if settled {
        cache.insert(
            dir.to_path_buf(),
            Listed {
                stamp,
                names: names.clone(),
            },
        );
    } else {
        cache.remove(dir);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets a directory's modification time `ago` in the past.
    fn age(dir: &Path, ago: Duration) {
        let t = SystemTime::now() - ago;
        let f = std::fs::File::open(dir).unwrap();
        f.set_times(std::fs::FileTimes::new().set_modified(t))
            .unwrap();
    }

    #[test]
    fn a_settled_directory_is_listed_once_and_again_after_any_change() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"").unwrap();
        // ctime cannot be set back: wait until it is settled.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while SystemTime::now()
            .duration_since(FileStamp::at(d.path()).unwrap().changed())
            .unwrap_or_default()
            < SETTLED
        {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        let first = names(d.path(), false).unwrap();
        let again = names(d.path(), false).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the second look is the cache");
        std::fs::write(d.path().join("b"), b"").unwrap();
        let after = names(d.path(), false).unwrap();
        let mut got: Vec<_> = after.iter().cloned().collect();
        got.sort();
        assert_eq!(got, vec![OsString::from("a"), OsString::from("b")]);
    }

    #[test]
    fn a_listing_made_while_the_directory_changes_is_not_kept() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"").unwrap();
        // Changed just now: the listing is not trusted.
        let first = names(d.path(), false).unwrap();
        let again = names(d.path(), false).unwrap();
        assert!(!Arc::ptr_eq(&first, &again), "listed again");
    }

    #[test]
    fn fresh_lists_whatever_the_cache_holds() {
        let d = tempfile::tempdir().unwrap();
        age(d.path(), Duration::from_secs(10));
        let s = FileStamp::at(d.path()).unwrap();
        // ctime is now: only mtime was set back; wait for ctime to settle.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while SystemTime::now()
            .duration_since(s.changed())
            .unwrap_or_default()
            < SETTLED
        {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        let a = names(d.path(), false).unwrap();
        let b = names(d.path(), true).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
    }
}
