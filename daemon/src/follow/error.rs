//! What can stop a follower, worded for the operator.

use std::path::PathBuf;

use logdaemon_sdk::abi::GapCause;
use logdaemon_sdk::Position;

/// Bytes that must be delivered and exist in no file any more.
#[derive(Debug, Clone)]
pub struct Missing {
    pub journal: String,
    pub live: PathBuf,
    /// The first byte we cannot deliver.
    pub from: Position,
    /// Where delivery can resume, when known.
    pub to: Option<Position>,
    /// Why (`Deleted`, `Copytruncate` or `Truncated`).
    pub cause: GapCause,
    /// Each file looked at and why it did not hold the bytes.
    pub looked_at: Vec<(PathBuf, String)>,
    pub state_dir: Option<PathBuf>,
    /// The file where delivery resumes (`to`), when its name does not say
    /// its sequence (a line log's rotated file): the way out names it.
    pub resume_in: Option<PathBuf>,
    /// The missing file(s) as far as they are known: journal number, last
    /// known name, size (what the operator restores from a backup).
    pub gone: Option<String>,
    /// How many bytes are lost, when known.
    pub bytes: Option<u64>,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "journal {:?}: the entries from sequence {} offset {} (line {}) are in no file any more ({})",
            self.journal,
            self.from.sequence,
            self.from.offset,
            self.from.line,
            match self.cause {
                GapCause::Copytruncate => "written after the rotated copy was made and before the file was truncated",
                GapCause::Truncated => "the live file was truncated before they were read and no copy of it was found",
                _ => "the file holding them was deleted or rotated away",
            }
        )?;
        if let Some(to) = self.to {
            write!(
                f,
                "; the next available entry is at sequence {} offset {}",
                to.sequence, to.offset
            )?;
        }
        write!(f, ".")?;
        if let Some(gone) = &self.gone {
            write!(f, "\n  missing: {gone}")?;
        }
        match self.bytes {
            Some(n) => write!(f, "\n  lost: {n} bytes from sequence {} offset {}", self.from.sequence, self.from.offset)?,
            None => write!(f, "\n  lost: every byte from sequence {} offset {} to the end of that file (how many is unknown: the file was not read to its end)", self.from.sequence, self.from.offset)?,
        }
        write!(f, "\n  looked at:")?;
        if self.looked_at.is_empty() {
            write!(f, " no candidate file next to {}", self.live.display())?;
        }
        for (p, why) in &self.looked_at {
            write!(f, "\n    {}: {}", p.display(), why)?;
        }
        let dir = self
            .live
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let state = self
            .state_dir
            .as_ref()
            .map(|p| format!(" --state-dir {}", p.display()))
            .unwrap_or_default();
        let (seq, off) = self
            .to
            .map(|t| (t.sequence, t.offset))
            .unwrap_or((self.from.sequence + 1, 0));
        // A position `checkpoint set` cannot find the file of by itself is
        // set unchecked (`--force`), and the daemon takes it for the live
        // file's: with the file named, it is checked and proven instead.
        let at = match &self.resume_in {
            Some(p) => format!("--file {}", p.display()),
            None => "--force".to_string(),
        };
        write!(
            f,
            "\n  Nothing was delivered past the last entry before this point and the checkpoint was not moved. Two ways out:\
             \n    1. restore the file that held these entries (plain or compressed) into {dir} and start the daemon again; or\
             \n    2. accept the loss and move the checkpoint past it: logdaemon checkpoint set{state} --journal {} --sequence {seq} --offset {off} {at}\
             \n  (with on_gap = \"report\" the daemon reports such a gap to the listeners and goes on instead of stopping)",
            self.journal
        )
    }
}

/// A rotated (compressed) file that ends before its data does, for good:
/// what it is, what moving past it loses, and the exact command that does.
#[derive(Debug)]
pub struct CutShort {
    pub journal: String,
    pub path: PathBuf,
    /// The decoder's error (it names the file and the uncompressed offset).
    pub source: std::io::Error,
    /// The sequence the file is read as.
    pub sequence: u64,
    /// The sequence of the file after it.
    pub next: u64,
    /// That file, when it is a rotated one (else it is the live file).
    pub resume_in: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

impl std::fmt::Display for CutShort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self
            .state_dir
            .as_ref()
            .map(|p| format!(" --state-dir {}", p.display()))
            .unwrap_or_default();
        // The live file is where a position set unchecked is taken to be;
        // a rotated one is named, to be checked and proven.
        let at = match &self.resume_in {
            Some(p) => format!("--file {}", p.display()),
            None => "--force".to_string(),
        };
        write!(
            f,
            "journal {:?}: {}\
             \n  lost if you move past it: every entry of sequence {} after the last one delivered, to the end of {} (from the offset above on it cannot be read; the file's full length is unknown)\
             \n  Delivery stopped before the entries the failed read held; the checkpoint is kept at the last one acknowledged. Two ways out:\
             \n    1. restore the complete file (or the uncompressed one) as {} and start the daemon again; or\
             \n    2. accept the loss and move the checkpoint past the file: logdaemon checkpoint set{state} --journal {} --sequence {} --offset 0 {at}\
             \n  (the skipped range is then reported to the listeners as a gap of cause \"operator\")",
            self.journal,
            path_and(&self.path, &self.source),
            self.sequence,
            self.path.display(),
            self.path.display(),
            self.journal,
            self.next,
        )
    }
}

/// Why a follower stopped.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("{0}")]
    Missing(Box<Missing>),
    #[error("{0}")]
    CutShort(Box<CutShort>),
    #[error("journal {journal:?}: {}", path_and(path, source))]
    Io {
        journal: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal {journal:?}: {message}")]
    Other { journal: String, message: String },
}

/// `PATH: ERROR`, or just `ERROR` when it names the path already (the
/// decoders' errors do: "PATH: gzip data ends unexpectedly at …").
fn path_and(path: &std::path::Path, source: &std::io::Error) -> String {
    let (p, e) = (path.display().to_string(), source.to_string());
    if e.starts_with(&format!("{p}: ")) {
        e
    } else {
        format!("{p}: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_names_the_file_once() {
        let io = |msg: &str| FollowError::Io {
            journal: "p4".into(),
            path: "/p4/journal.1.gz".into(),
            source: std::io::Error::other(msg.to_string()),
        };
        assert_eq!(
            io("/p4/journal.1.gz: gzip data ends unexpectedly at uncompressed offset 7").to_string(),
            "journal \"p4\": /p4/journal.1.gz: gzip data ends unexpectedly at uncompressed offset 7"
        );
        assert_eq!(
            io("Input/output error").to_string(),
            "journal \"p4\": /p4/journal.1.gz: Input/output error"
        );
        assert_eq!(
            io("/p4/journal.1.gzip: other").to_string(),
            "journal \"p4\": /p4/journal.1.gz: /p4/journal.1.gzip: other"
        );
    }

    #[test]
    fn the_way_out_names_the_file_to_resume_in_when_its_name_does_not_say_its_sequence() {
        let pos = |sequence, offset| Position {
            sequence,
            offset,
            line: 1,
        };
        let mut m = Missing {
            journal: "app".into(),
            live: "/logs/app.log".into(),
            from: pos(1, 120),
            to: Some(pos(2, 0)),
            cause: GapCause::Deleted,
            looked_at: Vec::new(),
            state_dir: Some("/state".into()),
            resume_in: Some("/logs/app.log.3".into()),
            gone: Some("journal 4".into()),
            bytes: Some(300),
        };
        let text = m.to_string();
        assert!(
            text.contains("\n  missing: journal 4\n  lost: 300 bytes from sequence 1 offset 120\n"),
            "{text}"
        );
        assert!(text.contains("logdaemon checkpoint set --state-dir /state --journal app --sequence 2 --offset 0 --file /logs/app.log.3\n"), "{text}");
        assert!(!text.contains("--force"), "{text}");
        m.resume_in = None;
        let text = m.to_string();
        assert!(text.contains("logdaemon checkpoint set --state-dir /state --journal app --sequence 2 --offset 0 --force\n"), "{text}");
    }

    #[test]
    fn the_way_out_of_a_cut_file_names_the_rotated_file_after_it() {
        let mut c = CutShort {
            journal: "app".into(),
            path: "/logs/app.log.2.gz".into(),
            source: std::io::Error::other(
                "/logs/app.log.2.gz: gzip data ends unexpectedly at uncompressed offset 7",
            ),
            sequence: 4,
            next: 5,
            resume_in: Some("/logs/app.log.1.gz".into()),
            state_dir: Some("/state".into()),
        };
        let text = c.to_string();
        assert!(text.starts_with("journal \"app\": /logs/app.log.2.gz: gzip data ends unexpectedly at uncompressed offset 7\n"), "{text}");
        assert!(
            text.contains("every entry of sequence 4 after the last one delivered"),
            "{text}"
        );
        assert!(text.contains("logdaemon checkpoint set --state-dir /state --journal app --sequence 5 --offset 0 --file /logs/app.log.1.gz\n"), "{text}");
        c.resume_in = None;
        let text = c.to_string();
        assert!(text.contains("--sequence 5 --offset 0 --force\n"), "{text}");
    }
}
