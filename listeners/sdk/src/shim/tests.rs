//! The shims driven as a host drives them: panics, strides, runs.

use super::*;
use crate::testing::Batch;
use crate::Entry;

/// A panic payload whose destructor panics again.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("the payload's destructor panics");
    }
}

/// Panics with [`PanicOnDrop`] in `listen`; counts what it is given otherwise.
struct Bomb {
    seen: Vec<Vec<u8>>,
    explode: bool,
}

impl Listener for Bomb {
    fn open(_: &OpenContext<'_>) -> Result<Self, Failure> {
        Ok(Bomb {
            seen: Vec::new(),
            explode: true,
        })
    }
    fn listen(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure> {
        if self.explode {
            std::panic::panic_any(PanicOnDrop);
        }
        self.seen.extend(entries.iter().map(|e| e.raw().to_vec()));
        Ok(Ack::All)
    }
}

fn outcome(buf: &mut [u8]) -> Outcome {
    Outcome {
        struct_size: Outcome::SIZE,
        ack: RawPosition::default(),
        msg: buf.as_mut_ptr(),
        msg_cap: buf.len(),
        msg_len: 0,
    }
}

#[test]
fn a_panic_whose_payload_panics_when_dropped_returns_fatal_without_unwinding() {
    let inst = Box::into_raw(Box::new(Bomb {
        seen: Vec::new(),
        explode: true,
    })) as *mut c_void;
    let mut buf = [0u8; 128];
    let mut o = outcome(&mut buf);
    // SAFETY: `inst` is a boxed `Bomb`; no entries; `o` is valid.
    let st = unsafe { listen::<Bomb>(inst, std::ptr::null(), 0, &mut o) };
    assert_eq!(st, Status::Fatal as u32);
    assert_eq!(o.ack, abi::NO_ACK);
    assert_eq!(&buf[..o.msg_len], b"listener panicked");
    // SAFETY: `inst` came from the box above and is not used again.
    unsafe { close::<Bomb>(inst) };
}

/// Panics in `check`.
struct CheckBomb;

impl Listener for CheckBomb {
    fn open(_: &OpenContext<'_>) -> Result<Self, Failure> {
        Ok(CheckBomb)
    }
    fn check(_: &OpenContext<'_>) -> Result<(), Failure> {
        panic!("check exploded")
    }
    fn listen(&mut self, _: &[Entry<'_>]) -> Result<Ack, Failure> {
        Ok(Ack::All)
    }
}

fn args() -> OpenArgs {
    let s = Bytes::from_static(b"x");
    OpenArgs {
        struct_size: std::mem::size_of::<OpenArgs>() as u32,
        listener: s,
        journal: s,
        format: Bytes::from_static(b"p4"),
        journal_path: Bytes::from_static(b"/j"),
        config_toml: Bytes::EMPTY,
        config_dir: Bytes::from_static(b"/"),
        state_dir: Bytes::from_static(b"/s"),
        cursor: RawPosition::default(),
        host: std::ptr::null(),
    }
}

#[test]
fn a_panicking_check_comes_back_as_fatal_with_its_message() {
    let a = args();
    let mut buf = [0u8; 128];
    let mut o = outcome(&mut buf);
    // SAFETY: `a` and `o` are valid for the call.
    let st = unsafe { check::<CheckBomb>(&a, &mut o) };
    assert_eq!(st, Status::Fatal as u32);
    assert_eq!(&buf[..o.msg_len], b"listener panicked: check exploded");
    // The default check accepts.
    let mut o = outcome(&mut buf);
    // SAFETY: as above.
    let st = unsafe { check::<Bomb>(&a, &mut o) };
    assert_eq!(st, Status::Ok as u32);
}

#[test]
fn entries_of_a_larger_stride_from_a_newer_host_are_read_whole() {
    let b = Batch::p4("p4", 1, 0, &[b"@ex@ 1\n", b"@ex@ 2\n", b"@ex@ 3\n"]);
    // A newer host's entries: this layout and 24 bytes more each.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Wider {
        e: RawEntry,
        more: [u64; 3],
    }
    let wide: Vec<Wider> = b
        .entries()
        .iter()
        .map(|e| {
            let mut e = *e.as_raw();
            e.struct_size = std::mem::size_of::<Wider>() as u32;
            Wider {
                e,
                more: [u64::MAX; 3],
            }
        })
        .collect();
    let inst = Box::into_raw(Box::new(Bomb {
        seen: Vec::new(),
        explode: false,
    }));
    let mut buf = [0u8; 128];
    let mut o = outcome(&mut buf);
    // SAFETY: `inst` is a boxed `Bomb`; `wide` holds 3 entries of the
    // stride they state, pointing into `b`; `o` is valid.
    let st = unsafe {
        listen::<Bomb>(
            inst as *mut c_void,
            wide.as_ptr() as *const RawEntry,
            wide.len(),
            &mut o,
        )
    };
    assert_eq!(st, Status::Ok as u32);
    // SAFETY: `inst` is the live box; read, then closed once.
    let seen = unsafe { std::mem::take(&mut (*inst).seen) };
    assert_eq!(seen, [b"@ex@ 1\n", b"@ex@ 2\n", b"@ex@ 3\n"]);
    // SAFETY: as above.
    unsafe { close::<Bomb>(inst as *mut c_void) };
    // Smaller than version 2 knows: refused, not read past its end.
    let mut small = *b.entries()[0].as_raw();
    small.struct_size = 16;
    let mut o = outcome(&mut buf);
    let inst = Box::into_raw(Box::new(Bomb {
        seen: Vec::new(),
        explode: false,
    })) as *mut c_void;
    // SAFETY: as above, one entry.
    let st = unsafe { listen::<Bomb>(inst, &small, 1, &mut o) };
    assert_eq!(st, Status::Fatal as u32);
    // SAFETY: as above.
    unsafe { close::<Bomb>(inst) };
}

/// Takes runs when `runs` is set; panics in `listen_runs` when `explode` is.
struct Runner {
    runs: bool,
    explode: bool,
    seen: Vec<u8>,
}

impl Listener for Runner {
    const FILTERS: bool = false;
    fn open(_: &OpenContext<'_>) -> Result<Self, Failure> {
        Ok(Runner {
            runs: true,
            explode: false,
            seen: Vec::new(),
        })
    }
    fn listen(&mut self, _: &[Entry<'_>]) -> Result<Ack, Failure> {
        Ok(Ack::All)
    }
    fn takes_runs(&self) -> bool {
        if self.explode {
            panic!("takes_runs exploded");
        }
        self.runs
    }
    fn listen_runs(&mut self, runs: &[Run<'_>]) -> Result<Ack, Failure> {
        if self.explode {
            panic!("listen_runs exploded");
        }
        runs.iter()
            .for_each(|r| self.seen.extend_from_slice(r.raw()));
        Ok(Ack::Upto(runs[0].end()))
    }
}

#[test]
fn runs_reach_the_listener_and_its_answers_come_back() {
    let d = descriptor::<Runner>("r", "1", "b");
    assert!(d.takes_runs.is_some() && d.listen_runs.is_some());
    assert_eq!(d.flags & abi::DESC_NO_FILTER, abi::DESC_NO_FILTER);
    let b = Batch::lines("l", 1, 0, &[b"a\n", b"b\n", b"partial"]);
    let runs = b.runs();
    let raw: Vec<RawRun> = runs.get().iter().map(|r| *r.as_raw()).collect();
    assert_eq!(raw.len(), 2, "the incomplete record stands alone");
    let run = |l: Runner, o: &mut Outcome| {
        let inst = Box::into_raw(Box::new(l));
        // SAFETY: `inst` is a boxed `Runner`; `raw` points into `b`; `o` is valid.
        let (takes, st) = unsafe {
            (
                takes_runs::<Runner>(inst as *mut c_void),
                listen_runs::<Runner>(inst as *mut c_void, raw.as_ptr(), raw.len(), o),
            )
        };
        // SAFETY: the live box, read then closed once.
        let seen = unsafe { std::mem::take(&mut (*inst).seen) };
        // SAFETY: as above.
        unsafe { close::<Runner>(inst as *mut c_void) };
        (takes, st, seen)
    };
    let mut buf = [0u8; 128];
    let mut o = outcome(&mut buf);
    let ok = Runner {
        runs: true,
        explode: false,
        seen: Vec::new(),
    };
    let (takes, st, seen) = run(ok, &mut o);
    assert_eq!((takes, st), (1, Status::Ok as u32));
    assert_eq!(seen, b"a\nb\npartial");
    assert_eq!(
        (o.ack.offset, o.ack.line),
        (4, 3),
        "acknowledged the first run"
    );
    let mut o = outcome(&mut buf);
    let bomb = Runner {
        runs: true,
        explode: true,
        seen: Vec::new(),
    };
    let (takes, st, _) = run(bomb, &mut o);
    assert_eq!(takes, 0, "a panicking answer means entries");
    assert_eq!(st, Status::Fatal as u32);
    assert_eq!(o.ack, abi::NO_ACK);
    assert_eq!(
        &buf[..o.msg_len],
        b"listener panicked: listen_runs exploded"
    );
    // A listener that does not take runs says so, and refuses them.
    let inst = Box::into_raw(Box::new(Bomb {
        seen: Vec::new(),
        explode: false,
    })) as *mut c_void;
    let mut o = outcome(&mut buf);
    // SAFETY: `inst` is a boxed `Bomb`; `raw` points into `b`; `o` is valid.
    let (takes, st) = unsafe {
        (
            takes_runs::<Bomb>(inst),
            listen_runs::<Bomb>(inst, raw.as_ptr(), raw.len(), &mut o),
        )
    };
    assert_eq!((takes, st), (0, Status::Fatal as u32));
    // SAFETY: as above.
    unsafe { close::<Bomb>(inst) };
}
