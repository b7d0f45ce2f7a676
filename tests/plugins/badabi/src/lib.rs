//! A library that exports the listener entry symbol but describes itself
//! with ABI version 99 and a layout of its own: the host must refuse it
//! after reading the two header fields and before touching anything else.

use std::ffi::c_void;

/// The version this library claims; no host speaks it.
pub const CLAIMED_ABI_VERSION: u32 = 99;

/// A descriptor of a future, foreign layout: the same two header fields as
/// every version (`abi_version`, `struct_size`), then nothing this host knows.
#[repr(C)]
pub struct ForeignDescriptor {
    pub abi_version: u32,
    pub struct_size: u32,
    pub opaque: [usize; 32],
}

static DESCRIPTOR: ForeignDescriptor = ForeignDescriptor {
    abi_version: CLAIMED_ABI_VERSION,
    struct_size: std::mem::size_of::<ForeignDescriptor>() as u32,
    opaque: [0; 32],
};

/// The entry symbol, with a descriptor of the wrong version.
#[no_mangle]
pub extern "C" fn logdaemon_listener_v1() -> *const c_void {
    &DESCRIPTOR as *const ForeignDescriptor as *const c_void
}
