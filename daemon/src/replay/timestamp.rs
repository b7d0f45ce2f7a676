//! Entry times: the `timestamp` setting of a line log and the `@ex@`
//! markers of a p4 journal.
//!
//! Replay selects entries by time, so each entry needs one. A p4 record
//! takes the time of the `@ex@` (or `@mx@`) marker that closes its
//! transaction; a line log's record takes the time its `timestamp` regex
//! and format find in it, or the previous record's time when it has none
//! (continuation lines, stack traces). Times are parsed with `jiff`:
//! strftime-like formats, IANA time zones from the system's database, and
//! no `unsafe` or C dependency.

use std::time::SystemTime;

use jiff::fmt::strtime::BrokenDownTime;
use jiff::tz::TimeZone;
use jiff::{civil::DateTime, Timestamp};
use regex::bytes::Regex;

/// The built-in timestamp layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// `2026-12-07T05:22:03Z`, `2026-12-07 05:22:03.123+01:00`; without an
    /// offset the configured zone applies.
    Rfc3339,
    /// `Dec  7 05:22:03` (no year: see [`Timestamp::year_hint`]).
    Syslog,
    /// Python logging's default `2026-12-07 05:22:03,123`.
    Python,
    /// Apache / nginx access logs: `[07/Dec/2026:05:22:03 +0000]`.
    Access,
}

impl Preset {
    pub(crate) const NAMES: &'static str = "\"rfc3339\", \"syslog\", \"python\" or \"access\"";

    pub(crate) fn from_name(s: &str) -> Option<Preset> {
        match s {
            "rfc3339" => Some(Preset::Rfc3339),
            "syslog" => Some(Preset::Syslog),
            "python" => Some(Preset::Python),
            "access" => Some(Preset::Access),
            _ => None,
        }
    }

    fn regex(self) -> &'static str {
        match self {
            Preset::Rfc3339 => {
                r"^(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:[Zz]|[+-]\d\d:?\d\d)?)"
            }
            Preset::Syslog => r"^([A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d)",
            Preset::Python => r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})",
            Preset::Access => r"\[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]",
        }
    }

    fn format(self) -> &'static str {
        match self {
            Preset::Rfc3339 => "",
            Preset::Syslog => "%b %d %H:%M:%S",
            Preset::Python => "%Y-%m-%d %H:%M:%S,%f",
            Preset::Access => "%d/%b/%Y:%H:%M:%S %z",
        }
    }
}

/// A `timestamp` setting that cannot be used: the key at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// `preset`, `regex`, `format` or `zone`.
    pub key: &'static str,
    pub message: String,
}

fn spec_err(key: &'static str, message: impl Into<String>) -> SpecError {
    SpecError {
        key,
        message: message.into(),
    }
}

/// How a line log's records carry their time: a regex whose first capture
/// group (or the group named `time`) holds the text, a strftime-like format
/// for that text, and the zone of times written without an offset.
#[derive(Debug, Clone)]
pub struct TimestampSpec {
    regex: Regex,
    /// Empty: RFC 3339.
    format: String,
    zone: TimeZone,
    /// The zone as configured, for messages.
    pub zone_name: String,
}

impl TimestampSpec {
    /// A preset, or a custom `regex` and `format`; `zone` is `"local"`,
    /// `"UTC"`, an IANA name or a fixed offset like `"+02:00"`. Errors
    /// are one sentence naming the value and what to write instead.
    pub fn new(
        preset: Option<Preset>,
        regex: Option<&str>,
        format: Option<&str>,
        zone: Option<&str>,
    ) -> Result<TimestampSpec, SpecError> {
        let (re, format) = match (preset, regex, format) {
            (Some(p), None, None) => (p.regex().to_string(), p.format().to_string()),
            (Some(_), _, _) => {
                return Err(spec_err(
                    "preset",
                    "give either preset or regex and format, not both",
                ))
            }
            (None, Some(r), Some(f)) => (r.to_string(), f.to_string()),
            (None, _, _) => {
                return Err(spec_err(
                    "preset",
                    format!("give preset ({}) or both regex and format", Preset::NAMES),
                ))
            }
        };
        let regex =
            Regex::new(&re).map_err(|e| spec_err("regex", format!("not a valid regex: {e}")))?;
        if regex.captures_len() < 2 {
            return Err(spec_err(
                "regex",
                "no capture group: put the time in ( ) or (?P<time> )",
            ));
        }
        let zone_name = zone.unwrap_or("local").to_string();
        let zone = parse_zone(&zone_name).map_err(|m| spec_err("zone", m))?;
        Ok(TimestampSpec {
            regex,
            format,
            zone,
            zone_name,
        })
    }

    /// The time of `line` (a record's first line), or `None` when the
    /// regex does not match it. `Err` holds the text that matched but did
    /// not parse, and why. `year_hint` completes formats without a year.
    pub fn time_of(&self, line: &[u8], year_hint: YearHint) -> Result<Option<Timestamp>, String> {
        let Some(c) = self.regex.captures(line) else {
            return Ok(None);
        };
        let m = c.name("time").or_else(|| c.get(1)).expect("one group");
        let text = String::from_utf8_lossy(m.as_bytes());
        self.parse(&text, year_hint)
            .map(Some)
            .map_err(|e| format!("{text:?}: {e}"))
    }

    fn parse(&self, text: &str, year_hint: YearHint) -> Result<Timestamp, String> {
        if self.format.is_empty() {
            let t = text.replace(',', ".");
            if let Ok(ts) = t.parse::<Timestamp>() {
                return Ok(ts);
            }
            let dt: DateTime = t.parse().map_err(|e| format!("{e}"))?;
            return self.in_zone(dt);
        }
        // Syslog pads single-digit days with a space ("Dec  7").
        let squeezed = text.replace("  ", " ");
        let mut tm = BrokenDownTime::parse(&self.format, &squeezed).map_err(|e| e.to_string())?;
        if tm.offset().is_some() {
            return tm.to_timestamp().map_err(|e| e.to_string());
        }
        if tm.year().is_none() {
            return year_hint.complete(&mut tm, &self.zone);
        }
        self.in_zone(tm.to_datetime().map_err(|e| e.to_string())?)
    }

    fn in_zone(&self, dt: DateTime) -> Result<Timestamp, String> {
        self.zone
            .to_ambiguous_timestamp(dt)
            .compatible()
            .map_err(|e| e.to_string())
    }
}

/// The year of times written without one (syslog): that of the file's
/// last modification, or the year before when the time would otherwise lie
/// more than a day after it.
#[derive(Debug, Clone, Copy)]
pub struct YearHint(pub Option<SystemTime>);

impl YearHint {
    fn complete(self, tm: &mut BrokenDownTime, zone: &TimeZone) -> Result<Timestamp, String> {
        let reference = self
            .0
            .and_then(|t| Timestamp::try_from(t).ok())
            .unwrap_or_else(Timestamp::now);
        let year = reference.to_zoned(zone.clone()).year();
        for y in [year, year - 1] {
            tm.set_year(Some(y)).map_err(|e| e.to_string())?;
            let dt = tm.to_datetime().map_err(|e| e.to_string())?;
            let ts = zone
                .to_ambiguous_timestamp(dt)
                .compatible()
                .map_err(|e| e.to_string())?;
            if ts.as_second() <= reference.as_second() + 86_400 {
                return Ok(ts);
            }
        }
        Err("no year makes this time lie before the file was last written".into())
    }
}

fn parse_zone(name: &str) -> Result<TimeZone, String> {
    match name {
        "local" => Ok(TimeZone::system()),
        "UTC" | "utc" | "Z" => Ok(TimeZone::UTC),
        n if n.starts_with('+') || n.starts_with('-') => {
            let tm = BrokenDownTime::parse("%:z", n)
                .or_else(|_| BrokenDownTime::parse("%z", n))
                .map_err(|_| format!("zone {n:?}: write a fixed offset as \"+02:00\""))?;
            Ok(TimeZone::fixed(tm.offset().expect("parsed an offset")))
        }
        n => TimeZone::get(n).map_err(|e| {
            format!("zone {n:?} is unknown ({e}); use \"local\", \"UTC\", an IANA name like \"Europe/Berlin\" or an offset like \"+02:00\"")
        }),
    }
}

/// The time of a p4 transaction marker (`@ex@ PID TIME` or `@mx@ PID
/// TIME`), or `None` for any other record.
pub fn p4_marker_time(record: &[u8]) -> Option<Timestamp> {
    let rest = record
        .strip_prefix(b"@ex@ ")
        .or_else(|| record.strip_prefix(b"@mx@ "))?;
    let mut it = rest.split(|&b| b == b' ' || b == b'\n' || b == b'\r');
    let _pid = it.next()?;
    let secs: i64 = std::str::from_utf8(it.next()?).ok()?.parse().ok()?;
    Timestamp::from_second(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn spec(p: Preset, zone: &str) -> TimestampSpec {
        TimestampSpec::new(Some(p), None, None, Some(zone)).unwrap()
    }

    #[test]
    fn presets_parse_their_layouts() {
        let none = YearHint(None);
        let r = spec(Preset::Rfc3339, "UTC");
        assert_eq!(
            r.time_of(b"2026-12-07T05:22:03Z x", none).unwrap(),
            Some(ts("2026-12-07T05:22:03Z"))
        );
        assert_eq!(
            r.time_of(b"2026-12-07 05:22:03.5+01:00 x", none).unwrap(),
            Some(ts("2026-12-07T04:22:03.5Z"))
        );
        let r = spec(Preset::Rfc3339, "+02:00");
        assert_eq!(
            r.time_of(b"2026-12-07T05:22:03 x", none).unwrap(),
            Some(ts("2026-12-07T03:22:03Z"))
        );
        let p = spec(Preset::Python, "Europe/Berlin");
        assert_eq!(
            p.time_of(b"2026-07-01 12:00:00,250 INFO x", none).unwrap(),
            Some(ts("2026-07-01T10:00:00.25Z"))
        );
        let a = spec(Preset::Access, "UTC");
        assert_eq!(
            a.time_of(
                b"127.0.0.1 - - [07/Dec/2026:05:22:03 -0700] \"GET /\"",
                none
            )
            .unwrap(),
            Some(ts("2026-12-07T12:22:03Z"))
        );
        assert_eq!(p.time_of(b"\tat Foo.bar()", none).unwrap(), None);
    }

    #[test]
    fn syslog_takes_the_year_of_the_file_and_steps_back_over_new_year() {
        let s = spec(Preset::Syslog, "UTC");
        let jan = YearHint(Some(ts("2027-01-02T00:00:00Z").into()));
        assert_eq!(
            s.time_of(b"Dec  7 05:22:03 host x", jan).unwrap(),
            Some(ts("2026-12-07T05:22:03Z"))
        );
        assert_eq!(
            s.time_of(b"Jan  1 23:00:00 host x", jan).unwrap(),
            Some(ts("2027-01-01T23:00:00Z"))
        );
    }

    #[test]
    fn text_that_matches_but_does_not_parse_is_an_error_naming_it() {
        let s = TimestampSpec::new(None, Some(r"^(\S+)"), Some("%Y-%m-%d"), Some("UTC")).unwrap();
        let e = s.time_of(b"2026-13-45 x", YearHint(None)).unwrap_err();
        assert!(e.contains("\"2026-13-45\""), "{e}");
    }

    #[test]
    fn bad_settings_are_refused_with_what_to_write() {
        let e = TimestampSpec::new(None, Some("^x"), Some("%Y"), None).unwrap_err();
        assert_eq!(e.key, "regex");
        assert!(e.message.contains("capture group"), "{e:?}");
        let e = TimestampSpec::new(Some(Preset::Python), Some("(x)"), None, None).unwrap_err();
        assert!(e.message.contains("not both"), "{e:?}");
        let e =
            TimestampSpec::new(Some(Preset::Python), None, None, Some("Mars/Olympus")).unwrap_err();
        assert_eq!(e.key, "zone");
        assert!(e.message.contains("IANA"), "{e:?}");
        assert!(TimestampSpec::new(None, Some("(x)"), None, None).is_err());
    }

    #[test]
    fn p4_markers_carry_their_time_and_other_records_none() {
        assert_eq!(
            p4_marker_time(b"@ex@ 8785 1411123744\n"),
            Some(Timestamp::from_second(1411123744).unwrap())
        );
        assert_eq!(
            p4_marker_time(b"@mx@ 1 5 \n"),
            Some(Timestamp::from_second(5).unwrap())
        );
        assert_eq!(
            p4_marker_time(b"@pv@ 1 @db.counters@ @change@ @1@ \n"),
            None
        );
        assert_eq!(p4_marker_time(b"@ex@ 1 x\n"), None);
    }
}
