use super::*;
use std::io::Write;

const TEXT: &[u8] = b"@pv@ 0 @db.desc@ 1 @hello@ \n@ex@ 1 2\n";

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// With the content checksum, as the `zstd` tool writes by default.
fn zstd(data: &[u8]) -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(true).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) type Enc = fn(&[u8]) -> Vec<u8>;
pub(crate) const ALL: [(Compression, Enc); 4] = [
    (Compression::Gzip, gzip),
    (Compression::Bzip2, bzip2),
    (Compression::Xz, xz),
    (Compression::Zstd, zstd),
];

pub(crate) fn write_tmp(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// Reads a file whole, reporting a premature end at once.
fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    read_settling(path, Settle::new(std::time::Duration::ZERO))
}

pub(crate) fn read_settling(path: &Path, settle: Settle) -> io::Result<Vec<u8>> {
    let (_, mut r) = open_settling(path, settle).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).map(|_| out)
}

#[test]
fn detects_by_magic_not_name() {
    let dir = tempfile::tempdir().unwrap();
    for (c, enc) in ALL {
        assert_eq!(detect(&enc(TEXT)), c);
        // Misleading name on purpose.
        let p = write_tmp(&dir, "journal.txt", &enc(TEXT));
        let (got, _) = open(&p).unwrap();
        assert_eq!(got, c);
    }
    assert_eq!(detect(TEXT), Compression::None);
    assert_eq!(detect(b""), Compression::None);
    assert_eq!(detect(b"BZh"), Compression::None, "too short to be bzip2");
    assert_eq!(detect(b"BZhx...."), Compression::None);
    let p = write_tmp(&dir, "journal.gz", TEXT);
    assert_eq!(open(&p).unwrap().0, Compression::None);
}

#[test]
fn concatenated_members_read_as_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    for (c, enc) in ALL {
        let mut data = enc(&TEXT[..10]);
        data.extend(enc(&TEXT[10..]));
        let p = write_tmp(&dir, "multi", &data);
        assert_eq!(read_all(&p).unwrap(), TEXT, "{c}");
    }
}

#[test]
fn short_and_empty_plain_files() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_all(&write_tmp(&dir, "empty", b"")).unwrap(), b"");
    assert_eq!(read_all(&write_tmp(&dir, "two", b"ab")).unwrap(), b"ab");
    let o = open_file(&write_tmp(&dir, "text", TEXT)).unwrap();
    assert_eq!(o.file_len, Some(TEXT.len() as u64));
    let mut r = o.reader;
    io::copy(&mut r, &mut io::sink()).unwrap();
    assert_eq!(o.consumed.load(Ordering::Relaxed), TEXT.len() as u64);
}

#[test]
fn truncated_streams_are_reported_as_truncated_with_offset() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("@ex@ {i} 1\n").into_bytes())
        .collect();
    for (c, enc) in ALL {
        let full = enc(&big);
        let p = write_tmp(&dir, "cut", &full[..full.len() / 2]);
        let e = read_all(&p)
            .err()
            .unwrap_or_else(|| panic!("{c}: damage not detected"));
        let d = DecodeError::find(&e).unwrap_or_else(|| panic!("{c}: {e}"));
        assert_eq!(d.kind, DecodeErrorKind::Truncated, "{c}: {d}");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(d.compression, c);
        assert!(
            d.offset > 0 && d.offset < big.len() as u64,
            "{c}: offset {}",
            d.offset
        );
        let msg = d.to_string();
        assert!(
            msg.starts_with(&format!(
                "{}: {c} data ends unexpectedly at uncompressed offset {}",
                p.display(),
                d.offset
            )),
            "{msg}"
        );
    }
}

#[test]
fn corrupt_streams_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..50_000u32)
        .flat_map(|i| format!("@ex@ {i} 1\n").into_bytes())
        .collect();
    for (c, enc) in ALL {
        let mut data = enc(&big);
        let mid = data.len() / 2;
        for b in &mut data[mid..mid + 64] {
            *b ^= 0x5a;
        }
        let p = write_tmp(&dir, "bad", &data);
        let e = read_all(&p)
            .err()
            .unwrap_or_else(|| panic!("{c}: damage not detected"));
        let d = DecodeError::find(&e).unwrap_or_else(|| panic!("{c}: {e}"));
        assert_eq!(d.kind, DecodeErrorKind::Corrupt, "{c}: {d}");
        assert!(
            d.to_string().contains(&format!(
                "corrupt {c} data at uncompressed offset {}",
                d.offset
            )),
            "{d}"
        );
    }
}

#[test]
fn open_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(matches!(
        open(&missing),
        Err(CompressError::NotFound { .. })
    ));
    assert!(matches!(
        open(dir.path()),
        Err(CompressError::IsDirectory { .. })
    ));
    let file = write_tmp(&dir, "f", TEXT);
    let under_file = file.join("x");
    let e = open(&under_file).err().unwrap();
    assert!(matches!(e, CompressError::NotADirectory { .. }), "{e:?}");
    assert_eq!(e.path(), under_file);
    assert!(e.to_string().starts_with(&under_file.display().to_string()));
}

#[test]
fn unreadable_file_fails_at_open_even_for_root() {
    // /proc/self/mem cannot be read at offset 0 (unmapped), even by root.
    let e = open(Path::new("/proc/self/mem"))
        .err()
        .expect("reading /proc/self/mem fails");
    assert!(matches!(e, CompressError::ReadMagic { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("/proc/self/mem: cannot read the first bytes: "),
        "{e}"
    );
}

/// A file that fails with EIO after some bytes. No real file system
/// fails on demand, so this stands in for a disk error.
struct FailsAfter(usize);

impl Read for FailsAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let n = self.0.min(buf.len());
        buf[..n].fill(b'x');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn read_errors_of_the_file_are_io_not_corrupt() {
    for c in [Compression::None, Compression::Gzip] {
        let consumed = Arc::new(AtomicU64::new(0));
        let src = Source {
            inner: FailsAfter(100),
            consumed: consumed.clone(),
        };
        let mut r: Box<dyn Read> = match c {
            Compression::None => Box::new(Annotated::new(src, "/j".into(), c)),
            _ => {
                let gz = gzip(TEXT);
                let src = Source {
                    inner: io::Cursor::new(gz).chain(FailsAfter(0)),
                    consumed: consumed.clone(),
                };
                Box::new(Annotated::new(
                    flate2::read::MultiGzDecoder::new(src),
                    "/j".into(),
                    c,
                ))
            }
        };
        let e = io::copy(&mut r, &mut io::sink()).expect_err("error");
        let d = DecodeError::find(&e).expect("annotated");
        assert_eq!(d.kind, DecodeErrorKind::Io, "{c}: {d}");
        assert!(d.to_string().starts_with("/j: read error"), "{d}");
    }
}

/// [`open_again`] reads the file opened, wherever a rotation moved it and
/// whatever now has its name; without `/proc` it still reads it whole,
/// whatever was read through the descriptor before.
#[test]
fn a_file_read_again_is_the_one_opened_even_renamed_and_without_proc() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_tmp(&dir, "app.log.1.gz", &gzip(TEXT));
    let mut file = File::open(&p).unwrap();
    std::fs::rename(&p, dir.path().join("app.log.2.gz")).unwrap();
    std::fs::write(&p, gzip(b"another file\n")).unwrap();
    let (c, mut r) = open_again(&file, &p).unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).unwrap();
    assert_eq!((c, got.as_slice()), (Compression::Gzip, TEXT));
    // No /proc: a rewound duplicate, even after the descriptor was read.
    let mut head = [0u8; 4];
    file.read_exact(&mut head).unwrap();
    let again = reopen_in(&file, &dir.path().join("no-proc")).unwrap();
    let o = read_opened(again, &p).unwrap();
    let mut got = Vec::new();
    { o }.reader.read_to_end(&mut got).unwrap();
    assert_eq!(got, TEXT);
}
