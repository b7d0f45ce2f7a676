//! Why a replay stopped. `Display` is the whole operator-facing message:
//! the file, the position and what to do.

use std::path::PathBuf;

use super::family::FamilyError;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no journal {name:?} in {}; the journals there are: {known}", config.display())]
    NoJournal {
        name: String,
        config: PathBuf,
        known: String,
    },
    #[error(transparent)]
    Family(#[from] FamilyError),
    #[error("{0}")]
    Open(#[from] crate::compress::CompressError),
    #[error("journal {journal:?} has no `timestamp` setting, so its entries have no time; add one (see docs/replay.md) or select by position with --from / --to")]
    NoTimestamp { journal: String },
    #[error("{what}: {message}")]
    Range { what: &'static str, message: String },
    #[error("{}: offset {offset} of sequence {sequence} is inside the record at offset {start} (ending at {end}); use a record boundary such as {start} or {end}", path.display())]
    OffBoundary {
        path: PathBuf,
        sequence: u64,
        offset: u64,
        start: u64,
        end: u64,
    },
    #[error("{}: offset {offset} is past the end of sequence {sequence} ({len} bytes); use an offset up to {len}", path.display())]
    PastEnd {
        path: PathBuf,
        sequence: u64,
        offset: u64,
        len: u64,
    },
    #[error("no sequence {sequence} in the history of journal {journal:?}: the files on disk hold sequences {oldest} to {newest}")]
    NoSequence {
        journal: String,
        sequence: u64,
        oldest: u64,
        newest: u64,
    },
    #[error("{decode}: the file is damaged or was cut short; replay stopped here, after the entries already written; restore the file or replay from the next one (--from {next})")]
    Corrupt {
        decode: crate::compress::DecodeError,
        next: u64,
    },
    #[error("{}: cannot read at offset {offset}: {source}; check the disk and the file", path.display())]
    Read {
        path: PathBuf,
        offset: u64,
        source: std::io::Error,
    },
    #[error("the output is {}, one of the journal's own files: an output may never be an input; write somewhere else", path.display())]
    OutputIsInput { path: PathBuf },
    #[error("cannot write the output: {source}")]
    Write { source: std::io::Error },
    #[error("listener {listener:?}: {message}")]
    Listener { listener: String, message: String },
    #[error("replay state {}: {source}", path.display())]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ReplayError {
    /// A read error of `path` at `offset`, a decoding error when the
    /// compressed data is at fault.
    pub(crate) fn read(path: &std::path::Path, offset: u64, next: u64, e: std::io::Error) -> Self {
        if crate::compress::DecodeError::find(&e).is_some() {
            let decode = e
                .into_inner()
                .and_then(|b| b.downcast::<crate::compress::DecodeError>().ok())
                .expect("found above");
            return ReplayError::Corrupt {
                decode: *decode,
                next,
            };
        }
        ReplayError::Read {
            path: path.to_path_buf(),
            offset,
            source: e,
        }
    }
}
