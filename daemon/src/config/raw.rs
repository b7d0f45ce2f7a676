//! The config file exactly as serde reads it, before any validation.
//!
//! Every table denies unknown keys so that a typo is an error, not a
//! silently ignored setting.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub state_dir: Option<Spanned<String>>,
    pub plugin_dir: Option<Spanned<String>>,
    pub watch: Option<Spanned<String>>,
    pub compressed_wait: Option<Spanned<String>>,
    pub log_progress_every: Option<Spanned<String>>,
    pub http: Option<Spanned<RawHttp>>,
    #[serde(default)]
    pub journal: Vec<RawJournal>,
}

/// `[http]`: the status endpoint (see `config::http`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: Option<Spanned<String>>,
    pub allow_remote: Option<Spanned<bool>>,
    pub healthz_max_lag: Option<Spanned<String>>,
    pub healthz_max_lag_bytes: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJournal {
    pub name: Spanned<String>,
    pub path: Spanned<String>,
    pub format: Option<Spanned<String>>,
    pub record_start: Option<Spanned<String>>,
    pub quiet_after: Option<Spanned<String>>,
    pub reconcile_every: Option<Spanned<String>>,
    pub rotated: Option<Spanned<Vec<String>>>,
    pub start: Option<Spanned<toml::Value>>,
    pub on_gap: Option<Spanned<String>>,
    pub batch_bytes: Option<Spanned<i64>>,
    pub timestamp: Option<Spanned<RawTimestamp>>,
    pub late_writes: Option<Spanned<String>>,
    /// File-name patterns a glob `path` leaves out.
    pub exclude: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub listener: Vec<RawListener>,
}

/// `[journal.timestamp]`: how a line log's records carry their time (replay).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimestamp {
    pub preset: Option<Spanned<String>>,
    pub regex: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    pub zone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub name: Spanned<String>,
    pub plugin: Spanned<String>,
    pub on_failure: Option<Spanned<String>>,
    pub retry_max: Option<Spanned<String>>,
    /// Keys spanned, so that `check` can name the line of the key a
    /// listener refuses.
    pub config: Option<std::collections::BTreeMap<Spanned<String>, toml::Value>>,
}
