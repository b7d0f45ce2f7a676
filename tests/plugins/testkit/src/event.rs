//! What the testkit records: one JSON object per line, tagged by `event`.
//!
//! ```text
//! {"event":"opening","t_ns":...}                 (only with open_waits_for_file)
//! {"event":"open","cursor":{"sequence":1,"offset":0,"line":1},"t_ns":...}
//! {"event":"entry","sequence":1,"offset":0,"line":1,"len":24,"lines":1,"did_rotate":false,"incomplete":false,"t_ns":...,"raw":"..."}
//! {"event":"no_data","had_data":true,"t_ns":...}
//! {"event":"gap","from":{...},"to":{...},"cause":"deleted","detail":"...","t_ns":...}
//! {"event":"retry","waiting_for":"/path","t_ns":...}
//! {"event":"flush","t_ns":...}
//! ```
//!
//! `t_ns` is the wall-clock receive time in nanoseconds since the Unix epoch
//! (one reading per call, shared by the entries of a batch). `raw` is the
//! entry's bytes when they are UTF-8; otherwise `raw_hex` holds them in hex.

use std::time::{SystemTime, UNIX_EPOCH};

use logdaemon_sdk::Position;
use serde::Serialize;

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Pos {
    pub sequence: u64,
    pub offset: u64,
    pub line: u64,
}

impl From<Position> for Pos {
    fn from(p: Position) -> Pos {
        Pos {
            sequence: p.sequence,
            offset: p.offset,
            line: p.line,
        }
    }
}

/// One recorded call (or one entry of a `listen` call).
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    Opening {
        t_ns: u64,
    },
    Open {
        cursor: Pos,
        t_ns: u64,
    },
    Entry {
        sequence: u64,
        offset: u64,
        line: u64,
        len: u64,
        lines: u64,
        did_rotate: bool,
        incomplete: bool,
        t_ns: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        raw: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        raw_hex: Option<String>,
    },
    NoData {
        had_data: bool,
        t_ns: u64,
    },
    Gap {
        from: Pos,
        to: Pos,
        cause: &'a str,
        detail: &'a str,
        t_ns: u64,
    },
    Retry {
        waiting_for: String,
        t_ns: u64,
    },
    Flush {
        t_ns: u64,
    },
}

/// `raw` as text when it is UTF-8, else as hex.
pub fn raw_fields(raw: &[u8]) -> (Option<&str>, Option<String>) {
    match std::str::from_utf8(raw) {
        Ok(s) => (Some(s), None),
        Err(_) => (None, Some(raw.iter().map(|b| format!("{b:02x}")).collect())),
    }
}
