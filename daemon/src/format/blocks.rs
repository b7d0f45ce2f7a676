//! The scanning core shared by the p4 and the single-line framers: find
//! record-ending newlines 128 bytes at a time.
//!
//! For each 64-byte block it builds bit masks of the newlines and the `@`
//! (SSE2 on x86-64, a plain loop elsewhere). For p4, every `@` toggles
//! "inside a string" (an escaped `@@` toggles twice, the empty string `@@`
//! opens and closes), so a prefix XOR of the `@` mask, flipped when the
//! block starts inside a string, marks the bytes inside strings; a newline
//! outside a string ends a record. For plain lines every newline does.
//!
//! Blocks are scanned in pairs (a 128-byte unit), which usually hold one or
//! more records. The scanner keeps the unit's remaining record ends, so after the caller consumed a record
//! ([`BlockScanner::consume`]) the next one costs a bit scan, not a rescan.
//! This stays exact because a record boundary always has an even `@` count
//! behind it: parity measured from an earlier boundary equals parity
//! measured from a later one.

/// Incremental record-end finder. Positions are counted from the buffer
/// start at the last [`reset`](Self::reset), so they survive the caller
/// moving its buffer start forward by consumed records.
#[derive(Debug, Default, Clone)]
pub struct BlockScanner {
    /// Whether `@` quotes (p4) or is an ordinary byte (plain lines).
    quotes: bool,
    /// The CPU has AVX2 and PCLMULQDQ (checked once, at creation).
    wide: bool,
    /// Stream position (since reset) of the current buffer's first byte.
    base: usize,
    /// Bytes before this position have been scanned.
    pos: usize,
    /// An odd number of `@` lies between the last record boundary and `pos`.
    odd: bool,
    /// Record ends (bit `i`: newline at `pos - UNIT + i`) not yet consumed,
    /// in the unit just before `pos`.
    ends: u128,
}

/// Bytes scanned per step: two 64-byte blocks, so that a step usually holds
/// a record end or two and most calls are answered from `ends`.
const UNIT: usize = 128;

impl BlockScanner {
    pub fn new(quotes: bool) -> Self {
        BlockScanner { quotes, wide: wide_available(), ..Self::default() }
    }

    /// Length of the first complete record of `buf` (which starts at the
    /// current base), if its end is in `buf`.
    #[inline]
    pub fn next(&mut self, buf: &[u8]) -> Option<usize> {
        if self.ends != 0 {
            return Some(self.pos - UNIT + self.ends.trailing_zeros() as usize + 1 - self.base);
        }
        debug_assert!(self.pos >= self.base && self.pos - self.base <= buf.len(), "buffer shrank under the framer");
        if let Some(n) = self.full_units(buf) {
            return Some(n);
        }
        let rel = self.pos - self.base;
        // Less than a unit left: scan a zero-padded copy (a zero byte is
        // neither newline nor `@`), without caching its ends.
        let rest = &buf[rel..];
        let mut unit = [0u8; UNIT];
        unit[..rest.len()].copy_from_slice(rest);
        let odd = self.odd;
        let ends = self.unit_ends::<Sse2>(&unit);
        if ends != 0 {
            self.odd = odd;
            return Some(rel + ends.trailing_zeros() as usize + 1);
        }
        self.pos += rest.len();
        None
    }

    /// The caller consumed the first `n` bytes of the buffer, a record
    /// returned by [`next`](Self::next): the next buffer starts there.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.base += n;
        // Written without branches: which case applies is data-dependent.
        let past = self.base >= self.pos;
        // Drop the ends at or before the consumed bytes (all of them when
        // the base moved past everything scanned).
        let first_kept = (self.base + UNIT).saturating_sub(self.pos);
        self.ends = if first_kept >= UNIT { 0 } else { self.ends & (!0u128 << first_kept) };
        // Past everything scanned: a fresh start at a boundary (even parity).
        self.pos = self.pos.max(self.base);
        self.odd &= !past;
    }

    pub fn reset(&mut self) {
        *self = BlockScanner { quotes: self.quotes, wide: self.wide, ..Self::default() };
    }

    /// Scans the whole units from `pos` on; stops after the first unit
    /// holding a record end and returns that record's length.
    #[inline]
    fn full_units(&mut self, buf: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if self.wide {
            // SAFETY: `wide` is only set when the CPU has AVX2 and PCLMULQDQ.
            return unsafe { self.full_units_wide(buf) };
        }
        self.full_units_with::<Sse2>(buf)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,pclmulqdq")]
    unsafe fn full_units_wide(&mut self, buf: &[u8]) -> Option<usize> {
        self.full_units_with::<Wide>(buf)
    }

    #[inline(always)]
    fn full_units_with<M: Masks>(&mut self, buf: &[u8]) -> Option<usize> {
        let mut rel = self.pos - self.base;
        while let Some(unit) = buf.get(rel..rel + UNIT) {
            let ends = self.unit_ends::<M>(unit.try_into().expect("one unit"));
            self.pos += UNIT;
            rel += UNIT;
            if ends != 0 {
                self.ends = ends;
                return Some(rel - UNIT + ends.trailing_zeros() as usize + 1);
            }
        }
        None
    }

    /// Record ends in a unit; moves the parity to the unit's end.
    #[inline(always)]
    fn unit_ends<M: Masks>(&mut self, unit: &[u8; UNIT]) -> u128 {
        let (lo, hi) = unit.split_at(64);
        let (nl_lo, at_lo) = M::masks(lo.try_into().expect("64 bytes"));
        let (nl_hi, at_hi) = M::masks(hi.try_into().expect("64 bytes"));
        let ends_lo = nl_lo & !self.inside::<M>(at_lo);
        self.odd ^= self.quotes && at_lo.count_ones() & 1 == 1;
        let ends_hi = nl_hi & !self.inside::<M>(at_hi);
        self.odd ^= self.quotes && at_hi.count_ones() & 1 == 1;
        u128::from(ends_lo) | u128::from(ends_hi) << 64
    }

    /// Bytes inside a string (bit set), given the block's `@` mask; the
    /// newline mask ANDed with its complement gives the record ends.
    #[inline(always)]
    fn inside<M: Masks>(&self, at: u64) -> u64 {
        if !self.quotes {
            return 0;
        }
        M::prefix_xor(at) ^ if self.odd { !0 } else { 0 }
    }
}

/// Whether the AVX2 + carry-less multiply scan can run on this CPU.
fn wide_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Building the per-block bit masks, one implementation per instruction set.
trait Masks {
    /// Bit `i` of the first mask is set when `block[i]` is `\n`, of the
    /// second when it is `@`.
    fn masks(block: &[u8; 64]) -> (u64, u64);
    /// Bit `i` of the result is the XOR of bits `0..=i` of `x`.
    fn prefix_xor(x: u64) -> u64;
}

/// The baseline: SSE2 on x86-64, a portable loop elsewhere.
struct Sse2;

impl Masks for Sse2 {
    #[inline(always)]
    fn masks(block: &[u8; 64]) -> (u64, u64) {
        masks(block)
    }

    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        prefix_xor(x)
    }
}

/// AVX2 compares and a carry-less multiply for the prefix XOR. Only used
/// from functions compiled with those features enabled.
#[cfg(target_arch = "x86_64")]
struct Wide;

#[cfg(target_arch = "x86_64")]
impl Masks for Wide {
    #[inline(always)]
    fn masks(block: &[u8; 64]) -> (u64, u64) {
        use std::arch::x86_64::{__m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8};
        // SAFETY: only reached through `full_units_wide` (AVX2 enabled and
        // present); the two unaligned 32-byte loads read inside `block`.
        unsafe {
            let nlv = _mm256_set1_epi8(b'\n' as i8);
            let atv = _mm256_set1_epi8(b'@' as i8);
            let lo = _mm256_loadu_si256(block.as_ptr() as *const __m256i);
            let hi = _mm256_loadu_si256(block.as_ptr().add(32) as *const __m256i);
            let nl = u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, nlv)) as u32)
                | u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, nlv)) as u32) << 32;
            let at = u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, atv)) as u32)
                | u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, atv)) as u32) << 32;
            (nl, at)
        }
    }

    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        use std::arch::x86_64::{_mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set1_epi8, _mm_set_epi64x};
        // SAFETY: only reached through `full_units_wide` (PCLMULQDQ enabled
        // and present). Multiplying by all ones without carries XORs every
        // lower bit into each bit position.
        unsafe { _mm_cvtsi128_si64(_mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1), 0)) as u64 }
    }
}

/// Bit `i` of the result is the XOR of bits `0..=i` of `x`.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Bit `i` of the first mask is set when `block[i]` is `\n`, of the second
/// when it is `@`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn masks(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let mut nl = 0u64;
    let mut at = 0u64;
    // SAFETY: SSE2 is part of the x86-64 baseline; each unaligned 16-byte
    // load reads inside `block` (offsets 0, 16, 32 and 48 of 64 bytes).
    unsafe {
        let nlv = _mm_set1_epi8(b'\n' as i8);
        let atv = _mm_set1_epi8(b'@' as i8);
        for i in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * i) as *const __m128i);
            nl |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, nlv)) as u16) << (16 * i);
            at |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, atv)) as u16) << (16 * i);
        }
    }
    (nl, at)
}

/// Bit `i` of the first mask is set when `block[i]` is `\n`, of the second
/// when it is `@`.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub fn masks(block: &[u8; 64]) -> (u64, u64) {
    scalar_masks(block)
}

/// The portable definition of [`masks`].
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn scalar_masks(block: &[u8; 64]) -> (u64, u64) {
    let mut nl = 0u64;
    let mut at = 0u64;
    for (i, &b) in block.iter().enumerate() {
        nl |= u64::from(b == b'\n') << i;
        at |= u64::from(b == b'@') << i;
    }
    (nl, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_masks_match_bytewise_masks() {
        let mut block = [0u8; 64];
        for seed in 0u64..500 {
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for b in &mut block {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = [b'@', b'\n', b'a', 0xff, b' '][(x % 5) as usize];
            }
            assert_eq!(masks(&block), scalar_masks(&block), "seed {seed}");
        }
    }

    #[test]
    fn wide_and_baseline_masks_agree() {
        if !wide_available() {
            return; // Nothing to compare on this CPU; the baseline is tested above.
        }
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2,pclmulqdq")]
            unsafe fn wide(block: &[u8; 64], x: u64) -> ((u64, u64), u64) {
                (Wide::masks(block), Wide::prefix_xor(x))
            }
            let mut block = [0u8; 64];
            for seed in 0u64..500 {
                let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                for b in &mut block {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = [b'@', b'\n', b'a'][(x % 3) as usize];
                }
                // SAFETY: wide_available() checked the CPU features.
                let (m, p) = unsafe { wide(&block, x) };
                assert_eq!(m, scalar_masks(&block), "seed {seed}");
                assert_eq!(p, prefix_xor(x), "seed {seed}");
            }
        }
    }

    #[test]
    fn prefix_xor_is_running_parity() {
        for x in [0u64, 1, 0b1011, 1 << 63, 0xdead_beef_0123_4567, !0] {
            let p = prefix_xor(x);
            let mut run = 0;
            for i in 0..64 {
                run ^= (x >> i) & 1;
                assert_eq!((p >> i) & 1, run, "x {x:#x} bit {i}");
            }
        }
    }

    /// Frames `data` completely, returning the record lengths.
    fn frame(mut s: BlockScanner, data: &[u8]) -> Vec<usize> {
        let mut at = 0;
        let mut out = Vec::new();
        while let Some(n) = s.next(&data[at..]) {
            out.push(n);
            at += n;
            s.consume(n);
        }
        out
    }

    #[test]
    fn both_instruction_sets_find_the_same_records() {
        let mut x = 0x1234_5678_9abc_def1u64;
        let data: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                [b'@', b'\n', b'a', b'b', b' ', b'@', b'c'][(x % 7) as usize]
            })
            .collect();
        for quotes in [true, false] {
            let base = frame(BlockScanner { quotes, wide: false, ..Default::default() }, &data);
            let wide = frame(BlockScanner { quotes, wide: wide_available(), ..Default::default() }, &data);
            assert!(base.len() > 1000);
            assert_eq!(base, wide, "quotes {quotes}");
        }
    }

    #[test]
    fn cached_ends_survive_consume_and_repeat_without_it() {
        // Many short records in one block.
        let data = b"a\nbb\nccc\n@x\ny@\n".repeat(10);
        let mut s = BlockScanner::new(true);
        let mut at = 0;
        let mut got = Vec::new();
        while let Some(n) = s.next(&data[at..]) {
            // Asking again without consuming gives the same answer.
            assert_eq!(s.next(&data[at..]), Some(n));
            got.push(n);
            at += n;
            s.consume(n);
        }
        assert_eq!(at, data.len());
        assert_eq!(got, [2, 3, 4, 6].repeat(10));
    }
}
