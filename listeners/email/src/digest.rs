//! A digest: the selected entries held for one message, and how that
//! message is rendered (subject, plain-text UTF-8 body, Message-ID).

use std::time::Instant;

use lettre::message::SinglePart;
use lettre::Message;
use logdaemon_sdk::{Entry, Position};

use crate::changes::Change;
use crate::config::Settings;

/// One selected entry, copied out of the host's buffer.
#[derive(Clone, Debug)]
pub struct Item {
    pub start: Position,
    pub end: Position,
    /// The earliest position this item needs delivered again after a crash
    /// (before `start` when it depends on an earlier record, such as the
    /// `db.desc` of a change).
    pub hold_from: Position,
    /// The entry's text, decoded lossily (invalid UTF-8 becomes U+FFFD).
    pub text: String,
    pub change: Option<Change>,
}

impl Item {
    /// An item for a plain entry.
    pub fn entry(e: &Entry<'_>) -> Item {
        let raw = e.raw();
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        Item {
            start: e.start(),
            end: e.end(),
            hold_from: e.start(),
            text: String::from_utf8_lossy(raw).into_owned(),
            change: None,
        }
    }
}

/// The entries held for the next message.
#[derive(Debug, Default)]
pub struct Digest {
    pub items: Vec<Item>,
    /// When the first item arrived (for `max_delay`).
    pub first_at: Option<Instant>,
}

impl Digest {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn push(&mut self, item: Item, now: Instant) {
        self.first_at.get_or_insert(now);
        self.items.push(item);
    }

    /// Start of the first entry and end of the last.
    pub fn range(&self) -> Option<(Position, Position)> {
        Some((self.items.first()?.start, self.items.last()?.end))
    }

    /// Where the host must resume after a crash to rebuild this digest.
    pub fn hold_from(&self) -> Option<Position> {
        self.items.iter().map(|i| i.hold_from).min()
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.first_at = None;
    }
}

/// `<logdaemon.{journal}.{listener}.{seqA}-{offA}.{seqB}-{offB}@{domain}>`:
/// the same range always gets the same id, so a resend is recognisable.
pub fn message_id(
    journal: &str,
    listener: &str,
    from: Position,
    to: Position,
    domain: &str,
) -> String {
    format!(
        "<logdaemon.{}.{}.{}-{}.{}-{}@{}>",
        atom(journal),
        atom(listener),
        from.sequence,
        from.offset,
        to.sequence,
        to.offset,
        atom(domain)
    )
}

/// Keeps characters allowed in a Message-ID's dot-atom; the rest become `_`.
fn atom(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

const FIRST_LINE_MAX: usize = 80;

/// Characters kept of a rendered subject: with its encoding the header
/// stays far below RFC 5322's 998-byte line limit.
pub(crate) const SUBJECT_MAX: usize = 200;

/// One header line: control characters become spaces, and a subject
/// longer than [`SUBJECT_MAX`] characters is cut with an ellipsis.
pub(crate) fn subject_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(SUBJECT_MAX + 1)
        .collect();
    if out.chars().count() > SUBJECT_MAX {
        out = out.chars().take(SUBJECT_MAX - 1).collect();
        out.push('…');
    }
    out
}

/// A body that is well-formed whatever the entries hold: every line
/// ending (CR LF, a bare CR, a bare LF) becomes one LF, which lettre
/// turns into CR LF, so no bare CR can reach the SMTP DATA stream (where
/// a lenient relay may read `<CR>.<CR><LF>` as its end); NUL, which no
/// text transfer encoding may carry, is shown as U+2400 (␀). lettre then
/// picks quoted-printable or base64 for long lines or non-ASCII text.
pub(crate) fn mail_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\0' => out.push('\u{2400}'),
            c => out.push(c),
        }
    }
    out
}

/// The message for `d`, addressed per `s`.
pub fn render(
    s: &Settings,
    journal: &str,
    listener: &str,
    d: &Digest,
    id: &str,
) -> Result<Message, lettre::error::Error> {
    let (first, last) = d.range().expect("a digest to render is not empty");
    let changes: Vec<&Change> = d.items.iter().filter_map(|i| i.change.as_ref()).collect();
    let entries = if changes.is_empty() {
        let mut b = String::new();
        for i in &d.items {
            b.push_str(&i.text);
            b.push('\n');
        }
        b
    } else {
        changes
            .iter()
            .map(|c| c.render())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let first_line = match changes.first() {
        Some(c) => c.first_line().to_string(),
        None => d.items[0].text.trim().to_string(),
    };
    let first_line: String = first_line
        .chars()
        .filter(|c| !c.is_control())
        .take(FIRST_LINE_MAX)
        .collect();
    let join = |f: fn(&Change) -> &str| {
        let mut v: Vec<&str> = Vec::new();
        for c in &changes {
            if !v.contains(&f(c)) {
                v.push(f(c));
            }
        }
        v.join(", ")
    };
    let value = |name: &str| -> String {
        match name {
            "journal" => journal.to_string(),
            "listener" => listener.to_string(),
            "count" => d.len().to_string(),
            "first_line" => first_line.clone(),
            "change" => join(|c| &c.number),
            "user" => join(|c| &c.user),
            "first" => format!("{}:{}", first.sequence, first.offset),
            "last" => format!("{}:{}", last.sequence, last.offset),
            "entries" => entries.clone(),
            "message_id" => id.to_string(),
            _ => String::new(),
        }
    };
    // Subjects are one line: a template cannot inject headers.
    let subject = subject_line(&s.subject.render(value));
    let body = mail_text(&s.body.render(value));
    let mut b = Message::builder()
        .from(s.from.clone())
        .subject(subject)
        .message_id(Some(id.to_string()));
    for to in &s.to {
        b = b.to(to.clone());
    }
    // text/plain; charset=utf-8, MIME-Version 1.0, and the transfer
    // encoding lettre picks for the content (7bit, quoted-printable, base64).
    b.singlepart(SinglePart::plain(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_no_bare_cr_and_no_nul() {
        assert_eq!(
            mail_text("a\r.\nb\r\nc\rd\0e\n"),
            "a\n.\nb\nc\nd\u{2400}e\n"
        );
        assert_eq!(mail_text("plain\n"), "plain\n");
    }

    #[test]
    fn subjects_are_one_bounded_line() {
        assert_eq!(subject_line("a\r\nBcc: x"), "a  Bcc: x");
        let long = subject_line(&"u".repeat(5000));
        assert_eq!(long.chars().count(), SUBJECT_MAX);
        assert!(long.ends_with('…'));
        assert_eq!(
            subject_line(&"u".repeat(SUBJECT_MAX)),
            "u".repeat(SUBJECT_MAX)
        );
    }

    #[test]
    fn message_ids_are_stable_and_safe() {
        let a = Position {
            sequence: 7,
            offset: 0,
            line: 1,
        };
        let b = Position {
            sequence: 7,
            offset: 120,
            line: 3,
        };
        assert_eq!(
            message_id("p4", "reviews", a, b, "example.com"),
            "<logdaemon.p4.reviews.7-0.7-120@example.com>"
        );
        assert_eq!(
            message_id("my log", "a<b>", a, b, "x.org"),
            "<logdaemon.my_log.a_b_.7-0.7-120@x.org>"
        );
    }
}
