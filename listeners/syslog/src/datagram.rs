//! Datagram targets: UDP (RFC 5426) and a local datagram socket such as
//! `/dev/log`. One message per datagram, best effort: a datagram the
//! network drops is not known to be lost, so what was sent is counted.

use std::io;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use crate::config::HostPort;
use crate::message::Messages;
use crate::transport::{Counters, ErrorKind, SendError};

enum Sock {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

pub struct Datagram {
    sock: Sock,
    name: String,
}

impl Datagram {
    pub fn udp(s: UdpSocket, hp: &HostPort) -> Datagram {
        Datagram {
            sock: Sock::Udp(s),
            name: format!("udp://{hp}"),
        }
    }
    pub fn unix(s: UnixDatagram, path: &Path) -> Datagram {
        Datagram {
            sock: Sock::Unix(s),
            name: path.display().to_string(),
        }
    }

    pub fn send(&mut self, msgs: &Messages, counters: &mut Counters) -> Result<(), SendError> {
        for (i, span) in msgs.spans.iter().enumerate() {
            let m = msgs.get(i);
            let r = match &self.sock {
                Sock::Udp(s) => s.send(m),
                Sock::Unix(s) => s.send(m),
            };
            match r {
                Ok(_) => counters.messages += 1,
                // An ICMP "port unreachable" for an earlier datagram: that
                // one is lost (best effort); this one is sent again.
                Err(e)
                    if matches!(self.sock, Sock::Udp(_))
                        && e.kind() == io::ErrorKind::ConnectionRefused =>
                {
                    counters.refused += 1;
                    let again = match &self.sock {
                        Sock::Udp(s) => s.send(m),
                        Sock::Unix(_) => unreachable!(),
                    };
                    again.map_err(|e| self.error(e, span.entry, m.len()))?;
                    counters.messages += 1;
                }
                Err(e) => return Err(self.error(e, span.entry, m.len())),
            }
        }
        Ok(())
    }

    fn error(&self, e: io::Error, done: usize, len: usize) -> SendError {
        let (kind, message) = if e.raw_os_error() == Some(libc::EMSGSIZE) {
            (
                ErrorKind::TooBig,
                format!("{}: a message of {len} bytes is too long for the socket ({e}); lower max_message", self.name),
            )
        } else {
            (
                ErrorKind::Down,
                format!("cannot send to {}: {e}", self.name),
            )
        };
        SendError {
            kind,
            message,
            done,
        }
    }
}
