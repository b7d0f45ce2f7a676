//! Generic `extern "C"` shims between the ABI and [`Listener`]. Every shim
//! catches panics, so an unwinding panic never crosses the C boundary; it
//! becomes `Fatal` with the panic's message.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::abi::{self, Bytes, Descriptor, OpenArgs, Outcome, RawEntry, RawGap, Status};
use crate::entry::{Entry, Gap};
use crate::listener::{Ack, Failure, Listener, Logger, OpenContext};

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
        flags: if T::WANTS_FIELDS {
            abi::DESC_WANTS_FIELDS
        } else {
            0
        } | if T::FILTERS { 0 } else { abi::DESC_NO_FILTER },
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("listener panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("listener panicked: {s}")
    } else {
        "listener panicked".to_string()
    }
}

unsafe fn finish(r: std::thread::Result<Result<Ack, Failure>>, outcome: *mut Outcome) -> u32 {
    let set_ack = |p: crate::Position| {
        if !outcome.is_null() {
            (*outcome).ack = p.into();
        }
    };
    let (status, msg) = match r {
        Ok(Ok(Ack::All)) => return Status::Ok as u32,
        Ok(Ok(Ack::Upto(p))) => {
            set_ack(p);
            return Status::Ok as u32;
        }
        Ok(Err(f)) => {
            if let Some(p) = f.ack {
                set_ack(p);
            } else if !outcome.is_null() {
                // Nothing beyond the previous acknowledgement: the host reads
                // this sentinel as "unchanged".
                (*outcome).ack = abi::RawPosition {
                    sequence: u64::MAX,
                    offset: u64::MAX,
                    line: 0,
                };
            }
            (f.status(), f.message)
        }
        Err(p) => {
            if !outcome.is_null() {
                (*outcome).ack = abi::RawPosition {
                    sequence: u64::MAX,
                    offset: u64::MAX,
                    line: 0,
                };
            }
            (Status::Fatal, panic_message(p))
        }
    };
    abi::write_message(outcome, &msg);
    status as u32
}

unsafe fn text<'a>(b: Bytes, what: &str) -> Result<&'a str, Failure> {
    std::str::from_utf8(b.as_slice())
        .map_err(|_| Failure::fatal(format!("host passed a non-UTF-8 {what}")))
}

unsafe extern "C" fn open<T: Listener>(
    args: *const OpenArgs,
    out: *mut *mut c_void,
    outcome: *mut Outcome,
) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<Ack, Failure> {
        if args.is_null() || out.is_null() {
            return Err(Failure::fatal("host passed null open arguments"));
        }
        let a = &*args;
        if (a.struct_size as usize) < std::mem::size_of::<OpenArgs>() {
            return Err(Failure::fatal(
                "host's open arguments are from an older ABI",
            ));
        }
        let ctx = OpenContext {
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
                logger_from(a.host)
            },
        };
        let inst = T::open(&ctx)?;
        *out = Box::into_raw(Box::new(inst)) as *mut c_void;
        Ok(Ack::All)
    }));
    finish(r, outcome)
}

fn logger_from(host: *const abi::HostApi) -> Logger {
    // Logger's field is private to the crate; build it through a transmute-free path.
    crate::listener::__logger(host)
}

unsafe extern "C" fn close<T: Listener>(inst: *mut c_void) {
    if inst.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(inst as *mut T))));
}

unsafe extern "C" fn is_handled<T: Listener>(inst: *mut c_void, entry: *const RawEntry) -> u32 {
    if inst.is_null() || entry.is_null() {
        return 1;
    }
    // A panicking filter delivers the entry: better an extra entry than a lost one.
    catch_unwind(AssertUnwindSafe(|| {
        u32::from((*(inst as *mut T)).is_handled(Entry::from_raw(&*entry)))
    }))
    .unwrap_or(1)
}

unsafe extern "C" fn listen<T: Listener>(
    inst: *mut c_void,
    entries: *const RawEntry,
    n: usize,
    outcome: *mut Outcome,
) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let raw: &[RawEntry] = if n == 0 || entries.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(entries, n)
        };
        (*(inst as *mut T)).listen(Entry::from_raw_slice(raw))
    }));
    finish(r, outcome)
}

unsafe extern "C" fn no_data<T: Listener>(
    inst: *mut c_void,
    had_data: u32,
    outcome: *mut Outcome,
) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        (*(inst as *mut T)).no_data(had_data != 0)
    }));
    finish(r, outcome)
}

unsafe extern "C" fn flush<T: Listener>(inst: *mut c_void, outcome: *mut Outcome) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| (*(inst as *mut T)).flush()));
    finish(r, outcome)
}

unsafe extern "C" fn gap<T: Listener>(
    inst: *mut c_void,
    gap: *const RawGap,
    outcome: *mut Outcome,
) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        (*(inst as *mut T)).gap(&Gap::from_raw(&*gap))
    }));
    finish(r, outcome)
}

/// Exports a [`Listener`] type as a logdaemon plugin.
///
/// `export_listener!(MyListener, "name");` defines the entry symbol
/// `logdaemon_listener_v1`. The crate must be built as a `cdylib`.
#[macro_export]
macro_rules! export_listener {
    ($ty:ty, $name:expr) => {
        #[no_mangle]
        pub extern "C" fn logdaemon_listener_v1() -> *const $crate::abi::Descriptor {
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
