//! The raw, `#[repr(C)]` side of the plugin boundary.
//!
//! Stability rules: fields are only ever appended to a struct, never
//! reordered or removed; every struct a plugin hands to the host starts with
//! enough information (`abi_version`, `struct_size`) for the host to refuse it
//! before touching anything else. A change that cannot follow these rules
//! bumps [`ABI_VERSION`] and with it the exported symbol's name.

use std::ffi::c_void;

/// The ABI version this crate speaks.
pub const ABI_VERSION: u32 = 1;

/// The one symbol a plugin exports (NUL-terminated for `dlsym`).
pub const ENTRY_SYMBOL: &[u8] = b"logdaemon_listener_v1\0";

/// Upper bound on the name, version and build strings of a descriptor.
pub const MAX_LABEL_LEN: usize = 256;

/// A borrowed byte slice. Valid only for the duration of the call it is
/// passed to.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Bytes {
    pub ptr: *const u8,
    pub len: usize,
}

impl Bytes {
    pub const EMPTY: Bytes = Bytes {
        ptr: std::ptr::NonNull::<u8>::dangling().as_ptr(),
        len: 0,
    };

    pub const fn from_static(s: &'static [u8]) -> Bytes {
        Bytes {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    pub fn new(s: &[u8]) -> Bytes {
        Bytes {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive `'a`
    /// (or `len` must be 0).
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(self.ptr, self.len)
        }
    }
}

/// Result of every call into a plugin.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Done; `Outcome::ack` says how far.
    Ok = 0,
    /// Transient trouble: the host backs off and redelivers everything after
    /// `Outcome::ack`, re-reading it from disk.
    Retry = 1,
    /// This call failed, the listener is still usable: treated like `Retry`
    /// but logged as an error.
    Error = 2,
    /// The listener cannot go on; the host applies the listener's
    /// `on_failure` policy. A panic inside a plugin is reported as `Fatal`.
    Fatal = 3,
}

impl Status {
    /// Maps an integer from the wire; anything unknown is `Fatal`.
    pub fn from_u32(v: u32) -> Status {
        match v {
            0 => Status::Ok,
            1 => Status::Retry,
            2 => Status::Error,
            _ => Status::Fatal,
        }
    }
}

/// `RawEntry::flags`: first entry delivered from a new file after a rotation.
pub const FLAG_DID_ROTATE: u32 = 1;
/// `RawEntry::flags`: the record was cut off and can never complete.
pub const FLAG_INCOMPLETE: u32 = 2;

/// One journal record, as the host hands it to a plugin.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawEntry {
    pub journal: Bytes,
    pub sequence: u64,
    pub offset: u64,
    pub len: u64,
    pub line: u64,
    pub lines: u64,
    pub flags: u32,
    pub raw: Bytes,
    /// p4: the op (`pv`, `ex`, ...); lines: empty.
    pub op: Bytes,
    /// p4: the values after the op, unquoted; lines: none.
    pub fields: *const Bytes,
    pub n_fields: usize,
}

/// A position in a journal stream.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RawPosition {
    pub sequence: u64,
    pub offset: u64,
    pub line: u64,
}

/// Bytes that the host knows existed and can no longer deliver.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawGap {
    pub journal: Bytes,
    pub from: RawPosition,
    pub to: RawPosition,
    /// Machine-readable cause: `deleted`, `copytruncate`, `corrupt`, `nul-fill`, `operator`.
    pub cause: Bytes,
    /// Human-readable detail.
    pub detail: Bytes,
}

/// `HostApi::log` levels.
pub const LEVEL_ERROR: u32 = 1;
pub const LEVEL_WARN: u32 = 2;
pub const LEVEL_INFO: u32 = 3;
pub const LEVEL_DEBUG: u32 = 4;

/// Services the host offers a plugin; valid for the plugin's lifetime.
#[repr(C)]
pub struct HostApi {
    pub struct_size: u32,
    /// Log a message through the daemon's logger, tagged with the listener.
    pub log: unsafe extern "C" fn(ctx: *const c_void, level: u32, msg: Bytes),
    pub ctx: *const c_void,
    /// How many times the daemon was told to stop (SIGTERM/SIGINT): 0 while
    /// it runs, 1 after the first request, 2 or more when the operator
    /// insists. Appended to the first layout: a plugin reads it only when
    /// `struct_size` covers it.
    pub stop_requests: StopRequestsFn,
}

/// `HostApi::stop_requests`: null in a host that does not offer it.
pub type StopRequestsFn = Option<unsafe extern "C" fn(ctx: *const c_void) -> u32>;

/// Arguments of `Descriptor::open`.
#[repr(C)]
pub struct OpenArgs {
    pub struct_size: u32,
    pub listener: Bytes,
    pub journal: Bytes,
    /// `p4` or `lines`.
    pub format: Bytes,
    /// The journal's live path, as configured (absolute).
    pub journal_path: Bytes,
    /// The listener's `[journal.listener.config]` table, as TOML text.
    pub config_toml: Bytes,
    /// Directory of the daemon's config file: relative paths resolve here.
    pub config_dir: Bytes,
    /// A directory private to this listener for its own durable state.
    pub state_dir: Bytes,
    /// Where the host will resume delivering (the listener's cursor).
    pub cursor: RawPosition,
    pub host: *const HostApi,
}

/// Out-parameter of every call that can fail.
///
/// `ack` is the acknowledgement: everything before it is durably handled and
/// the host may record its cursor there. The host presets it to the end of
/// everything delivered so far, so a listener that handles each batch
/// completely need not touch it. A listener that *holds* entries (a digest
/// not yet sent, a transaction not yet closed) writes the end of what is
/// durable; held entries are delivered again after a crash or a failure.
#[repr(C)]
pub struct Outcome {
    pub ack: RawPosition,
    /// Host-owned buffer for a message; the plugin writes at most `msg_cap`
    /// bytes and sets `msg_len`.
    pub msg: *mut u8,
    pub msg_cap: usize,
    pub msg_len: usize,
}

pub type OpenFn = unsafe extern "C" fn(
    args: *const OpenArgs,
    out: *mut *mut c_void,
    outcome: *mut Outcome,
) -> u32;
pub type CloseFn = unsafe extern "C" fn(inst: *mut c_void);
pub type IsHandledFn = unsafe extern "C" fn(inst: *mut c_void, entry: *const RawEntry) -> u32;
pub type ListenFn = unsafe extern "C" fn(
    inst: *mut c_void,
    entries: *const RawEntry,
    n: usize,
    outcome: *mut Outcome,
) -> u32;
pub type NoDataFn =
    unsafe extern "C" fn(inst: *mut c_void, had_data: u32, outcome: *mut Outcome) -> u32;
pub type FlushFn = unsafe extern "C" fn(inst: *mut c_void, outcome: *mut Outcome) -> u32;
pub type GapFn =
    unsafe extern "C" fn(inst: *mut c_void, gap: *const RawGap, outcome: *mut Outcome) -> u32;

/// What the entry symbol returns. `abi_version` and `struct_size` come first
/// so a host can refuse a foreign layout before reading anything else.
#[repr(C)]
pub struct Descriptor {
    pub abi_version: u32,
    pub struct_size: u32,
    pub name: Bytes,
    pub version: Bytes,
    pub build: Bytes,
    pub open: Option<OpenFn>,
    pub close: Option<CloseFn>,
    pub is_handled: Option<IsHandledFn>,
    pub listen: Option<ListenFn>,
    pub no_data: Option<NoDataFn>,
    pub flush: Option<FlushFn>,
    pub gap: Option<GapFn>,
    /// Capabilities, [`DESC_WANTS_FIELDS`] | [`DESC_NO_FILTER`].
    pub flags: u32,
}

/// `Descriptor::flags`: the host splits p4 records into `op` and `fields`
/// for this plugin. Without it they are left empty (the plugin reads `raw`,
/// and splits it itself with `logdaemon_sdk::p4` if it needs to), which
/// saves the host the work.
pub const DESC_WANTS_FIELDS: u32 = 1;
/// `Descriptor::flags`: the plugin's `is_handled` accepts every entry, so
/// the host does not call it.
pub const DESC_NO_FILTER: u32 = 2;

/// A descriptor that can live in a `static`.
#[repr(transparent)]
pub struct StaticDescriptor(pub Descriptor);
// SAFETY: the descriptor only holds pointers to 'static data and functions.
unsafe impl Sync for StaticDescriptor {}

pub type EntryFn = unsafe extern "C" fn() -> *const Descriptor;

/// The checked view of a plugin's descriptor.
#[derive(Clone, Copy, Debug)]
pub struct Checked {
    pub name: &'static str,
    pub version: &'static str,
    pub build: &'static str,
    pub open: OpenFn,
    pub close: CloseFn,
    pub is_handled: IsHandledFn,
    pub listen: ListenFn,
    pub no_data: NoDataFn,
    pub flush: FlushFn,
    pub gap: GapFn,
    pub wants_fields: bool,
    /// Whether the host must ask `is_handled` for each entry.
    pub filters: bool,
}

/// Why a descriptor was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    Null,
    Version { found: u32 },
    TooSmall { found: u32, need: u32 },
    BadLabel { which: &'static str, why: String },
    MissingFunction(&'static str),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Null => write!(f, "the entry function returned a null descriptor"),
            HandshakeError::Version { found } => write!(
                f,
                "plugin speaks listener ABI version {found}, this logdaemon speaks version {ABI_VERSION}; rebuild the plugin against logdaemon-sdk {}",
                env!("CARGO_PKG_VERSION")
            ),
            HandshakeError::TooSmall { found, need } => {
                write!(f, "descriptor is {found} bytes, ABI version {ABI_VERSION} needs at least {need}")
            }
            HandshakeError::BadLabel { which, why } => write!(f, "descriptor {which}: {why}"),
            HandshakeError::MissingFunction(name) => write!(f, "descriptor has no `{name}` function"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Validates a descriptor returned by a plugin's entry function.
///
/// Reads `abi_version` and `struct_size` first and nothing else unless both
/// are acceptable, so a descriptor of a foreign (smaller) layout is never
/// read past its end.
///
/// # Safety
/// `ptr` must be null or point to at least 8 readable bytes, and to
/// `struct_size` readable bytes when the two header fields are accepted.
/// Labels must point to readable memory of the stated length (at most
/// [`MAX_LABEL_LEN`] is read).
pub unsafe fn check_descriptor(ptr: *const Descriptor) -> Result<Checked, HandshakeError> {
    if ptr.is_null() {
        return Err(HandshakeError::Null);
    }
    let head = ptr as *const u32;
    let abi_version = head.read_unaligned();
    if abi_version != ABI_VERSION {
        return Err(HandshakeError::Version { found: abi_version });
    }
    let struct_size = head.add(1).read_unaligned();
    // `flags` was appended after the first layout: a descriptor that ends
    // before it is accepted, asks for fields and filters.
    let need = std::mem::offset_of!(Descriptor, flags) as u32;
    if struct_size < need {
        return Err(HandshakeError::TooSmall {
            found: struct_size,
            need,
        });
    }
    let has_flags = struct_size as usize >= std::mem::size_of::<Descriptor>();
    // Fields are read through the raw pointer: a `&Descriptor` would claim
    // all of its bytes, which a first-layout descriptor does not have.
    let d = ptr;
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
        let s = b.as_slice();
        std::str::from_utf8(s).map_err(|e| HandshakeError::BadLabel {
            which,
            why: format!("not UTF-8 ({e})"),
        })
    };
    let name = label("name", (*d).name)?;
    if name.is_empty() {
        return Err(HandshakeError::BadLabel {
            which: "name",
            why: "empty".into(),
        });
    }
    Ok(Checked {
        name,
        version: label("version", (*d).version)?,
        build: label("build", (*d).build)?,
        open: (*d).open.ok_or(HandshakeError::MissingFunction("open"))?,
        close: (*d).close.ok_or(HandshakeError::MissingFunction("close"))?,
        is_handled: (*d)
            .is_handled
            .ok_or(HandshakeError::MissingFunction("is_handled"))?,
        listen: (*d)
            .listen
            .ok_or(HandshakeError::MissingFunction("listen"))?,
        no_data: (*d)
            .no_data
            .ok_or(HandshakeError::MissingFunction("no_data"))?,
        flush: (*d).flush.ok_or(HandshakeError::MissingFunction("flush"))?,
        gap: (*d).gap.ok_or(HandshakeError::MissingFunction("gap"))?,
        wants_fields: !has_flags || (*d).flags & DESC_WANTS_FIELDS != 0,
        filters: !has_flags || (*d).flags & DESC_NO_FILTER == 0,
    })
}

/// Writes `msg` into the host's buffer, truncating on a UTF-8 boundary.
///
/// # Safety
/// `outcome` must be null or valid, with `msg` pointing to `msg_cap` writable bytes.
pub unsafe fn write_message(outcome: *mut Outcome, msg: &str) {
    if outcome.is_null() {
        return;
    }
    let o = &mut *outcome;
    if o.msg.is_null() || o.msg_cap == 0 {
        return;
    }
    let mut n = msg.len().min(o.msg_cap);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    std::ptr::copy_nonoverlapping(msg.as_ptr(), o.msg, n);
    o.msg_len = n;
}

#[cfg(test)]
mod tests {
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
        }
    }

    #[test]
    fn accepts_a_good_descriptor() {
        let d = good();
        let c = unsafe { check_descriptor(&d) }.unwrap();
        assert_eq!(c.name, "t");
    }

    #[test]
    fn refuses_wrong_version_size_and_missing_functions() {
        let mut d = good();
        d.abi_version = 2;
        assert_eq!(
            unsafe { check_descriptor(&d) }.unwrap_err(),
            HandshakeError::Version { found: 2 }
        );
        let mut d = good();
        d.struct_size = 8;
        assert!(matches!(
            unsafe { check_descriptor(&d) },
            Err(HandshakeError::TooSmall { .. })
        ));
        let mut d = good();
        d.listen = None;
        assert_eq!(
            unsafe { check_descriptor(&d) }.unwrap_err(),
            HandshakeError::MissingFunction("listen")
        );
        let mut d = good();
        d.name = Bytes::from_static(b"\xff");
        assert!(matches!(
            unsafe { check_descriptor(&d) },
            Err(HandshakeError::BadLabel { which: "name", .. })
        ));
        assert_eq!(
            unsafe { check_descriptor(std::ptr::null()) }.unwrap_err(),
            HandshakeError::Null
        );
    }

    #[test]
    fn a_descriptor_of_the_first_layout_is_accepted_and_wants_fields() {
        let mut d = good();
        d.flags = DESC_NO_FILTER;
        d.struct_size = std::mem::offset_of!(Descriptor, flags) as u32;
        let c = unsafe { check_descriptor(&d) }.unwrap();
        assert!(c.wants_fields && c.filters);
        d.struct_size = std::mem::size_of::<Descriptor>() as u32;
        let c = unsafe { check_descriptor(&d) }.unwrap();
        assert!(!c.wants_fields && !c.filters);
    }

    #[test]
    fn message_is_truncated_on_a_char_boundary() {
        let mut buf = [0u8; 4];
        let mut o = Outcome {
            ack: RawPosition::default(),
            msg: buf.as_mut_ptr(),
            msg_cap: 4,
            msg_len: 0,
        };
        unsafe { write_message(&mut o, "abcé") };
        assert_eq!(o.msg_len, 3);
        assert_eq!(&buf[..3], b"abc");
    }
}
