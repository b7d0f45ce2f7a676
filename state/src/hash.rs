//! Content hashes that prove which file a checkpoint position is in.
//!
//! A position alone (sequence, offset) cannot tell a restarted daemon whether
//! the file in front of it is the one it was reading: the journal may have been
//! truncated, rotated or replaced while it was stopped. The checkpoint therefore
//! stores xxh3-64 hashes of windows of the file, which the engine recomputes and
//! compares. In the TOML file a hash is the string `"xxh3:"` followed by exactly
//! 16 hex digits (written lowercase; either case is accepted when read).

use std::fmt;

/// Prefix of a hash's text form, naming the algorithm so the format can grow.
pub const HASH_PREFIX: &str = "xxh3:";

/// An xxh3-64 hash of a window of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub u64);

impl Hash {
    /// Hashes `bytes` in one go; equal to feeding the same bytes, in any
    /// number of pieces, to a [`Hasher`].
    pub fn of(bytes: &[u8]) -> Hash {
        Hash(xxhash_rust::xxh3::xxh3_64(bytes))
    }

    /// Parses the text form `xxh3:` + 16 hex digits. Returns `None` for
    /// anything else (other prefix, fewer or more digits, signs, spaces).
    pub fn parse(text: &str) -> Option<Hash> {
        let hex = text.strip_prefix(HASH_PREFIX)?;
        if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().map(Hash)
    }
}

/// The text form written to the checkpoint: `xxh3:0123456789abcdef`.
impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{HASH_PREFIX}{:016x}", self.0)
    }
}

/// Incremental hasher for a window read in pieces (e.g. the tail window just
/// before an offset, read from a decompressing stream).
pub struct Hasher(xxhash_rust::xxh3::Xxh3);

impl Hasher {
    /// A hasher that has seen no bytes yet.
    pub fn new() -> Self {
        Hasher(xxhash_rust::xxh3::Xxh3::new())
    }

    /// Feeds the next piece of the window.
    pub fn update(&mut self, b: &[u8]) {
        self.0.update(b);
    }

    /// The hash of everything fed so far; the hasher may continue to be fed.
    pub fn finish(&self) -> Hash {
        Hash(self.0.digest())
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Hasher").field(&self.finish()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_form_is_prefix_and_sixteen_lowercase_hex_digits() {
        assert_eq!(Hash(0xAB).to_string(), "xxh3:00000000000000ab");
        assert_eq!(Hash(u64::MAX).to_string(), "xxh3:ffffffffffffffff");
    }

    #[test]
    fn parse_rejects_malformed_text() {
        for bad in [
            "",
            "xxh3:",
            "0123456789abcdef",
            "xxh3:0123456789abcde",
            "xxh3:0123456789abcdef0",
            "xxh3:0123456789abcdeg",
            "xxh3:+123456789abcdef",
            "xxh64:0123456789abcdef",
            " xxh3:0123456789abcdef",
            "XXH3:0123456789abcdef",
        ] {
            assert_eq!(Hash::parse(bad), None, "{bad:?} must not parse");
        }
        assert_eq!(
            Hash::parse("xxh3:0123456789ABCDEF"),
            Some(Hash(0x0123456789abcdef))
        );
    }

    #[test]
    fn known_value_of_empty_input() {
        // xxh3-64 of the empty input with the default seed.
        assert_eq!(Hash::of(b""), Hash(0x2d06800538d394c2));
    }

    proptest! {
        #[test]
        fn text_form_round_trips(v in any::<u64>()) {
            prop_assert_eq!(Hash::parse(&Hash(v).to_string()), Some(Hash(v)));
        }

        #[test]
        fn incremental_equals_one_shot(data in proptest::collection::vec(any::<u8>(), 0..4096), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            let mut h = Hasher::new();
            let mut start = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                h.update(&data[start..c]);
                start = c;
            }
            prop_assert_eq!(h.finish(), Hash::of(&data));
        }
    }
}
