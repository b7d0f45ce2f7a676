//! [`NatsListener`]: the `Listener` implementation. It owns a small tokio
//! runtime (one worker thread, so the client answers the servers' pings
//! between calls) and blocks on it inside each call: the host stays
//! synchronous.
//!
//! States: not connected → connected and reconciled (the chain is known)
//! → publishing. Any failure whose outcome is unknown (timeout, lost
//! connection, leader change) marks the chain unknown; the next call reads
//! the subject's last message again before publishing anything.

use logdaemon_sdk::{Ack, Entry, Failure, Gap, Listener, Logger, OpenContext, Position};
use tokio::runtime::Runtime;

use crate::config::{Payload, Settings};
use crate::conn::{self, Conn, ConnError};
use crate::message::{self, Builder};
use crate::publish::{Chain, PubError, Publisher};

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
                misses: 0,
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

    /// The server's max payload (0: not known).
    fn max_payload(&self) -> usize {
        self.conn
            .as_ref()
            .map_or(0, |(c, _)| c.client.server_info().max_payload)
    }

    /// Turns the outcome of publishing `n` messages into the answer to the
    /// host. `start(i)`/`end(i)` are message `i`'s entry's positions;
    /// `skipped_end` is where the cursor stands after the skipped entries;
    /// `big` (start, payload and message bytes) is an entry that was not
    /// published because it is over the server's max payload.
    fn finish(
        &mut self,
        r: Result<(), (usize, PubError)>,
        n: usize,
        start: &dyn Fn(usize) -> Position,
        end: &dyn Fn(usize) -> Position,
        skipped_end: Option<Position>,
        big: Option<(Position, usize, usize)>,
    ) -> Result<Ack, Failure> {
        let with_ack = |f: Failure, a: Option<Position>| match a {
            Some(a) => f.with_ack(a),
            None => f,
        };
        let (acked, e) = match r {
            Ok(()) => {
                let Some((at, len, size)) = big else {
                    return Ok(Ack::All);
                };
                let max = self.max_payload();
                let f = Failure::fatal(format!(
                    "{}: the entry at {at} is {len} bytes ({size} with its headers), more than the server's max_payload of {max} bytes; it is not published and nothing after it: raise max_payload in the nats-server configuration (up to 64 MB), then start the daemon again",
                    self.who(),
                ));
                let published = n.checked_sub(1).map(end);
                return Err(with_ack(f, published.or(skipped_end)));
            }
            Err(x) => x,
        };
        let ack = acked.checked_sub(1).map(end).or(skipped_end);
        let f = match e {
            PubError::Uncertain(m) => {
                self.stale = true;
                self.unacked = (acked..n).map(start).collect();
                Failure::retry(format!(
                    "{}: {m}; the subject is read again before retrying",
                    self.who()
                ))
            }
            PubError::Refused(m) => Failure::fatal(format!("{}: {m}", self.who())),
            PubError::Conflict { expected, detail } => {
                self.conflict(expected, start(acked), detail)
            }
        };
        Err(with_ack(f, ack))
    }

    /// The error for a refused check: both positions, read from the stream.
    fn conflict(&mut self, expected: u64, refused: Position, detail: String) -> Failure {
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
            refused,
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
        let writer = crate::writer::load_or_create(ctx.state_dir)
            .map_err(|e| Failure::fatal(format!("nats listener `{}`: {e}", ctx.listener)))?;
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
        let entries = &entries[skip..];
        // An entry over the server's max payload stops the batch there.
        let (max, hdr) = (self.max_payload(), self.builder.max_header_bytes());
        let mut buf = std::mem::take(&mut self.buf);
        let big = entries.iter().enumerate().find_map(|(i, e)| {
            let len = self.builder.payload_len(e, &mut buf);
            (max > 0 && len + hdr > max).then_some((i, len))
        });
        let n = big.map_or(entries.len(), |(i, _)| i);
        let builder = &self.builder;
        let mut make = |i: usize| builder.entry(&entries[i], &mut buf);
        let (_, publisher) = self.conn.as_mut().expect("connected");
        let r = self
            .rt
            .block_on(publisher.publish(&mut self.chain, n, &mut make));
        let (misses, window) = (std::mem::take(&mut publisher.misses), publisher.window);
        if misses > 0 {
            self.logger.debug(&format!(
                "{}: {misses} times another message of the stream came between two of ours; sent again, window now {window}",
                self.who(),
            ));
        }
        self.buf = buf;
        let big = big.map(|(i, len)| (entries[i].start(), len, len + hdr));
        self.finish(
            r,
            n,
            &|i| entries[i].start(),
            &|i| entries[i].end(),
            skipped_end,
            big,
        )
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
        let builder = &self.builder;
        let mut make = |_| builder.gap(gap);
        let (_, publisher) = self.conn.as_mut().expect("connected");
        let r = self
            .rt
            .block_on(publisher.publish(&mut self.chain, 1, &mut make));
        self.finish(r, 1, &|_| gap.from, &|_| gap.to, None, None)
    }
}
