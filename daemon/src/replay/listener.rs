//! Replay into a listener: a fresh instance of a configured listener,
//! with its own state area, fed the range's entries.
//!
//! The running daemon must not notice: replay takes no lock of the state
//! directory, never reads or writes `checkpoint.toml` or the live
//! listener's private directory. Each replay gets
//! `STATE/replays/JOURNAL/LISTENER/STAMP/` (mode 0700): `listener/` is the
//! plugin's private state directory (an e-mail listener's record of what
//! it sent lives there, apart from the live one's), and `cursor.toml`
//! records what the instance has acknowledged, rewritten atomically after
//! each batch, so an interrupted replay says how far it got.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use logdaemon_sdk::abi::{Bytes, RawEntry, Status, FLAG_DID_ROTATE, FLAG_INCOMPLETE};
use logdaemon_sdk::Position;

use super::error::ReplayError;
use super::family::Member;
use super::scan::Sink;
use crate::config::{Config, JournalConfig, ListenerConfig};
use crate::format::{Format, Record};
use crate::host::{self, CallError, Instance, OpenParams};

/// An entry kept until the listener acknowledges it.
struct Kept {
    sequence: u64,
    offset: u64,
    len: u64,
    line: u64,
    lines: u64,
    flags: u32,
    start: usize,
}

impl Kept {
    fn end(&self) -> Position {
        Position {
            sequence: self.sequence,
            offset: self.offset + self.len,
            line: self.line + self.lines,
        }
    }
}

pub struct ListenerSink<'c> {
    cfg: &'c Config,
    journal: &'c JournalConfig,
    listener: &'c ListenerConfig,
    /// The replay's own state area.
    pub dir: PathBuf,
    instance: Option<Instance>,
    /// Entries handed over but not acknowledged, and their bytes.
    kept: Vec<Kept>,
    bytes: Vec<u8>,
    /// Entries not yet handed over start here in `kept`.
    unsent: usize,
    pub acked: Option<Position>,
}

impl<'c> ListenerSink<'c> {
    /// Creates the replay's state area; the plugin is loaded and opened at
    /// the first entry (its cursor is that entry's position).
    pub fn new(
        cfg: &'c Config,
        journal: &'c JournalConfig,
        name: &str,
    ) -> Result<ListenerSink<'c>, ReplayError> {
        let listener = journal
            .listeners
            .iter()
            .find(|l| l.name == name)
            .ok_or_else(|| ReplayError::Listener {
                listener: name.to_string(),
                message: format!(
                    "journal {:?} has no such listener; its listeners are: {}",
                    journal.name,
                    journal
                        .listeners
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let stamp = format!(
            "{}-{}",
            jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.6fZ"),
            std::process::id()
        );
        let dir = cfg
            .state_dir
            .join("replays")
            .join(&journal.name)
            .join(name)
            .join(stamp);
        let state = |path: &Path, e: logdaemon_state::StateError| ReplayError::State {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        };
        logdaemon_state::ensure_state_dir(&dir.join("listener")).map_err(|e| state(&dir, e))?;
        Ok(ListenerSink {
            cfg,
            journal,
            listener,
            dir,
            instance: None,
            kept: Vec::new(),
            bytes: Vec::new(),
            unsent: 0,
            acked: None,
        })
    }

    fn err(&self, message: String) -> ReplayError {
        ReplayError::Listener {
            listener: self.listener.name.clone(),
            message,
        }
    }

    fn open(&mut self, cursor: Position) -> Result<(), ReplayError> {
        let path = host::resolve(&self.listener.plugin, self.cfg.plugin_dir.as_deref())
            .map_err(|e| self.err(e.to_string()))?;
        let plugin = host::load(&path).map_err(|e| self.err(e.to_string()))?;
        let state = self.dir.join("listener");
        let params = OpenParams {
            listener: &self.listener.name,
            journal: &self.journal.name,
            format: self.journal.format.name(),
            journal_path: &self.journal.path,
            config_toml: &self.listener.config_toml,
            config_dir: &self.cfg.dir,
            state_dir: &state,
            cursor,
        };
        let inst = Instance::open(plugin, &params).map_err(|e| self.err(e.message))?;
        self.instance = Some(inst);
        self.acked = Some(cursor);
        Ok(())
    }

    /// Hands over the entries not yet sent, retrying from the acknowledged
    /// position while the listener asks to (up to its `retry_max` of
    /// failing time).
    fn deliver(&mut self) -> Result<(), ReplayError> {
        let mut failing_since: Option<Instant> = None;
        let mut attempt = 0;
        let mut from = self.unsent;
        loop {
            if from >= self.kept.len() {
                return Ok(());
            }
            let preset = self.kept.last().expect("non-empty").end();
            let r = self.call_listen(from, preset);
            match r {
                Ok(ack) => {
                    self.acknowledge(ack.min(preset))?;
                    self.unsent = self.kept.len();
                    return Ok(());
                }
                Err(e) => {
                    if let Some(a) = e.ack {
                        self.acknowledge(a.min(preset))?;
                    }
                    if e.status == Status::Fatal {
                        return Err(self.failed(&e));
                    }
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.listener.retry_max {
                        return Err(self.failed(&e));
                    }
                    attempt += 1;
                    let wait = crate::worker::backoff(attempt, self.listener.retry_max);
                    tracing::warn!(listener = %self.listener.name, attempt, backoff_ms = wait.as_millis() as u64, "replay: listener asks to retry: {}", e.message);
                    std::thread::sleep(wait.min(Duration::from_secs(5)));
                    // Everything not acknowledged is sent again.
                    from = 0;
                }
            }
        }
    }

    fn failed(&self, e: &CallError) -> ReplayError {
        let at = self
            .acked
            .map(|a| format!("{}:{}", a.sequence, a.offset))
            .unwrap_or_else(|| "the start".into());
        self.err(format!(
            "{e}; it acknowledged up to {at}: replay the rest with --from {at}"
        ))
    }

    fn call_listen(&mut self, from: usize, preset: Position) -> Result<Position, CallError> {
        let inst = self.instance.as_mut().expect("opened at the first entry");
        let p4 = matches!(self.journal.format, Format::P4) && inst.plugin().api.wants_fields;
        let filters = inst.plugin().api.filters;
        let journal = Bytes::new(inst.journal_bytes());
        let mut fields: Vec<Cow<'_, [u8]>> = Vec::new();
        let mut counts = Vec::new();
        let kept = &self.kept[from..];
        let raw = |k: &Kept| &self.bytes[k.start..k.start + k.len as usize];
        if p4 {
            for k in kept {
                let start = fields.len();
                logdaemon_sdk::p4::split_into(raw(k), &mut fields);
                counts.push((start, fields.len() - start));
            }
        }
        let slices: Vec<Bytes> = fields.iter().map(|f| Bytes::new(f)).collect();
        let mut entries: Vec<RawEntry> = Vec::with_capacity(kept.len());
        for (i, k) in kept.iter().enumerate() {
            let mut e = RawEntry {
                struct_size: RawEntry::SIZE,
                journal,
                sequence: k.sequence,
                offset: k.offset,
                len: k.len,
                line: k.line,
                lines: k.lines,
                flags: k.flags,
                raw: Bytes::new(raw(k)),
                op: Bytes::EMPTY,
                fields: std::ptr::null(),
                n_fields: 0,
                // Each entry's bytes stand alone: no runs across entries.
                chunk: Bytes::EMPTY,
            };
            if let Some(&(start, n)) = counts.get(i) {
                if n > 0 {
                    e.op = slices[start];
                    let rest = &slices[start + 1..start + n];
                    if !rest.is_empty() {
                        e.fields = rest.as_ptr();
                        e.n_fields = rest.len();
                    }
                }
            }
            entries.push(e);
        }
        if filters {
            entries.retain(|e| inst.is_handled(e));
        }
        if entries.is_empty() {
            return Ok(preset);
        }
        inst.listen(&entries, preset)
    }

    /// Drops what the listener acknowledged and records it.
    fn acknowledge(&mut self, ack: Position) -> Result<(), ReplayError> {
        if self.acked.is_some_and(|a| ack <= a) {
            return Ok(());
        }
        self.acked = Some(ack);
        let done = self.kept.iter().take_while(|k| k.end() <= ack).count();
        if done > 0 {
            let cut = self.kept.get(done).map_or(self.bytes.len(), |k| k.start);
            self.bytes.drain(..cut);
            self.kept.drain(..done);
            for k in &mut self.kept {
                k.start -= cut;
            }
            self.unsent = self.unsent.saturating_sub(done);
        }
        self.save_cursor(ack)
    }

    fn save_cursor(&self, ack: Position) -> Result<(), ReplayError> {
        let text = format!(
            "# What this replay's listener instance acknowledged.\njournal = {:?}\nlistener = {:?}\nsequence = {}\noffset = {}\nline = {}\n",
            self.journal.name, self.listener.name, ack.sequence, ack.offset, ack.line
        );
        let path = self.dir.join("cursor.toml");
        let tmp = self.dir.join(".cursor.toml.tmp");
        let io = |e| ReplayError::State {
            path: path.clone(),
            source: e,
        };
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Delivers what is left and lets the listener make it durable.
    pub fn finish(&mut self) -> Result<(), ReplayError> {
        if self.instance.is_none() {
            return Ok(());
        }
        self.deliver()?;
        let mut attempt = 0;
        let started = Instant::now();
        loop {
            let preset = self
                .kept
                .last()
                .map(Kept::end)
                .or(self.acked)
                .unwrap_or_default();
            let inst = self.instance.as_mut().expect("opened");
            match inst.flush(preset) {
                Ok(ack) => {
                    self.acknowledge(ack.min(preset))?;
                    if self.kept.iter().all(|k| k.end() <= ack) {
                        return Ok(());
                    }
                    return Err(self.err(format!(
                        "flush left entries unacknowledged after {}:{}",
                        ack.sequence, ack.offset
                    )));
                }
                Err(e)
                    if e.status != Status::Fatal && started.elapsed() < self.listener.retry_max =>
                {
                    attempt += 1;
                    std::thread::sleep(
                        crate::worker::backoff(attempt, self.listener.retry_max)
                            .min(Duration::from_secs(5)),
                    );
                    self.unsent = 0;
                    self.deliver()?;
                }
                Err(e) => return Err(self.failed(&e)),
            }
        }
    }
}

impl Sink for ListenerSink<'_> {
    fn entry(&mut self, m: &Member, rec: &Record<'_>, first: bool) -> Result<(), ReplayError> {
        if self.instance.is_none() {
            self.open(Position {
                sequence: m.sequence,
                offset: rec.offset,
                line: rec.line,
            })?;
        }
        let mut flags = 0;
        if first {
            flags |= FLAG_DID_ROTATE;
        }
        if rec.incomplete {
            flags |= FLAG_INCOMPLETE;
        }
        self.kept.push(Kept {
            sequence: m.sequence,
            offset: rec.offset,
            len: rec.bytes.len() as u64,
            line: rec.line,
            lines: rec.lines,
            flags,
            start: self.bytes.len(),
        });
        self.bytes.extend_from_slice(rec.bytes);
        let unsent_bytes = self.bytes.len() - self.kept[self.unsent].start;
        if unsent_bytes >= self.journal.batch_bytes {
            self.deliver()?;
        }
        Ok(())
    }

    fn needs_lines(&self) -> bool {
        true
    }
}
