//! Generic `extern "C"` shims between the ABI and [`Listener`]. Every shim
//! catches panics, so an unwinding panic never crosses the C boundary; it
//! becomes `Fatal` with the panic's message.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::abi::{
    self, Bytes, Descriptor, OpenArgs, Outcome, RawEntry, RawGap, RawPosition, RawRun, Status,
};
use crate::entry::{Entry, Gap};
use crate::listener::{Ack, Failure, Listener, Logger, OpenContext};
use crate::run::Run;

mod array;
use array::host_array;

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
mod tests;
