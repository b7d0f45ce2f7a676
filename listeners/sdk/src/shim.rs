//! Generic `extern "C"` shims between the ABI and [`Listener`]. Every shim
//! catches panics, so an unwinding panic never crosses the C boundary; it
//! becomes `Fatal` with the panic's message.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use std::borrow::Cow;

use crate::abi::{
    self, Bytes, Descriptor, OpenArgs, Outcome, RawEntry, RawGap, RawPosition, RawRun, Status,
};
use crate::entry::{Entry, Gap};
use crate::listener::{Ack, Failure, Listener, Logger, OpenContext};
use crate::run::Run;

/// Builds the static descriptor for `T`. Used by [`crate::export_listener!`].
pub const fn descriptor<T: Listener>(
    name: &'static str,
    version: &'static str,
    build: &'static str,
) -> Descriptor {
    Descriptor {
        abi_version: abi::ABI_VERSION,
        struct_size: std::mem::size_of::<Descriptor>() as u32,
        name: Bytes::from_static(name.as_bytes()),
        version: Bytes::from_static(version.as_bytes()),
        build: Bytes::from_static(build.as_bytes()),
        open: Some(open::<T>),
        close: Some(close::<T>),
        is_handled: Some(is_handled::<T>),
        listen: Some(listen::<T>),
        no_data: Some(no_data::<T>),
        flush: Some(flush::<T>),
        gap: Some(gap::<T>),
        check: Some(check::<T>),
        takes_runs: Some(takes_runs::<T>),
        listen_runs: Some(listen_runs::<T>),
        flags: if T::WANTS_FIELDS {
            abi::DESC_WANTS_FIELDS
        } else {
            0
        } | if T::FILTERS { 0 } else { abi::DESC_NO_FILTER }
            | if T::PERIODIC_NO_DATA {
                0
            } else {
                abi::DESC_QUIET_ONCE
            },
    }
}

/// The message of a caught panic. The payload is dropped here, inside
/// `catch_unwind`: its destructor is user code and may panic in turn (that
/// second payload is leaked rather than dropped, so nothing unwinds out).
fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    let msg = if let Some(s) = p.downcast_ref::<&str>() {
        format!("listener panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("listener panicked: {s}")
    } else {
        "listener panicked".to_string()
    };
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(p))) {
        std::mem::forget(again);
    }
    msg
}

/// Turns a call's result into a status, the acknowledgement and the message.
///
/// # Safety
/// `outcome` must be null or valid.
unsafe fn finish(r: std::thread::Result<Result<Ack, Failure>>, outcome: *mut Outcome) -> u32 {
    let (status, msg) = match r {
        Ok(Ok(Ack::All)) => return Status::Ok as u32,
        Ok(Ok(Ack::Upto(p))) => {
            // SAFETY: forwarded from the caller.
            unsafe { abi::set_ack(outcome, p.into()) };
            return Status::Ok as u32;
        }
        Ok(Err(f)) => {
            // Without a position: nothing beyond the previous acknowledgement.
            let ack = f.ack.map_or(abi::NO_ACK, RawPosition::from);
            // SAFETY: forwarded from the caller.
            unsafe { abi::set_ack(outcome, ack) };
            (f.status(), f.message)
        }
        Err(p) => {
            // SAFETY: forwarded from the caller.
            unsafe { abi::set_ack(outcome, abi::NO_ACK) };
            (Status::Fatal, panic_message(p))
        }
    };
    // SAFETY: forwarded from the caller.
    unsafe { abi::write_message(outcome, &msg) };
    status as u32
}

/// # Safety
/// `b` must point to readable bytes that outlive `'a`.
unsafe fn text<'a>(b: Bytes, what: &str) -> Result<&'a str, Failure> {
    // SAFETY: forwarded from the caller.
    let s = unsafe { b.as_slice() };
    std::str::from_utf8(s).map_err(|_| Failure::fatal(format!("host passed a non-UTF-8 {what}")))
}

/// The structs the host hands over in arrays whose stride is the first
/// one's `struct_size` (its first field).
trait Strided: Copy {
    /// `struct_size` of this crate's layout.
    const SIZE: u32;
    /// The smallest `struct_size` this crate can read.
    const MIN_SIZE: u32;
    const WHAT: &'static str;
    fn set_size(&mut self, size: u32);
}

impl Strided for RawEntry {
    const SIZE: u32 = RawEntry::SIZE;
    const MIN_SIZE: u32 = RawEntry::MIN_SIZE;
    const WHAT: &'static str = "entries";
    fn set_size(&mut self, size: u32) {
        self.struct_size = size;
    }
}

impl Strided for RawRun {
    const SIZE: u32 = RawRun::SIZE;
    const MIN_SIZE: u32 = RawRun::SIZE;
    const WHAT: &'static str = "runs";
    fn set_size(&mut self, size: u32) {
        self.struct_size = size;
    }
}

/// The host's array as a slice of this crate's layout. The array's stride
/// is the first item's `struct_size`: the same layout is borrowed as it
/// is, a larger one (a newer host) is copied field by field up to what
/// this crate knows, a smaller one refused.
///
/// # Safety
/// `items` must be null or point to `n` items of the stride its first
/// item states, valid for `'a`.
unsafe fn host_array<'a, T: Strided>(items: *const T, n: usize) -> Result<Cow<'a, [T]>, Failure> {
    if n == 0 || items.is_null() {
        return Ok(Cow::Borrowed(&[]));
    }
    // SAFETY: `n` ≥ 1 items, each starting with `struct_size`.
    let size = unsafe { (items as *const u32).read_unaligned() };
    if size == T::SIZE {
        // SAFETY: `n` items of exactly this layout, valid for `'a`.
        return Ok(Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(items, n)
        }));
    }
    if size < T::MIN_SIZE {
        return Err(Failure::fatal(format!(
            "host passed {} of {size} bytes, ABI version {} needs at least {}",
            T::WHAT,
            abi::ABI_VERSION,
            T::MIN_SIZE
        )));
    }
    let base = items as *const u8;
    let copied = (0..n)
        .map(|i| {
            // SAFETY: item `i` starts `i * size` bytes in and has `size`
            // ≥ size_of::<T>() readable bytes.
            let mut e = unsafe { (base.add(i * size as usize) as *const T).read_unaligned() };
            e.set_size(T::SIZE);
            e
        })
        .collect();
    Ok(Cow::Owned(copied))
}

/// The listener's view of the open arguments.
///
/// # Safety
/// `args` must be null or valid for `'a`.
unsafe fn context<'a>(args: *const OpenArgs) -> Result<OpenContext<'a>, Failure> {
    if args.is_null() {
        return Err(Failure::fatal("host passed null open arguments"));
    }
    // SAFETY: non-null and valid for `'a` (the caller's promise).
    let a = unsafe { &*args };
    if (a.struct_size as usize) < std::mem::size_of::<OpenArgs>() {
        return Err(Failure::fatal(
            "host's open arguments are from an older ABI",
        ));
    }
    // SAFETY: the strings are valid for `'a`.
    unsafe {
        Ok(OpenContext {
            listener: text(a.listener, "listener name")?,
            journal: text(a.journal, "journal name")?,
            format: text(a.format, "format")?,
            journal_path: Path::new(text(a.journal_path, "journal path")?),
            config_toml: text(a.config_toml, "config")?,
            config_dir: Path::new(text(a.config_dir, "config directory")?),
            state_dir: Path::new(text(a.state_dir, "state directory")?),
            cursor: a.cursor.into(),
            logger: if a.host.is_null() {
                Logger::discard()
            } else {
                crate::listener::__logger(a.host)
            },
        })
    }
}

/// # Safety
/// `args` must be null or valid for the call; `outcome` null or writable.
unsafe extern "C" fn check<T: Listener>(args: *const OpenArgs, outcome: *mut Outcome) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<Ack, Failure> {
        // SAFETY: null or valid for the call (the host's promise).
        let ctx = unsafe { context(args) }?;
        T::check(&ctx).map(|()| Ack::All)
    }));
    // SAFETY: `outcome` is null or valid (the host's promise).
    unsafe { finish(r, outcome) }
}

/// # Safety
/// `args` must be null or valid for the call; `out` and `outcome` null or writable.
unsafe extern "C" fn open<T: Listener>(
    args: *const OpenArgs,
    out: *mut *mut c_void,
    outcome: *mut Outcome,
) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<Ack, Failure> {
        if out.is_null() {
            return Err(Failure::fatal("host passed null open arguments"));
        }
        // SAFETY: null or valid for the call (the host's promise).
        let ctx = unsafe { context(args) }?;
        let inst = T::open(&ctx)?;
        // SAFETY: `out` is non-null and writable.
        unsafe { *out = Box::into_raw(Box::new(inst)) as *mut c_void };
        Ok(Ack::All)
    }));
    // SAFETY: `outcome` is null or valid (the host's promise).
    unsafe { finish(r, outcome) }
}

/// # Safety
/// `inst` must be null or come from `open::<T>`, and not be used again.
unsafe extern "C" fn close<T: Listener>(inst: *mut c_void) {
    if inst.is_null() {
        return;
    }
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the instance was boxed by `open::<T>` and is closed once.
        drop(unsafe { Box::from_raw(inst as *mut T) })
    }));
    if let Err(p) = r {
        drop(panic_message(p));
    }
}

/// # Safety
/// `inst` must come from `open::<T>`; `entry` valid for the call.
unsafe extern "C" fn is_handled<T: Listener>(inst: *mut c_void, entry: *const RawEntry) -> u32 {
    if inst.is_null() || entry.is_null() {
        return 1;
    }
    // A panicking filter delivers the entry: better an extra entry than a lost one.
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: one entry of the stride it states, valid for the call.
        let e = unsafe { host_array(entry, 1) }.ok()?;
        // SAFETY: `inst` is a live `T` used by one thread at a time; the
        // entry's pointers are valid for the call.
        let keep = unsafe { (*(inst as *mut T)).is_handled(Entry::from_raw(&e[0])) };
        Some(u32::from(keep))
    }));
    match r {
        Ok(v) => v.unwrap_or(1),
        Err(p) => {
            drop(panic_message(p));
            1
        }
    }
}

/// # Safety
/// `inst` must come from `open::<T>`; `entries` valid for the call;
/// `outcome` null or valid.
unsafe extern "C" fn listen<T: Listener>(
    inst: *mut c_void,
    entries: *const RawEntry,
    n: usize,
    outcome: *mut Outcome,
) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host's array, valid for the call.
        let raw = unsafe { host_array(entries, n) }?;
        // SAFETY: `inst` is a live `T` used by one thread at a time; the
        // entries' pointers are valid for the call, which `raw` does not outlive.
        unsafe { (*(inst as *mut T)).listen(Entry::from_raw_slice(&raw)) }
    }));
    // SAFETY: `outcome` is null or valid (the host's promise).
    unsafe { finish(r, outcome) }
}

/// # Safety
/// `inst` must come from `open::<T>`.
unsafe extern "C" fn takes_runs<T: Listener>(inst: *mut c_void) -> u32 {
    if inst.is_null() {
        return 0;
    }
    // A panic here means entries, which every listener takes.
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `inst` is a live `T` used by one thread at a time.
        unsafe { (*(inst as *const T)).takes_runs() }
    }));
    match r {
        Ok(yes) => u32::from(yes),
        Err(p) => {
            drop(panic_message(p));
            0
        }
    }
}

/// # Safety
/// `inst` must come from `open::<T>`; `runs` valid for the call;
/// `outcome` null or valid.
unsafe extern "C" fn listen_runs<T: Listener>(
    inst: *mut c_void,
    runs: *const RawRun,
    n: usize,
    outcome: *mut Outcome,
) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host's array, valid for the call.
        let raw = unsafe { host_array(runs, n) }?;
        // SAFETY: `inst` is a live `T` used by one thread at a time; the
        // runs' pointers are valid for the call, which `raw` does not outlive.
        unsafe { (*(inst as *mut T)).listen_runs(Run::from_raw_slice(&raw)) }
    }));
    // SAFETY: `outcome` is null or valid (the host's promise).
    unsafe { finish(r, outcome) }
}

/// # Safety
/// `inst` must come from `open::<T>`; `outcome` null or valid.
unsafe extern "C" fn no_data<T: Listener>(
    inst: *mut c_void,
    had_data: u32,
    outcome: *mut Outcome,
) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `inst` is a live `T` used by one thread at a time.
        unsafe { (*(inst as *mut T)).no_data(had_data != 0) }
    }));
    // SAFETY: `outcome` is null or valid (the host's promise).
    unsafe { finish(r, outcome) }
}

/// # Safety
/// `inst` must come from `open::<T>`; `outcome` null or valid.
unsafe extern "C" fn flush<T: Listener>(inst: *mut c_void, outcome: *mut Outcome) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `inst` is a live `T` used by one thread at a time.
        unsafe { (*(inst as *mut T)).flush() }
    }));
    // SAFETY: `outcome` is null or valid (the host's promise).
    unsafe { finish(r, outcome) }
}

/// # Safety
/// `inst` must come from `open::<T>`; `gap` valid for the call; `outcome`
/// null or valid.
unsafe extern "C" fn gap<T: Listener>(
    inst: *mut c_void,
    gap: *const RawGap,
    outcome: *mut Outcome,
) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        if gap.is_null() {
            return Err(Failure::fatal("host passed a null gap"));
        }
        // SAFETY: `inst` is a live `T` used by one thread at a time; the
        // gap and its pointers are valid for the call.
        unsafe { (*(inst as *mut T)).gap(&Gap::from_raw(&*gap)) }
    }));
    // SAFETY: `outcome` is null or valid (the host's promise).
    unsafe { finish(r, outcome) }
}

/// Exports a [`Listener`] type as a logdaemon plugin.
///
/// `export_listener!(MyListener, "name");` defines the entry symbol
/// `logdaemon_listener_v2`. The crate must be built as a `cdylib`.
#[macro_export]
macro_rules! export_listener {
    ($ty:ty, $name:expr) => {
        #[no_mangle]
        pub extern "C" fn logdaemon_listener_v2() -> *const $crate::abi::Descriptor {
            static DESCRIPTOR: $crate::abi::StaticDescriptor =
                $crate::abi::StaticDescriptor($crate::shim::descriptor::<$ty>(
                    $name,
                    env!("CARGO_PKG_VERSION"),
                    if cfg!(debug_assertions) {
                        concat!(
                            env!("CARGO_PKG_NAME"),
                            " ",
                            env!("CARGO_PKG_VERSION"),
                            " debug"
                        )
                    } else {
                        concat!(
                            env!("CARGO_PKG_NAME"),
                            " ",
                            env!("CARGO_PKG_VERSION"),
                            " release"
                        )
                    },
                ));
            &DESCRIPTOR.0
        }
    };
}

#[cfg(test)]
mod tests {
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
}
