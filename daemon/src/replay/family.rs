//! A journal's history on disk: its rotated predecessors, oldest first,
//! then the live file, each with its sequence number, opened together.
//!
//! Replay and `dump --config` read the same files the follower walks,
//! found by the journal's rotation scheme. Each file is opened once, before
//! any is read, and the directory is listed again afterwards: a rotation in
//! between (the live file renamed, a predecessor compressed) would make
//! the open files disagree with the names, so the listing is retried.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::JournalConfig;
use crate::format::Format;

/// One file of the history.
#[derive(Debug)]
pub struct Member {
    pub path: PathBuf,
    /// p4: the journal number (`journal.N`; the live journal is one more
    /// than the newest). Line logs: the file's place in the history on
    /// disk now, the oldest being 1.
    pub sequence: u64,
    pub file: File,
    /// Plain (not compressed): can be read at any offset.
    pub plain: bool,
    pub len: u64,
    pub mtime: Option<SystemTime>,
    pub live: bool,
}

/// Why the history could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum FamilyError {
    #[error("journal {journal:?}: cannot list {}: {source}; check that the directory exists and is readable", dir.display())]
    List {
        journal: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("journal {journal:?}: {} changed while it was being opened (rotating?) five times in a row; try again", dir.display())]
    Unstable { journal: String, dir: PathBuf },
}

/// Lists and opens the history of `j`, oldest first, the live file last
/// (when it exists). A file that vanishes between the listing and its
/// opening, or a rename meanwhile, makes the listing start over.
pub fn open(j: &JournalConfig) -> Result<Vec<Member>, FamilyError> {
    let dir = j.path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let list_err = |source| FamilyError::List {
        journal: j.name.clone(),
        dir: dir.clone(),
        source,
    };
    for _ in 0..5 {
        let names = listing(j).map_err(list_err)?;
        let Some(members) = open_all(j, &names) else {
            continue;
        };
        let again = listing(j).map_err(list_err)?;
        let same = again.len() == names.len()
            && again
                .iter()
                .zip(&members)
                .all(|((p, _), m)| *p == m.path && same_inode(p, &m.file));
        if same {
            return Ok(members);
        }
    }
    Err(FamilyError::Unstable {
        journal: j.name.clone(),
        dir,
    })
}

fn same_inode(path: &Path, file: &File) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The names of the history with their sequence numbers, oldest first.
pub(crate) fn listing(j: &JournalConfig) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let candidates = j.scheme.candidates()?;
    let numbered = matches!(j.format, Format::P4) && candidates.iter().all(|c| c.number.is_some());
    let mut out: Vec<(PathBuf, u64)> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| match (numbered, c.number) {
            (true, Some(n)) => (c.path.clone(), n),
            _ => (c.path.clone(), i as u64 + 1),
        })
        .collect();
    if j.path.is_file() {
        let next = out.last().map_or(1, |(_, n)| n + 1);
        out.push((j.path.clone(), next));
    }
    Ok(out)
}

fn open_all(j: &JournalConfig, names: &[(PathBuf, u64)]) -> Option<Vec<Member>> {
    let mut out = Vec::with_capacity(names.len());
    for (path, sequence) in names {
        let file = File::open(path).ok()?;
        let md = file.metadata().ok()?;
        let mut magic = [0u8; crate::compress::MAGIC_LEN];
        let n = crate::identity::read_full_at(&file, &mut magic, 0).ok()?;
        let plain = crate::compress::detect(&magic[..n]) == crate::compress::Compression::None;
        out.push(Member {
            path: path.clone(),
            sequence: *sequence,
            file,
            plain,
            len: md.len(),
            mtime: md.modified().ok(),
            live: *path == j.path,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JournalConfig;

    #[test]
    fn p4_journals_take_their_numbers_and_the_live_one_the_next() {
        let d = tempfile::tempdir().unwrap();
        for n in ["journal.7", "journal.8.gz", "journal"] {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        let j = JournalConfig::for_test("p4", &d.path().join("journal"), Format::P4);
        let m = open(&j).unwrap();
        let got: Vec<(String, u64, bool)> = m
            .iter()
            .map(|m| {
                let name = m.path.file_name().unwrap().to_string_lossy().into_owned();
                (name, m.sequence, m.live)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("journal.7".into(), 7, false),
                ("journal.8.gz".into(), 8, false),
                ("journal".into(), 9, true)
            ]
        );
    }

    #[test]
    fn line_logs_are_numbered_oldest_first() {
        let d = tempfile::tempdir().unwrap();
        for n in ["app.log.2.gz", "app.log.1", "app.log"] {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        let j = JournalConfig::for_test(
            "a",
            &d.path().join("app.log"),
            Format::Lines { record_start: None },
        );
        let m = open(&j).unwrap();
        let got: Vec<u64> = m.iter().map(|m| m.sequence).collect();
        assert_eq!(got, vec![1, 2, 3]);
        assert!(m[0].path.ends_with("app.log.2.gz"));
    }
}
