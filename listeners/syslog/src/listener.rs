//! [`SyslogListener`]: filters entries, renders them as syslog messages,
//! sends each batch over one kept-open connection, and acknowledges
//! exactly the entries the target took (see `transport` for what "took"
//! means per target).

use std::sync::Arc;

use logdaemon_sdk::{Ack, Entry, Failure, Listener, Logger, OpenContext, Position};

use crate::config::{self, Context, Settings, Target};
use crate::message::{Formatter, Messages, Oversized};
use crate::record::Record;
use crate::stamp::Stamp;
use crate::tls;
use crate::transport::{self, Conn, Counters, ErrorKind, SendError};

/// A message buffer grown past this by one huge batch is shrunk back.
const KEEP_BUFFER: usize = 16 << 20;

/// The `syslog` listener. See the crate documentation.
pub struct SyslogListener {
    name: String,
    settings: Settings,
    formatter: Formatter,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: Option<Conn>,
    msgs: Messages,
    record: Record,
    /// End of the last entry the target took, as recorded.
    done: Option<Position>,
    counters: Counters,
    /// The counters when they were last logged.
    logged: Counters,
    logger: Logger,
}

impl SyslogListener {
    /// What was sent so far (for tests and the logs).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    fn ensure_conn(&mut self) -> Result<&mut Conn, Failure> {
        if self.conn.is_none() {
            let c = transport::connect(&self.settings, self.tls.as_ref())
                .map_err(|e| self.failure(e.kind, &e.message))?;
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("just set"))
    }

    /// Sends a batch over the kept-open connection, or a new one. A kept
    /// connection the receiver closed while it was idle shows only when it
    /// is used: then the batch goes once more over a fresh one at once.
    fn send(&mut self, msgs: &Messages, entries: usize) -> Result<Result<(), SendError>, Failure> {
        let reused = self.conn.is_some();
        let mut sent = Counters::default();
        let mut r = self.ensure_conn()?.send(msgs, entries, &mut sent);
        let stale = matches!(&r, Err(e) if e.kind == ErrorKind::Down && e.done == 0);
        if reused && stale && !matches!(self.conn, Some(Conn::Datagram(_))) {
            self.logger.debug(&format!(
                "syslog listener `{}`: the kept connection was closed; sending over a new one",
                self.name
            ));
            self.conn = None;
            r = self.ensure_conn()?.send(msgs, entries, &mut sent);
        }
        self.counters.messages += sent.messages;
        self.counters.refused += sent.refused;
        Ok(r)
    }

    fn failure(&self, kind: ErrorKind, message: &str) -> Failure {
        let m = format!("syslog listener `{}`: {message}", self.name);
        match kind {
            ErrorKind::Down | ErrorKind::Certificate => Failure::retry(m),
            ErrorKind::Refused => Failure::error(m),
            ErrorKind::TooBig | ErrorKind::Unsafe => Failure::fatal(m),
        }
    }

    fn store(&mut self, p: Position) -> Result<(), Failure> {
        self.record.store(p).map_err(|e| {
            Failure::retry(format!("syslog listener `{}`: {e}; retrying", self.name))
        })?;
        self.done = Some(p);
        Ok(())
    }

    fn log_counters(&mut self) {
        if self.counters == self.logged {
            return;
        }
        let c = self.counters;
        self.logger.info(&format!(
            "syslog listener `{}` to {}: {} entries sent as {} messages ({} split, {} truncated, {} UDP datagrams refused by the network)",
            self.name, self.settings.url, c.entries, c.messages, c.split, c.truncated, c.refused
        ));
        self.logged = c;
    }

    fn note_oversized(&mut self, e: &Entry<'_>, o: Oversized) {
        let what = match o {
            Oversized::Split { parts } => {
                self.counters.split += 1;
                format!("split into {parts} messages marked part=\"i/{parts}\"")
            }
            Oversized::Truncated { len } => {
                self.counters.truncated += 1;
                format!("truncated from {len} bytes, marked truncated=\"{len}\"")
            }
        };
        self.logger.warn(&format!(
            "syslog listener `{}`: the entry at {} is longer than max_message ({} bytes): {what}",
            self.name,
            e.start(),
            self.settings.max_message
        ));
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// What `open` builds from the validated config.
struct Prepared {
    name: String,
    settings: Settings,
    formatter: Formatter,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// What `open` and `check` validate: the config, the target's socket and
/// the TLS setup. No side effects.
fn prepare(ctx: &OpenContext<'_>) -> Result<Prepared, Failure> {
    let name = ctx.listener.to_string();
    let host = hostname();
    let resolve = |p: &std::path::Path| ctx.resolve(p);
    let cx = Context {
        listener: &name,
        resolve: &resolve,
        hostname: &host,
        pid: std::process::id(),
    };
    let settings =
        config::parse(ctx.config_toml, &cx).map_err(|e| Failure::fatal(e.to_string()))?;
    let key_error = |key: &str, why: String| {
        Failure::fatal(format!(
            "syslog listener `{name}`: config key `{key}`: {why}"
        ))
    };
    let local = matches!(settings.target, Target::Unix(_));
    let formatter = Formatter::new(&settings, ctx.journal, local);
    if settings.max_message < formatter.max_header() + 16 {
        return Err(key_error(
                "max_message",
                format!(
                    "{} bytes leave no room for the entry after a header of up to {} bytes; raise it or shorten hostname/app_name/procid/msgid",
                    settings.max_message,
                    formatter.max_header()
                ),
            ));
    }
    if let Target::Unix(path) = &settings.target {
        if path.exists() {
            tls::check_file("target", path, tls::Use::Socket)
                .map_err(|e| key_error("target", e))?;
        }
    }
    let tls = match &settings.tls {
        Some(t) => Some(tls::client_config(t).map_err(|(key, e)| key_error(key, e))?),
        None => None,
    };
    Ok(Prepared {
        name,
        settings,
        formatter,
        tls,
    })
}

impl Listener for SyslogListener {
    /// Messages carry the raw entry; no p4 field splitting needed.
    const WANTS_FIELDS: bool = false;

    fn open(ctx: &OpenContext<'_>) -> Result<Self, Failure> {
        let Prepared {
            name,
            settings,
            formatter,
            tls,
        } = prepare(ctx)?;
        let record = Record::new(ctx.state_dir, &settings.url);
        let done = record
            .load()
            .map_err(|e| Failure::fatal(format!("syslog listener `{name}`: {e}")))?;
        if let Some(d) = done.filter(|&d| d > ctx.cursor) {
            ctx.logger.info(&format!("syslog listener `{name}`: {} took the journal up to {d}; skipping entries redelivered up to there", settings.url));
        }
        Ok(SyslogListener {
            name,
            settings,
            formatter,
            tls,
            conn: None,
            msgs: Messages::default(),
            record,
            done,
            counters: Counters::default(),
            logged: Counters::default(),
            logger: ctx.logger,
        })
    }

    /// The config, the target's socket and the TLS files, as `open`
    /// checks them; no connection, no state read or written.
    fn check(ctx: &OpenContext<'_>) -> Result<(), Failure> {
        prepare(ctx).map(drop)
    }

    fn is_handled(&mut self, e: &Entry<'_>) -> bool {
        let raw = e.raw();
        self.settings
            .include
            .as_ref()
            .is_none_or(|r| r.is_match(raw))
            && !self
                .settings
                .exclude
                .as_ref()
                .is_some_and(|r| r.is_match(raw))
    }

    fn listen(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure> {
        let skip = entries
            .iter()
            .position(|e| self.done.is_none_or(|d| e.end() > d))
            .unwrap_or(entries.len());
        let new = &entries[skip..];
        let Some(last) = new.last().map(Entry::end) else {
            return Ok(Ack::All);
        };
        let now = Stamp::now();
        let mut msgs = std::mem::take(&mut self.msgs);
        msgs.clear();
        for (i, e) in new.iter().enumerate() {
            if let Some(o) = self.formatter.render(e, i, &now, &mut msgs) {
                self.note_oversized(e, o);
            }
        }
        let n_msgs = msgs.spans.len();
        let r = self.send(&msgs, new.len());
        if msgs.buf.capacity() <= KEEP_BUFFER {
            self.msgs = msgs;
        }
        let r = r?;
        match r {
            Ok(()) => {
                self.counters.entries += new.len() as u64;
                if !matches!(self.conn, Some(Conn::Datagram(_))) {
                    self.counters.messages += n_msgs as u64;
                }
                self.store(last)?;
                Ok(Ack::All)
            }
            Err(e) => {
                if let Some(c) = self.conn.take() {
                    if e.kind == ErrorKind::Refused {
                        c.close();
                    }
                }
                let mut f = self.failure(e.kind, &e.message);
                if e.done > 0 {
                    let at = new[e.done - 1].end();
                    self.counters.entries += e.done as u64;
                    self.store(at)?;
                    f = f.with_ack(at);
                }
                Err(f)
            }
        }
    }

    fn no_data(&mut self, had_data: bool) -> Result<Ack, Failure> {
        if had_data {
            self.log_counters();
        }
        Ok(Ack::All)
    }

    fn flush(&mut self) -> Result<Ack, Failure> {
        self.log_counters();
        Ok(Ack::All)
    }
}

impl Drop for SyslogListener {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            c.close();
        }
    }
}
