use super::*;

#[test]
fn ring_tail_matches_direct_hash() {
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut r = TailRing::new(8192, 0);
    for c in data.chunks(777) {
        r.feed(c);
    }
    let off = 19_000u64;
    let (len, h) = r.tail(off).unwrap();
    assert_eq!(len, TAIL_WINDOW);
    assert_eq!(
        h,
        Hash::of(&data[(off - TAIL_WINDOW) as usize..off as usize])
    );
    assert!(r.tail(5_000).is_none(), "window no longer held");
    // Near the start of what is held: a shorter window.
    let start = 20_000 - 8192;
    let (len, h) = r.tail(start + 100).unwrap();
    assert_eq!(
        (len, h),
        (100, Hash::of(&data[start as usize..start as usize + 100]))
    );
    let mut small = TailRing::new(8192, 0);
    small.feed(&data[..100]);
    assert_eq!(small.tail(60).unwrap(), (60, Hash::of(&data[..60])));
}

#[test]
fn open_matching_proves_content_not_name() {
    let d = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..10_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let a = d.path().join("a");
    std::fs::write(&a, &data).unwrap();
    let f = File::open(&a).unwrap();
    let (head_len, head_hash) = head_of(&f, HEAD_WINDOW).unwrap();
    let off = 50_000u64;
    let (tail_len, tail_hash) = tail_of(&f, off).unwrap().unwrap();
    let id = Identity {
        path: String::new(),
        dev: 0,
        inode: 0,
        head_len,
        head_hash,
        tail_len,
        tail_hash,
    };
    let mut o = open_matching(&a, &id, off).unwrap();
    let mut rest = Vec::new();
    o.source.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, &data[off as usize..]);
    // A gzip copy matches too, positioned at the uncompressed offset.
    let gz = d.path().join("a.gz");
    let mut enc =
        flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &data).unwrap();
    enc.finish().unwrap();
    let mut o = open_matching(&gz, &id, off).unwrap();
    let mut rest = Vec::new();
    o.source.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, &data[off as usize..]);
    // Same head, different bytes before the offset: refused.
    let mut other = data.clone();
    other[(off - 10) as usize] = b'X';
    let b = d.path().join("b");
    std::fs::write(&b, &other).unwrap();
    assert!(open_matching(&b, &id, off)
        .err()
        .unwrap()
        .why
        .contains("tail"));
    // Too short: refused.
    std::fs::write(&b, &data[..40_000]).unwrap();
    assert!(open_matching(&b, &id, off)
        .err()
        .unwrap()
        .why
        .contains("only"));
}

/// A rotation shifts names between two opens (`app.log.1.gz` becomes
/// `app.log.2.gz`, a new `app.log.1.gz` appears, or none yet): the file
/// opened is the file decoded, through its descriptor, never by its name
/// again.
#[test]
fn a_compressed_file_renamed_after_its_open_is_still_the_one_read() {
    let d = tempfile::tempdir().unwrap();
    let lines = |w: &str| -> Vec<u8> {
        (0..5_000u32)
            .flat_map(|i| format!("{w} {i}\n").into_bytes())
            .collect()
    };
    let (old, new) = (lines("old"), lines("new"));
    let gz = crate::compress::tests::gzip;
    let p = d.path().join("app.log.1.gz");
    let moved = d.path().join("app.log.2.gz");
    let off = 20_000u64;
    std::fs::write(&p, gz(&old)).unwrap();
    let id = compute(&p, off).unwrap();
    let rest = |mut o: Opened| {
        let mut v = Vec::new();
        o.source.read_to_end(&mut v).unwrap();
        v
    };
    // Renamed away, nothing under the name yet.
    let f = File::open(&p).unwrap();
    std::fs::rename(&p, &moved).unwrap();
    let o = open_unverified_file(f, &p, off).expect("read through the descriptor");
    assert_eq!(
        o.key,
        Some(FileKey::of(&std::fs::metadata(&moved).unwrap()))
    );
    assert_eq!(rest(o), &old[off as usize..]);
    // Renamed away and another file given the name.
    for matching in [false, true] {
        std::fs::rename(&moved, &p).unwrap();
        let f = File::open(&p).unwrap();
        std::fs::rename(&p, &moved).unwrap();
        std::fs::write(&p, gz(&new)).unwrap();
        let o = if matching {
            open_matching_file(f, &p, &id, off).expect("the identity of the file opened")
        } else {
            open_unverified_file(f, &p, off).unwrap()
        };
        assert_eq!(rest(o), &old[off as usize..], "matching: {matching}");
    }
}

/// A compressed file opened without proof starts at its offset, within
/// its first bytes or past them.
#[test]
fn a_compressed_file_opened_unverified_starts_at_its_offset() {
    let d = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..5_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let p = d.path().join("app.log.1.gz");
    std::fs::write(&p, crate::compress::tests::gzip(&data)).unwrap();
    for off in [
        0u64,
        100,
        HEAD_WINDOW,
        HEAD_WINDOW + 1,
        30_000,
        data.len() as u64,
    ] {
        let mut o = open_unverified(&p, off).unwrap();
        let mut rest = Vec::new();
        o.source.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, &data[off as usize..], "offset {off}");
    }
}
