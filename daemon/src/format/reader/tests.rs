//! The record reader on streams chunked every way: offsets, lines,
//! incomplete tails, growth and shrinking, pinned records and hand-offs.

use super::*;

/// Hands out the data in the given chunk sizes, cycling.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    i: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()];
        self.i += 1;
        let n = want.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn offsets_lines_and_incomplete_tail() {
    let data = b"@pv@ 0 @t@ @a\nb@ \n@ex@ 1 2\n@pv@ 0 @t@ @cut";
    let mut r = RecordReader::new(&data[..], &Format::P4, 100, 7);
    let a = r.next_record().unwrap().unwrap();
    assert_eq!(
        (a.offset, a.line, a.lines, a.incomplete),
        (100, 7, 2, false)
    );
    assert_eq!(a.bytes, b"@pv@ 0 @t@ @a\nb@ \n");
    let b = r.next_record().unwrap().unwrap();
    assert_eq!((b.offset, b.line, b.lines), (118, 9, 1));
    let c = r.next_record().unwrap().unwrap();
    assert_eq!(
        (c.offset, c.line, c.lines, c.incomplete),
        (127, 10, 1, true)
    );
    assert_eq!(c.bytes, b"@pv@ 0 @t@ @cut");
    assert!(r.next_record().unwrap().is_none());
    assert_eq!(r.offset(), data.len() as u64 + 100);
}

#[test]
fn live_stream_waits_and_resumes() {
    // A pipe-like source whose contents grow between calls.
    let shared = std::rc::Rc::new(std::cell::RefCell::new(Vec::<u8>::new()));
    struct Growing(std::rc::Rc<std::cell::RefCell<Vec<u8>>>, usize);
    impl Read for Growing {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let d = self.0.borrow();
            let n = (d.len() - self.1).min(out.len());
            out[..n].copy_from_slice(&d[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }
    let mut r = RecordReader::new(Growing(shared.clone(), 0), &Format::P4, 0, 1);
    shared.borrow_mut().extend_from_slice(b"@pv@ 0 @t@ @open\n");
    assert!(r.next_available().unwrap().is_none());
    assert_eq!(r.buffered(), 17);
    shared.borrow_mut().extend_from_slice(b"more@ \n@ex@");
    let rec = r.next_available().unwrap().unwrap();
    assert_eq!(rec.bytes, b"@pv@ 0 @t@ @open\nmore@ \n");
    assert!(r.next_available().unwrap().is_none());
    assert_eq!((r.offset(), r.line(), r.buffered()), (24, 3, 4));
    let tail = r.finish().unwrap().unwrap();
    assert_eq!(
        (tail.bytes, tail.incomplete, tail.offset),
        (&b"@ex@"[..], true, 24)
    );
    assert!(r.finish().unwrap().is_none());
}

#[test]
fn huge_record_grows_then_shrinks() {
    let mut data = b"@pv@ 0 @db.desc@ 1 @".to_vec();
    let body = 64 * 1024 * 1024;
    data.resize(data.len() + body, b'x');
    data.extend_from_slice(b"\n@ \n");
    let small = b"@ex@ 1 2\n".repeat(100_000);
    data.extend_from_slice(&small);
    let mut r = RecordReader::new(
        Chunked {
            data: &data,
            sizes: vec![1 << 20, 7, 300_000],
            i: 0,
        },
        &Format::P4,
        0,
        1,
    );
    let big = r.next_record().unwrap().unwrap();
    assert_eq!(big.bytes.len(), body + 24);
    assert_eq!(big.lines, 2);
    assert!(r.capacity() >= body);
    let mut n = 0;
    while let Some(rec) = r.next_record().unwrap() {
        assert_eq!(rec.bytes, b"@ex@ 1 2\n");
        n += 1;
    }
    assert_eq!(n, 100_000);
    assert_eq!(
        r.capacity(),
        INITIAL,
        "the buffer shrinks back after the huge record"
    );
}

#[test]
fn memory_does_not_grow_with_stream_size() {
    let data = b"line of a plain log\n".repeat(200_000);
    let mut r = RecordReader::new(
        Chunked {
            data: &data,
            sizes: vec![65_536, 1, 12_345],
            i: 0,
        },
        &Format::Lines { record_start: None },
        0,
        1,
    );
    let mut n = 0u64;
    while let Some(rec) = r.next_record().unwrap() {
        assert_eq!(rec.line, n + 1);
        n += 1;
    }
    assert_eq!(n, 200_000);
    assert!(r.capacity() <= INITIAL, "{}", r.capacity());
}

/// Records of varied sizes (one far larger than the buffer) with their
/// expected bytes.
fn varied() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut recs = Vec::new();
    for i in 0..40_000usize {
        let body = "x".repeat(i * 7 % 300);
        recs.push(format!("@pv@ 0 @db.t@ {i} @{body}@ \n").into_bytes());
        if i == 20_000 {
            recs.push(format!("@pv@ 0 @db.desc@ @{}\n@ \n", "y".repeat(3 * INITIAL)).into_bytes());
        }
    }
    (recs.concat(), recs)
}

#[test]
fn pinned_records_stay_through_compaction_and_growth() {
    let (data, recs) = varied();
    let mut r = RecordReader::new(
        Chunked {
            data: &data,
            sizes: vec![50_000, 3, 200_000],
            i: 0,
        },
        &Format::P4,
        0,
        1,
    );
    let mut i = 0;
    while i < recs.len() {
        r.pin();
        let first = i;
        // Pin a few hundred records (the huge one among them), reading
        // as a finite stream, which compacts and grows as it needs.
        while i < recs.len() && i - first < 700 {
            assert_eq!(
                r.pinned_len(),
                recs[first..i].iter().map(Vec::len).sum::<usize>()
            );
            let rec = r.next_record().unwrap().unwrap();
            assert_eq!(rec.bytes, &recs[i][..]);
            i += 1;
        }
        assert_eq!(r.pinned(), &recs[first..i].concat()[..]);
        r.unpin();
        assert_eq!(r.pinned_len(), 0);
    }
    assert!(r.next_record().unwrap().is_none());
}

#[test]
fn a_full_buffer_of_pinned_records_is_handed_off_not_moved() {
    let (data, recs) = varied();
    let mut r = RecordReader::new(
        Chunked {
            data: &data,
            sizes: vec![65_536, 1, 300_000],
            i: 0,
        },
        &Format::P4,
        0,
        1,
    );
    let (mut got, mut spare, mut full, mut i, mut since) = (Vec::new(), Vec::new(), 0, 0, 0);
    loop {
        r.pin();
        assert_eq!(r.pinned_len(), since);
        let next = r.next_available().unwrap().map(|rec| rec.bytes.to_vec());
        match next {
            Some(bytes) => {
                assert_eq!(bytes, recs[i]);
                since += bytes.len();
                i += 1;
            }
            None if r.is_full() => {
                full += 1;
                let want = r.pinned().to_vec();
                let addr = r.pinned().as_ptr();
                let (buf, pinned) = r.hand_off(std::mem::take(&mut spare));
                assert_eq!(&buf[pinned.clone()], &want[..]);
                assert_eq!(
                    buf[pinned.clone()].as_ptr(),
                    addr,
                    "handed off where they were read"
                );
                got.extend_from_slice(&buf[pinned]);
                spare = buf;
                since = 0;
            }
            None => break,
        }
    }
    got.extend_from_slice(r.pinned());
    assert_eq!(i, recs.len());
    assert_eq!(got, data);
    assert!(full > 10, "{full} hand-offs");
    assert_eq!(
        r.capacity(),
        INITIAL,
        "back to the resting size after the huge record"
    );
}
