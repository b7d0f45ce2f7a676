use super::*;

fn corpus_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/p4/integration__dumps__security__ckp.seed")
}

fn run(format: Format, files: Vec<PathBuf>) -> (Vec<u8>, Result<(), DumpError>) {
    let mut out = Vec::new();
    let r = dump(
        &DumpOptions {
            format,
            files,
            progress: false,
        },
        &mut out,
    );
    (out, r)
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn p4_output_has_the_documented_keys_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j");
    std::fs::write(
        &p,
        b"@pv@ 1 @db.counters@ @change@ @1@ \n@pv@ 0 @db.desc@ 2 @a@@b\n\xff@ @@ -3 \n@ex@ 1 2",
    )
    .unwrap();
    let (out, r) = run(Format::P4, vec![p]);
    r.unwrap();
    let text = String::from_utf8(out).unwrap();
    let expected = concat!(
        r#"{"offset":0,"len":35,"line":1,"op":"pv","fields":["1","db.counters","change","1"]}"#, "\n",
        r#"{"offset":35,"len":35,"line":2,"op":"pv","fields":["0","db.desc","2","a@b\n\u{fffd}","","-3"]}"#, "\n",
        r#"{"offset":70,"len":8,"line":4,"op":"ex","fields":["1","2"],"incomplete":true}"#, "\n",
    )
    .replace("\\u{fffd}", "\u{fffd}");
    assert_eq!(text, expected);
}

#[test]
fn strings_are_written_exactly_as_serde_json_writes_them() {
    let mut cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"plain //depot/path/file.c".to_vec(),
        b"quote \" backslash \\ slash /".to_vec(),
        b"\n\r\t\x08\x0c\x00\x01\x1f\x7f".to_vec(),
        "caf\u{e9} \u{2028} \u{1f600}".as_bytes().to_vec(),
        vec![0xff, b'a', 0xc3, 0x28, 0xe2, 0x82],
    ];
    cases.push((0u8..=255).collect());
    for raw in cases {
        let mut mine = Vec::new();
        write_str(&mut mine, &raw).unwrap();
        let theirs = serde_json::to_vec(&String::from_utf8_lossy(&raw)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&mine),
            String::from_utf8_lossy(&theirs),
            "{raw:?}"
        );
    }
    for n in [0u64, 7, 10, 99, 12345, u64::MAX] {
        let mut mine = Vec::new();
        write_u64(&mut mine, n).unwrap();
        assert_eq!(mine, n.to_string().into_bytes());
    }
}

#[test]
fn lines_output_has_no_op_or_fields() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("log");
    std::fs::write(&p, b"S one\n  two\nS three\n").unwrap();
    let re = regex::bytes::Regex::new("^S").unwrap();
    let (out, r) = run(
        Format::Lines {
            record_start: Some(re),
        },
        vec![p],
    );
    r.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"offset\":0,\"len\":12,\"line\":1}\n{\"offset\":12,\"len\":8,\"line\":3}\n"
    );
}

#[test]
fn compressed_files_dump_like_the_plain_file() {
    let plain = std::fs::read(corpus_file()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (expected, r) = run(Format::P4, vec![corpus_file()]);
    r.unwrap();
    assert!(json_lines(&expected).len() > 50);
    let bz = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let xz = {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd::stream::encode_all(&plain[..], 3).unwrap();
    for (name, data) in [
        ("j.gz", gzip(&plain)),
        ("j.bz2", bz),
        ("j.xz", xz),
        ("j.zst", zst),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        let (out, r) = run(Format::P4, vec![p]);
        r.unwrap();
        assert!(
            out == expected,
            "{name} dumps differently from the plain file"
        );
    }
}

#[test]
fn truncated_gzip_names_file_offset_last_record_and_advice() {
    let plain = std::fs::read(corpus_file()).unwrap().repeat(40);
    let gz = gzip(&plain);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("journal.1.gz");
    std::fs::write(&p, &gz[..gz.len() * 2 / 3]).unwrap();
    let (out, r) = run(Format::P4, vec![p.clone()]);
    let e = r.unwrap_err();
    let printed = json_lines(&out);
    assert!(!printed.is_empty(), "records before the damage are printed");
    let last_line = printed.last().unwrap()["line"].as_u64().unwrap();
    let DumpError::Truncated { decode, after } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*after, After::Record { line: last_line });
    let msg = e.to_string();
    let want = format!(
        "{}: gzip data ends unexpectedly at uncompressed offset {} (after record at line {last_line}): the file is truncated or still being written; wait for the compressor to finish or restore the file",
        p.display(),
        decode.offset
    );
    assert_eq!(msg, want);
    // What was printed is exactly a prefix of the plain file's records.
    let mut at = 0u64;
    for rec in &printed {
        assert_eq!(rec["offset"].as_u64().unwrap(), at);
        at += rec["len"].as_u64().unwrap();
    }
    assert!(at <= decode.offset && decode.offset < plain.len() as u64);
}

#[test]
fn corrupt_gzip_says_corrupt_with_offset() {
    let plain = std::fs::read(corpus_file()).unwrap().repeat(40);
    let mut gz = gzip(&plain);
    let mid = gz.len() / 2;
    gz[mid..mid + 32].fill(0xff);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("journal.2.gz");
    std::fs::write(&p, &gz).unwrap();
    let (_, r) = run(Format::P4, vec![p.clone()]);
    let e = r.unwrap_err();
    assert!(matches!(e, DumpError::Corrupt { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: corrupt gzip data at uncompressed offset ",
            p.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("(after record at line "), "{msg}");
    assert!(
        msg.ends_with("the file is damaged; restore it from a backup or the original journal"),
        "{msg}"
    );
}

#[test]
fn bad_paths_name_the_file_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x\n").unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (dir.path().join("missing"), "no such file; check the path"),
        (
            dir.path().to_path_buf(),
            "is a directory, not a journal file",
        ),
        (
            file.join("below-a-file"),
            "a component of the path is not a directory; check the path",
        ),
        // Fails even for root: offset 0 of a process's memory is unmapped.
        (
            PathBuf::from("/proc/self/mem"),
            "cannot read the start of the file (at offset 0)",
        ),
    ];
    for (path, want) in cases {
        let (out, r) = run(Format::P4, vec![path.clone()]);
        let msg = r.unwrap_err().to_string();
        assert!(msg.starts_with(&format!("{}: ", path.display())), "{msg}");
        assert!(msg.contains(want), "{msg}");
        assert!(out.is_empty());
    }
}

#[test]
fn permission_denied_message() {
    // Tests run as root, which may open any file, so the real EACCES path
    // cannot be provoked here; this checks the message built for it.
    let e = DumpError::from_open(CompressError::PermissionDenied {
        path: "/var/j".into(),
    });
    assert_eq!(
        e.to_string(),
        "/var/j: permission denied; run as a user that may read it, or fix its permissions"
    );
}

#[test]
fn earlier_files_stay_printed_when_a_later_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, b"one\ntwo\n").unwrap();
    let (out, r) = run(
        Format::Lines { record_start: None },
        vec![a, dir.path().join("b")],
    );
    assert!(matches!(r, Err(DumpError::NotFound { .. })));
    assert_eq!(json_lines(&out).len(), 2);
}

/// A consumer that went away after `room` bytes.
struct ClosedPipe {
    room: usize,
}

impl Write for ClosedPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::from(io::ErrorKind::BrokenPipe));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn closed_output_ends_quietly_but_other_write_errors_do_not() {
    let opts = DumpOptions {
        format: Format::P4,
        files: vec![corpus_file()],
        progress: false,
    };
    dump(&opts, &mut ClosedPipe { room: 1000 }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, std::fs::read(corpus_file()).unwrap().repeat(20)).unwrap();
    let opts = DumpOptions {
        format: Format::P4,
        files: vec![big],
        progress: false,
    };
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let e = dump(&opts, &mut &full).unwrap_err();
    assert!(matches!(e, DumpError::Write { .. }), "{e:?}");
    assert!(e.to_string().contains("disk full?"), "{e}");
}
