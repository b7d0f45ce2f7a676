//! Opening one listener's worker: its plugin, its follower at the saved
//! cursor (or the journal's start, pinned in the checkpoint), its
//! instance. Used at start and when a reload adds or changes a listener.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use logdaemon_sdk::Position;
use logdaemon_state::{Checkpoint, Cursor};

use super::{listener_state_dir, start_cursor, EngineError};
use crate::config::{Config, JournalConfig, ListenerConfig};
use crate::follow::Follower;
use crate::host::{self, Instance, OpenParams};
use crate::quiet::Clock;
use crate::tap::Tap;
use crate::worker::Worker;

/// A listener's follower, opened before its listener.
pub(super) struct Opened {
    follower: Follower,
    cursor: Cursor,
    /// Its start was pinned in the checkpoint.
    pinned: bool,
}

/// What every worker of a run shares.
pub(super) struct Context<'a> {
    pub cfg: &'a Config,
    pub clock: Arc<dyn Clock>,
    pub stop: Arc<AtomicBool>,
    pub once: bool,
    /// Each journal's reader, shared by its listeners' workers (see
    /// [`crate::tap`]); it reads with the journal's table it was made
    /// for ([`Tap::config`]): a worker opened for a changed table gets a
    /// new one.
    pub taps: Mutex<HashMap<String, Weak<Tap>>>,
}

impl Context<'_> {
    /// The journal as this run follows it.
    pub fn journal(&self, j: &JournalConfig) -> Arc<JournalConfig> {
        self.journal_of(Arc::new(j.clone()))
    }

    /// Like [`Context::journal`], sharing `j` when the run follows it as
    /// it is (the config's own table: one copy for thousands of journals).
    pub fn journal_of(&self, j: Arc<JournalConfig>) -> Arc<JournalConfig> {
        if self.once && j.late_writes != Duration::ZERO {
            let mut j = (*j).clone();
            // `--once` delivers what is there now; it does not wait for late writers.
            j.late_writes = Duration::ZERO;
            return Arc::new(j);
        }
        j
    }

    /// The reader of journal `j` that its listeners share: the one its
    /// other workers have, unless the journal's table changed since.
    fn tap(&self, j: &Arc<JournalConfig>) -> Arc<Tap> {
        let mut taps = self.taps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tap) = taps.get(&j.name).and_then(Weak::upgrade) {
            if same_table(tap.config(), j) {
                return tap;
            }
        }
        let tap = Tap::new(j.clone());
        taps.insert(j.name.clone(), Arc::downgrade(&tap));
        tap
    }

    /// Opens the worker of listener `l` of journal `j`. True with it when
    /// its start was pinned in `checkpoint` (which must then be saved
    /// before the worker runs).
    pub fn worker(
        &self,
        j: &Arc<JournalConfig>,
        l: &Arc<ListenerConfig>,
        checkpoint: &mut Checkpoint,
    ) -> Result<(Worker, bool), EngineError> {
        let o = self.follower(j, l, checkpoint)?;
        self.worker_with(j, l, o, checkpoint)
    }

    /// Opens the workers of every listener of journal `j` (a journal, or a
    /// glob's stream just found): first every listener's follower, which
    /// opens the file, then the listeners. A listener's `open` may take
    /// long (a server to reach); a file deleted meanwhile (a job's log) is
    /// still read whole by every follower, from the file each holds open.
    pub fn workers(
        &self,
        j: &Arc<JournalConfig>,
        checkpoint: &mut Checkpoint,
    ) -> Result<Vec<(Worker, bool)>, EngineError> {
        let mut opened = Vec::new();
        for l in &j.listeners {
            opened.push(self.follower(j, l, checkpoint)?);
        }
        let mut out = Vec::new();
        for (l, o) in j.listeners.iter().zip(opened) {
            out.push(self.worker_with(j, l, o, checkpoint)?);
        }
        Ok(out)
    }

    /// The follower of listener `l` of journal `j`, at its saved cursor or
    /// the journal's start (pinned in `checkpoint`).
    fn follower(
        &self,
        j: &Arc<JournalConfig>,
        l: &ListenerConfig,
        checkpoint: &mut Checkpoint,
    ) -> Result<Opened, EngineError> {
        let cfg = self.cfg;
        let mut pinned = false;
        let _in = tracing::info_span!("listener", journal = %j.name, listener = %l.name).entered();
        let saved = checkpoint
            .journals
            .get(&j.name)
            .and_then(|js| js.listeners.get(&l.name))
            .cloned();
        let history = checkpoint
            .journals
            .get(&j.name)
            .map(|js| js.finished.clone())
            .unwrap_or_default();
        let follower = Follower::open_with_history(
            j.clone(),
            saved.as_ref(),
            &history,
            Some(cfg.state_dir.clone()),
        )?;
        let cursor = match saved {
            Some(c) => c,
            // No file yet (the server has not created its journal):
            // nothing to pin; a restart starts afresh just the same.
            None if follower.position().is_none() => start_cursor(&follower),
            None => {
                // Pin the start now: a restart before the first periodic
                // save must resume here, not at the start of whatever
                // file is live by then.
                let c = start_cursor(&follower);
                let js = checkpoint.journals.entry(j.name.clone()).or_default();
                js.listeners.insert(l.name.clone(), c.clone());
                if js.reader.line == 0 {
                    js.reader = c.clone();
                }
                pinned = true;
                c
            }
        };
        Ok(Opened {
            follower,
            cursor,
            pinned,
        })
    }

    /// The worker of listener `l` with its follower `o`: loads and opens
    /// the listener.
    fn worker_with(
        &self,
        j: &Arc<JournalConfig>,
        l: &Arc<ListenerConfig>,
        o: Opened,
        checkpoint: &mut Checkpoint,
    ) -> Result<(Worker, bool), EngineError> {
        let cfg = self.cfg;
        let Opened {
            follower,
            cursor,
            pinned,
        } = o;
        let _in = tracing::info_span!("listener", journal = %j.name, listener = %l.name).entered();
        let path = host::resolve(&l.plugin, cfg.plugin_dir.as_deref())?;
        let plugin = host::load(&path)?;
        let lstate = listener_state_dir(&cfg.state_dir, &j.name, &l.name)?;
        let params = OpenParams {
            listener: &l.name,
            journal: &j.name,
            format: j.format.name(),
            journal_path: &j.path,
            config_toml: &l.config_toml,
            config_dir: &cfg.dir,
            state_dir: &lstate,
            cursor: Position {
                sequence: cursor.sequence,
                offset: cursor.offset,
                line: cursor.line,
            },
        };
        let instance = Instance::open(plugin, &params).map_err(|e| EngineError::Open {
            journal: j.name.clone(),
            listener: l.name.clone(),
            message: e.message,
        })?;
        let w = Worker::new(
            j.clone(),
            l.clone(),
            instance,
            follower,
            cursor,
            self.clock.clone(),
            self.stop.clone(),
            self.once,
            Some(cfg.state_dir.clone()),
        )
        .with_tap(self.tap(j))
        .owe(
            checkpoint
                .journals
                .get(&j.name)
                .and_then(|js| js.pending_gaps.get(&l.name))
                .cloned(),
        );
        Ok((w, pinned))
    }
}

/// Whether journals `a` and `b` have the same table but for their
/// listeners. Worked out when a worker opens rather than kept beside each
/// tap: the text is a few KiB per journal, for thousands of journals.
fn same_table(a: &Arc<JournalConfig>, b: &Arc<JournalConfig>) -> bool {
    let table = |j: &JournalConfig| {
        let mut t = j.clone();
        t.listeners.clear();
        format!("{t:?}")
    };
    Arc::ptr_eq(a, b) || table(a) == table(b)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::format::Format;

    #[test]
    fn a_journal_table_is_the_same_whatever_its_listeners() {
        let a = JournalConfig::for_test("app", Path::new("/var/log/app.log"), Format::P4);
        let mut b = a.clone();
        b.listeners = vec![Arc::new(ListenerConfig {
            name: "copy".into(),
            plugin: crate::config::PluginRef::Builtin("file".into()),
            on_failure: crate::config::OnFailure::Stop,
            retry_max: Duration::from_secs(1),
            config_toml: String::new(),
            line: 1,
            key_lines: Default::default(),
        })];
        let (a, b) = (Arc::new(a), Arc::new(b));
        assert!(same_table(&a, &a) && same_table(&a, &b));
        let mut c = (*a).clone();
        c.batch_bytes /= 2;
        assert!(!same_table(&a, &Arc::new(c)));
        let mut d = (*a).clone();
        d.path = "/var/log/other.log".into();
        assert!(!same_table(&a, &Arc::new(d)));
    }
}
