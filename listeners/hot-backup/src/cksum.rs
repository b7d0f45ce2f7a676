//! POSIX `cksum` (CRC-32 of the bytes, then of their length), kept as a
//! running value over everything sent to the standby's file: one `cksum`
//! there checks the whole file, with a tool every POSIX system has, and
//! the listener never reads the standby's bytes back to do it.

use crc::{Crc, Table, CRC_32_CKSUM};

const CKSUM: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_CKSUM);

/// The running checksum of a file's first [`Cksum::len`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cksum {
    /// The CRC register before the length and the final inversion.
    state: u32,
    len: u64,
}

impl Default for Cksum {
    fn default() -> Self {
        Cksum::new()
    }
}

impl Cksum {
    /// The checksum of no bytes.
    pub fn new() -> Cksum {
        Cksum { state: 0, len: 0 }
    }

    /// Resumes from a stored [`Cksum::state`] over `len` bytes.
    pub fn resume(state: u32, len: u64) -> Cksum {
        Cksum { state, len }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        let mut d = CKSUM.digest_with_initial(self.state);
        d.update(bytes);
        self.state = d.finalize() ^ CRC_32_CKSUM.xorout;
        self.len += bytes.len() as u64;
    }

    pub fn state(&self) -> u32 {
        self.state
    }

    pub fn covered(&self) -> u64 {
        self.len
    }

    /// What `cksum` prints for these bytes (its first number).
    pub fn value(&self) -> u32 {
        let mut d = CKSUM.digest_with_initial(self.state);
        let mut n = self.len;
        while n > 0 {
            d.update(&[(n & 0xff) as u8]);
            n >>= 8;
        }
        d.finalize()
    }
}

/// Parses `cksum`'s output, `CRC LENGTH`.
pub fn parse(out: &str) -> Option<(u32, u64)> {
    let mut it = out.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn system_cksum(data: &[u8]) -> (u32, u64) {
        let mut c = Command::new("cksum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run cksum");
        c.stdin.take().unwrap().write_all(data).unwrap();
        let out = c.wait_with_output().unwrap();
        parse(&String::from_utf8_lossy(&out.stdout)).unwrap()
    }

    #[test]
    fn matches_the_system_cksum_in_pieces_and_resumed() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for len in [0, 1, 255, 256, 65_536, 100_000] {
            let mut c = Cksum::new();
            let (a, b) = data[..len].split_at(len / 3);
            c.update(a);
            let mut c = Cksum::resume(c.state(), c.covered());
            c.update(b);
            assert_eq!(
                (c.value(), c.covered()),
                system_cksum(&data[..len]),
                "{len}"
            );
        }
    }
}
