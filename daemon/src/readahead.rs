//! Decompression on its own thread.
//!
//! Catching up from a compressed predecessor is decoder-bound; running the
//! decoder on a second core, a bounded few chunks ahead of the framer, makes
//! the daemon faster than `zcat` alone instead of slower. Memory stays
//! bounded: at most `DEPTH` chunks of `CHUNK` bytes are in flight.

use std::io::{self, Read};
use std::thread;

use crossbeam_channel::{bounded, Receiver, Sender};

const CHUNK: usize = 1 << 20;
const DEPTH: usize = 4;

pub struct ReadAhead {
    rx: Receiver<io::Result<Vec<u8>>>,
    recycle: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    /// The stream ended (Ok(0) from then on) or failed (the error was returned once).
    over: Option<Option<(io::ErrorKind, String)>>,
}

impl ReadAhead {
    pub fn new(mut inner: Box<dyn Read + Send>) -> ReadAhead {
        let (tx, rx) = bounded::<io::Result<Vec<u8>>>(DEPTH);
        let (recycle, reuse) = bounded::<Vec<u8>>(DEPTH + 1);
        let spawned = thread::Builder::new()
            .name("decompress".into())
            .spawn(move || loop {
                let mut buf = reuse.try_recv().unwrap_or_default();
                buf.resize(CHUNK, 0);
                let mut n = 0;
                let res = loop {
                    if n == buf.len() {
                        break Ok(());
                    }
                    match inner.read(&mut buf[n..]) {
                        Ok(0) => break Ok(()),
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(n);
                let end = n == 0;
                if n > 0 && tx.send(Ok(buf)).is_err() {
                    return;
                }
                match res {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    Ok(()) if end => {
                        let _ = tx.send(Ok(Vec::new()));
                        return;
                    }
                    Ok(()) => {}
                }
            });
        if let Err(e) = spawned {
            // No thread: a reader that fails with the reason.
            let (tx, rx) = bounded(1);
            let _ = tx.send(Err(io::Error::other(format!(
                "cannot start the decompression thread: {e}"
            ))));
            return ReadAhead {
                rx,
                recycle,
                cur: Vec::new(),
                pos: 0,
                over: None,
            };
        }
        ReadAhead {
            rx,
            recycle,
            cur: Vec::new(),
            pos: 0,
            over: None,
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if let Some(over) = &self.over {
                return match over {
                    None => Ok(0),
                    Some((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
                };
            }
            match self.rx.recv() {
                Ok(Ok(buf)) if buf.is_empty() => self.over = Some(None),
                Ok(Ok(buf)) => {
                    let old = std::mem::replace(&mut self.cur, buf);
                    let _ = self.recycle.try_send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.over = Some(Some((e.kind(), e.to_string())));
                    return Err(e);
                }
                Err(_) => {
                    let e = io::Error::other("the decompression thread stopped");
                    self.over = Some(Some((e.kind(), e.to_string())));
                    return Err(e);
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Chunky {
        data: Vec<u8>,
        at: usize,
        fail_at: Option<usize>,
    }

    impl Read for Chunky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.at >= f) {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "gzip data ends unexpectedly",
                ));
            }
            let n = buf.len().min(777).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn passes_every_byte_in_order_then_ends() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
        let mut r = ReadAhead::new(Box::new(Chunky {
            data: data.clone(),
            at: 0,
            fail_at: None,
        }));
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, data);
        assert_eq!(r.read(&mut [0u8; 10]).unwrap(), 0);
    }

    #[test]
    fn an_error_comes_after_the_bytes_before_it_and_stays() {
        let data = vec![7u8; 3 * CHUNK];
        let mut r = ReadAhead::new(Box::new(Chunky {
            data,
            at: 0,
            fail_at: Some(CHUNK + 10),
        }));
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(got.len() >= CHUNK, "bytes before the error are delivered");
        assert!(e.to_string().contains("ends unexpectedly"));
        assert_eq!(
            r.read(&mut [0u8; 4]).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
