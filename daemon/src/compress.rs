//! Decompression by magic bytes.
//!
//! Rotated journals are often compressed (`logrotate` with `compress`, p4d
//! `-z`), and names lie (`journal.1` may be gzip, `x.gz` may be plain), so the
//! format is taken from the first bytes of the file, never from its name.
//! Concatenated members/streams/frames are read as one stream, as the command
//! line tools do.
//!
//! Decoders fail with terse messages ("corrupt deflate stream") and no
//! position. [`open`] wraps every decoder in a reader that counts uncompressed
//! bytes, so a failure becomes a [`DecodeError`] naming the file, the
//! compression, the uncompressed offset, and whether the data is cut off
//! (truncated, maybe still being written) or damaged (corrupt).
//!
//! A compressor writes `X.gz` while `X` still exists and removes `X` only
//! when done, so a rotated journal's compressed file can be read while it
//! is still being written: it ends too soon. That is not damage. The
//! reader from [`open`] waits while such a file grows and reads on (see
//! [`Settle`]); only a file that ends too soon and has not changed for the
//! configured wait is reported truncated, with what to do. [`open_file`]
//! (for `dump`) reports it at once.

mod settle;

use settle::Settling;
pub use settle::{set_truncated_wait, truncated_wait, Settle, DEFAULT_TRUNCATED_WAIT};

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A compression format, as detected from magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    /// Lower-case name for messages: `plain`, `gzip`, `bzip2`, `xz`, `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Bytes [`detect`] needs to recognise every format.
pub const MAGIC_LEN: usize = 6;

/// The compression of a stream starting with `magic` (give at least
/// [`MAGIC_LEN`] bytes when the stream has them). Anything unrecognised is
/// [`Compression::None`].
pub fn detect(magic: &[u8]) -> Compression {
    match magic {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => Compression::Bzip2,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Compression::Xz,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Why a file could not be opened for reading.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error("{}: no such file", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: is a directory", path.display())]
    IsDirectory { path: PathBuf },
    /// A FIFO, device or socket: reading it could block for ever.
    #[error("{}: is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{}: a component of the path is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{}: permission denied", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("{}: cannot open: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    /// Reading the first bytes (to detect the compression) failed.
    #[error("{}: cannot read the first bytes: {source}", path.display())]
    ReadMagic { path: PathBuf, source: io::Error },
    /// The decoder refused the stream header.
    #[error("{}: cannot start the {compression} decoder: {source}", path.display())]
    Decoder {
        path: PathBuf,
        compression: Compression,
        source: io::Error,
    },
}

impl CompressError {
    /// The path that could not be opened.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        match self {
            CompressError::NotFound { path }
            | CompressError::IsDirectory { path }
            | CompressError::NotRegular { path, .. }
            | CompressError::NotADirectory { path }
            | CompressError::PermissionDenied { path }
            | CompressError::Open { path, .. }
            | CompressError::ReadMagic { path, .. }
            | CompressError::Decoder { path, .. } => path,
        }
    }

    fn from_open(path: &Path, e: io::Error) -> Self {
        let path = path.to_path_buf();
        match e.kind() {
            io::ErrorKind::NotFound => CompressError::NotFound { path },
            io::ErrorKind::PermissionDenied => CompressError::PermissionDenied { path },
            io::ErrorKind::IsADirectory => CompressError::IsDirectory { path },
            io::ErrorKind::NotADirectory => CompressError::NotADirectory { path },
            _ => CompressError::Open { path, source: e },
        }
    }
}

/// What went wrong while reading a (decompressed) stream, and where. It
/// travels inside the [`io::Error`] returned by the reader from [`open`];
/// get it back with [`DecodeError::find`].
#[derive(Debug)]
pub struct DecodeError {
    pub path: PathBuf,
    pub compression: Compression,
    /// Uncompressed bytes successfully returned before the failure.
    pub offset: u64,
    pub kind: DecodeErrorKind,
    /// The underlying error's text.
    pub detail: String,
    /// A truncated file that stopped changing: for how long it was
    /// watched unchanged before it was taken as truncated for good.
    pub settled: Option<std::time::Duration>,
}

/// The class of a [`DecodeError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The compressed data ends before the stream does.
    Truncated,
    /// The compressed data is damaged.
    Corrupt,
    /// Reading the file itself failed (I/O error from the file system).
    Io,
}

impl DecodeError {
    /// The `DecodeError` carried by an error from a reader made by [`open`].
    pub fn find(e: &io::Error) -> Option<&DecodeError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<DecodeError>())
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match (self.kind, self.compression) {
            (DecodeErrorKind::Io, Compression::None) => {
                write!(f, "{p}: read error at offset {}: {}", self.offset, self.detail)
            }
            (DecodeErrorKind::Io, c) => {
                write!(f, "{p}: read error in {c} data at uncompressed offset {}: {}", self.offset, self.detail)
            }
            (DecodeErrorKind::Truncated, c) if self.settled.is_some() => write!(
                f,
                "{p}: {c} data ends unexpectedly at uncompressed offset {}{}: the file is truncated (a compressor that \
                 stopped half-way, or a partial copy); restore the complete file (or the uncompressed one) under this \
                 name, or move past its end with `logdaemon checkpoint set`",
                self.offset,
                format_args!(" (unchanged for {} s)", self.settled.unwrap_or_default().as_secs())
            ),
            (DecodeErrorKind::Truncated, c) => {
                write!(f, "{p}: {c} data ends unexpectedly at uncompressed offset {}", self.offset)
            }
            (DecodeErrorKind::Corrupt, c) => {
                write!(f, "{p}: corrupt {c} data at uncompressed offset {}: {}", self.offset, self.detail)
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// An error of the file itself (not of the decoder), marked so that it is
/// not mistaken for corrupt data after passing through a decoder.
#[derive(Debug)]
struct SourceError(io::Error);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {}

/// The file under the decoder: counts compressed bytes and marks its errors.
struct Source<R> {
    inner: R,
    consumed: Arc<AtomicU64>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.consumed.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(io::Error::new(e.kind(), SourceError(e))),
        }
    }
}

/// Counts uncompressed bytes and turns errors into [`DecodeError`]s.
pub struct Annotated<R> {
    inner: R,
    path: PathBuf,
    compression: Compression,
    offset: u64,
}

impl<R: Read> Annotated<R> {
    pub fn new(inner: R, path: PathBuf, compression: Compression) -> Self {
        Annotated {
            inner,
            path,
            compression,
            offset: 0,
        }
    }

    fn annotate(&self, e: io::Error) -> io::Error {
        if DecodeError::find(&e).is_some() {
            return e;
        }
        let io_kind = e.kind();
        let (kind, detail) = match e.get_ref().and_then(|i| i.downcast_ref::<SourceError>()) {
            Some(src) => (DecodeErrorKind::Io, src.0.to_string()),
            None if io_kind == io::ErrorKind::UnexpectedEof => {
                (DecodeErrorKind::Truncated, e.to_string())
            }
            None if self.compression == Compression::None => (DecodeErrorKind::Io, e.to_string()),
            None => (DecodeErrorKind::Corrupt, e.to_string()),
        };
        let out_kind = match kind {
            DecodeErrorKind::Truncated => io::ErrorKind::UnexpectedEof,
            DecodeErrorKind::Corrupt => io::ErrorKind::InvalidData,
            DecodeErrorKind::Io => io_kind,
        };
        io::Error::new(
            out_kind,
            DecodeError {
                path: self.path.clone(),
                compression: self.compression,
                offset: self.offset,
                kind,
                detail,
                settled: None,
            },
        )
    }
}

impl<R: Read> Read for Annotated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.annotate(e)),
            }
        }
    }
}

/// An opened, possibly compressed file.
pub struct Opened {
    pub compression: Compression,
    /// The uncompressed bytes; errors carry a [`DecodeError`].
    pub reader: Box<dyn Read + Send>,
    /// Size of the file on disk (compressed), if it is a regular file.
    pub file_len: Option<u64>,
    /// Bytes read from the file so far (compressed), for progress display.
    pub consumed: Arc<AtomicU64>,
}

/// Opens `path`, detects its compression from the magic bytes and returns a
/// reader of the uncompressed bytes. Errors while reading carry a
/// [`DecodeError`] (see [`DecodeError::find`]). A compressed file that
/// ends too soon is waited for while it is being written ([`Settle`], with
/// the process-wide wait of [`truncated_wait`]).
pub fn open(path: &Path) -> Result<(Compression, Box<dyn Read + Send>), CompressError> {
    open_settling(path, Settle::new(truncated_wait()))
}

/// Like [`open`], with an explicit [`Settle`] policy.
pub fn open_settling(
    path: &Path,
    settle: Settle,
) -> Result<(Compression, Box<dyn Read + Send>), CompressError> {
    let file = open_nonblocking(path).map_err(|e| CompressError::from_open(path, e))?;
    settling(file, path, settle)
}

/// Reads the file `file` is open on again from its start, like [`open`],
/// wherever it is now: through a description of its own (no offset shared
/// with `file`), not by `path`, which a rotation may have renamed away or
/// given to another file since `file` was opened. `path` names it in
/// errors.
pub fn open_again(
    file: &File,
    path: &Path,
) -> Result<(Compression, Box<dyn Read + Send>), CompressError> {
    let again = reopen(file).map_err(|e| CompressError::from_open(path, e))?;
    settling(again, path, Settle::new(truncated_wait()))
}

/// The file `file` is open on, to be read again from its start: a new
/// description of it found through `/proc/self/fd` (so after a rename or
/// an unlink too), opened as [`open_nonblocking`] does so that a FIFO is
/// refused, not waited on.
///
/// Where `/proc` is not mounted (a bare chroot), a duplicate of `file`
/// rewound to its start instead: it shares its offset with `file` and
/// every other duplicate, so such readers must be used one after the
/// other, each from its start, as every caller here does.
pub(crate) fn reopen(file: &File) -> io::Result<File> {
    reopen_in(file, Path::new("/proc/self/fd"))
}

fn reopen_in(file: &File, fd_dir: &Path) -> io::Result<File> {
    use std::io::{Seek, SeekFrom};
    use std::os::fd::AsRawFd;
    match open_nonblocking(&fd_dir.join(file.as_raw_fd().to_string())) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && !fd_dir.exists() => {
            let mut again = file.try_clone()?;
            again.seek(SeekFrom::Start(0))?;
            Ok(again)
        }
        r => r,
    }
}

/// The reader of [`open_settling`] for a file already open: the watched
/// file is the one read (one open of the name, not two a rename could fall
/// between).
fn settling(
    file: File,
    path: &Path,
    settle: Settle,
) -> Result<(Compression, Box<dyn Read + Send>), CompressError> {
    let watch = file
        .try_clone()
        .map_err(|e| CompressError::from_open(path, e))?;
    let o = read_opened(file, path)?;
    if o.compression == Compression::None || settle.wait.is_zero() {
        return Ok((o.compression, o.reader));
    }
    let reader = Settling {
        path: path.to_path_buf(),
        watch,
        inner: o.reader,
        offset: 0,
        settle,
    };
    Ok((o.compression, Box::new(reader)))
}

/// Like [`open`], also giving the file size and a counter of bytes read from
/// the file.
pub fn open_file(path: &Path) -> Result<Opened, CompressError> {
    let file = open_nonblocking(path).map_err(|e| CompressError::from_open(path, e))?;
    read_opened(file, path)
}

/// Opens for reading without waiting for a writer: `open` of a FIFO blocks
/// until one comes (signals included), so a FIFO where a journal should be
/// is opened at once and then refused by [`read_opened`] as not a regular
/// file. On a regular file the flag changes nothing.
pub(crate) fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Like [`open_file`], for a file already open; `path` names it in errors.
pub(crate) fn read_opened(mut file: File, path: &Path) -> Result<Opened, CompressError> {
    let meta = file
        .metadata()
        .map_err(|e| CompressError::from_open(path, e))?;
    if meta.is_dir() {
        return Err(CompressError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    if let Some(kind) = logdaemon_sdk::trust::kind_of(meta.file_type()) {
        return Err(CompressError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    let file_len = meta.is_file().then_some(meta.len());
    let mut magic = [0u8; MAGIC_LEN];
    let mut got = 0;
    while got < MAGIC_LEN {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(CompressError::ReadMagic {
                    path: path.to_path_buf(),
                    source: e,
                })
            }
        }
    }
    let compression = detect(&magic[..got]);
    let consumed = Arc::new(AtomicU64::new(0));
    let source = Source {
        inner: io::Cursor::new(magic[..got].to_vec()).chain(file),
        consumed: consumed.clone(),
    };
    let p = path.to_path_buf();
    let reader: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(Annotated::new(source, p, compression)),
        Compression::Gzip => Box::new(Annotated::new(
            flate2::read::MultiGzDecoder::new(source),
            p,
            compression,
        )),
        Compression::Bzip2 => Box::new(Annotated::new(
            bzip2::read::MultiBzDecoder::new(source),
            p,
            compression,
        )),
        Compression::Xz => Box::new(Annotated::new(
            xz2::read::XzDecoder::new_multi_decoder(source),
            p,
            compression,
        )),
        Compression::Zstd => {
            let d =
                zstd::stream::read::Decoder::new(source).map_err(|e| CompressError::Decoder {
                    path: path.to_path_buf(),
                    compression,
                    source: e,
                })?;
            Box::new(Annotated::new(d, p, compression))
        }
    };
    Ok(Opened {
        compression,
        reader,
        file_len,
        consumed,
    })
}

#[cfg(test)]
pub(crate) mod tests;
