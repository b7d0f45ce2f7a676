//! A RELP client (rsyslog's Reliable Event Logging Protocol): frames
//! `TXNR SP COMMAND SP DATALEN [SP DATA] LF`, an `open` offering
//! `commands=syslog`, `syslog` transactions with a window of them
//! outstanding, and `close`. A message counts as delivered only once the
//! server answered its transaction `rsp 200`; `serverclose` or a broken
//! connection ends the session, and everything unanswered is sent again
//! in order on a new one.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::ops::Range;

use crate::config::{HostPort, Settings};
use crate::message::Messages;
use crate::transport::{ErrorKind, Io, SendError};

/// The highest transaction number; the next one is 1 again.
const MAX_TXNR: u64 = 999_999_999;
/// Bytes gathered before a write.
const CHUNK: usize = 256 << 10;

/// A frame received from the server.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub txnr: u64,
    pub command: Range<usize>,
    pub data: Range<usize>,
}

/// Parses the frame at the start of `buf`: `Ok(None)` if it is not complete
/// yet, else the frame and its length.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    let mut at = 0;
    let mut token = |what: &str, max: usize| -> Result<Option<Range<usize>>, String> {
        let rest = &buf[at..];
        match rest
            .iter()
            .take(max + 1)
            .position(|&c| c == b' ' || c == b'\n')
        {
            Some(0) => Err(format!("empty {what}")),
            Some(n) => {
                let r = at..at + n;
                at += n + usize::from(rest[n] == b' ');
                Ok(Some(r))
            }
            None if rest.len() > max => Err(format!("{what} longer than {max} bytes")),
            None => Ok(None),
        }
    };
    let Some(txnr) = token("transaction number", 9)? else {
        return Ok(None);
    };
    let Some(command) = token("command", 32)? else {
        return Ok(None);
    };
    let Some(len) = token("data length", 9)? else {
        return Ok(None);
    };
    let number = |r: &Range<usize>, what: &str| {
        std::str::from_utf8(&buf[r.clone()])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                format!(
                    "{what} {:?} is not a number",
                    String::from_utf8_lossy(&buf[r.clone()])
                )
            })
    };
    let txnr = number(&txnr, "transaction number")?;
    let len = number(&len, "data length")? as usize;
    // `at` is past the space after DATALEN, or past DATALEN when LF follows.
    let data = at..at + len;
    let end = if len == 0 { at } else { data.end };
    match buf.get(end) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((
            Frame {
                txnr,
                command,
                data,
            },
            end + 1,
        ))),
        Some(&c) => Err(format!("frame ends with byte {c:#04x}, not LF")),
    }
}

/// An open RELP session.
pub struct Relp {
    io: Io,
    name: String,
    window: usize,
    txnr: u64,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// Transactions sent and not yet answered: (txnr, message index, answered).
    inflight: VecDeque<(u64, usize, bool)>,
}

impl Relp {
    /// Opens the session: `open` with our offers, checked against the answer.
    pub fn open(io: Io, hp: &HostPort, s: &Settings) -> Result<Relp, SendError> {
        let mut r = Relp {
            io,
            name: s.url.clone(),
            window: s.window,
            txnr: 1,
            rbuf: Vec::with_capacity(64 << 10),
            wbuf: Vec::with_capacity(CHUNK + 64 * 1024),
            inflight: VecDeque::new(),
        };
        let offers = format!(
            "relp_version=0\nrelp_software=logdaemon,{},-\ncommands=syslog",
            env!("CARGO_PKG_VERSION")
        );
        r.frame(b"open", offers.as_bytes());
        let sent = r.txnr;
        r.txnr += 1;
        r.write_wbuf().map_err(|e| r.down(e, 0))?;
        let (f, used) = r.read_frame().map_err(|e| r.down(e, 0))?;
        let data = r.rbuf[f.data.clone()].to_vec();
        r.rbuf.drain(..used);
        let (code, text) = split_code(&data);
        if f.txnr != sent || code != Some(200) {
            return Err(SendError::new(
                ErrorKind::Refused,
                format!(
                    "{hp} refused the RELP session: {:?}",
                    String::from_utf8_lossy(text)
                ),
            ));
        }
        if !String::from_utf8_lossy(&data)
            .lines()
            .any(|l| l.starts_with("commands=") && l[9..].split(',').any(|c| c == "syslog"))
        {
            return Err(SendError::new(
                ErrorKind::Refused,
                format!(
                    "{hp} does not offer the RELP command `syslog`: {:?}",
                    String::from_utf8_lossy(&data)
                ),
            ));
        }
        Ok(r)
    }

    /// Appends a frame with the next transaction number to the write buffer.
    fn frame(&mut self, command: &[u8], data: &[u8]) {
        let _ = write!(self.wbuf, "{} ", self.txnr);
        self.wbuf.extend_from_slice(command);
        let _ = write!(self.wbuf, " {}", data.len());
        if !data.is_empty() {
            self.wbuf.push(b' ');
            self.wbuf.extend_from_slice(data);
        }
        self.wbuf.push(b'\n');
    }

    fn write_wbuf(&mut self) -> io::Result<()> {
        let r = self.io.write_all(&self.wbuf).and_then(|()| self.io.flush());
        self.wbuf.clear();
        r
    }

    /// Reads until one whole frame is in `rbuf`.
    fn read_frame(&mut self) -> io::Result<(Frame, usize)> {
        loop {
            match parse_frame(&self.rbuf) {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => {}
                Err(why) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad RELP frame from the server: {why}"),
                    ))
                }
            }
            self.quick_ack();
            let at = self.rbuf.len();
            self.rbuf.resize(at + (16 << 10), 0);
            let n = self.io.read(&mut self.rbuf[at..]);
            self.rbuf.truncate(at + *n.as_ref().unwrap_or(&0));
            match n {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ))
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no answer from the server within timeout",
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Asks the kernel to acknowledge received data at once. A server that
    /// writes each `rsp` separately with Nagle's algorithm on holds all but
    /// the first until our ACK comes, which delayed ACKs put off by up to
    /// 40 ms per round; Linux clears the flag after use, so it is set
    /// before every read.
    fn quick_ack(&self) {
        if let Some(t) = self.io.tcp() {
            let one: libc::c_int = 1;
            // SAFETY: a valid socket and a pointer to an int of the given size.
            unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(t),
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }

    fn down(&self, e: io::Error, done: usize) -> SendError {
        SendError {
            kind: ErrorKind::Down,
            message: format!("{}: {e}", self.name),
            done,
        }
    }

    /// Sends every message as one `syslog` transaction, keeping up to
    /// `window` unanswered; returns once all are answered `200`.
    pub fn send(&mut self, msgs: &Messages, entries: usize) -> Result<(), SendError> {
        let n = msgs.spans.len();
        let done = |answered: usize| {
            if answered == n {
                entries
            } else {
                msgs.spans[answered].entry
            }
        };
        let (mut next, mut answered) = (0, 0);
        self.inflight.clear();
        while answered < n {
            while self.inflight.len() < self.window && next < n {
                self.frame(b"syslog", msgs.get(next));
                self.inflight.push_back((self.txnr, next, false));
                self.txnr = if self.txnr == MAX_TXNR {
                    1
                } else {
                    self.txnr + 1
                };
                next += 1;
                if self.wbuf.len() >= CHUNK {
                    self.write_wbuf()
                        .map_err(|e| self.down(e, done(answered)))?;
                }
            }
            if !self.wbuf.is_empty() {
                self.write_wbuf()
                    .map_err(|e| self.down(e, done(answered)))?;
            }
            // Take every answer already received, and wait for at least one.
            loop {
                let (f, used) = self
                    .read_frame()
                    .map_err(|e| self.down(e, done(answered)))?;
                self.answer(&f, used).map_err(|(kind, m)| SendError {
                    kind,
                    message: format!("{}: {m}", self.name),
                    done: done(answered),
                })?;
                while self.inflight.front().is_some_and(|t| t.2) {
                    self.inflight.pop_front();
                    answered += 1;
                }
                if matches!(parse_frame(&self.rbuf), Ok(None)) || answered == n {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Takes one frame from the server (its first `used` bytes of `rbuf`).
    fn answer(&mut self, f: &Frame, used: usize) -> Result<(), (ErrorKind, String)> {
        let command = &self.rbuf[f.command.clone()];
        if command == b"serverclose" {
            return Err((
                ErrorKind::Down,
                "the server closed the session (serverclose)".into(),
            ));
        }
        if command != b"rsp" {
            return Err((
                ErrorKind::Down,
                format!(
                    "unexpected RELP command {:?} from the server",
                    String::from_utf8_lossy(command)
                ),
            ));
        }
        let Some(slot) = self.inflight.iter_mut().find(|t| t.0 == f.txnr && !t.2) else {
            return Err((
                ErrorKind::Down,
                format!(
                    "an answer to transaction {}, which is not outstanding",
                    f.txnr
                ),
            ));
        };
        let (code, text) = split_code(&self.rbuf[f.data.clone()]);
        if code != Some(200) {
            return Err((
                ErrorKind::Refused,
                format!(
                    "the server refused transaction {} (message {} of the batch): {:?}",
                    f.txnr,
                    slot.1 + 1,
                    String::from_utf8_lossy(text)
                ),
            ));
        }
        slot.2 = true;
        self.rbuf.drain(..used);
        Ok(())
    }

    /// Sends `close` and waits briefly for its answer.
    pub fn close(mut self) {
        self.frame(b"close", b"");
        if self.write_wbuf().is_ok() {
            if let Some(t) = self.io.tcp() {
                let _ = t.set_read_timeout(Some(std::time::Duration::from_secs(1)));
            }
            let _ = self.read_frame();
        }
        if let Io::Tls(s) = &mut self.io {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}

/// `200 OK\n…` → (Some(200), `200 OK\n…`).
fn split_code(data: &[u8]) -> (Option<u16>, &[u8]) {
    let code = data
        .get(..3)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse().ok());
    (code, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_whole_or_not_yet() {
        let buf = b"12 rsp 6 200 OK\n0 serverclose 0\n";
        let (f, used) = parse_frame(buf).unwrap().unwrap();
        assert_eq!(
            (f.txnr, &buf[f.command.clone()], &buf[f.data.clone()]),
            (12, &b"rsp"[..], &b"200 OK"[..])
        );
        let (f, used2) = parse_frame(&buf[used..]).unwrap().unwrap();
        assert_eq!(
            (f.txnr, &buf[used..][f.command.clone()], f.data.len()),
            (0, &b"serverclose"[..], 0)
        );
        assert_eq!(used + used2, buf.len());
        for cut in 0..used {
            assert_eq!(parse_frame(&buf[..cut]), Ok(None), "cut at {cut}");
        }
        let open = b"1 rsp 37 200 OK\nrelp_version=0\ncommands=syslog\n";
        let (f, _) = parse_frame(open).unwrap().unwrap();
        assert_eq!(&open[f.data], b"200 OK\nrelp_version=0\ncommands=syslog");
    }

    #[test]
    fn malformed_frames_are_errors() {
        for bad in [
            &b"x rsp 6 200 OK\n"[..],
            b"1 rsp 2 200 OK\n",
            b"1  rsp 0\n",
            b"1234567890123 rsp",
        ] {
            assert!(
                parse_frame(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
