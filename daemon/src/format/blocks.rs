//! The scanning core shared by the p4 and the single-line framers: find
//! record-ending newlines 64 bytes at a time, many records per step.
//!
//! For each 64-byte block it builds bit masks of the newlines and the `@`
//! (AVX2 when the CPU has it, else SSE2 on x86-64, a plain loop elsewhere).
//! For p4, every `@` toggles "inside a string" (an escaped `@@` toggles
//! twice, the empty string `@@` opens and closes), so a prefix XOR of the `@`
//! mask (a carry-less multiply), flipped when the block starts inside a
//! string, marks the bytes inside strings; a newline outside a string ends a
//! record. For plain lines every newline does.
//!
//! A step scans a window of blocks and turns their record ends into a queue
//! of positions without a branch per record; each `next` then pops one, and
//! [`BlockScanner::take_lines`] hands over a run of them at once (catching
//! up on small records, the per-record calls cost more than the scan). This
//! stays exact across records because a record boundary always has an even
//! `@` count behind it: parity measured from an earlier boundary equals
//! parity measured from a later one. Record ends are final once their bytes
//! are seen, so ends found in a partial last block are queued too.
//!
//! Each queued end also says whether its record holds a newline inside a
//! string (the top bit of the entry, [`MULTI`]), so callers count lines and
//! look for unclosed strings only in the records that need it, not in every
//! record that shares a window with one multi-line record.

/// Incremental record-end finder. Positions are counted from the buffer
/// start at the last [`reset`](Self::reset), so they survive the caller
/// moving its buffer start forward by consumed records.
#[derive(Debug, Clone)]
pub struct BlockScanner {
    /// Whether `@` quotes (p4) or is an ordinary byte (plain lines).
    quotes: bool,
    /// The CPU has AVX2, PCLMULQDQ, POPCNT and BMI1 (checked once, at creation).
    wide: bool,
    /// Stream position (since reset) of the current buffer's first byte.
    base: usize,
    /// Bytes before this position have been scanned.
    pos: usize,
    /// All ones when an odd number of `@` lies between the last record
    /// boundary and `pos` (we are inside a string), zero otherwise.
    odd: u64,
    /// Ends (one past the newline) of the records found before `pos` and not
    /// yet consumed are `queue[head..tail]`, in order; an entry with the
    /// [`MULTI`] bit set ends a record with a newline inside a string.
    /// Allocated by the first scan and given back by [`release`](Self::release)
    /// when empty: an idle journal does not hold 32 KiB of it.
    queue: Option<Box<[usize; QUEUE]>>,
    head: usize,
    tail: usize,
    /// A newline inside a string lies between the last queued end (or the
    /// boundary at `base` when none is queued) and `pos`: it belongs to the
    /// next record found.
    inner: bool,
}

/// Queues given back by idle scanners, for the next that scans: a queue is
/// taken and given back at every step of a worker, and zeroing 32 KiB each
/// time would cost more than the step.
static QUEUES: std::sync::Mutex<Vec<Box<[usize; QUEUE]>>> = std::sync::Mutex::new(Vec::new());
/// Queues kept for reuse, at most.
const KEEP_QUEUES: usize = 32;

fn take_queue() -> Box<[usize; QUEUE]> {
    let q = QUEUES.lock().unwrap_or_else(|e| e.into_inner()).pop();
    q.unwrap_or_else(|| Box::new([0; QUEUE]))
}

fn give_queue(q: Box<[usize; QUEUE]>) {
    let mut queues = QUEUES.lock().unwrap_or_else(|e| e.into_inner());
    if queues.len() < KEEP_QUEUES {
        queues.push(q);
    }
}

/// The bit of a queue entry that marks a record holding a newline inside a
/// string; the rest of the entry is the record's end.
const MULTI: usize = 1 << (usize::BITS - 1);

/// Queue capacity: a window of blocks where every byte ends a record, plus
/// the slack that flattening writes beyond the last real entry.
const QUEUE: usize = WINDOW * 64 + FLAT;
/// Blocks scanned per step once a record end was found.
const WINDOW: usize = 64;
/// Ends written per block without looking at the count (the rest, rarely
/// needed, in a loop).
const FLAT: usize = 4;

impl BlockScanner {
    pub fn new(quotes: bool) -> Self {
        BlockScanner {
            quotes,
            wide: wide_available(),
            base: 0,
            pos: 0,
            odd: 0,
            queue: None,
            head: 0,
            tail: 0,
            inner: false,
        }
    }

    /// Length of the first complete record of `buf` (which starts at the
    /// current base), if its end is in `buf`.
    #[inline]
    pub fn next(&mut self, buf: &[u8]) -> Option<usize> {
        if self.head < self.tail {
            let n = (self.end_at(self.head) & !MULTI) - self.base;
            if n <= buf.len() {
                return Some(n);
            }
        }
        if self.pos - self.base > buf.len() || self.head < self.tail {
            // The buffer shrank, against the contract: forget what was
            // learnt and scan it afresh rather than answer out of bounds.
            self.reset();
        }
        self.head = 0;
        self.tail = 0;
        self.scan(buf);
        if self.head < self.tail {
            return Some((self.end_at(self.head) & !MULTI) - self.base);
        }
        None
    }

    /// The caller consumed the first `n` bytes of the buffer, a record
    /// returned by [`next`](Self::next): the next buffer starts there.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.base += n;
        while self.head < self.tail && self.end_at(self.head) & !MULTI <= self.base {
            self.head += 1;
        }
        if self.base >= self.pos {
            // Nothing scanned beyond: a fresh start at a boundary.
            self.pos = self.base;
            self.odd = 0;
            self.head = 0;
            self.tail = 0;
            self.inner = false;
        }
    }

    /// Many [`next`](Self::next) and [`consume`](Self::consume) calls in
    /// one: takes the complete one-line records at the start of `buf`, in
    /// order, while fewer than `limit` bytes were taken before the record
    /// and `ends` has room, and writes the end of each (relative to the
    /// start of `buf`) to `ends`. Returns how many. Stops at the first
    /// record that holds a newline inside a string or is not complete in
    /// `buf`: `next` returns that one as before.
    #[inline]
    pub fn take_lines(&mut self, buf: &[u8], limit: usize, ends: &mut [usize]) -> usize {
        let start = self.base;
        let mut k = 0;
        let mut used = 0;
        while k < ends.len() && used < limit {
            if self.head >= self.tail && self.next(&buf[used..]).is_none() {
                break;
            }
            let Some(q) = self.queue.as_deref() else {
                break;
            };
            // Pop ends straight from the queue; `consume` below books them.
            let mut head = self.head;
            while head < self.tail && k < ends.len() && used < limit {
                let e = q[head];
                let rel = e.wrapping_sub(start);
                if e & MULTI != 0 || rel > buf.len() {
                    break;
                }
                ends[k] = rel;
                used = rel;
                k += 1;
                head += 1;
            }
            let more = head == self.tail;
            self.consume(used - (self.base - start));
            if !more {
                break;
            }
        }
        k
    }

    /// Bytes of the current buffer already scanned: the next scan starts
    /// there.
    #[cfg(test)]
    pub fn scanned(&self) -> usize {
        self.pos - self.base
    }

    /// Queue entry `i`, which holds an end (`i < tail`).
    #[inline]
    fn end_at(&self, i: usize) -> usize {
        self.queue.as_ref().map_or(0, |q| q[i])
    }

    /// Gives the queue back while it holds no end (it is allocated again
    /// by the next scan).
    pub fn release(&mut self) {
        if self.head >= self.tail {
            if let Some(q) = self.queue.take() {
                give_queue(q);
            }
        }
    }

    pub fn reset(&mut self) {
        self.base = 0;
        self.pos = 0;
        self.odd = 0;
        self.head = 0;
        self.tail = 0;
        self.inner = false;
    }

    /// True when the record returned by the last [`next`](Self::next) (it
    /// starts at the current base) is one physical line: no newline inside
    /// a string lies in it, so its only newline is its last byte.
    #[inline]
    pub fn record_is_one_line(&self) -> bool {
        self.head < self.tail && self.end_at(self.head) & MULTI == 0
    }

    /// Scans from `pos` on (the queue is empty): whole blocks until a window
    /// past the first record end, then a partial last block if the buffer
    /// ends there.
    #[inline]
    fn scan(&mut self, buf: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        if self.wide {
            // SAFETY: `wide` is only set when the CPU has these features.
            return unsafe { self.scan_wide(buf) };
        }
        self.scan_with::<Sse2>(buf)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,pclmulqdq,popcnt,bmi1")]
    unsafe fn scan_wide(&mut self, buf: &[u8]) {
        self.scan_with::<Wide>(buf)
    }

    #[inline(always)]
    fn scan_with<M: Masks>(&mut self, buf: &[u8]) {
        // Work on locals so the loop keeps its state in registers.
        let mut c = Cursor {
            pos: self.pos,
            odd: self.odd,
            tail: 0,
            inner: self.inner,
        };
        let queue = &mut **self.queue.get_or_insert_with(take_queue);
        let quotes = self.quotes;
        let base = self.base;
        let block_at = |c: &Cursor| buf.get(c.pos - base..c.pos - base + 64);
        // Until the first record end: as far as it takes.
        while let Some(block) = block_at(&c) {
            let (nl, at) = M::masks(block.try_into().expect("64 bytes"));
            c.block::<M>(queue, quotes, nl, at, 64);
            if c.tail > 0 {
                break;
            }
        }
        if c.tail > 0 {
            // Then a window more, unless the buffer ends first.
            for _ in 1..WINDOW {
                let Some(block) = block_at(&c) else { break };
                let (nl, at) = M::masks(block.try_into().expect("64 bytes"));
                c.block::<M>(queue, quotes, nl, at, 64);
            }
        } else if c.pos - base < buf.len() {
            // A partial last block: scan a zero-padded copy (a zero byte is
            // neither newline nor `@`).
            let rest = &buf[c.pos - base..];
            let mut block = [0u8; 64];
            block[..rest.len()].copy_from_slice(rest);
            let (nl, at) = M::masks(&block);
            c.block::<M>(queue, quotes, nl, at, rest.len());
        }
        self.pos = c.pos;
        self.odd = c.odd;
        self.tail = c.tail;
        self.inner = c.inner;
    }
}

/// The scan state of one step (see the fields of the same names in
/// [`BlockScanner`]), held in locals while scanning.
struct Cursor {
    pos: usize,
    odd: u64,
    tail: usize,
    inner: bool,
}

impl Cursor {
    /// Queues the record ends of the `len` bytes at `pos` whose masks are
    /// given, and moves `pos` and the parity past them.
    #[inline(always)]
    fn block<M: Masks>(
        &mut self,
        queue: &mut [usize; QUEUE],
        quotes: bool,
        nl: u64,
        at: u64,
        len: usize,
    ) {
        let mut ends = nl;
        let mut inner = 0;
        if quotes {
            ends &= !(M::prefix_xor(at) ^ self.odd);
            self.odd ^= 0u64.wrapping_sub(u64::from(at.count_ones() & 1));
            inner = nl & !ends;
        }
        if inner != 0 || self.inner {
            // Rare: a multi-line record ends or goes on in this block.
            return self.block_marked(queue, ends, inner, len);
        }
        let count = ends.count_ones() as usize;
        let first = self.pos + 1;
        // Write FLAT entries unconditionally (those past `count` are junk
        // that the next block overwrites); the queue has room for them.
        for slot in &mut queue[self.tail..self.tail + FLAT] {
            *slot = first + ends.trailing_zeros() as usize;
            ends &= ends.wrapping_sub(1);
        }
        let mut t = self.tail + FLAT;
        while ends != 0 {
            queue[t] = first + ends.trailing_zeros() as usize;
            ends &= ends.wrapping_sub(1);
            t += 1;
        }
        self.tail += count;
        self.pos += len;
    }

    /// [`block`](Self::block) when some record of the block may hold a
    /// newline inside a string: queues each end with its [`MULTI`] bit.
    #[cold]
    fn block_marked(&mut self, queue: &mut [usize; QUEUE], mut ends: u64, inner: u64, len: usize) {
        let first = self.pos + 1;
        // Bits of the block after the previous end of this block.
        let mut after_prev = u64::MAX;
        while ends != 0 {
            let bit = ends.trailing_zeros();
            // Newlines inside strings at or below this end and after the
            // previous one: this record's.
            let mine = inner & after_prev & (u64::MAX >> (63 - bit));
            let multi = self.inner || mine != 0;
            queue[self.tail] = (first + bit as usize) | if multi { MULTI } else { 0 };
            self.tail += 1;
            self.inner = false;
            after_prev = u64::MAX.checked_shl(bit + 1).unwrap_or(0);
            ends &= ends.wrapping_sub(1);
        }
        if inner & after_prev != 0 {
            self.inner = true;
        }
        self.pos += len;
    }
}

/// Whether the AVX2 + carry-less multiply scan (with hardware bit counts)
/// can run on this CPU.
fn wide_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("pclmulqdq")
            && std::is_x86_feature_detected!("popcnt")
            && std::is_x86_feature_detected!("bmi1")
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
        use std::arch::x86_64::{
            __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
        };
        // SAFETY: only reached through `scan_wide` (AVX2 enabled and
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
        use std::arch::x86_64::{
            _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set1_epi8, _mm_set_epi64x,
        };
        // SAFETY: only reached through `scan_wide` (PCLMULQDQ enabled
        // and present). Multiplying by all ones without carries XORs every
        // lower bit into each bit position.
        unsafe {
            _mm_cvtsi128_si64(_mm_clmulepi64_si128(
                _mm_set_epi64x(0, x as i64),
                _mm_set1_epi8(-1),
                0,
            )) as u64
        }
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
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
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
mod tests;
