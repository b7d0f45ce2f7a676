//! The fuzz target of the plugin handshake: a descriptor built from
//! arbitrary bytes, checked as the host checks a loaded plugin's, against
//! a model of the rules.

use super::Take;

/// Fuzz target `plugin_descriptor`: a [`logdaemon_sdk::abi::Descriptor`]
/// built from the input, checked by [`logdaemon_sdk::abi::check_descriptor`]
/// exactly as the host checks a loaded plugin's. Returns whether it was
/// accepted.
///
/// Input: flags (bit 0: `abi_version` from the next 4 bytes instead of
/// [`ABI_VERSION`](logdaemon_sdk::abi::ABI_VERSION); bit 1: `struct_size`
/// from the next 4 bytes instead of the real size), a byte whose bit `i`
/// leaves function `i` out, the descriptor's `flags` (4 bytes), then for each label a
/// mode byte and two 16-bit numbers, and the rest is the pool the labels
/// point into. Label modes: a slice of the pool; a null pointer with a
/// length; a pointer into the pool with a length beyond [`MAX_LABEL_LEN`]
/// that no memory backs; the empty label.
///
/// The descriptor lives in an allocation of exactly `struct_size` bytes
/// (at least the 8 header bytes, at most the struct) and the pool in one of
/// exactly its size, so under the address sanitizer any read past what the
/// rules allow is caught. Invariant: the result, accepted or refused with
/// which reason, is the one the rules give (version, `struct_size` reaching
/// at least `flags` — the first layout ended before it —, labels at
/// most [`MAX_LABEL_LEN`] bytes of UTF-8 with a non-empty name, every
/// function present), and an accepted descriptor yields exactly its labels,
/// functions and capabilities (fields and filtering implied when the
/// layout has no `flags`).
///
/// [`MAX_LABEL_LEN`]: logdaemon_sdk::abi::MAX_LABEL_LEN
pub fn plugin_descriptor(data: &[u8]) -> bool {
    use logdaemon_sdk::abi::{
        check_descriptor, Bytes, Descriptor, HandshakeError, ABI_VERSION, MAX_LABEL_LEN,
    };

    let mut t = Take(data);
    let flags = t.u8();
    let abi_version = if flags & 1 == 0 { ABI_VERSION } else { t.u32() };
    let full = std::mem::size_of::<Descriptor>();
    // The first layout ended before `flags`; it is still accepted.
    let need = std::mem::offset_of!(Descriptor, flags);
    let struct_size = if flags & 2 == 0 { full as u32 } else { t.u32() };
    let missing = t.u8();
    let desc_flags = t.u32();
    let specs = [
        (t.u8(), t.u16(), t.u16()),
        (t.u8(), t.u16(), t.u16()),
        (t.u8(), t.u16(), t.u16()),
    ];
    let pool: Box<[u8]> = t.rest().into();

    // Each label and, when memory backs it, the bytes it stands for.
    let labels = specs.map(|(mode, a, b)| {
        let off = usize::from(a) % (pool.len() + 1);
        match mode % 4 {
            0 => {
                let len = usize::from(b) % (pool.len() - off + 1);
                (
                    Bytes::new(&pool[off..off + len]),
                    Some(&pool[off..off + len]),
                )
            }
            1 => (
                Bytes {
                    ptr: std::ptr::null(),
                    len: usize::from(b),
                },
                (b == 0).then_some(&[][..]),
            ),
            2 => (
                Bytes {
                    ptr: pool.as_ptr().wrapping_add(off),
                    len: MAX_LABEL_LEN + 1 + usize::from(b),
                },
                None,
            ),
            _ => (Bytes::EMPTY, Some(&[][..])),
        }
    });
    let [(name, name_bytes), (version, version_bytes), (build, build_bytes)] = labels;
    let present = |i: u32| missing & (1 << i) == 0;
    let desc = Descriptor {
        abi_version,
        struct_size,
        name,
        version,
        build,
        open: present(0).then_some(plugin_fns::open as _),
        close: present(1).then_some(plugin_fns::close as _),
        is_handled: present(2).then_some(plugin_fns::is_handled as _),
        listen: present(3).then_some(plugin_fns::listen as _),
        no_data: present(4).then_some(plugin_fns::no_data as _),
        flush: present(5).then_some(plugin_fns::flush as _),
        gap: present(6).then_some(plugin_fns::gap as _),
        flags: desc_flags,
        check: present(7).then_some(plugin_fns::check as _),
        takes_runs: None,
        listen_runs: None,
    };

    // What the rules say, in the order the host checks them.
    #[derive(Debug, PartialEq)]
    enum Verdict {
        Accept,
        Version(u32),
        TooSmall(u32),
        Label(&'static str),
        Missing(&'static str),
    }
    let label_ok = |b: &Bytes, backing: Option<&[u8]>| {
        b.len <= MAX_LABEL_LEN
            && !(b.len > 0 && b.ptr.is_null())
            && std::str::from_utf8(backing.expect("backed")).is_ok()
    };
    let fns = [
        ("open", desc.open.is_some()),
        ("close", desc.close.is_some()),
        ("is_handled", desc.is_handled.is_some()),
        ("listen", desc.listen.is_some()),
        ("no_data", desc.no_data.is_some()),
        ("flush", desc.flush.is_some()),
        ("gap", desc.gap.is_some()),
    ];
    let expected = if abi_version != ABI_VERSION {
        Verdict::Version(abi_version)
    } else if (struct_size as usize) < need {
        Verdict::TooSmall(struct_size)
    } else if !label_ok(&desc.name, name_bytes) || desc.name.len == 0 {
        Verdict::Label("name")
    } else if !label_ok(&desc.version, version_bytes) {
        Verdict::Label("version")
    } else if !label_ok(&desc.build, build_bytes) {
        Verdict::Label("build")
    } else if let Some((f, _)) = fns.iter().find(|(_, there)| !there) {
        Verdict::Missing(f)
    } else {
        Verdict::Accept
    };

    // The plugin's memory: the descriptor's first `struct_size` bytes (the
    // header at least, the whole struct at most), nothing after them.
    let block = Block::new((struct_size as usize).clamp(8, full));
    // SAFETY: the block holds `block.len` ≤ size_of::<Descriptor>() bytes,
    // which are copied from a whole descriptor.
    let result = unsafe {
        std::ptr::copy_nonoverlapping(
            &desc as *const Descriptor as *const u8,
            block.ptr,
            block.len,
        );
        check_descriptor(block.ptr as *const Descriptor)
    };
    let got = match &result {
        Ok(_) => Verdict::Accept,
        Err(HandshakeError::Version { found, .. }) => Verdict::Version(*found),
        Err(HandshakeError::TooSmall { found, need: n }) => {
            assert_eq!(*n as usize, need);
            Verdict::TooSmall(*found)
        }
        Err(HandshakeError::BadLabel { which, .. }) => Verdict::Label(which),
        Err(HandshakeError::MissingFunction(f)) => Verdict::Missing(f),
        Err(HandshakeError::Null) => panic!("a non-null descriptor refused as null"),
    };
    assert_eq!(got, expected, "descriptor verdict ({result:?})");
    if let Ok(c) = result {
        assert_eq!(c.name.as_bytes(), name_bytes.expect("backed"));
        assert_eq!(c.version.as_bytes(), version_bytes.expect("backed"));
        assert_eq!(c.build.as_bytes(), build_bytes.expect("backed"));
        let has_flag = struct_size as usize >= std::mem::offset_of!(Descriptor, flags) + 4;
        assert_eq!(
            c.wants_fields,
            !has_flag || desc_flags & logdaemon_sdk::abi::DESC_WANTS_FIELDS != 0,
            "wants_fields (present: {has_flag})"
        );
        assert_eq!(
            c.filters,
            !has_flag || desc_flags & logdaemon_sdk::abi::DESC_NO_FILTER == 0,
            "filters (present: {has_flag})"
        );
        let logdaemon_sdk::abi::AnyCalls::V2(c) = c.calls else {
            panic!("a version-2 descriptor checked as another version")
        };
        assert_eq!(
            c.check.map(|f| f as usize),
            (present(7) && struct_size as usize >= full)
                .then_some(plugin_fns::check as logdaemon_sdk::abi::CheckFn as usize),
            "check read only when the descriptor covers it"
        );
        let addrs = [
            c.open as usize,
            c.close as usize,
            c.is_handled as usize,
            c.listen as usize,
            c.no_data as usize,
            c.flush as usize,
            c.gap as usize,
        ];
        assert_eq!(
            addrs,
            plugin_fns::addresses(),
            "functions handed back unchanged"
        );
    }
    drop(pool);
    expected == Verdict::Accept
}

/// An allocation of exactly `len` bytes, aligned for a descriptor, freed on drop.
struct Block {
    ptr: *mut u8,
    len: usize,
}

impl Block {
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(
            len,
            std::mem::align_of::<logdaemon_sdk::abi::Descriptor>(),
        )
        .expect("layout")
    }

    fn new(len: usize) -> Block {
        // SAFETY: `len` is at least 8, so the layout is not zero-sized.
        let ptr = unsafe { std::alloc::alloc(Self::layout(len)) };
        assert!(!ptr.is_null(), "out of memory");
        Block { ptr, len }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout.
        unsafe { std::alloc::dealloc(self.ptr, Self::layout(self.len)) }
    }
}

/// Real `extern "C"` functions of each descriptor slot's type, so a
/// descriptor built from fuzz input points at callable code.
mod plugin_fns {
    use logdaemon_sdk::abi::{
        CloseFn, FlushFn, GapFn, IsHandledFn, ListenFn, NoDataFn, OpenArgs, OpenFn, Outcome,
        RawEntry, RawGap,
    };
    use std::ffi::c_void;

    pub unsafe extern "C" fn open(_: *const OpenArgs, _: *mut *mut c_void, _: *mut Outcome) -> u32 {
        3
    }
    pub unsafe extern "C" fn close(_: *mut c_void) {}
    pub unsafe extern "C" fn is_handled(_: *mut c_void, _: *const RawEntry) -> u32 {
        1
    }
    pub unsafe extern "C" fn listen(
        _: *mut c_void,
        _: *const RawEntry,
        _: usize,
        _: *mut Outcome,
    ) -> u32 {
        3
    }
    pub unsafe extern "C" fn no_data(_: *mut c_void, _: u32, _: *mut Outcome) -> u32 {
        3
    }
    pub unsafe extern "C" fn flush(_: *mut c_void, _: *mut Outcome) -> u32 {
        3
    }
    pub unsafe extern "C" fn gap(_: *mut c_void, _: *const RawGap, _: *mut Outcome) -> u32 {
        3
    }
    pub unsafe extern "C" fn check(_: *const OpenArgs, _: *mut Outcome) -> u32 {
        3
    }

    /// The functions' addresses, in descriptor order.
    pub fn addresses() -> [usize; 7] {
        [
            open as OpenFn as usize,
            close as CloseFn as usize,
            is_handled as IsHandledFn as usize,
            listen as ListenFn as usize,
            no_data as NoDataFn as usize,
            flush as FlushFn as usize,
            gap as GapFn as usize,
        ]
    }
}
