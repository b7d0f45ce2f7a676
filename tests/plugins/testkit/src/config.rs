//! The testkit's `[journal.listener.config]` table.

use std::path::PathBuf;

use logdaemon_sdk::{Failure, OpenContext};
use serde::Deserialize;

/// What the listener does with what it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Append every call to `path` as a JSON line (see [`crate::event`]).
    #[default]
    Record,
    /// Acknowledge everything and record nothing (a sink for benchmarks).
    Discard,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    mode: Mode,
    path: Option<String>,
    retry_until_file: Option<String>,
    panic_on: Option<String>,
    fatal_on: Option<String>,
    open_waits_for_file: Option<String>,
    ack_mid_record_on: Option<String>,
}

/// The validated table; paths resolved against the config file's directory.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    /// Record mode: the JSON-lines file (appended to, created with its directory).
    pub path: Option<PathBuf>,
    /// `listen` answers Retry while this file does not exist.
    pub retry_until_file: Option<PathBuf>,
    /// `listen` panics on a batch holding an entry that contains these bytes.
    pub panic_on: Option<Vec<u8>>,
    /// `listen` fails with Fatal on a batch holding an entry that contains these bytes.
    pub fatal_on: Option<Vec<u8>>,
    /// `open` records an `opening` event, then returns only once this file exists
    /// (a plugin that is slow to start, e.g. connecting to a server).
    pub open_waits_for_file: Option<PathBuf>,
    /// `listen` acknowledges the middle of the first entry containing these
    /// bytes (a buggy listener: the host must refuse it).
    pub ack_mid_record_on: Option<Vec<u8>>,
}

impl Config {
    /// Parses and checks the table; every error is Fatal and names the listener.
    pub fn from_context(ctx: &OpenContext<'_>) -> Result<Config, Failure> {
        let bad = |m: String| Failure::fatal(format!("listener {:?} (testkit): {m}", ctx.listener));
        let raw: Raw =
            toml::from_str(ctx.config_toml).map_err(|e| bad(format!("config: {}", e.message())))?;
        let path = raw.path.map(|p| ctx.resolve(p));
        if raw.mode == Mode::Record && path.is_none() {
            return Err(bad(
                "mode = \"record\" needs path = \"FILE\" to record into".into(),
            ));
        }
        let nonempty = |what: &str, v: Option<String>| match v {
            Some(s) if s.is_empty() => Err(bad(format!("{what} must not be empty"))),
            other => Ok(other.map(String::into_bytes)),
        };
        Ok(Config {
            mode: raw.mode,
            path,
            retry_until_file: raw.retry_until_file.map(|p| ctx.resolve(p)),
            panic_on: nonempty("panic_on", raw.panic_on)?,
            fatal_on: nonempty("fatal_on", raw.fatal_on)?,
            open_waits_for_file: raw.open_waits_for_file.map(|p| ctx.resolve(p)),
            ack_mid_record_on: nonempty("ack_mid_record_on", raw.ack_mid_record_on)?,
        })
    }
}
