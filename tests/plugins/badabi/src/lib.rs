//! A library that exports the listener entry symbol but describes itself
//! with ABI version 99: the host must refuse it after reading the version
//! and before touching anything else of the descriptor.

use logdaemon_sdk::abi::{Bytes, Descriptor, StaticDescriptor};

/// The version this library claims; no host speaks it.
pub const CLAIMED_ABI_VERSION: u32 = 99;

static DESCRIPTOR: StaticDescriptor = StaticDescriptor(Descriptor {
    abi_version: CLAIMED_ABI_VERSION,
    struct_size: std::mem::size_of::<Descriptor>() as u32,
    name: Bytes::from_static(b"badabi"),
    version: Bytes::from_static(env!("CARGO_PKG_VERSION").as_bytes()),
    build: Bytes::from_static(b"test"),
    open: None,
    close: None,
    is_handled: None,
    listen: None,
    no_data: None,
    flush: None,
    gap: None,
});

/// The entry symbol, with a descriptor of the wrong version.
#[no_mangle]
pub extern "C" fn logdaemon_listener_v1() -> *const Descriptor {
    &DESCRIPTOR.0
}
