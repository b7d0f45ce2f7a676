//! The host's check of a plugin's descriptor, for both ABI versions: the
//! header first, then the labels, then the functions, so a foreign layout
//! is refused before anything past its header is read.

use super::v1::{CallsV1, DescriptorV1};
use super::{
    Bytes, CheckFn, CloseFn, Descriptor, FlushFn, GapFn, IsHandledFn, ListenFn, ListenRunsFn,
    NoDataFn, OpenFn, TakesRunsFn, ABI_VERSION, DESC_NO_FILTER, DESC_QUIET_ONCE, DESC_WANTS_FIELDS,
    MAX_LABEL_LEN,
};

/// The version-2 functions of a checked descriptor.
#[derive(Clone, Copy, Debug)]
pub struct Calls {
    pub open: OpenFn,
    pub close: CloseFn,
    pub is_handled: IsHandledFn,
    pub listen: ListenFn,
    pub no_data: NoDataFn,
    pub flush: FlushFn,
    pub gap: GapFn,
    /// The optional config check (a descriptor too small to hold it, or a
    /// null pointer: none).
    pub check: Option<CheckFn>,
    /// `takes_runs` and `listen_runs`, when the descriptor covers and
    /// sets both (one without the other: neither).
    pub runs: Option<(TakesRunsFn, ListenRunsFn)>,
}

/// The functions of a checked descriptor, by the ABI version it speaks.
#[derive(Clone, Copy, Debug)]
pub enum AnyCalls {
    V1(CallsV1),
    V2(Calls),
}

/// The checked view of a plugin's descriptor.
#[derive(Clone, Copy, Debug)]
pub struct Checked {
    pub name: &'static str,
    pub version: &'static str,
    pub build: &'static str,
    pub calls: AnyCalls,
    pub wants_fields: bool,
    /// Whether the host must ask `is_handled` for each entry.
    pub filters: bool,
    /// Whether `no_data` is called once per quiet spell, not periodically.
    pub quiet_once: bool,
}

impl Checked {
    /// The ABI version the plugin speaks.
    pub fn abi_version(&self) -> u32 {
        match self.calls {
            AnyCalls::V1(_) => 1,
            AnyCalls::V2(_) => ABI_VERSION,
        }
    }
}

/// Why a descriptor was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    Null,
    /// `expected` is the version of the symbol the descriptor came from.
    Version {
        found: u32,
        expected: u32,
    },
    TooSmall {
        found: u32,
        need: u32,
    },
    BadLabel {
        which: &'static str,
        why: String,
    },
    MissingFunction(&'static str),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Null => write!(f, "the entry function returned a null descriptor"),
            HandshakeError::Version { found, expected } => write!(
                f,
                "plugin speaks listener ABI version {found} under the symbol of version {expected}, this logdaemon speaks versions 1 and {ABI_VERSION}; rebuild the plugin against logdaemon-sdk {} (or include/logdaemon.h)",
                env!("CARGO_PKG_VERSION")
            ),
            HandshakeError::TooSmall { found, need } => {
                write!(f, "descriptor is {found} bytes, at least {need} are needed")
            }
            HandshakeError::BadLabel { which, why } => write!(f, "descriptor {which}: {why}"),
            HandshakeError::MissingFunction(name) => write!(f, "descriptor has no `{name}` function"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// What both versions share, checked.
struct Head {
    name: &'static str,
    version: &'static str,
    build: &'static str,
    wants_fields: bool,
    filters: bool,
    quiet_once: bool,
}

// The two descriptor layouts are the same bytes up to `flags`; version 2
// appends `check` after them.
const _: () = {
    assert!(std::mem::offset_of!(Descriptor, check) == std::mem::size_of::<DescriptorV1>());
    assert!(std::mem::offset_of!(Descriptor, flags) == std::mem::offset_of!(DescriptorV1, flags));
    assert!(std::mem::offset_of!(Descriptor, gap) == std::mem::offset_of!(DescriptorV1, gap));
};

/// Checks the header and labels of a descriptor of version `expected`.
///
/// # Safety
/// As [`check_descriptor`].
unsafe fn check_head(ptr: *const Descriptor, expected: u32) -> Result<Head, HandshakeError> {
    if ptr.is_null() {
        return Err(HandshakeError::Null);
    }
    let head = ptr as *const u32;
    // SAFETY: the caller promises the 8 header bytes; unaligned reads
    // make no claim on alignment.
    let (abi_version, struct_size) =
        unsafe { (head.read_unaligned(), head.add(1).read_unaligned()) };
    if abi_version != expected {
        return Err(HandshakeError::Version {
            found: abi_version,
            expected,
        });
    }
    // `flags` was appended after the first layout: a descriptor that ends
    // before it is accepted, asks for fields and filters.
    let need = std::mem::offset_of!(Descriptor, flags) as u32;
    if struct_size < need {
        return Err(HandshakeError::TooSmall {
            found: struct_size,
            need,
        });
    }
    let has_flags = struct_size as usize >= std::mem::offset_of!(Descriptor, flags) + 4;
    let label = |which: &'static str, b: Bytes| -> Result<&'static str, HandshakeError> {
        if b.len > MAX_LABEL_LEN {
            return Err(HandshakeError::BadLabel {
                which,
                why: format!("{} bytes long, at most {MAX_LABEL_LEN} allowed", b.len),
            });
        }
        if b.len > 0 && b.ptr.is_null() {
            return Err(HandshakeError::BadLabel {
                which,
                why: "null pointer with non-zero length".into(),
            });
        }
        // SAFETY: labels point to `len` readable static bytes (the
        // caller's promise), `len` checked above.
        let s = unsafe { b.as_slice() };
        std::str::from_utf8(s).map_err(|e| HandshakeError::BadLabel {
            which,
            why: format!("not UTF-8 ({e})"),
        })
    };
    // SAFETY: `struct_size` ≥ `need` covers the labels; fields are read
    // through the raw pointer (a `&Descriptor` would claim all its bytes).
    let (name, version, build) = unsafe { ((*ptr).name, (*ptr).version, (*ptr).build) };
    let name = label("name", name)?;
    if name.is_empty() {
        return Err(HandshakeError::BadLabel {
            which: "name",
            why: "empty".into(),
        });
    }
    // SAFETY: read only when `struct_size` covers the whole struct.
    let flags = has_flags.then(|| unsafe { (*ptr).flags });
    Ok(Head {
        name,
        version: label("version", version)?,
        build: label("build", build)?,
        wants_fields: flags.is_none_or(|f| f & DESC_WANTS_FIELDS != 0),
        filters: flags.is_none_or(|f| f & DESC_NO_FILTER == 0),
        quiet_once: flags.is_some_and(|f| f & DESC_QUIET_ONCE != 0),
    })
}

fn need<T>(f: Option<T>, name: &'static str) -> Result<T, HandshakeError> {
    f.ok_or(HandshakeError::MissingFunction(name))
}

/// Whether the descriptor's `struct_size` covers `check`.
///
/// # Safety
/// `ptr` must point to a descriptor whose header was accepted.
unsafe fn covers_check(ptr: *const Descriptor) -> bool {
    // SAFETY: the header's 8 bytes are readable (the caller's promise).
    let size = unsafe { (ptr as *const u32).add(1).read_unaligned() } as usize;
    size >= std::mem::offset_of!(Descriptor, check) + std::mem::size_of::<Option<CheckFn>>()
}

/// `takes_runs` and `listen_runs`, when `struct_size` covers both and
/// both are set.
///
/// # Safety
/// `ptr` must point to a descriptor whose header was accepted, with
/// `struct_size` readable bytes.
unsafe fn runs(ptr: *const Descriptor) -> Option<(TakesRunsFn, ListenRunsFn)> {
    // SAFETY: the header's 8 bytes are readable (the caller's promise).
    let size = unsafe { (ptr as *const u32).add(1).read_unaligned() } as usize;
    let end =
        std::mem::offset_of!(Descriptor, listen_runs) + std::mem::size_of::<Option<ListenRunsFn>>();
    if size < end {
        return None;
    }
    // SAFETY: `struct_size` covers both fields, each read on its own.
    unsafe { Some(((*ptr).takes_runs?, (*ptr).listen_runs?)) }
}

/// Validates a version-2 descriptor returned by a plugin's entry function.
///
/// Reads `abi_version` and `struct_size` first and nothing else unless both
/// are acceptable, so a descriptor of a foreign (smaller) layout is never
/// read past its end.
///
/// # Safety
/// `ptr` must be null or point to at least 8 readable bytes, and to
/// `struct_size` readable bytes when the two header fields are accepted.
/// Labels must point to readable memory of the stated length (at most
/// [`MAX_LABEL_LEN`] is read) that lives for the rest of the process.
pub unsafe fn check_descriptor(ptr: *const Descriptor) -> Result<Checked, HandshakeError> {
    // SAFETY: forwarded from the caller.
    let head = unsafe { check_head(ptr, ABI_VERSION) }?;
    // SAFETY: the header was accepted, so `struct_size` bytes are readable
    // and they reach past `gap` (`flags` comes after it); each field is
    // read on its own through the pointer.
    let calls = unsafe {
        Calls {
            open: need((*ptr).open, "open")?,
            close: need((*ptr).close, "close")?,
            is_handled: need((*ptr).is_handled, "is_handled")?,
            listen: need((*ptr).listen, "listen")?,
            no_data: need((*ptr).no_data, "no_data")?,
            flush: need((*ptr).flush, "flush")?,
            gap: need((*ptr).gap, "gap")?,
            check: covers_check(ptr).then(|| (*ptr).check).flatten(),
            runs: runs(ptr),
        }
    };
    Ok(Checked {
        name: head.name,
        version: head.version,
        build: head.build,
        calls: AnyCalls::V2(calls),
        wants_fields: head.wants_fields,
        filters: head.filters,
        quiet_once: head.quiet_once,
    })
}

/// Validates a version-1 descriptor (from the symbol `logdaemon_listener_v1`).
///
/// # Safety
/// As [`check_descriptor`].
pub unsafe fn check_descriptor_v1(ptr: *const DescriptorV1) -> Result<Checked, HandshakeError> {
    // SAFETY: forwarded from the caller; the layouts are the same bytes.
    let head = unsafe { check_head(ptr as *const Descriptor, 1) }?;
    // SAFETY: the header was accepted, so the functions are readable.
    let calls = unsafe {
        CallsV1 {
            open: need((*ptr).open, "open")?,
            close: need((*ptr).close, "close")?,
            is_handled: need((*ptr).is_handled, "is_handled")?,
            listen: need((*ptr).listen, "listen")?,
            no_data: need((*ptr).no_data, "no_data")?,
            flush: need((*ptr).flush, "flush")?,
            gap: need((*ptr).gap, "gap")?,
        }
    };
    Ok(Checked {
        name: head.name,
        version: head.version,
        build: head.build,
        calls: AnyCalls::V1(calls),
        wants_fields: head.wants_fields,
        filters: head.filters,
        quiet_once: head.quiet_once,
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::c_void;

    use super::super::{OpenArgs, Outcome, RawEntry, RawGap};
    use super::*;

    unsafe extern "C" fn open(_: *const OpenArgs, _: *mut *mut c_void, _: *mut Outcome) -> u32 {
        0
    }
    unsafe extern "C" fn close(_: *mut c_void) {}
    unsafe extern "C" fn handled(_: *mut c_void, _: *const RawEntry) -> u32 {
        1
    }
    unsafe extern "C" fn listen(
        _: *mut c_void,
        _: *const RawEntry,
        _: usize,
        _: *mut Outcome,
    ) -> u32 {
        0
    }
    unsafe extern "C" fn no_data(_: *mut c_void, _: u32, _: *mut Outcome) -> u32 {
        0
    }
    unsafe extern "C" fn flush(_: *mut c_void, _: *mut Outcome) -> u32 {
        0
    }
    unsafe extern "C" fn gap(_: *mut c_void, _: *const RawGap, _: *mut Outcome) -> u32 {
        0
    }

    fn good() -> Descriptor {
        Descriptor {
            abi_version: ABI_VERSION,
            struct_size: std::mem::size_of::<Descriptor>() as u32,
            name: Bytes::from_static(b"t"),
            version: Bytes::from_static(b"1"),
            build: Bytes::from_static(b"b"),
            open: Some(open),
            close: Some(close),
            is_handled: Some(handled),
            listen: Some(listen),
            no_data: Some(no_data),
            flush: Some(flush),
            gap: Some(gap),
            flags: DESC_WANTS_FIELDS,
            check: None,
            takes_runs: None,
            listen_runs: None,
        }
    }

    #[test]
    fn accepts_a_good_descriptor() {
        let d = good();
        // SAFETY: `d` is a whole descriptor with static labels.
        let c = unsafe { check_descriptor(&d) }.unwrap();
        assert_eq!(c.name, "t");
        assert_eq!(c.abi_version(), 2);
    }

    #[test]
    fn refuses_wrong_version_size_and_missing_functions() {
        let check = |d: &Descriptor| {
            // SAFETY: `d` is a whole descriptor with static labels.
            unsafe { check_descriptor(d) }
        };
        let mut d = good();
        d.abi_version = 1;
        assert_eq!(
            check(&d).unwrap_err(),
            HandshakeError::Version {
                found: 1,
                expected: 2
            }
        );
        let mut d = good();
        d.struct_size = 8;
        assert!(matches!(check(&d), Err(HandshakeError::TooSmall { .. })));
        let mut d = good();
        d.listen = None;
        assert_eq!(
            check(&d).unwrap_err(),
            HandshakeError::MissingFunction("listen")
        );
        let mut d = good();
        d.name = Bytes::from_static(b"\xff");
        assert!(matches!(
            check(&d),
            Err(HandshakeError::BadLabel { which: "name", .. })
        ));
        // SAFETY: null is allowed.
        let null = unsafe { check_descriptor(std::ptr::null()) };
        assert_eq!(null.unwrap_err(), HandshakeError::Null);
    }

    #[test]
    fn a_descriptor_of_the_first_layout_is_accepted_and_wants_fields() {
        let mut d = good();
        d.flags = DESC_NO_FILTER;
        d.struct_size = std::mem::offset_of!(Descriptor, flags) as u32;
        // SAFETY: `d` is a whole descriptor with static labels.
        let c = unsafe { check_descriptor(&d) }.unwrap();
        assert!(c.wants_fields && c.filters);
        d.struct_size = std::mem::size_of::<Descriptor>() as u32;
        // SAFETY: as above.
        let c = unsafe { check_descriptor(&d) }.unwrap();
        assert!(!c.wants_fields && !c.filters);
        assert!(!c.quiet_once, "periodic no_data unless asked otherwise");
    }

    #[test]
    fn quiet_once_is_read_from_the_flags_and_never_assumed() {
        let mut d = good();
        d.flags = DESC_QUIET_ONCE;
        // SAFETY: `d` is a whole descriptor with static labels.
        let c = unsafe { check_descriptor(&d) }.unwrap();
        assert!(c.quiet_once && c.filters && !c.wants_fields);
        d.struct_size = std::mem::offset_of!(Descriptor, flags) as u32;
        // SAFETY: as above.
        let c = unsafe { check_descriptor(&d) }.unwrap();
        assert!(!c.quiet_once, "a layout without flags gets periodic calls");
    }

    unsafe extern "C" fn check(_: *const OpenArgs, _: *mut Outcome) -> u32 {
        0
    }

    #[test]
    fn check_is_read_only_when_the_descriptor_covers_it() {
        let mut d = good();
        d.check = Some(check);
        // SAFETY: `d` is a whole descriptor with static labels.
        let c = unsafe { check_descriptor(&d) }.unwrap();
        assert!(matches!(
            c.calls,
            AnyCalls::V2(Calls { check: Some(_), .. })
        ));
        d.flags = DESC_NO_FILTER;
        d.struct_size = std::mem::offset_of!(Descriptor, check) as u32;
        // SAFETY: as above.
        let c = unsafe { check_descriptor(&d) }.unwrap();
        assert!(matches!(c.calls, AnyCalls::V2(Calls { check: None, .. })));
        assert!(!c.filters, "flags are still read");
    }

    #[test]
    fn a_version_1_descriptor_is_checked_as_version_1() {
        let mut d = good();
        d.abi_version = 1;
        let p = &d as *const Descriptor as *const DescriptorV1;
        // SAFETY: the layouts are the same bytes; `d` is whole.
        let c = unsafe { check_descriptor_v1(p) }.unwrap();
        assert_eq!(c.abi_version(), 1);
        assert!(matches!(c.calls, AnyCalls::V1(_)));
        let d = good();
        let p = &d as *const Descriptor as *const DescriptorV1;
        // SAFETY: as above.
        let e = unsafe { check_descriptor_v1(p) }.unwrap_err();
        assert_eq!(
            e,
            HandshakeError::Version {
                found: 2,
                expected: 1
            }
        );
    }

    unsafe extern "C" fn takes_runs(_: *mut c_void) -> u32 {
        1
    }
    unsafe extern "C" fn listen_runs(
        _: *mut c_void,
        _: *const crate::abi::RawRun,
        _: usize,
        _: *mut Outcome,
    ) -> u32 {
        0
    }

    #[test]
    fn runs_are_read_only_when_the_descriptor_covers_and_sets_both() {
        let has_runs = |d: &Descriptor| {
            // SAFETY: `d` is a whole descriptor with static labels.
            let c = unsafe { check_descriptor(d) }.unwrap();
            matches!(c.calls, AnyCalls::V2(Calls { runs: Some(_), .. }))
        };
        let mut d = good();
        assert!(!has_runs(&d), "none set");
        d.takes_runs = Some(takes_runs);
        assert!(!has_runs(&d), "one without the other");
        d.listen_runs = Some(listen_runs);
        assert!(has_runs(&d));
        d.struct_size = std::mem::offset_of!(Descriptor, listen_runs) as u32;
        assert!(!has_runs(&d), "a descriptor that ends before them");
        d.struct_size = std::mem::offset_of!(Descriptor, takes_runs) as u32;
        // SAFETY: as above.
        let c = unsafe { check_descriptor(&d) }.unwrap();
        assert!(matches!(
            c.calls,
            AnyCalls::V2(Calls {
                check: None,
                runs: None,
                ..
            })
        ));
    }
}
