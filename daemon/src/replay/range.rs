//! The range as written on the command line: times (`--since`, `--until`)
//! and positions (`--from`, `--to`).

use jiff::Timestamp;

use super::error::ReplayError;
use super::select::{Bounds, Pos};

/// A time: RFC 3339 (`2026-12-07T10:00:00Z`, `…+01:00`), or relative to
/// `now` (`-2h`, `-90m`, `-1day`).
pub fn parse_time(what: &'static str, s: &str, now: Timestamp) -> Result<Timestamp, ReplayError> {
    let bad = |why: String| {
        ReplayError::Range {
        what,
        message: format!("{s:?} is not a time ({why}); write an RFC 3339 time such as 2026-12-07T10:00:00Z, or a time before now such as -2h or -30m"),
    }
    };
    if let Some(rel) = s.strip_prefix('-') {
        let d = humantime::parse_duration(rel).map_err(|e| bad(e.to_string()))?;
        let span = jiff::SignedDuration::try_from(d).map_err(|e| bad(e.to_string()))?;
        return now.checked_sub(span).map_err(|e| bad(e.to_string()));
    }
    s.parse::<Timestamp>().map_err(|e| bad(e.to_string()))
}

/// A position `SEQ` or `SEQ:OFFSET`; `exact` says whether an offset was given.
pub fn parse_pos(what: &'static str, s: &str) -> Result<(Pos, bool), ReplayError> {
    let bad = || {
        ReplayError::Range {
        what,
        message: format!("{s:?} is not a position; write a sequence (12) or a sequence and a byte offset (12:4096), as `dump --config` prints them"),
    }
    };
    let (seq, off) = match s.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let sequence = seq.parse().map_err(|_| bad())?;
    let offset = off.map(str::parse).transpose().map_err(|_| bad())?;
    Ok((
        Pos {
            sequence,
            offset: offset.unwrap_or(0),
        },
        offset.is_some(),
    ))
}

/// The bounds of the four options; `--to SEQ` alone means through the end
/// of SEQ.
pub fn bounds(
    since: Option<&str>,
    until: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    now: Timestamp,
) -> Result<Bounds, ReplayError> {
    let since = since.map(|s| parse_time("--since", s, now)).transpose()?;
    let until = until.map(|s| parse_time("--until", s, now)).transpose()?;
    if let (Some(a), Some(b)) = (since, until) {
        if b <= a {
            return Err(ReplayError::Range {
                what: "--until",
                message: format!("{b} is not after --since {a}; the range would be empty"),
            });
        }
    }
    let from = from
        .map(|s| parse_pos("--from", s))
        .transpose()?
        .map(|p| p.0);
    let (to, to_exact) = match to.map(|s| parse_pos("--to", s)).transpose()? {
        None => (None, false),
        Some((p, true)) => (Some(p), true),
        Some((p, false)) => (
            Some(Pos {
                sequence: p.sequence + 1,
                offset: 0,
            }),
            false,
        ),
    };
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f {
            return Err(ReplayError::Range {
                what: "--to",
                message: format!(
                    "{}:{} is not after --from {}:{}; the range would be empty",
                    t.sequence, t.offset, f.sequence, f.offset
                ),
            });
        }
    }
    Ok(Bounds {
        since,
        until,
        from,
        to,
        to_exact,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_relative_to_now() {
        let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        assert_eq!(
            parse_time("--since", "-2h", now).unwrap(),
            "2026-12-07T10:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_time("--since", "2026-12-07T11:00:00+01:00", now).unwrap(),
            "2026-12-07T10:00:00Z".parse::<Timestamp>().unwrap()
        );
        let e = parse_time("--since", "yesterday", now)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--since") && e.contains("\"yesterday\"") && e.contains("-2h"),
            "{e}"
        );
    }

    #[test]
    fn positions_and_the_to_end_of_a_sequence() {
        let now = Timestamp::UNIX_EPOCH;
        let b = bounds(None, None, Some("3:40"), Some("5"), now).unwrap();
        assert_eq!(
            b.from,
            Some(Pos {
                sequence: 3,
                offset: 40
            })
        );
        assert_eq!(
            b.to,
            Some(Pos {
                sequence: 6,
                offset: 0
            })
        );
        assert!(!b.to_exact);
        let b = bounds(None, None, None, Some("5:7"), now).unwrap();
        assert_eq!(
            b.to,
            Some(Pos {
                sequence: 5,
                offset: 7
            })
        );
        assert!(b.to_exact);
        assert!(parse_pos("--from", "x:1").is_err());
        let e = bounds(
            Some("2026-01-02T00:00:00Z"),
            Some("2026-01-01T00:00:00Z"),
            None,
            None,
            now,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not after"), "{e}");
        let e = bounds(None, None, Some("8"), Some("6"), now)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--to: 7:0 is not after --from 8:0"), "{e}");
        assert!(bounds(None, None, Some("6"), Some("6"), now).is_ok());
    }
}
