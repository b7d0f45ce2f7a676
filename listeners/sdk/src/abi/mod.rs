//! The raw, `#[repr(C)]` side of the plugin boundary: ABI version 2.
//!
//! This module is the source of the C header `include/logdaemon.h`
//! (generated with cbindgen, see `cbindgen.toml`; a test fails when the
//! checked-in header is stale). The rules a plugin author needs — threads,
//! lifetimes, ownership, the handshake, sentinels — are written in the
//! header's preamble and on each item here.
//!
//! Stability rules: fields are only ever appended to a struct, never
//! reordered or removed; every struct that may grow carries its size in
//! its first field (`struct_size`) so either side can tell how much of it
//! the other knows. A change that cannot follow these rules bumps
//! [`ABI_VERSION`] and with it the exported symbol's name. The host keeps
//! loading version-1 plugins (the layouts of [`v1`]).

use std::ffi::c_void;

mod handshake;
pub mod v1;

pub use handshake::{
    check_descriptor, check_descriptor_v1, AnyCalls, Calls, Checked, HandshakeError,
};

/// The ABI version this crate speaks.
pub const ABI_VERSION: u32 = 2;

/// The one symbol a plugin exports (NUL-terminated for `dlsym`).
pub const ENTRY_SYMBOL: &[u8] = b"logdaemon_listener_v2\0";

/// Upper bound on the name, version and build strings of a descriptor.
pub const MAX_LABEL_LEN: usize = 256;

/// A borrowed byte slice, valid only for the duration of the call it is
/// passed to (labels of a descriptor: for the life of the process).
///
/// An empty slice may have any pointer, including null or the non-null
/// "dangling" address the host uses for empty Rust slices (e.g. `0x1`):
/// never dereference `ptr` when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Bytes {
    pub ptr: *const u8,
    pub len: usize,
}

impl Bytes {
    /// The empty slice, with a non-null dangling pointer.
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

    #[inline]
    pub fn new(s: &[u8]) -> Bytes {
        Bytes {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive `'a`
    /// (or `len` must be 0).
    #[inline]
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: non-null with `len` readable bytes for `'a` (the caller's promise).
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// Result of every call into a plugin (a `uint32_t` on the wire).
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
    /// Any value the host does not know is read as `Fatal`.
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
///
/// Entries come as an array whose stride is the first entry's
/// `struct_size` (every entry of one call has the same): index it as
/// `(const char *)entries + i * entries[0].struct_size`, and read only the
/// fields that lie within `struct_size` (a newer host appends fields; an
/// older one may end before the fields a newer plugin knows).
///
/// Everything the entry points to is owned by the host and valid until the
/// call that received it returns: copy what you keep.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawEntry {
    /// Size of this struct as the host knows it, in bytes (the array's stride).
    pub struct_size: u32,
    /// `FLAG_DID_ROTATE` | `FLAG_INCOMPLETE`.
    pub flags: u32,
    /// The journal's configured name.
    pub journal: Bytes,
    /// Journal sequence (p4 journal number, or rotation generation of a line log).
    pub sequence: u64,
    /// Byte offset of the record in its (uncompressed) file.
    pub offset: u64,
    /// Length in bytes, including the terminating newline (= `raw.len`).
    pub len: u64,
    /// 1-based number of the record's first line.
    pub line: u64,
    /// Number of physical lines the record spans.
    pub lines: u64,
    /// The record's bytes exactly as in the file.
    pub raw: Bytes,
    /// p4, when the plugin asked for fields: the op (`pv`, `ex`, ...); else empty.
    pub op: Bytes,
    /// p4, when the plugin asked for fields: the values after the op,
    /// unquoted (`@@` is `@`); else null with `n_fields` 0.
    pub fields: *const Bytes,
    pub n_fields: usize,
    /// The host buffer that holds `raw` (`raw` lies within it). Entries of
    /// one call whose `raw` follow each other within the same `chunk` can
    /// be written as one run of bytes; never join slices of different
    /// chunks. May be empty: then `raw` stands alone.
    pub chunk: Bytes,
}

impl RawEntry {
    /// `struct_size` of this layout.
    pub const SIZE: u32 = std::mem::size_of::<RawEntry>() as u32;
    /// The smallest `struct_size` a version-2 entry may have (the first
    /// version-2 layout ends after `chunk`).
    pub const MIN_SIZE: u32 = std::mem::size_of::<RawEntry>() as u32;
}

/// A run of whole records that lie end to end in one host buffer: what a
/// listener that takes runs (`Descriptor::takes_runs`) gets instead of one
/// [`RawEntry`] per record. Catching up on small records, building and
/// walking an entry per record costs more than writing the bytes.
///
/// Runs come as an array whose stride is the first run's `struct_size`, as
/// entries do. The runs of one call follow each other in stream order, with
/// no bytes between them other than those of gaps reported through `gap`.
/// A run never spans two files: all its records share `sequence`.
///
/// Everything the run points to is owned by the host and valid until the
/// call that received it returns: copy what you keep.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawRun {
    /// Size of this struct as the host knows it, in bytes (the array's stride).
    pub struct_size: u32,
    /// The flags of the run's first record (`FLAG_DID_ROTATE`,
    /// `FLAG_INCOMPLETE`); its other records have none. A record with
    /// `FLAG_INCOMPLETE` is always a run of its own.
    pub flags: u32,
    /// The journal's configured name.
    pub journal: Bytes,
    /// Journal sequence of every record of the run.
    pub sequence: u64,
    /// Byte offset of the run's first record in its (uncompressed) file.
    pub offset: u64,
    /// 1-based number of the first record's first line.
    pub line: u64,
    /// Number of physical lines all the run's records span.
    pub lines: u64,
    /// Number of records in the run (at least 1).
    pub records: u64,
    /// The records' bytes exactly as in the file, end to end: the run ends
    /// at `offset + raw.len`.
    pub raw: Bytes,
}

impl RawRun {
    /// `struct_size` of this layout.
    pub const SIZE: u32 = std::mem::size_of::<RawRun>() as u32;
}

/// A position in a journal stream. Positions order by `(sequence, offset)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RawPosition {
    pub sequence: u64,
    pub offset: u64,
    /// 1-based line number at `offset`.
    pub line: u64,
}

/// The `Outcome::ack` sentinel "nothing beyond the previous
/// acknowledgement": a failing call that got nothing durably done sets it.
pub const NO_ACK: RawPosition = RawPosition {
    sequence: u64::MAX,
    offset: u64::MAX,
    line: 0,
};

/// Why bytes could not be delivered (`RawGap::cause_code`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GapCause {
    /// A file was deleted before it was read to its end.
    Deleted = 1,
    /// The live file was truncated in place (`copytruncate` or by hand).
    Copytruncate = 2,
    /// The bytes cannot be framed or decompressed.
    Corrupt = 3,
    /// The file holds NUL bytes where records were expected.
    NulFill = 4,
    /// The operator moved the cursor past them.
    Operator = 5,
    /// The live file was truncated before they were read and no copy of
    /// it was found.
    Truncated = 6,
}

impl std::fmt::Display for GapCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl GapCause {
    /// The cause's name, as in `RawGap::cause` and the logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            GapCause::Deleted => "deleted",
            GapCause::Copytruncate => "copytruncate",
            GapCause::Corrupt => "corrupt",
            GapCause::NulFill => "nul-fill",
            GapCause::Operator => "operator",
            GapCause::Truncated => "truncated",
        }
    }

    /// The cause of a name as [`GapCause::as_str`] writes it (in a
    /// checkpoint's `pending_gap`); unknown names are `None`.
    pub fn from_name(s: &str) -> Option<GapCause> {
        (1..=6)
            .filter_map(GapCause::from_u32)
            .find(|c| c.as_str() == s)
    }

    /// Maps a code from the wire; unknown codes are `None`.
    pub fn from_u32(v: u32) -> Option<GapCause> {
        Some(match v {
            1 => GapCause::Deleted,
            2 => GapCause::Copytruncate,
            3 => GapCause::Corrupt,
            4 => GapCause::NulFill,
            5 => GapCause::Operator,
            6 => GapCause::Truncated,
            _ => return None,
        })
    }
}

/// Bytes that the host knows existed and can no longer deliver.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawGap {
    /// Size of this struct as the host knows it, in bytes.
    pub struct_size: u32,
    /// A `GapCause`; a plugin must accept codes it does not know.
    pub cause_code: u32,
    pub journal: Bytes,
    pub from: RawPosition,
    pub to: RawPosition,
    /// The cause's name: `deleted`, `copytruncate`, `truncated`, `corrupt`,
    /// `nul-fill`, `operator`.
    pub cause: Bytes,
    /// Human-readable detail.
    pub detail: Bytes,
}

/// `HostApi::log` levels.
pub const LEVEL_ERROR: u32 = 1;
pub const LEVEL_WARN: u32 = 2;
pub const LEVEL_INFO: u32 = 3;
pub const LEVEL_DEBUG: u32 = 4;

/// Services the host offers a plugin; valid for the life of the process.
/// `log` may be called from any thread, at any time, also from threads the
/// plugin started and after the instance was closed; it never unwinds.
#[repr(C)]
pub struct HostApi {
    pub struct_size: u32,
    /// Log `msg` (UTF-8; invalid bytes are replaced) through the daemon's
    /// logger, tagged with the journal and listener. `ctx` is `HostApi::ctx`.
    pub log: unsafe extern "C" fn(ctx: *const c_void, level: u32, msg: Bytes),
    pub ctx: *const c_void,
    /// How many times the daemon was told to stop (SIGTERM/SIGINT): 0 while
    /// it runs, 1 after the first request, 2 or more when the operator
    /// insists. Appended to the first layout: a plugin reads it only when
    /// `struct_size` covers it. May be called from any thread; never unwinds.
    pub stop_requests: StopRequestsFn,
}

/// `HostApi::stop_requests`: null in a host that does not offer it.
pub type StopRequestsFn = Option<unsafe extern "C" fn(ctx: *const c_void) -> u32>;

/// Arguments of `Descriptor::open`; the strings are valid during `open`
/// only, `host` for the life of the process.
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
/// durable, which must be a record boundary: the end (or start) of an
/// entry delivered since the last acknowledgement, the position of a gap,
/// or the previous acknowledgement. The host refuses any other position
/// (it logs it and treats the call as `STATUS_ERROR`: the entries after the
/// last good acknowledgement come again); it never records it. A failing
/// call sets `NO_ACK` when nothing beyond the previous acknowledgement is
/// durable. Held entries are delivered again after a crash or a failure.
#[repr(C)]
pub struct Outcome {
    /// Size of this struct as the host knows it, in bytes.
    pub struct_size: u32,
    pub ack: RawPosition,
    /// Host-owned buffer for a message; the plugin writes at most `msg_cap`
    /// bytes of UTF-8 (no NUL needed) and sets `msg_len`.
    pub msg: *mut u8,
    pub msg_cap: usize,
    pub msg_len: usize,
}

impl Outcome {
    /// `struct_size` of this layout.
    pub const SIZE: u32 = std::mem::size_of::<Outcome>() as u32;
}

/// Creates an instance; on success stores it in `*out` and returns
/// `STATUS_OK`. Called once per configured listener, possibly several
/// times for one library (one per listener using it).
pub type OpenFn = unsafe extern "C" fn(
    args: *const OpenArgs,
    out: *mut *mut c_void,
    outcome: *mut Outcome,
) -> u32;
/// Frees an instance; no call on it follows.
pub type CloseFn = unsafe extern "C" fn(inst: *mut c_void);
/// Non-zero: deliver `entry` to `listen`. Zero: skip it (it still moves the cursor).
pub type IsHandledFn = unsafe extern "C" fn(inst: *mut c_void, entry: *const RawEntry) -> u32;
/// A batch of `n` handled entries, in journal order (`n` ≥ 1).
pub type ListenFn = unsafe extern "C" fn(
    inst: *mut c_void,
    entries: *const RawEntry,
    n: usize,
    outcome: *mut Outcome,
) -> u32;
/// The journal has been quiet for `quiet_after`; `had_data` is non-zero on
/// the first call after entries arrived.
pub type NoDataFn =
    unsafe extern "C" fn(inst: *mut c_void, had_data: u32, outcome: *mut Outcome) -> u32;
/// Make everything durable: the host writes its checkpoint next.
pub type FlushFn = unsafe extern "C" fn(inst: *mut c_void, outcome: *mut Outcome) -> u32;
/// Bytes that can no longer be delivered (only with `on_gap = "report"`).
pub type GapFn =
    unsafe extern "C" fn(inst: *mut c_void, gap: *const RawGap, outcome: *mut Outcome) -> u32;
/// Validates the listener's configuration as `open` would, with no side
/// effects: no instance, no file or directory created, no connection, no
/// process started. `STATUS_OK` when `open` would accept the config; any
/// other status refuses it with the message in `outcome`.
pub type CheckFn = unsafe extern "C" fn(args: *const OpenArgs, outcome: *mut Outcome) -> u32;

/// Non-zero: this instance takes its batches as runs (`listen_runs`)
/// rather than entries (`listen`). Asked once, right after `open`.
pub type TakesRunsFn = unsafe extern "C" fn(inst: *mut c_void) -> u32;
/// A batch as `n` runs of whole records, in journal order (`n` ≥ 1). The
/// acknowledgement rules of `listen` hold, with runs for entries: the start
/// or end of a run is a record boundary.
pub type ListenRunsFn = unsafe extern "C" fn(
    inst: *mut c_void,
    runs: *const RawRun,
    n: usize,
    outcome: *mut Outcome,
) -> u32;

/// What the entry symbol returns. `abi_version` and `struct_size` come first
/// so a host can refuse a foreign layout before reading anything else.
/// The descriptor and its labels must live as long as the process.
#[repr(C)]
pub struct Descriptor {
    /// `ABI_VERSION` (2).
    pub abi_version: u32,
    /// `sizeof(LdDescriptor)`.
    pub struct_size: u32,
    /// Non-empty UTF-8, at most `MAX_LABEL_LEN` bytes.
    pub name: Bytes,
    /// UTF-8, at most `MAX_LABEL_LEN` bytes.
    pub version: Bytes,
    /// UTF-8, at most `MAX_LABEL_LEN` bytes.
    pub build: Bytes,
    // The function types are spelled out (they are `OpenFn`, `CloseFn`,
    // ...) so that the C header gets nullable function pointers.
    /// `OpenFn`.
    pub open: Option<
        unsafe extern "C" fn(
            args: *const OpenArgs,
            out: *mut *mut c_void,
            outcome: *mut Outcome,
        ) -> u32,
    >,
    /// `CloseFn`.
    pub close: Option<unsafe extern "C" fn(inst: *mut c_void)>,
    /// `IsHandledFn`.
    pub is_handled: Option<unsafe extern "C" fn(inst: *mut c_void, entry: *const RawEntry) -> u32>,
    /// `ListenFn`.
    pub listen: Option<
        unsafe extern "C" fn(
            inst: *mut c_void,
            entries: *const RawEntry,
            n: usize,
            outcome: *mut Outcome,
        ) -> u32,
    >,
    /// `NoDataFn`.
    pub no_data: Option<
        unsafe extern "C" fn(inst: *mut c_void, had_data: u32, outcome: *mut Outcome) -> u32,
    >,
    /// `FlushFn`.
    pub flush: Option<unsafe extern "C" fn(inst: *mut c_void, outcome: *mut Outcome) -> u32>,
    /// `GapFn`.
    pub gap: Option<
        unsafe extern "C" fn(inst: *mut c_void, gap: *const RawGap, outcome: *mut Outcome) -> u32,
    >,
    /// Capabilities, `DESC_WANTS_FIELDS` | `DESC_NO_FILTER` | `DESC_QUIET_ONCE`.
    pub flags: u32,
    /// `CheckFn`, optional (null: the plugin has no check). Appended to the
    /// first version-2 layout: the host reads it only when `struct_size`
    /// covers it, and calls it (for `logdaemon check`) instead of `open`.
    pub check: Option<unsafe extern "C" fn(args: *const OpenArgs, outcome: *mut Outcome) -> u32>,
    /// `TakesRunsFn`, optional, with `listen_runs`. Appended after
    /// `check`: the host reads both only when `struct_size` covers them,
    /// and uses them only when both are there and the plugin does not
    /// filter (`DESC_NO_FILTER`): the host then asks `takes_runs` once per
    /// instance, right after `open`, and hands the batches it follows for
    /// an instance that said yes to `listen_runs` instead of `listen`
    /// (`listen` must still work: a replay hands entries).
    pub takes_runs: Option<unsafe extern "C" fn(inst: *mut c_void) -> u32>,
    /// `ListenRunsFn`, optional (see `takes_runs`).
    pub listen_runs: Option<
        unsafe extern "C" fn(
            inst: *mut c_void,
            runs: *const RawRun,
            n: usize,
            outcome: *mut Outcome,
        ) -> u32,
    >,
}

/// `Descriptor::flags`: the host splits p4 records into `op` and `fields`
/// for this plugin. Without it they are left empty (the plugin reads `raw`,
/// and splits it itself with `logdaemon_sdk::p4` if it needs to), which
/// saves the host the work.
pub const DESC_WANTS_FIELDS: u32 = 1;
/// `Descriptor::flags`: the plugin's `is_handled` accepts every entry, so
/// the host does not call it.
pub const DESC_NO_FILTER: u32 = 2;

/// `Descriptor::flags`: the plugin has no use for the periodic
/// `no_data(had_data = false)` calls of a journal that stays quiet. The
/// host calls `no_data` once after entries stop coming (`had_data` true),
/// then not again until more entries came: an idle journal then costs no
/// call at all, which matters when one daemon follows thousands.
pub const DESC_QUIET_ONCE: u32 = 4;

/// A descriptor that can live in a `static`.
#[repr(transparent)]
pub struct StaticDescriptor(pub Descriptor);
// SAFETY: the descriptor only holds pointers to 'static data and functions.
unsafe impl Sync for StaticDescriptor {}

/// The type of the entry symbol.
pub type EntryFn = unsafe extern "C" fn() -> *const Descriptor;

/// Writes `msg` into the host's buffer, truncating on a UTF-8 boundary.
///
/// # Safety
/// `outcome` must be null or valid, with `msg` pointing to `msg_cap` writable bytes.
pub unsafe fn write_message(outcome: *mut Outcome, msg: &str) {
    if outcome.is_null() {
        return;
    }
    // SAFETY: non-null and valid (the caller's promise).
    let o = unsafe { &mut *outcome };
    if o.msg.is_null() || o.msg_cap == 0 {
        return;
    }
    let mut n = msg.len().min(o.msg_cap);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: `o.msg` has `msg_cap` ≥ `n` writable bytes, which cannot
    // overlap the borrowed `msg`.
    unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), o.msg, n) };
    o.msg_len = n;
}

/// Sets `outcome.ack` when the outcome is there.
///
/// # Safety
/// `outcome` must be null or valid.
pub(crate) unsafe fn set_ack(outcome: *mut Outcome, ack: RawPosition) {
    if !outcome.is_null() {
        // SAFETY: non-null and valid (the caller's promise).
        unsafe { (*outcome).ack = ack };
    }
}

#[cfg(test)]
mod tests;
