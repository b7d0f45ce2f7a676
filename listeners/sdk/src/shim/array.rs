//! Reading the host's arrays of entries and runs, whose stride is the
//! first item's `struct_size`: a newer host's larger layout is copied down
//! to this crate's, an unknown smaller one is refused.

use std::borrow::Cow;

use crate::abi::{self, RawEntry, RawRun};
use crate::listener::Failure;

/// The structs the host hands over in arrays whose stride is the first
/// one's `struct_size` (its first field).
pub(super) trait Strided: Copy {
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
pub(super) unsafe fn host_array<'a, T: Strided>(
    items: *const T,
    n: usize,
) -> Result<Cow<'a, [T]>, Failure> {
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
