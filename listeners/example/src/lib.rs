//! A complete, minimal logdaemon listener: counts entries per op and table
//! and logs one summary line each time the journal goes quiet.
//!
//! ```toml
//! [[journal.listener]]
//! name = "stats"
//! plugin = "/opt/logdaemon/plugins/liblogdaemon_listener_example.so"
//! [journal.listener.config]
//! tables = ["db.change", "db.rev"]   # optional: count only these tables
//! ```
//!
//! The counts live in memory and are acknowledged at once: a crash loses a
//! partial summary, never an entry of the journal.

use std::collections::BTreeMap;

use logdaemon_sdk::{export_listener, Ack, Entry, Failure, Listener, Logger, OpenContext};
use serde::Deserialize;

/// The listener's `[journal.listener.config]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Count only records of these tables (field 1 of a p4 data record); all when empty.
    #[serde(default)]
    tables: Vec<String>,
}

/// Counts entries per `op table` (p4) or per `line` (line logs).
pub struct Counter {
    tables: Vec<Vec<u8>>,
    counts: BTreeMap<String, u64>,
    logger: Logger,
}

impl Counter {
    /// What was counted since the last summary, e.g. `3 entries: ex=1, pv db.change=2`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        format!(
            "{} entries: {}",
            self.counts.values().sum::<u64>(),
            parts.join(", ")
        )
    }
}

/// The listener's config table, parsed and validated.
fn parse(ctx: &OpenContext<'_>) -> Result<Config, Failure> {
    toml::from_str(ctx.config_toml)
        .map_err(|e| Failure::fatal(format!("listener {:?}: {}", ctx.listener, e.message())))
}

impl Listener for Counter {
    /// The same parse as `open`, with nothing kept.
    fn check(ctx: &OpenContext<'_>) -> Result<(), Failure> {
        parse(ctx).map(drop)
    }

    fn open(ctx: &OpenContext<'_>) -> Result<Self, Failure> {
        let cfg = parse(ctx)?;
        let tables = cfg.tables.into_iter().map(String::into_bytes).collect();
        Ok(Counter {
            tables,
            counts: BTreeMap::new(),
            logger: ctx.logger,
        })
    }

    /// Entries of other tables are skipped by the host and never reach `listen`.
    fn is_handled(&mut self, e: &Entry<'_>) -> bool {
        self.tables.is_empty()
            || e.field(1)
                .is_some_and(|t| self.tables.iter().any(|x| x == t))
    }

    fn listen(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure> {
        for e in entries {
            let key = match (e.op(), e.field(1)) {
                (b"", _) => "line".to_string(),
                (op, Some(t)) if t.starts_with(b"db.") => format!(
                    "{} {}",
                    String::from_utf8_lossy(op),
                    String::from_utf8_lossy(t)
                ),
                (op, _) => String::from_utf8_lossy(op).into_owned(),
            };
            *self.counts.entry(key).or_default() += 1;
        }
        Ok(Ack::All)
    }

    /// `had_data` is true on the first quiet call after entries arrived.
    fn no_data(&mut self, had_data: bool) -> Result<Ack, Failure> {
        if had_data && !self.counts.is_empty() {
            self.logger.info(&self.summary());
            self.counts.clear();
        }
        Ok(Ack::All)
    }
}

export_listener!(Counter, "example");
