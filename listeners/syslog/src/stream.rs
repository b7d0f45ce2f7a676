//! Stream targets: TCP and TLS with RFC 6587 octet counting
//! (`LEN SP MSG`), and a local stream socket with messages ended by NUL
//! as glibc's `syslog()` sends them.
//!
//! A batch is written in large writes; it counts as sent once the
//! receiver's TCP stack has acknowledged every byte (the socket's send
//! queue is empty). What a break can still lose: messages the receiver's
//! kernel acknowledged but the receiver had not yet processed.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::message::Messages;
use crate::transport::{ErrorKind, Io, SendError};

/// Bytes gathered before a write.
const CHUNK: usize = 256 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    OctetCount,
    Nul,
}

pub struct Framed {
    io: Io,
    framing: Framing,
    name: String,
    timeout: Duration,
    wire: Vec<u8>,
}

impl Framed {
    pub fn new(io: Io, framing: Framing, name: String, timeout: Duration) -> Framed {
        Framed {
            io,
            framing,
            name,
            timeout,
            wire: Vec::with_capacity(CHUNK + 64 * 1024),
        }
    }

    pub fn send(&mut self, msgs: &Messages) -> Result<(), SendError> {
        self.wire.clear();
        for i in 0..msgs.spans.len() {
            let m = msgs.get(i);
            match self.framing {
                Framing::OctetCount => {
                    let _ = write!(self.wire, "{} ", m.len());
                    self.wire.extend_from_slice(m);
                }
                Framing::Nul => {
                    self.wire.extend_from_slice(m);
                    self.wire.push(0);
                }
            }
            if self.wire.len() >= CHUNK {
                self.write_wire()?;
            }
        }
        self.write_wire()?;
        self.io.flush().map_err(|e| self.down(e))?;
        self.drained()
    }

    /// Ends a TLS session with close_notify, so the receiver sees a clean end.
    pub fn close(mut self) {
        if let Io::Tls(s) = &mut self.io {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }

    fn write_wire(&mut self) -> Result<(), SendError> {
        let r = self.io.write_all(&self.wire);
        self.wire.clear();
        r.map_err(|e| self.down(e))
    }

    fn down(&self, e: std::io::Error) -> SendError {
        SendError::new(
            ErrorKind::Down,
            format!("cannot send to {}: {e}", self.name),
        )
    }

    /// Waits until the receiver's TCP stack acknowledged every byte sent.
    fn drained(&self) -> Result<(), SendError> {
        let Some(tcp) = self.io.tcp() else {
            return Ok(());
        };
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_micros(50);
        loop {
            let mut queued: libc::c_int = 0;
            // SAFETY: TIOCOUTQ writes one int to the pointer.
            let rc = unsafe { libc::ioctl(tcp.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
            if rc != 0 || queued == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(SendError::new(
                    ErrorKind::Down,
                    format!(
                        "{}: the receiver did not take the last {queued} bytes within {:?}",
                        self.name, self.timeout
                    ),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }
}
