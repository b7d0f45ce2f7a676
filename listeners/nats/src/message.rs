//! What goes out for one entry: the subject (from the template), the
//! payload (raw bytes or jsonl) and the headers that let the listener and
//! any consumer find the entry's place in the journal.
//!
//! Headers: `Nats-Msg-Id` = `HOST:JOURNAL:WRITER:SEQUENCE:OFFSET` (stable
//! across restarts, so a duplicate is recognisable, and naming the writer,
//! so that another writer's message never passes for ours),
//! `Logdaemon-Host`, `Logdaemon-Journal`, `Logdaemon-Sequence`,
//! `Logdaemon-Offset`, `Logdaemon-Line`, `Logdaemon-Writer` (the writer id
//! of the listener's state directory, see [`crate::writer`]); a gap carries
//! `Logdaemon-Gap` (its cause) and its JSON description as payload.

use async_nats::HeaderMap;
use bytes::Bytes;
use logdaemon_sdk::{json as jsonl, Entry, Gap, Position};

pub const MSG_ID: &str = "Nats-Msg-Id";
pub const HOST: &str = "Logdaemon-Host";
pub const JOURNAL: &str = "Logdaemon-Journal";
pub const SEQUENCE: &str = "Logdaemon-Sequence";
pub const OFFSET: &str = "Logdaemon-Offset";
pub const LINE: &str = "Logdaemon-Line";
pub const GAP: &str = "Logdaemon-Gap";
/// Which listener (state directory) wrote the message; kept across restarts.
pub const WRITER: &str = "Logdaemon-Writer";

/// Placeholders a subject template may hold.
const PLACEHOLDERS: [&str; 3] = ["{journal}", "{host}", "{file}"];

/// Checks a subject template: literal tokens (no wildcards, no empty
/// token) and only known placeholders.
pub fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t.to_string();
    for p in PLACEHOLDERS {
        rest = rest.replace(p, "x");
    }
    if rest.contains(['{', '}']) {
        return Err(format!(
            "{t:?}: unknown placeholder; use {{journal}}, {{host}} and {{file}}"
        ));
    }
    check_subject(&rest).map_err(|why| format!("{t:?}: {why}"))
}

fn check_subject(s: &str) -> Result<(), String> {
    if s.is_empty() || s.split('.').any(str::is_empty) {
        return Err(
            "a subject is dot-separated non-empty tokens, e.g. \"journal.{host}.{journal}\"".into(),
        );
    }
    if s.contains(['*', '>']) || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a publish subject has no wildcards (* >) and no white space".into());
    }
    Ok(())
}

/// One placeholder's value as a subject token: characters a token cannot
/// hold (dots, wildcards, white space) become `_`.
fn token(v: &str) -> String {
    let t: String = v
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

/// Expands a checked template.
pub fn subject(template: &str, journal: &str, host: &str, file: &str) -> String {
    template
        .replace("{journal}", &token(journal))
        .replace("{host}", &token(host))
        .replace("{file}", &token(file))
}

/// The stable message id of the entry (or gap) starting at `p`, as
/// written by `writer`.
pub fn msg_id(host: &str, journal: &str, writer: &str, p: Position) -> String {
    format!("{host}:{journal}:{writer}:{}:{}", p.sequence, p.offset)
}

/// One message ready to publish.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Where its entry (or gap) starts: what the stream then holds up to.
    pub start: Position,
    /// Its `Nats-Msg-Id`.
    pub id: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

/// Builds messages for one listener (host and journal are fixed).
pub struct Builder {
    pub host: String,
    pub journal: String,
    pub jsonl: bool,
    pub p4: bool,
    pub writer: String,
}

impl Builder {
    /// Most bytes the headers of one message take on the wire (names,
    /// values, separators, the check header and the framing).
    pub fn max_header_bytes(&self) -> usize {
        const NUMBER: usize = 20;
        let values = [
            self.host.len() + self.journal.len() + self.writer.len() + 2 * NUMBER + 4, // the id
            self.host.len(),
            self.journal.len(),
            NUMBER,
            NUMBER,
            NUMBER,
            self.writer.len(),
            // the check: an id or a sequence
            self.host.len() + self.journal.len() + self.writer.len() + 2 * NUMBER + 4,
        ];
        let names = [MSG_ID, HOST, JOURNAL, SEQUENCE, OFFSET, LINE, WRITER]
            .iter()
            .map(|n| n.len())
            .sum::<usize>()
            + "Nats-Expected-Last-Subject-Sequence".len();
        names + values.iter().sum::<usize>() + 8 * 4 + 64
    }

    fn headers(&self, p: Position) -> (String, HeaderMap) {
        let id = msg_id(&self.host, &self.journal, &self.writer, p);
        let mut h = HeaderMap::new();
        h.insert(MSG_ID, id.as_str());
        h.insert(HOST, self.host.as_str());
        h.insert(JOURNAL, self.journal.as_str());
        h.insert(SEQUENCE, p.sequence.to_string().as_str());
        h.insert(OFFSET, p.offset.to_string().as_str());
        h.insert(LINE, p.line.to_string().as_str());
        h.insert(WRITER, self.writer.as_str());
        (id, h)
    }

    /// Bytes of the entry's payload.
    pub fn payload_len(&self, e: &Entry<'_>, buf: &mut Vec<u8>) -> usize {
        if self.jsonl {
            buf.clear();
            jsonl::write_entry(buf, e, self.p4);
            buf.len() - 1
        } else {
            e.raw().len()
        }
    }

    pub fn entry(&self, e: &Entry<'_>, buf: &mut Vec<u8>) -> Outgoing {
        let payload = if self.jsonl {
            buf.clear();
            jsonl::write_entry(buf, e, self.p4);
            // One message per entry: the object without its newline.
            Bytes::copy_from_slice(buf.strip_suffix(b"\n").unwrap_or(buf))
        } else {
            Bytes::copy_from_slice(e.raw())
        };
        let (id, headers) = self.headers(e.start());
        Outgoing {
            start: e.start(),
            id,
            headers,
            payload,
        }
    }

    pub fn gap(&self, g: &Gap<'_>) -> Outgoing {
        let mut buf = Vec::new();
        jsonl::write_gap(&mut buf, g);
        let (id, mut headers) = self.headers(g.from);
        headers.insert(GAP, token(g.cause).as_str());
        Outgoing {
            start: g.from,
            id,
            headers,
            payload: Bytes::copy_from_slice(buf.strip_suffix(b"\n").unwrap_or(&buf)),
        }
    }
}

/// What the last message on the subject says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub host: String,
    pub journal: String,
    pub start: Position,
    pub writer: String,
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host {:?} journal {:?} at {}",
            self.host, self.journal, self.start
        )
    }
}

/// Reads the position headers of a stored message; `Err` names what is
/// missing (a message this listener did not write).
pub fn stamp(h: &HeaderMap) -> Result<Stamp, String> {
    let get = |k: &str| {
        h.get(k)
            .map(|v| v.as_str().to_string())
            .ok_or_else(|| format!("it has no {k} header"))
    };
    let num = |k: &str| -> Result<u64, String> {
        let v = get(k)?;
        v.parse()
            .map_err(|_| format!("its {k} header {v:?} is not a number"))
    };
    Ok(Stamp {
        host: get(HOST)?,
        journal: get(JOURNAL)?,
        start: Position {
            sequence: num(SEQUENCE)?,
            offset: num(OFFSET)?,
            line: num(LINE)?,
        },
        writer: h
            .get(WRITER)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert!(check_template("journal.{host}.{journal}").is_ok());
        assert!(check_template("j.{file}").is_ok());
        assert!(check_template("j.{user}")
            .unwrap_err()
            .contains("unknown placeholder"));
        assert!(check_template("j..x").is_err());
        assert!(check_template("j.>").is_err());
        assert!(check_template("j x").is_err());
        assert_eq!(
            subject(
                "journal.{host}.{journal}.{file}",
                "p4",
                "db1.example.com",
                "journal"
            ),
            "journal.db1_example_com.p4.journal"
        );
        assert_eq!(subject("j.{journal}", "a b*", "h", "f"), "j.a_b_");
        assert_eq!(subject("j.{journal}", "", "h", "f"), "j._");
    }

    #[test]
    fn headers_round_trip_through_the_stamp() {
        let b = Builder {
            host: "h1".into(),
            journal: "p4".into(),
            jsonl: false,
            p4: true,
            writer: "w1".into(),
        };
        let p = Position {
            sequence: 7,
            offset: 1234,
            line: 40,
        };
        let (id, h) = b.headers(p);
        assert_eq!(id, "h1:p4:w1:7:1234");
        assert_eq!(h.get(MSG_ID).unwrap().as_str(), "h1:p4:w1:7:1234");
        let wire: usize = h
            .iter()
            .map(|(k, v)| {
                let k: &str = k.as_ref();
                k.len() + v[0].as_str().len() + 4
            })
            .sum();
        assert!(
            wire + "Nats-Expected-Last-Msg-Id: h1:p4:w1:7:1234\r\n".len() < b.max_header_bytes()
        );
        assert_eq!(
            stamp(&h).unwrap(),
            Stamp {
                host: "h1".into(),
                journal: "p4".into(),
                start: p,
                writer: "w1".into(),
            }
        );
        let mut bare = HeaderMap::new();
        bare.insert(HOST, "h1");
        assert!(stamp(&bare).unwrap_err().contains(JOURNAL));
        let mut bad = h.clone();
        bad.insert(OFFSET, "x");
        assert!(stamp(&bad).unwrap_err().contains("not a number"));
    }
}
