//! The `hot-backup` listener: keeps a byte-identical, transaction-consistent
//! standby copy of the journal (and its rotated predecessors) in a directory
//! on another host, over SSH, exactly once across crashes, restarts,
//! network cuts and standby restarts; optionally feeds every shipped batch
//! to a command on the standby (`p4d -jr -`) so the standby stays applied.
//!
//! The pieces: [`config`] (the TOML table), [`hold`] (what may be shipped:
//! whole transactions), [`sender`] (shipping on its own thread while the
//! host reads on), [`standby`] (reconciling with and appending to the
//! standby), [`ssh`] (trust, authentication, exec channels), [`shell`] (the
//! scripts the standby runs), [`record`] (the listener's durable memory).

pub mod cksum;
pub mod config;
pub mod error;
pub mod hold;
pub mod hostkey;
pub mod record;
pub mod remote;
pub mod sender;
pub mod shell;
pub mod ssh;
pub mod standby;

use std::time::{Duration, Instant};

use logdaemon_sdk::{export_listener, Ack, Entry, Failure, Gap, Listener, Logger, OpenContext};

use crate::error::Error;
use crate::hold::Hold;
use crate::sender::Sender;
use crate::standby::Standby;

/// A source of the current time (injected by tests).
pub type Clock = Box<dyn Fn() -> Instant + Send>;

/// The listener instance.
pub struct HotBackup {
    name: String,
    log: Logger,
    hold: Hold,
    sender: Sender,
    batch_bytes: u64,
    max_delay: Duration,
    clock: Clock,
    /// When the oldest shippable, unqueued entry became shippable.
    waiting_since: Option<Instant>,
    max_hold_time: Duration,
    /// Since when records wait for an open transaction to end, and
    /// whether that was logged.
    held_since: Option<(Instant, bool)>,
}

impl HotBackup {
    /// Parses the config and checks the identity file: what `open` refuses
    /// before it connects, without side effects.
    fn check_config(ctx: &OpenContext<'_>) -> Result<config::Config, Failure> {
        let name = ctx.listener;
        let env = |k: &str| std::env::var(k).ok();
        let cfg = config::parse(ctx.config_toml, ctx.format, &|p| ctx.resolve(p), &env)
            .map_err(|e| e.into_failure(name))?;
        if let config::Auth::Key { identity_file, .. } = &cfg.auth {
            ssh::check_identity_file(identity_file).map_err(|e| e.into_failure(name))?;
        }
        Ok(cfg)
    }

    /// Opens the listener with an injected clock (tests); [`Listener::open`]
    /// uses the system's monotonic clock.
    pub fn open_with_clock(ctx: &OpenContext<'_>, clock: Clock) -> Result<Self, Failure> {
        let name = ctx.listener.to_string();
        let cfg = HotBackup::check_config(ctx)?;
        let mut hold = Hold::new(cfg.transactions, cfg.max_hold);
        hold.expect_at(Some(ctx.cursor));
        let (batch_bytes, max_delay, max_hold_time) =
            (cfg.batch_bytes, cfg.max_delay, cfg.max_hold_time);
        let mut standby = Standby::new(
            cfg,
            ctx.logger,
            ctx.journal_path.to_path_buf(),
            ctx.state_dir,
        )
        .map_err(|e| e.into_failure(&name))?;
        // Connect now so a wrong host key or user key is reported at start;
        // a standby that is merely down is retried with the first batch.
        match standby.connect() {
            Ok(()) => {}
            Err(e @ Error::Fatal(_)) => return Err(e.into_failure(&name)),
            Err(e) => {
                ctx.logger
                    .warn(&format!("standby not reachable yet, will retry: {e}"));
                standby.reset();
            }
        }
        let sender = Sender::spawn(standby);
        Ok(HotBackup {
            name,
            log: ctx.logger,
            hold,
            sender,
            batch_bytes,
            max_delay,
            clock,
            waiting_since: None,
            max_hold_time,
            held_since: None,
        })
    }

    /// Logs once when an unfinished transaction (an `@mx@` without its
    /// `@ex@`) has held records back for `max_hold_time`: the standby
    /// stays behind meanwhile, silently otherwise.
    fn note_unclosed(&mut self, shippable: usize) {
        if !self.hold.holds_past(shippable) {
            self.held_since = None;
            return;
        }
        let now = (self.clock)();
        let (since, noted) = self.held_since.get_or_insert((now, false));
        if *noted || now.saturating_duration_since(*since) < self.max_hold_time {
            return;
        }
        *noted = true;
        let held = self.hold.bytes_before(usize::MAX) - self.hold.bytes_before(shippable);
        let what = match self.hold.oldest_open_mx() {
            Some((pid, at)) => format!("the @mx@ of process {pid} at {at}"),
            None => "an unfinished transaction".to_string(),
        };
        self.log.warn(&format!(
            "{what} has had no @ex@ for {} (max_hold_time): {held} bytes after it are held and the standby stays behind until it is closed, max_hold is reached or the journal rotates",
            humantime::format_duration(self.max_hold_time)
        ));
    }

    fn fail(&mut self, e: Error) -> Failure {
        self.hold.clear();
        self.waiting_since = None;
        e.into_failure(&self.name)
    }

    /// Acknowledges everything before the oldest entry not yet confirmed by
    /// the standby (queued for it, or held back).
    fn ack(&self) -> Ack {
        match self.sender.oldest().or(self.hold.first()) {
            Some(p) => Ack::Upto(p),
            None => Ack::All,
        }
    }

    /// Takes note of shipped batches (waiting for the oldest with `block`).
    fn poll(&mut self, block: bool) -> Result<(), Failure> {
        match self.sender.poll(block) {
            Ok(()) => Ok(()),
            Err((e, at)) => {
                let f = self.fail(e);
                self.hold.expect_at(Some(at));
                Err(f.with_ack(at))
            }
        }
    }

    /// Waits until the standby confirmed every queued batch, without
    /// queuing what is still waiting for its batch to fill.
    pub fn wait_queued(&mut self) -> Result<Ack, Failure> {
        while !self.sender.is_idle() {
            self.poll(true)?;
        }
        Ok(self.ack())
    }

    /// Queues what may be shipped once the batch is big or old enough (at
    /// once with `force`, which also waits until the standby confirmed
    /// everything queued). On failure everything not confirmed is dropped:
    /// the host delivers it again.
    fn pump(&mut self, force: bool) -> Result<Ack, Failure> {
        self.poll(false)?;
        let n = self.hold.shippable();
        self.note_unclosed(n);
        if n > 0 {
            let now = (self.clock)();
            let since = *self.waiting_since.get_or_insert(now);
            let big = self.hold.bytes_before(n) as u64 >= self.batch_bytes;
            if force || big || now.saturating_duration_since(since) >= self.max_delay {
                self.waiting_since = None;
                if self.hold.overflowed {
                    self.hold.overflowed = false;
                    self.log.warn("more than max_hold bytes of an unfinished transaction are held; shipping whole records past the transaction boundary");
                }
                while self.sender.is_full() {
                    self.poll(true)?;
                }
                let batch = self.hold.take(n, self.sender.spare());
                if let Err(e) = self.sender.ship(batch) {
                    return Err(self.fail(e));
                }
            }
        }
        if force {
            while !self.sender.is_idle() {
                self.poll(true)?;
            }
        }
        Ok(self.ack())
    }
}

impl Listener for HotBackup {
    /// Only `@mx@` and `@ex@` records are looked into, and split here.
    const WANTS_FIELDS: bool = false;
    /// Every entry is shipped.
    const FILTERS: bool = false;

    fn open(ctx: &OpenContext<'_>) -> Result<Self, Failure> {
        HotBackup::open_with_clock(ctx, Box::new(Instant::now))
    }

    /// The config and the identity file's permissions, as `open` checks
    /// them before it connects; no connection is made.
    fn check(ctx: &OpenContext<'_>) -> Result<(), Failure> {
        HotBackup::check_config(ctx).map(drop)
    }

    fn listen(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure> {
        for e in entries {
            self.hold.push(e);
        }
        self.pump(false)
    }

    fn no_data(&mut self, _had_data: bool) -> Result<Ack, Failure> {
        self.sender.keepalive();
        self.pump(true)
    }

    fn flush(&mut self) -> Result<Ack, Failure> {
        self.pump(true)
    }

    fn gap(&mut self, gap: &Gap<'_>) -> Result<Ack, Failure> {
        let e = error::fatal(format!(
            "the journal lost bytes from {} to {} ({}: {}); the standby can no longer be byte-identical. \
             Rebuild the standby from a checkpoint, then set this listener's checkpoint past the gap",
            gap.from, gap.to, gap.cause, gap.detail
        ));
        Err(self.fail(e))
    }
}

export_listener!(HotBackup, "hot-backup");
