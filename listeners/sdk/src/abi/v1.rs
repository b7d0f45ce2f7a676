//! ABI version 1, as it shipped: the layouts a plugin built against it
//! exports and expects. The host still loads such plugins (symbol
//! `logdaemon_listener_v1`) and hands them these structs; new plugins use
//! version 2, whose per-entry and per-call structs carry their size.

use std::ffi::c_void;

use super::{Bytes, OpenArgs, RawPosition};

/// The version-1 entry symbol (NUL-terminated for `dlsym`).
pub const ENTRY_SYMBOL_V1: &[u8] = b"logdaemon_listener_v1\0";

/// One journal record (version 1: no size, no chunk). Entries come as a
/// plain C array of this struct.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawEntryV1 {
    pub journal: Bytes,
    pub sequence: u64,
    pub offset: u64,
    pub len: u64,
    pub line: u64,
    pub lines: u64,
    pub flags: u32,
    pub raw: Bytes,
    pub op: Bytes,
    pub fields: *const Bytes,
    pub n_fields: usize,
}

/// A gap (version 1: the cause as text only).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawGapV1 {
    pub journal: Bytes,
    pub from: RawPosition,
    pub to: RawPosition,
    pub cause: Bytes,
    pub detail: Bytes,
}

/// The out-parameter of a call (version 1: no size).
#[repr(C)]
pub struct OutcomeV1 {
    pub ack: RawPosition,
    pub msg: *mut u8,
    pub msg_cap: usize,
    pub msg_len: usize,
}

pub type OpenFnV1 = unsafe extern "C" fn(
    args: *const OpenArgs,
    out: *mut *mut c_void,
    outcome: *mut OutcomeV1,
) -> u32;
pub type IsHandledFnV1 = unsafe extern "C" fn(inst: *mut c_void, entry: *const RawEntryV1) -> u32;
pub type ListenFnV1 = unsafe extern "C" fn(
    inst: *mut c_void,
    entries: *const RawEntryV1,
    n: usize,
    outcome: *mut OutcomeV1,
) -> u32;
pub type NoDataFnV1 =
    unsafe extern "C" fn(inst: *mut c_void, had_data: u32, outcome: *mut OutcomeV1) -> u32;
pub type FlushFnV1 = unsafe extern "C" fn(inst: *mut c_void, outcome: *mut OutcomeV1) -> u32;
pub type GapFnV1 =
    unsafe extern "C" fn(inst: *mut c_void, gap: *const RawGapV1, outcome: *mut OutcomeV1) -> u32;

/// The version-1 descriptor: the same bytes as the version-2 descriptor,
/// with `abi_version` 1 and functions taking the version-1 structs.
#[repr(C)]
pub struct DescriptorV1 {
    pub abi_version: u32,
    pub struct_size: u32,
    pub name: Bytes,
    pub version: Bytes,
    pub build: Bytes,
    // Spelled out as in version 2, for nullable pointers in the C header.
    pub open: Option<
        unsafe extern "C" fn(
            args: *const OpenArgs,
            out: *mut *mut c_void,
            outcome: *mut OutcomeV1,
        ) -> u32,
    >,
    pub close: Option<unsafe extern "C" fn(inst: *mut c_void)>,
    pub is_handled:
        Option<unsafe extern "C" fn(inst: *mut c_void, entry: *const RawEntryV1) -> u32>,
    pub listen: Option<
        unsafe extern "C" fn(
            inst: *mut c_void,
            entries: *const RawEntryV1,
            n: usize,
            outcome: *mut OutcomeV1,
        ) -> u32,
    >,
    pub no_data: Option<
        unsafe extern "C" fn(inst: *mut c_void, had_data: u32, outcome: *mut OutcomeV1) -> u32,
    >,
    pub flush: Option<unsafe extern "C" fn(inst: *mut c_void, outcome: *mut OutcomeV1) -> u32>,
    pub gap: Option<
        unsafe extern "C" fn(
            inst: *mut c_void,
            gap: *const RawGapV1,
            outcome: *mut OutcomeV1,
        ) -> u32,
    >,
    pub flags: u32,
}

/// The version-1 entry symbol's type.
pub type EntryFnV1 = unsafe extern "C" fn() -> *const DescriptorV1;

/// The version-1 functions of a checked descriptor.
#[derive(Clone, Copy, Debug)]
pub struct CallsV1 {
    pub open: OpenFnV1,
    pub close: super::CloseFn,
    pub is_handled: IsHandledFnV1,
    pub listen: ListenFnV1,
    pub no_data: NoDataFnV1,
    pub flush: FlushFnV1,
    pub gap: GapFnV1,
}

impl RawEntryV1 {
    /// The version-1 view of a version-2 entry (the same pointers).
    pub fn from_v2(e: &super::RawEntry) -> RawEntryV1 {
        RawEntryV1 {
            journal: e.journal,
            sequence: e.sequence,
            offset: e.offset,
            len: e.len,
            line: e.line,
            lines: e.lines,
            flags: e.flags,
            raw: e.raw,
            op: e.op,
            fields: e.fields,
            n_fields: e.n_fields,
        }
    }
}
