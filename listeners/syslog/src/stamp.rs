//! Timestamps: an entry's own date and time found by the `timestamp` regex
//! (ISO 8601 as Python, Java and most loggers write it), or the time the
//! entry was read, written as RFC 5424 (RFC 3339) or RFC 3164 wants it.
//! No calendar arithmetic: the fields are carried over as written, so a
//! timestamp without a zone keeps its wall-clock time and gets the
//! configured `timestamp_zone`.

use std::io::Write;

/// A UTC offset in minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone(i16);

impl Zone {
    pub const UTC: Zone = Zone(0);

    /// `Z`, `+HH:MM`, `-HH:MM` or `+HHMM`.
    pub fn parse(s: &[u8]) -> Option<Zone> {
        Some(zone(s)?.0)
    }
}

/// A date and time as written, checked field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    /// Fraction digits (at most 6) and how many there are.
    frac: [u8; 6],
    frac_len: u8,
    zone: Zone,
}

fn num(s: &[u8], at: usize, len: usize) -> Option<u32> {
    let d = s.get(at..at + len)?;
    d.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// A zone at the start of `s` and its length.
fn zone(s: &[u8]) -> Option<(Zone, usize)> {
    match s.first()? {
        b'Z' | b'z' => Some((Zone::UTC, 1)),
        &sign @ (b'+' | b'-') => {
            let h = num(s, 1, 2)?;
            let (m, len) = if s.get(3) == Some(&b':') {
                (num(s, 4, 2)?, 6)
            } else {
                (num(s, 3, 2)?, 5)
            };
            if h > 23 || m > 59 {
                return None;
            }
            let mins = (h * 60 + m) as i16;
            Some((Zone(if sign == b'-' { -mins } else { mins }), len))
        }
        _ => None,
    }
}

impl Stamp {
    /// `YYYY-MM-DD[T ]HH:MM:SS[.,fraction][zone]`; without a zone, `default`.
    pub fn parse(s: &[u8], default: Zone) -> Option<Stamp> {
        let (year, month, day) = (num(s, 0, 4)?, num(s, 5, 2)?, num(s, 8, 2)?);
        let (hour, minute, second) = (num(s, 11, 2)?, num(s, 14, 2)?, num(s, 17, 2)?);
        let seps = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
        if seps.iter().any(|&(i, c)| s[i] != c) || !matches!(s[10], b'T' | b't' | b' ') {
            return None;
        }
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut st = Stamp {
            year: year as u16,
            month: month as u8,
            day: day as u8,
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            frac: [0; 6],
            frac_len: 0,
            zone: default,
        };
        let mut i = 19;
        if matches!(s.get(i), Some(b'.' | b',')) && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            while let Some(&c) = s.get(i).filter(|c| c.is_ascii_digit()) {
                if (st.frac_len as usize) < st.frac.len() {
                    st.frac[st.frac_len as usize] = c;
                    st.frac_len += 1;
                }
                i += 1;
            }
        }
        while s.get(i) == Some(&b' ') {
            i += 1;
        }
        if let Some((z, _)) = s.get(i..).and_then(zone) {
            st.zone = z;
        }
        Some(st)
    }

    /// The current time (UTC, microseconds).
    pub fn now() -> Stamp {
        let mut buf = [0u8; 40];
        let mut w = &mut buf[..];
        let t = humantime::format_rfc3339_micros(std::time::SystemTime::now());
        write!(w, "{t}").expect("an RFC 3339 time fits 40 bytes");
        Stamp::parse(&buf, Zone::UTC).expect("humantime writes RFC 3339")
    }

    /// RFC 3339 as RFC 5424 wants it (`2026-12-07T05:22:03.123456Z`).
    pub fn write_rfc3339(&self, out: &mut Vec<u8>) {
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.frac_len > 0 {
            out.push(b'.');
            out.extend_from_slice(&self.frac[..self.frac_len as usize]);
        }
        match self.zone.0 {
            0 => out.push(b'Z'),
            z => {
                let _ = write!(
                    out,
                    "{}{:02}:{:02}",
                    if z < 0 { '-' } else { '+' },
                    z.abs() / 60,
                    z.abs() % 60
                );
            }
        }
    }

    /// RFC 3164's `Mmm dd hh:mm:ss` (local wall-clock time as written, no zone).
    pub fn write_rfc3164(&self, out: &mut Vec<u8>) {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let _ = write!(
            out,
            "{} {:>2} {:02}:{:02}:{:02}",
            MONTHS[self.month as usize - 1],
            self.day,
            self.hour,
            self.minute,
            self.second
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc3339(s: &str, z: Zone) -> Option<String> {
        let mut out = Vec::new();
        Stamp::parse(s.as_bytes(), z)?.write_rfc3339(&mut out);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn python_java_and_iso_forms() {
        let plus2 = Zone::parse(b"+02:00").unwrap();
        for (inp, z, want) in [
            (
                "2026-12-07 05:22:03,123 INFO x",
                Zone::UTC,
                "2026-12-07T05:22:03.123Z",
            ),
            (
                "2026-12-07T05:22:03.1234567Z",
                plus2,
                "2026-12-07T05:22:03.123456Z",
            ),
            ("2026-12-07 05:22:03", plus2, "2026-12-07T05:22:03+02:00"),
            (
                "2026-12-07T05:22:03-0530 rest",
                Zone::UTC,
                "2026-12-07T05:22:03-05:30",
            ),
            (
                "2026-12-07 05:22:03.5 +01:00",
                Zone::UTC,
                "2026-12-07T05:22:03.5+01:00",
            ),
        ] {
            assert_eq!(rfc3339(inp, z).as_deref(), Some(want), "{inp}");
        }
        for bad in [
            "2026-13-07 05:22:03",
            "2026-12-07 25:22:03",
            "2026/12/07 05:22:03",
            "2026-12-07",
            "yesterday",
        ] {
            assert_eq!(rfc3339(bad, Zone::UTC), None, "{bad}");
        }
        assert_eq!(Zone::parse(b"+24:00"), None);
    }

    #[test]
    fn rfc3164_and_now() {
        let mut out = Vec::new();
        Stamp::parse(b"2026-02-07 05:02:03", Zone::UTC)
            .unwrap()
            .write_rfc3164(&mut out);
        assert_eq!(out, b"Feb  7 05:02:03");
        let mut now = Vec::new();
        Stamp::now().write_rfc3339(&mut now);
        assert_eq!(
            now.len(),
            "2026-12-07T05:22:03.123456Z".len(),
            "{}",
            String::from_utf8_lossy(&now)
        );
        assert!(now.ends_with(b"Z"));
    }
}
