//! The `p4-changes` preset: one review mail per submitted change.
//!
//! A submitted change is a `db.change` data record (op `pv` or `rv`) whose
//! status column is 1. Its description column is only the first part of the
//! text; the whole (often multi-line) description is the `db.desc` record
//! with the same description key, which p4d writes just before the change.
//! [`Descriptions`] keeps the most recent descriptions it has seen, bounded,
//! so the mail carries the full text.
//!
//! Columns (after the op): 0 table version, 1 table, then for `db.change`
//! 2 change, 3 descKey, 4 client, 5 user, 6 date (epoch seconds),
//! 7 status, 8 short description; for `db.desc` 2 descKey, 3 text.

use std::collections::{HashMap, VecDeque};

use logdaemon_sdk::Entry;

/// How many descriptions are remembered.
pub const DESC_CAPACITY: usize = 1024;

/// What a `p4-changes` listener does with an entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    Desc,
    Change,
    Other,
}

/// Classifies an entry; only `Desc` and `Change` are handled.
pub fn kind(e: &Entry<'_>) -> Kind {
    if !matches!(e.op(), b"pv" | b"rv") {
        return Kind::Other;
    }
    match e.field(1) {
        Some(b"db.desc") => Kind::Desc,
        Some(b"db.change") => Kind::Change,
        _ => Kind::Other,
    }
}

/// A submitted change, ready to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub number: String,
    pub user: String,
    pub client: String,
    /// Seconds since the epoch, as in the journal.
    pub date: i64,
    pub description: String,
}

impl Change {
    /// The submitted change in a `db.change` record, if it is one (status 1).
    /// The description is the full `db.desc` text when known, else the
    /// record's own (possibly shortened) description.
    pub fn from_entry(e: &Entry<'_>, descs: &Descriptions) -> Option<Change> {
        if kind(e) != Kind::Change || e.field(7) != Some(b"1") {
            return None;
        }
        let text = |i| String::from_utf8_lossy(e.field(i).unwrap_or_default()).into_owned();
        let key = e.field(3).unwrap_or_default();
        let description = match descs.get(key) {
            Some(d) => d.text.clone(),
            None => text(8),
        };
        Some(Change {
            number: text(2),
            user: text(5),
            client: text(4),
            date: text(6).parse().unwrap_or(0),
            description,
        })
    }

    /// `Change 1001 by pallen@svn-client on 2013-03-21 13:23:48 UTC`, a
    /// blank line and the description indented by a tab (as `p4 describe`).
    pub fn render(&self) -> String {
        let mut s = format!(
            "Change {} by {}@{} on {}\n\n",
            self.number,
            self.user,
            self.client,
            utc(self.date)
        );
        for line in self.description.trim_end_matches(['\n', '\r']).split('\n') {
            s.push('\t');
            s.push_str(line.trim_end_matches('\r'));
            s.push('\n');
        }
        s
    }

    pub fn first_line(&self) -> &str {
        self.description
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
    }
}

/// A description seen in the journal.
#[derive(Clone, Debug)]
pub struct Desc {
    pub text: String,
}

/// The most recent [`DESC_CAPACITY`] descriptions, by key.
#[derive(Debug, Default)]
pub struct Descriptions {
    map: HashMap<Vec<u8>, Desc>,
    order: VecDeque<Vec<u8>>,
}

impl Descriptions {
    /// Remembers a `db.desc` record.
    pub fn insert(&mut self, e: &Entry<'_>) {
        let (Some(key), Some(text)) = (e.field(2), e.field(3)) else {
            return;
        };
        let d = Desc {
            text: String::from_utf8_lossy(text).into_owned(),
        };
        if self.map.insert(key.to_vec(), d).is_none() {
            self.order.push_back(key.to_vec());
            if self.order.len() > DESC_CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&Desc> {
        self.map.get(key)
    }
}

/// `YYYY-MM-DD hh:mm:ss UTC` for seconds since the epoch.
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use logdaemon_sdk::testing::Batch;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1363872228), "2013-03-21 13:23:48 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn change_joins_its_full_description() {
        let b = Batch::p4(
            "p4",
            1,
            0,
            &[
                b"@pv@ 0 @db.desc@ 1001 @Fix the frobnicator\nso that it frobs.\n@ \n",
                b"@pv@ 0 @db.change@ 1001 1001 @ws@ @pallen@ 1363872228 1 @Fix the frob@ \n",
                b"@pv@ 0 @db.change@ 1002 1002 @ws@ @bob@ 1363872228 0 @pending@ \n",
                b"@pv@ 0 @db.change@ 1003 77 @ws@ @carol@ 1363872228 1 @short only@ \n",
            ],
        );
        let e = b.entries();
        let mut d = Descriptions::default();
        assert_eq!(kind(&e[0]), Kind::Desc);
        d.insert(&e[0]);
        let c = Change::from_entry(&e[1], &d).unwrap();
        assert_eq!(c.number, "1001");
        assert_eq!(c.user, "pallen");
        assert_eq!(c.description, "Fix the frobnicator\nso that it frobs.\n");
        assert_eq!(c.render(), "Change 1001 by pallen@ws on 2013-03-21 13:23:48 UTC\n\n\tFix the frobnicator\n\tso that it frobs.\n");
        assert_eq!(c.first_line(), "Fix the frobnicator");
        assert_eq!(
            Change::from_entry(&e[2], &d),
            None,
            "pending changes are not mailed"
        );
        assert_eq!(
            Change::from_entry(&e[3], &d).unwrap().description,
            "short only"
        );
    }

    #[test]
    fn descriptions_are_bounded() {
        let recs: Vec<Vec<u8>> = (0..DESC_CAPACITY + 5)
            .map(|i| format!("@pv@ 0 @db.desc@ {i} @d{i}@ \n").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
        let b = Batch::p4("p4", 1, 0, &refs);
        let mut d = Descriptions::default();
        for e in b.entries() {
            d.insert(e);
        }
        assert!(d.get(b"0").is_none());
        assert_eq!(
            d.get(format!("{}", DESC_CAPACITY + 4).as_bytes())
                .unwrap()
                .text,
            format!("d{}", DESC_CAPACITY + 4)
        );
        assert_eq!(d.map.len(), DESC_CAPACITY);
    }
}
