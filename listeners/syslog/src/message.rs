//! Turns an entry into one or more syslog messages: RFC 5424 (default) with
//! the entry's position in structured data, or RFC 3164 for old local
//! daemons. An entry longer than `max_message` is split into parts or
//! truncated, and each such message says so in its structured data.
//!
//! Hot path: messages are written into the caller's reused buffer; the
//! regexes use reused capture slots; nothing is allocated per entry.

use std::io::Write;

use logdaemon_sdk::Entry;
use regex::bytes::{CaptureLocations, Regex};

use crate::config::{Format, Oversize, Settings};
use crate::level::Severity;
use crate::stamp::{Stamp, Zone};

/// The private enterprise number of the `logdaemon@…` SD-ID.
pub const SD_ID: &str = "logdaemon@32473";

/// Messages of a batch, end to end in one buffer.
#[derive(Default)]
pub struct Messages {
    pub buf: Vec<u8>,
    /// Each message's byte range in `buf` and the index of its entry.
    pub spans: Vec<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub entry: usize,
}

impl Messages {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
    }
    pub fn get(&self, i: usize) -> &[u8] {
        let s = self.spans[i];
        &self.buf[s.start..s.end]
    }
}

/// What happened to an entry too long for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oversized {
    Split { parts: usize },
    Truncated { len: usize },
}

/// A regex and its reused capture slots for one named group.
#[derive(Clone, Debug)]
struct Finder {
    re: Regex,
    locs: CaptureLocations,
    group: usize,
}

impl Finder {
    fn new(re: &Regex, name: &str) -> Finder {
        let group = re
            .capture_names()
            .position(|n| n == Some(name))
            .expect("checked by the config");
        Finder {
            locs: re.capture_locations(),
            re: re.clone(),
            group,
        }
    }
    fn find<'a>(&mut self, hay: &'a [u8]) -> Option<&'a [u8]> {
        self.re.captures_read(&mut self.locs, hay)?;
        self.locs.get(self.group).map(|(s, e)| &hay[s..e])
    }
}

/// Renders entries as configured.
pub struct Formatter {
    format: Format,
    facility: u8,
    severity: Severity,
    level: Option<Finder>,
    levels: Vec<(String, Severity)>,
    timestamp: Option<Finder>,
    zone: Zone,
    /// RFC 5424: ` HOSTNAME APP-NAME PROCID MSGID `; RFC 3164: `HOSTNAME TAG[PID]: `.
    fields: Vec<u8>,
    /// `[logdaemon@32473 journal="…" sequence="`.
    sd_prefix: Vec<u8>,
    max: usize,
    oversize: Oversize,
    /// Part boundaries of the entry being split (reused).
    cuts: Vec<usize>,
}

impl Formatter {
    /// `local`: a local socket, where RFC 3164 messages carry no host name.
    pub fn new(s: &Settings, journal: &str, local: bool) -> Formatter {
        let mut fields = Vec::new();
        match s.format {
            Format::Rfc5424 => {
                let _ = write!(
                    fields,
                    " {} {} {} {} ",
                    s.hostname, s.app_name, s.procid, s.msgid
                );
            }
            Format::Rfc3164 => {
                if !local {
                    let _ = write!(fields, "{} ", s.hostname);
                }
                fields.extend(s.app_name.bytes().take(32));
                if s.procid != "-" {
                    let _ = write!(fields, "[{}]", s.procid);
                }
                fields.extend_from_slice(b": ");
            }
        }
        let mut sd_prefix = format!("[{SD_ID} journal=\"").into_bytes();
        escape_param(journal.as_bytes(), &mut sd_prefix);
        sd_prefix.extend_from_slice(b"\" sequence=\"");
        Formatter {
            format: s.format,
            facility: s.facility,
            severity: s.severity,
            level: s.level.as_ref().map(|r| Finder::new(r, "level")),
            levels: s.levels.clone(),
            timestamp: s.timestamp.as_ref().map(|r| Finder::new(r, "timestamp")),
            zone: s.timestamp_zone,
            fields,
            sd_prefix,
            max: s.max_message,
            oversize: s.oversize,
            cuts: Vec::new(),
        }
    }

    /// The longest header (everything but the entry's text) a message can
    /// have; `max_message` must leave room after it.
    pub fn max_header(&self) -> usize {
        // PRI, version, timestamp, numbers of 20 digits, the longest marker.
        5 + 2 + 32 + self.fields.len() + self.sd_prefix.len() + 20 + 10 + 20 + 1 + 9 + 2 * 20 + 2
    }

    /// Appends the message(s) of entry number `idx` to `out`.
    pub fn render(
        &mut self,
        e: &Entry<'_>,
        idx: usize,
        now: &Stamp,
        out: &mut Messages,
    ) -> Option<Oversized> {
        let raw = e.raw();
        let body = strip_newline(raw);
        let severity = match self.level.as_mut().and_then(|f| f.find(raw)) {
            Some(name) => Severity::lookup(name, &self.levels).unwrap_or(self.severity),
            None => self.severity,
        };
        let stamp = self
            .timestamp
            .as_mut()
            .and_then(|f| f.find(raw))
            .and_then(|t| Stamp::parse(t, self.zone))
            .unwrap_or(*now);
        let pri = self.facility * 8 + severity.code();
        let start = out.buf.len();
        self.header(pri, &stamp, e, &mut out.buf);
        let head = out.buf.len() - start;
        let sd_close = usize::from(self.format == Format::Rfc5424);
        let whole = head + sd_close + usize::from(!body.is_empty()) + body.len();
        if whole <= self.max {
            self.finish(body, None, out, start, idx);
            return None;
        }
        match self.oversize {
            Oversize::Truncate => {
                let mark = Marker::Truncated(body.len());
                let room = self.max - head - sd_close - 1 - mark.len();
                let cut = char_cut(body, room);
                self.finish(&body[..cut], Some(mark), out, start, idx);
                Some(Oversized::Truncated { len: body.len() })
            }
            Oversize::Split => {
                let n = self.split(body, head + sd_close + 1);
                let hdr = out.buf[start..].to_vec();
                let mut from = 0;
                for i in 0..n {
                    if i > 0 {
                        out.buf.extend_from_slice(&hdr);
                    }
                    let to = self.cuts[i];
                    let s = out.buf.len() - hdr.len();
                    self.finish(&body[from..to], Some(Marker::Part(i + 1, n)), out, s, idx);
                    from = to;
                }
                Some(Oversized::Split { parts: n })
            }
        }
    }

    /// Fills `cuts` with the ends of the parts of `body`; returns how many.
    fn split(&mut self, body: &[u8], fixed: usize) -> usize {
        let mut digits = 1;
        loop {
            let room = self.max
                - fixed
                - Marker::Part(10usize.pow(digits) - 1, 10usize.pow(digits) - 1).len();
            self.cuts.clear();
            let mut at = 0;
            while at < body.len() {
                at += char_cut(&body[at..], room);
                self.cuts.push(at);
            }
            if self.cuts.len() < 10usize.pow(digits) {
                return self.cuts.len();
            }
            digits += 1;
        }
    }

    /// PRI, version, timestamp, fields and (RFC 5424) the open SD element.
    fn header(&self, pri: u8, stamp: &Stamp, e: &Entry<'_>, out: &mut Vec<u8>) {
        let _ = write!(out, "<{pri}>");
        match self.format {
            Format::Rfc5424 => {
                out.extend_from_slice(b"1 ");
                stamp.write_rfc3339(out);
                out.extend_from_slice(&self.fields);
                out.extend_from_slice(&self.sd_prefix);
                let _ = write!(out, "{}\" offset=\"{}\"", e.sequence(), e.offset());
            }
            Format::Rfc3164 => {
                stamp.write_rfc3164(out);
                out.push(b' ');
                out.extend_from_slice(&self.fields);
            }
        }
    }

    /// Closes the message begun at `start` with `text` and records its span.
    fn finish(
        &self,
        text: &[u8],
        mark: Option<Marker>,
        out: &mut Messages,
        start: usize,
        idx: usize,
    ) {
        if self.format == Format::Rfc5424 {
            if let Some(m) = mark {
                m.write(&mut out.buf);
            }
            out.buf.push(b']');
            if !text.is_empty() {
                out.buf.push(b' ');
            }
        }
        out.buf.extend_from_slice(text);
        out.spans.push(Span {
            start,
            end: out.buf.len(),
            entry: idx,
        });
    }
}

/// A structured-data parameter saying a message is not the whole entry.
#[derive(Clone, Copy)]
enum Marker {
    Part(usize, usize),
    Truncated(usize),
}

impl Marker {
    fn write(self, out: &mut Vec<u8>) {
        let _ = match self {
            Marker::Part(i, n) => write!(out, " part=\"{i}/{n}\""),
            Marker::Truncated(len) => write!(out, " truncated=\"{len}\""),
        };
    }
    fn len(self) -> usize {
        let mut v = Vec::with_capacity(48);
        self.write(&mut v);
        v.len()
    }
}

/// The entry without its final line end.
pub fn strip_newline(raw: &[u8]) -> &[u8] {
    let b = raw.strip_suffix(b"\n").unwrap_or(raw);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// Where to cut `b` to at most `room` bytes, not inside a UTF-8 sequence
/// when that can be avoided.
fn char_cut(b: &[u8], room: usize) -> usize {
    if b.len() <= room {
        return b.len();
    }
    let mut cut = room;
    while cut > room.saturating_sub(3) && cut > 0 && (b[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    if cut == 0 || (b[cut] & 0xC0) == 0x80 {
        room.max(1)
    } else {
        cut
    }
}

/// RFC 5424 PARAM-VALUE escaping: `"`, `\` and `]` get a backslash.
pub fn escape_param(v: &[u8], out: &mut Vec<u8>) {
    for &c in v {
        if matches!(c, b'"' | b'\\' | b']') {
            out.push(b'\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests;
