//! [`NatsListener`]: the `Listener` implementation. It owns a small tokio
//! runtime (one worker thread, so the client answers the servers' pings
//! between calls) and blocks on it inside each call: the host stays
//! synchronous.
//!
//! States: not connected → connected and reconciled (the chain is known)
//! → publishing. Any failure whose outcome is unknown (timeout, lost
//! connection, leader change) marks the chain unknown; the next call reads
//! the subject's last message again before publishing anything.

use std::time::{SystemTime, UNIX_EPOCH};

use logdaemon_sdk::{Ack, Entry, Failure, Gap, Listener, Logger, OpenContext, Position};
use tokio::runtime::Runtime;

use crate::config::{Payload, Settings};
use crate::conn::{self, Conn, ConnError};
use crate::message::{self, Builder, Outgoing};
use crate::publish::{Chain, PubError, Publisher};

/// Bytes a message's framing and checks add on top of its headers.
const FRAMING: usize = 160;

/// The `nats` listener. See the crate documentation.
pub struct NatsListener {
    name: String,
    settings: Settings,
    subject: String,
    builder: Builder,
    cursor: Position,
    logger: Logger,
    /// Declared before the runtime: the client is dropped while its
    /// runtime still runs.
    conn: Option<(Conn, Publisher)>,
    rt: Runtime,
    chain: Chain,
    /// The chain must be read from the stream before the next publish.
    stale: bool,
    /// Positions of messages sent without an acknowledgement since the
    /// chain was last known: after a lost acknowledgement the stream may
    /// hold any prefix of them.
    unacked: Vec<Position>,
    reconciled_once: bool,
    buf: Vec<u8>,
}

/// Bytes the headers take on the wire (about: name, value, separators).
fn header_bytes(h: &async_nats::HeaderMap) -> usize {
    h.iter()
        .map(|(k, vs)| {
            let k: &str = k.as_ref();
            vs.iter()
                .map(|v| k.len() + v.as_str().len() + 4)
                .sum::<usize>()
        })
        .sum()
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "localhost".into();
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

impl NatsListener {
    fn who(&self) -> String {
        format!(
            "nats listener `{}` (stream {:?}, subject {:?})",
            self.name, self.settings.stream, self.subject
        )
    }

    /// Connects and reads the chain, when needed.
    fn ready(&mut self) -> Result<(), Failure> {
        if self.conn.is_none() {
            let c = self
                .rt
                .block_on(conn::connect(&self.settings, &self.name, &self.subject))
                .map_err(|e| match e {
                    ConnError::Transient(m) => {
                        Failure::retry(format!("{}: {m}; retrying", self.who()))
                    }
                    ConnError::Fatal(m) => Failure::fatal(format!("{}: {m}", self.who())),
                })?;
            let p = Publisher {
                ctx: c.js.clone(),
                stream: self.settings.stream.clone(),
                subject: self.subject.clone(),
                max_window: self.settings.max_in_flight,
                exactly_once: self.settings.exactly_once,
                window: self.settings.max_in_flight,
            };
            self.conn = Some((c, p));
            self.stale = true;
        }
        if self.stale {
            self.reconcile()?;
        }
        Ok(())
    }

    /// Reads the last message on the subject and takes it as the chain.
    fn reconcile(&mut self) -> Result<(), Failure> {
        if !self.settings.exactly_once {
            // At least once: no chain; duplicates are left to Nats-Msg-Id.
            self.stale = false;
            return Ok(());
        }
        let (c, _) = self.conn.as_ref().expect("connected");
        let retry = |m: String| Failure::retry(format!("{}: {m}; retrying", self.who()));
        let last = self
            .rt
            .block_on(conn::last_on_subject(&c.stream, &self.subject))
            .map_err(retry)?;
        let chain = match last {
            None => {
                if self.chain.last_seq != 0 {
                    return Err(self.conflict_fatal(format!(
                        "the subject is now empty but this listener's last message there was stream sequence {} (entry at {}): the stream was purged or replaced while the daemon ran",
                        self.chain.last_seq,
                        self.chain.done.map_or("-".into(), |p| p.to_string())
                    )));
                }
                Chain {
                    last_seq: 0,
                    done: None,
                }
            }
            Some((seq, stamp)) => {
                let stamp = stamp.map_err(|why| {
                    self.conflict_fatal(format!(
                        "the last message on the subject (stream sequence {seq}) was not written by logdaemon: {why}. Give each host and journal its own subject"
                    ))
                })?;
                if stamp.host != self.builder.host || stamp.journal != self.builder.journal {
                    return Err(self.conflict_fatal(format!(
                        "the last message on the subject (stream sequence {seq}) is from {stamp}, not from host {:?} journal {:?}: give each host and journal its own subject (e.g. \"journal.{{host}}.{{journal}}\")",
                        self.builder.host, self.builder.journal
                    )));
                }
                let ours_now = seq == self.chain.last_seq
                    || (stamp.writer == self.builder.writer && self.unacked.contains(&stamp.start));
                if self.reconciled_once && !ours_now {
                    return Err(self.conflict_fatal(format!(
                        "its last message (stream sequence {seq}, {stamp}) was written by another writer (writer {:?}, this one is {:?}) after this listener's stream sequence {}: another daemon publishes on the same subject; stop it",
                        stamp.writer, self.builder.writer, self.chain.last_seq
                    )));
                }
                Chain {
                    last_seq: seq,
                    done: Some(stamp.start),
                }
            }
        };
        if !self.reconciled_once {
            match chain.done {
                Some(done) if done >= self.cursor => self.logger.info(&format!(
                    "{}: the stream holds entries up to the one at {done}; skipping them (the host resumes at {})",
                    self.who(),
                    self.cursor
                )),
                Some(done) => self.logger.info(&format!(
                    "{}: last message on the subject is the entry at {done}; resuming at {}",
                    self.who(),
                    self.cursor
                )),
                None => {}
            }
        }
        self.chain = chain;
        self.stale = false;
        self.unacked.clear();
        self.reconciled_once = true;
        Ok(())
    }

    fn conflict_fatal(&self, what: String) -> Failure {
        Failure::fatal(format!("{}: {what}. Nothing more is published", self.who()))
    }

    /// Publishes `msgs`; `ends[i]` is where the host's cursor stands once
    /// message `i` is stored; `skipped_end` once the skipped ones are. A
    /// message over the server's max payload stops the batch there: what
    /// is before it is published and acknowledged, it and what follows are not.
    fn send(
        &mut self,
        mut msgs: Vec<Outgoing>,
        ends: &[Position],
        skipped_end: Option<Position>,
    ) -> Result<Ack, Failure> {
        let max = self
            .conn
            .as_ref()
            .map_or(0, |(c, _)| c.client.server_info().max_payload);
        let size = |m: &Outgoing| m.payload.len() + header_bytes(&m.headers) + FRAMING;
        let too_big = msgs.iter().position(|m| max > 0 && size(m) > max);
        let big = too_big.map(|i| {
            let m = &msgs[i];
            format!(
                "{}: the entry at {} is {} bytes ({} with its headers), more than the server's max_payload of {max} bytes; it is not published and nothing after it: raise max_payload in the nats-server configuration (up to 64 MB), then start the daemon again",
                self.who(),
                m.start,
                m.payload.len(),
                size(m),
            )
        });
        msgs.truncate(too_big.unwrap_or(msgs.len()));
        let published = self.publish(&msgs, ends, skipped_end)?;
        match big {
            None => Ok(Ack::All),
            Some(why) => {
                let f = Failure::fatal(why);
                Err(match published.or(skipped_end) {
                    Some(a) => f.with_ack(a),
                    None => f,
                })
            }
        }
    }

    /// Publishes every message of `msgs`; returns where the cursor stands
    /// after the last one (`None`: `msgs` is empty).
    fn publish(
        &mut self,
        msgs: &[Outgoing],
        ends: &[Position],
        skipped_end: Option<Position>,
    ) -> Result<Option<Position>, Failure> {
        if msgs.is_empty() {
            return Ok(None);
        }
        let (_, publisher) = self.conn.as_mut().expect("connected");
        let r = self.rt.block_on(publisher.publish(&mut self.chain, msgs));
        let Err((acked, e)) = r else {
            return Ok(Some(ends[msgs.len() - 1]));
        };
        let ack = if acked > 0 {
            Some(ends[acked - 1])
        } else {
            skipped_end
        };
        let f = match e {
            PubError::Uncertain(m) => {
                self.stale = true;
                self.unacked = msgs[acked..].iter().map(|m| m.start).collect();
                Failure::retry(format!(
                    "{}: {m}; the subject is read again before retrying",
                    self.who()
                ))
            }
            PubError::Refused(m) => Failure::fatal(format!("{}: {m}", self.who())),
            PubError::Conflict { expected, detail } => {
                self.conflict(expected, &msgs[acked], detail)
            }
        };
        Err(match ack {
            Some(a) => f.with_ack(a),
            None => f,
        })
    }

    /// The error for a refused check: both positions, read from the stream.
    fn conflict(&mut self, expected: u64, refused: &Outgoing, detail: String) -> Failure {
        let (c, _) = self.conn.as_ref().expect("connected");
        let theirs = match self
            .rt
            .block_on(conn::last_on_subject(&c.stream, &self.subject))
        {
            Ok(Some((seq, Ok(stamp)))) => {
                format!("stream sequence {seq}: {stamp}, writer {:?}", stamp.writer)
            }
            Ok(Some((seq, Err(why)))) => {
                format!("stream sequence {seq}, not written by logdaemon ({why})")
            }
            Ok(None) => "no message".into(),
            Err(e) => e,
        };
        self.stale = true;
        self.conflict_fatal(format!(
            "publishing the entry at {} was refused ({detail}): this listener's last message on the subject is stream sequence {expected} (entry at {}), but the subject now ends with {theirs}. Another writer publishes on this subject (a second daemon?); stop it, and give each host and journal its own subject",
            refused.start,
            self.chain.done.map_or("-".into(), |p| p.to_string()),
        ))
    }
}

impl Listener for NatsListener {
    const WANTS_FIELDS: bool = false;
    const FILTERS: bool = false;

    fn open(ctx: &OpenContext<'_>) -> Result<Self, Failure> {
        let settings = Settings::parse(ctx.listener, ctx.config_toml, ctx.config_dir)
            .map_err(|e| Failure::fatal(e.to_string()))?;
        let host = settings.host.clone().unwrap_or_else(host_name);
        let file = ctx
            .journal_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let subject = message::subject(&settings.subject, ctx.journal, &host, &file);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let writer = format!("{:x}-{:x}", std::process::id(), nanos);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nats-listener")
            .enable_all()
            .build()
            .map_err(|e| {
                Failure::fatal(format!(
                    "nats listener `{}`: cannot start its runtime: {e}",
                    ctx.listener
                ))
            })?;
        Ok(NatsListener {
            name: ctx.listener.to_string(),
            builder: Builder {
                host,
                journal: ctx.journal.to_string(),
                jsonl: settings.payload == Payload::Jsonl,
                p4: ctx.format == "p4",
                writer,
            },
            settings,
            subject,
            cursor: ctx.cursor,
            logger: ctx.logger,
            conn: None,
            rt,
            chain: Chain::default(),
            stale: true,
            unacked: Vec::new(),
            reconciled_once: false,
            buf: Vec::new(),
        })
    }

    fn listen(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure> {
        self.ready()?;
        // Entries are in stream order: what starts at or before the last
        // message on the subject is already there.
        let skip = match (self.settings.exactly_once, self.chain.done) {
            (true, Some(done)) => entries
                .iter()
                .position(|e| e.start() > done)
                .unwrap_or(entries.len()),
            _ => 0,
        };
        let skipped_end = skip.checked_sub(1).map(|i| entries[i].end());
        let mut buf = std::mem::take(&mut self.buf);
        let msgs: Vec<Outgoing> = entries[skip..]
            .iter()
            .map(|e| self.builder.entry(e, &mut buf))
            .collect();
        self.buf = buf;
        let ends: Vec<Position> = entries[skip..].iter().map(Entry::end).collect();
        self.send(msgs, &ends, skipped_end)
    }

    fn gap(&mut self, gap: &Gap<'_>) -> Result<Ack, Failure> {
        self.ready()?;
        self.logger.warn(&format!(
            "{}: gap from {} to {} ({}): {}",
            self.who(),
            gap.from,
            gap.to,
            gap.cause,
            gap.detail
        ));
        if self.settings.exactly_once && self.chain.done.is_some_and(|d| gap.from <= d) {
            return Ok(Ack::All);
        }
        let m = self.builder.gap(gap);
        self.send(vec![m], &[gap.to], None)
    }
}
