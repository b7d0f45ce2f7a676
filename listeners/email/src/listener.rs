//! The e-mail listener: selects entries, holds them in a digest, mails the
//! digest over SMTP and acknowledges entries only once the server has
//! accepted the message that carries them.
//!
//! Exactly-once in normal operation rests on two things: the host's
//! redelivery of everything after the last acknowledgement, and this
//! listener's own record ([`crate::state`]) of what the server accepted.
//! Entries that end at or before the recorded `sent_upto` are acknowledged
//! without being mailed again; a digest recorded as `pending` (handed to
//! the server, acceptance unknown) is rebuilt with the same range and sent
//! again with the same Message-ID.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use logdaemon_sdk::{Ack, Entry, Failure, Gap, Listener, Logger, OpenContext, Position};

use crate::changes::{self, Change, Descriptions, Kind};
use crate::clock::Clock;
use crate::config::{self, OnReject, Preset, Settings};
use crate::digest::{self, Digest, Item};
use crate::rate::RateLimit;
use crate::send::{Mailer, Sent};
use crate::state::{Pending, Record, StateFile};

/// Knobs for running the listener outside the daemon (tests, embedding).
#[derive(Clone)]
pub struct Options {
    /// Where "now" comes from (for `max_delay` and the hourly limit).
    pub clock: Clock,
    /// Fault injection: when set, the next message the server accepts is
    /// treated as if the process died right after the server's reply,
    /// before the acceptance is recorded (the call fails with `Fatal`).
    /// The flag is cleared when it fires.
    pub crash_after_accept: Option<Arc<AtomicBool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Clock::system(),
            crash_after_accept: None,
        }
    }
}

/// The `email` listener.
pub struct EmailListener {
    s: Settings,
    journal: String,
    name: String,
    log: Logger,
    opts: Options,
    mailer: Mailer,
    state: StateFile,
    record: Record,
    descs: Descriptions,
    digest: Digest,
    /// p4-changes: start of the first `db.desc` since the last `db.change`,
    /// held so that a crash before its change still redelivers it.
    desc_hold: Option<Position>,
    /// A digest recorded as pending and not yet confirmed: it is rebuilt
    /// with exactly this range.
    resend: Option<Pending>,
    /// The digest met a sending condition and goes out as soon as the
    /// hourly limit allows.
    due: bool,
    rate: RateLimit,
    rate_noted: bool,
}

impl EmailListener {
    /// Opens with explicit [`Options`]; [`Listener::open`] uses the defaults.
    pub fn open_with(ctx: &OpenContext<'_>, opts: Options) -> Result<EmailListener, Failure> {
        let s = config::parse(
            ctx.listener,
            ctx.format,
            ctx.config_toml,
            |p| ctx.resolve(p),
            |v| std::env::var(v).ok(),
        )
        .map_err(|e| Failure::fatal(e.to_string()))?;
        let log = ctx.logger;
        if s.plaintext_to_remote {
            log.warn(&format!(
                "tls = \"none\" sends mail to {} in clear over the network; use \"starttls\" or \"tls\" unless the path is trusted",
                s.smtp_host
            ));
        }
        let mailer = Mailer::new(&s)
            .map_err(|e| Failure::fatal(format!("email listener `{}`: {e}", ctx.listener)))?;
        let state = StateFile::new(ctx.state_dir);
        let mut record = state
            .load()
            .map_err(|e| Failure::fatal(format!("email listener `{}`: {e}", ctx.listener)))?;
        if let Some(p) = &mut record.pending {
            // Handed over before the stop, answer unknown: that is one doubt.
            p.doubts += 1;
            state
                .save(&record)
                .map_err(|e| Failure::fatal(format!("email listener `{}`: {e}", ctx.listener)))?;
        }
        if let Some(p) = &record.pending {
            log.warn(&format!(
                "digest {} ({} entries, {} to {}) was handed to the server before the last stop without a recorded acceptance; it is rebuilt and sent again with the same Message-ID (recipients may see it twice)",
                p.message_id,
                p.entries,
                Position::from(p.from),
                Position::from(p.to)
            ));
        }
        if let Some(upto) = record.sent_upto.map(Position::from) {
            if upto > ctx.cursor {
                log.info(&format!("entries from {} up to {upto} were already mailed; they are acknowledged without mailing", ctx.cursor));
            }
        }
        Ok(EmailListener {
            rate: RateLimit::new(s.max_messages_per_hour),
            s,
            journal: ctx.journal.to_string(),
            name: ctx.listener.to_string(),
            log,
            opts,
            mailer,
            state,
            resend: record.pending.clone(),
            record,
            descs: Descriptions::default(),
            digest: Digest::default(),
            desc_hold: None,
            due: false,
            rate_noted: false,
        })
    }

    /// Whether everything up to `end` was mailed already.
    fn done(&self, end: Position) -> bool {
        self.record
            .sent_upto
            .is_some_and(|u| end <= Position::from(u))
    }

    /// The earliest position still held, if any.
    fn hold_point(&self) -> Option<Position> {
        match (self.digest.hold_from(), self.desc_hold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn ack(&self) -> Ack {
        self.hold_point().map_or(Ack::All, Ack::Upto)
    }

    /// Runs `f`; on failure drops what is held (the host delivers it again)
    /// and reports the hold point as the failure's acknowledgement.
    fn guarded(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), Failure>,
    ) -> Result<Ack, Failure> {
        match f(self) {
            Ok(()) => Ok(self.ack()),
            Err(mut fail) => {
                if fail.ack.is_none() {
                    fail.ack = self.hold_point();
                }
                self.digest.clear();
                self.desc_hold = None;
                self.due = false;
                self.resend = self.record.pending.clone();
                Err(fail)
            }
        }
    }

    /// The digest item for `e`, if it is one.
    fn item(&mut self, e: &Entry<'_>) -> Option<Item> {
        match self.s.preset {
            None => Some(Item::entry(e)),
            Some(Preset::P4Changes) => match changes::kind(e) {
                Kind::Desc => {
                    self.descs.insert(e);
                    if self.desc_hold.is_none() && !self.done(e.end()) {
                        self.desc_hold = Some(e.start());
                    }
                    None
                }
                Kind::Change => {
                    let held = self.desc_hold.take();
                    let c = Change::from_entry(e, &self.descs)?;
                    let mut it = Item::entry(e);
                    it.hold_from = held.map_or(it.start, |h| h.min(it.start));
                    it.change = Some(c);
                    Some(it)
                }
                Kind::Other => None,
            },
        }
    }

    fn add(&mut self, item: Item, now: Instant) -> Result<(), Failure> {
        if let Some(to) = self.resend.as_ref().map(|p| Position::from(p.to)) {
            if item.start >= to {
                if !self.digest.is_empty() {
                    self.send_now(now)?;
                }
                self.resend = None;
            }
        }
        self.digest.push(item, now);
        if let Some(to) = self.resend.as_ref().map(|p| Position::from(p.to)) {
            if self.digest.range().is_some_and(|r| r.1 >= to) {
                return self.send_now(now);
            }
            return Ok(());
        }
        if self.digest.len() >= self.s.max_entries {
            self.due = true;
        }
        self.try_send(now)
    }

    /// Sends the digest if it is due: `force` (quiet journal, shutdown),
    /// `max_delay` since its first entry, or `max_entries` reached.
    fn check(&mut self, now: Instant, force: bool) -> Result<(), Failure> {
        if self.digest.is_empty() {
            return Ok(());
        }
        if self.resend.is_some() {
            // Waiting for the rest of a recorded digest; when the journal is
            // quiet it will not come, so send what was rebuilt.
            return if force { self.send_now(now) } else { Ok(()) };
        }
        if force
            || self
                .digest
                .first_at
                .is_some_and(|t| now.saturating_duration_since(t) >= self.s.max_delay)
        {
            self.due = true;
        }
        self.try_send(now)
    }

    fn try_send(&mut self, now: Instant) -> Result<(), Failure> {
        if !self.due || self.digest.is_empty() {
            return Ok(());
        }
        if !self.rate.allows(now) {
            if !self.rate_noted {
                self.rate_noted = true;
                self.log.warn(&format!(
                    "max_messages_per_hour = {} reached; further entries are folded into one digest sent when the limit allows",
                    self.s.max_messages_per_hour.unwrap_or(0)
                ));
            }
            return Ok(());
        }
        self.rate_noted = false;
        self.send_now(now)
    }

    /// Records, sends and confirms the current digest.
    fn send_now(&mut self, now: Instant) -> Result<(), Failure> {
        let Some((from, to)) = self.digest.range() else {
            return Ok(());
        };
        let n = self.digest.len();
        let id = digest::message_id(&self.journal, &self.name, from, to, &self.s.from_domain);
        if let Some(p) = &self.resend {
            if Position::from(p.from) != from || Position::from(p.to) != to {
                self.log.warn(&format!(
                    "the pending digest {} could not be rebuilt with the same range (did the rules change?); sending {from} to {to} as {id}",
                    p.message_id
                ));
            }
        }
        let msg =
            digest::render(&self.s, &self.journal, &self.name, &self.digest, &id).map_err(|e| {
                Failure::fatal(format!(
                    "email listener `{}`: cannot build message {id}: {e}",
                    self.name
                ))
            })?;
        let doubts = match &self.record.pending {
            Some(p) if p.message_id == id => p.doubts,
            _ => 0,
        };
        self.record.pending = Some(Pending {
            from: from.into(),
            to: to.into(),
            message_id: id.clone(),
            entries: n,
            doubts,
        });
        self.save()?;
        match self.mailer.send(&msg) {
            Sent::Accepted => {
                if let Some(flag) = &self.opts.crash_after_accept {
                    if flag.swap(false, Ordering::SeqCst) {
                        return Err(Failure::fatal(format!("injected crash after {} accepted {id}", self.mailer.server)));
                    }
                }
                self.confirm(to)?;
                self.rate.record(now);
                self.log.info(&format!("mailed {id}: {n} entries, {from} to {to}"));
                Ok(())
            }
            Sent::InDoubt(why) => self.in_doubt(&id, n, (from, to), doubts + 1, &why),
            Sent::Transient(why) => Err(Failure::retry(format!(
                "email listener `{}`: {} did not take {id} ({n} entries from {from}): {why}; the digest is rebuilt and sent again after the back-off",
                self.name, self.mailer.server
            ))),
            Sent::AuthFailed(why) => {
                let m = format!(
                    "email listener `{}`: {} refused the login for {id}: {why}; check `username` and the password in `password_file`/`password_env`",
                    self.name, self.mailer.server
                );
                self.log.error(&m);
                Err(Failure::fatal(m))
            }
            Sent::Rejected(why) => match self.s.on_reject {
                OnReject::Fatal => {
                    let m = format!(
                        "email listener `{}`: {} refused {id} ({n} entries, {from} to {to}) for good: {why}; fix `to`/`from` or set on_reject = \"skip\"",
                        self.name, self.mailer.server
                    );
                    self.log.error(&m);
                    Err(Failure::fatal(m))
                }
                OnReject::Skip => {
                    self.log.error(&format!(
                        "{} refused {id} for good: {why}; skipped (on_reject = \"skip\"): entries {from} to {to} ({n}) are not mailed",
                        self.mailer.server
                    ));
                    self.confirm(to)
                }
            },
        }
    }

    /// The whole message went out and no answer came: the server may have
    /// stored it. It is sent once more with the same Message-ID; after a
    /// second doubt it is counted as mailed (never a third copy), and the
    /// next digests go on.
    fn in_doubt(
        &mut self,
        id: &str,
        n: usize,
        (from, to): (Position, Position),
        doubts: u32,
        why: &str,
    ) -> Result<(), Failure> {
        if doubts >= 2 {
            self.log.error(&format!(
                "{} took the data of {id} twice without answering (last: {why}); it is not sent a third time, so recipients never get more than two copies: entries {from} to {to} ({n}) are counted as mailed. Look for {id} in the relay's queue or logs",
                self.mailer.server
            ));
            return self.confirm(to);
        }
        if let Some(p) = &mut self.record.pending {
            p.doubts = doubts;
        }
        self.save()?;
        Err(Failure::retry(format!(
            "email listener `{}`: {} did not answer after the data of {id} ({n} entries from {from}): {why}; it may have been stored, and is sent once more with the same Message-ID after the back-off",
            self.name, self.mailer.server
        )))
    }

    /// Records that everything up to `to` is handled and drops the digest.
    fn confirm(&mut self, to: Position) -> Result<(), Failure> {
        self.record.sent_upto = Some(to.into());
        self.record.pending = None;
        self.digest.clear();
        self.due = false;
        self.resend = None;
        self.save()
    }

    fn save(&self) -> Result<(), Failure> {
        self.state
            .save(&self.record)
            .map_err(|e| Failure::error(format!("email listener `{}`: {e}", self.name)))
    }
}

impl Listener for EmailListener {
    fn open(ctx: &OpenContext<'_>) -> Result<Self, Failure> {
        EmailListener::open_with(ctx, Options::default())
    }

    /// The config (addresses, secrets' permissions, templates) and the TLS
    /// setup, as `open` checks them; no connection, no state written.
    fn check(ctx: &OpenContext<'_>) -> Result<(), Failure> {
        let s = config::parse(
            ctx.listener,
            ctx.format,
            ctx.config_toml,
            |p| ctx.resolve(p),
            |v| std::env::var(v).ok(),
        )
        .map_err(|e| Failure::fatal(e.to_string()))?;
        Mailer::new(&s)
            .map(drop)
            .map_err(|e| Failure::fatal(format!("email listener `{}`: {e}", ctx.listener)))
    }

    fn is_handled(&mut self, e: &Entry<'_>) -> bool {
        match self.s.preset {
            Some(Preset::P4Changes) => changes::kind(e) != Kind::Other,
            None => self.s.rules.matches(e),
        }
    }

    fn listen(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure> {
        let now = self.opts.clock.now();
        self.guarded(|me| {
            for e in entries {
                let Some(item) = me.item(e) else { continue };
                if me.done(item.end) {
                    continue;
                }
                me.add(item, now)?;
            }
            me.check(now, false)
        })
    }

    fn no_data(&mut self, had_data: bool) -> Result<Ack, Failure> {
        let now = self.opts.clock.now();
        // p4d writes a description and its change in one go: once the
        // journal is quiet, a description without a change gets none.
        self.desc_hold = None;
        self.guarded(|me| me.check(now, had_data))
    }

    fn flush(&mut self) -> Result<Ack, Failure> {
        let now = self.opts.clock.now();
        self.guarded(|me| me.check(now, true))
    }

    fn gap(&mut self, g: &Gap<'_>) -> Result<Ack, Failure> {
        self.log.warn(&format!(
            "{} to {} of the journal can no longer be read ({}: {}); entries there are not mailed",
            g.from, g.to, g.cause, g.detail
        ));
        Ok(self.ack())
    }
}
