//! One connection to the target, and sending a batch of messages over it.
//!
//! Every send reports how far it got as a number of whole entries, so the
//! listener can acknowledge exactly those: RELP counts entries whose every
//! message the server answered `200`; stream targets count all or nothing
//! (bytes handed to a socket that then breaks may or may not have arrived);
//! datagram targets count the entries they sent.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{HostPort, Settings, Target};
use crate::message::Messages;
use crate::{datagram, relp, stream, tls};

/// Why a send or a connection failed. Decisions are taken on the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Cannot connect, or the connection broke: try again later.
    Down,
    /// The server's TLS certificate was refused.
    Certificate,
    /// The receiver refused a message (RELP: a non-200 answer).
    Refused,
    /// A message does not fit the socket (EMSGSIZE): the config must change.
    TooBig,
    /// The target is a socket another user could have put in place.
    Unsafe,
}

#[derive(Debug)]
pub struct SendError {
    pub kind: ErrorKind,
    pub message: String,
    /// Entries (from the first of the batch) handled in full despite the error.
    pub done: usize,
}

impl SendError {
    pub fn new(kind: ErrorKind, message: String) -> SendError {
        SendError {
            kind,
            message,
            done: 0,
        }
    }
}

/// Counters of what was sent, logged on `flush` and when the journal goes quiet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub entries: u64,
    pub messages: u64,
    pub split: u64,
    pub truncated: u64,
    /// UDP datagrams the network refused (ICMP port unreachable): lost.
    pub refused: u64,
}

/// An open connection.
pub enum Conn {
    Datagram(datagram::Datagram),
    Stream(stream::Framed),
    Relp(Box<relp::Relp>),
}

/// The byte stream under TCP, TLS and RELP targets.
pub enum Io {
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Unix(UnixStream),
}

impl Io {
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Io::Tcp(t) => Some(t),
            Io::Tls(s) => Some(s.get_ref()),
            Io::Unix(_) => None,
        }
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Tcp(t) => t.read(buf),
            Io::Tls(s) => s.read(buf),
            Io::Unix(u) => u.read(buf),
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Tcp(t) => t.write(buf),
            Io::Tls(s) => s.write(buf),
            Io::Unix(u) => u.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Tcp(t) => t.flush(),
            Io::Tls(s) => s.flush(),
            Io::Unix(u) => u.flush(),
        }
    }
}

/// Opens a connection to the configured target.
pub fn connect(s: &Settings, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Conn, SendError> {
    let down = |what: String, e: io::Error| SendError::new(ErrorKind::Down, format!("{what}: {e}"));
    match &s.target {
        Target::Unix(path) => {
            // Checked at every connect: the socket may have been replaced since.
            crate::tls::check_file("target", path, crate::tls::Use::Socket)
                .map_err(|e| SendError::new(ErrorKind::Unsafe, e))?;
            match UnixDatagram::unbound().and_then(|d| d.connect(path).map(|()| d)) {
                Ok(d) => Ok(Conn::Datagram(datagram::Datagram::unix(d, path))),
                Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
                    let u = UnixStream::connect(path)
                        .map_err(|e| down(format!("cannot connect to {}", path.display()), e))?;
                    u.set_write_timeout(Some(s.timeout))
                        .map_err(|e| down("socket".into(), e))?;
                    Ok(Conn::Stream(stream::Framed::new(
                        Io::Unix(u),
                        stream::Framing::Nul,
                        path.display().to_string(),
                        s.timeout,
                    )))
                }
                Err(e) => Err(down(format!("cannot connect to {}", path.display()), e)),
            }
        }
        Target::Udp(hp) => {
            let addr = resolve(hp)?;
            let bind: SocketAddr = if addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let sock = std::net::UdpSocket::bind(bind)
                .and_then(|u| u.connect(addr).map(|()| u))
                .map_err(|e| down(format!("cannot open a UDP socket to {hp}"), e))?;
            Ok(Conn::Datagram(datagram::Datagram::udp(sock, hp)))
        }
        Target::Tcp(hp) => {
            let io = Io::Tcp(tcp(hp, s.timeout)?);
            Ok(Conn::Stream(stream::Framed::new(
                io,
                stream::Framing::OctetCount,
                hp.to_string(),
                s.timeout,
            )))
        }
        Target::Tls(hp) => {
            let io = tls::connect(
                tcp(hp, s.timeout)?,
                tls.expect("TLS target has a TLS config"),
                s,
                hp,
            )?;
            Ok(Conn::Stream(stream::Framed::new(
                io,
                stream::Framing::OctetCount,
                hp.to_string(),
                s.timeout,
            )))
        }
        Target::Relp(hp) => Ok(Conn::Relp(Box::new(relp::Relp::open(
            Io::Tcp(tcp(hp, s.timeout)?),
            hp,
            s,
        )?))),
        Target::RelpTls(hp) => {
            let io = tls::connect(
                tcp(hp, s.timeout)?,
                tls.expect("TLS target has a TLS config"),
                s,
                hp,
            )?;
            Ok(Conn::Relp(Box::new(relp::Relp::open(io, hp, s)?)))
        }
    }
}

impl Conn {
    /// Sends every message of `msgs` (entries `0..entries`).
    pub fn send(
        &mut self,
        msgs: &Messages,
        entries: usize,
        counters: &mut Counters,
    ) -> Result<(), SendError> {
        match self {
            Conn::Datagram(d) => d.send(msgs, counters),
            Conn::Stream(s) => s.send(msgs),
            Conn::Relp(r) => r.send(msgs, entries),
        }
    }

    /// Ends the session politely (RELP `close`); errors are irrelevant then.
    pub fn close(self) {
        match self {
            Conn::Relp(r) => r.close(),
            Conn::Stream(s) => s.close(),
            Conn::Datagram(_) => {}
        }
    }
}

fn resolve(hp: &HostPort) -> Result<SocketAddr, SendError> {
    (hp.host.as_str(), hp.port)
        .to_socket_addrs()
        .map_err(|e| SendError::new(ErrorKind::Down, format!("cannot resolve {hp}: {e}")))?
        .next()
        .ok_or_else(|| SendError::new(ErrorKind::Down, format!("{hp} resolves to no address")))
}

fn tcp(hp: &HostPort, timeout: Duration) -> Result<TcpStream, SendError> {
    let addr = resolve(hp)?;
    let t = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| SendError::new(ErrorKind::Down, format!("cannot connect to {hp}: {e}")))?;
    let set = t
        .set_nodelay(true)
        .and(t.set_read_timeout(Some(timeout)))
        .and(t.set_write_timeout(Some(timeout)));
    set.map_err(|e| {
        SendError::new(
            ErrorKind::Down,
            format!("cannot set up the connection to {hp}: {e}"),
        )
    })?;
    Ok(t)
}
