//! The number a p4 journal says it has.
//!
//! At a checkpoint (and a journal rotation) p4d writes the new value of its
//! `journal` counter into the new journal: a `db.counters` record
//! `@pv@ N @db.counters@ @journal@ @42@ `. p4d documents the counter as the
//! number of the most recent checkpoint or rotation, and the journal written
//! after checkpoint 42 becomes `journal.42` at the next one: the live
//! journal holding that record is number 42. On a first start, with no
//! checkpoint and no rotated journal to count from, that number is the live
//! journal's sequence.

use std::io::{self, Read};
use std::path::Path;

use crate::format::{frame_all, Format};

/// How far into the journal the record is looked for: p4d writes it among
/// the first records of the new journal.
const HEAD: u64 = 64 * 1024;

/// The value of the first `journal` counter record in the first [`HEAD`]
/// bytes of the p4 journal at `path` (framed as records: a string that
/// merely contains such text is not one), if any.
pub(super) fn journal_counter(path: &Path) -> io::Result<Option<u64>> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(HEAD)
        .read_to_end(&mut head)?;
    Ok(frame_all(&Format::P4, &head)
        .into_iter()
        .filter(|&(_, _, incomplete)| !incomplete)
        .find_map(|(at, len, _)| counter_value(&head[at..at + len])))
}

/// `N` of `@pv@ V @db.counters@ @journal@ @N@ ` (or `@rv@`, a replacement).
fn counter_value(record: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(record).ok()?;
    let rest = text
        .strip_prefix("@pv@ ")
        .or_else(|| text.strip_prefix("@rv@ "))?;
    let (version, rest) = rest.split_once(' ')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value = rest
        .strip_prefix("@db.counters@ @journal@ @")?
        .trim_end_matches(['\n', '\r', ' '])
        .strip_suffix('@')?;
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_counter_record_gives_its_value() {
        assert_eq!(
            counter_value(b"@pv@ 1 @db.counters@ @journal@ @42@ \n"),
            Some(42)
        );
        assert_eq!(
            counter_value(b"@rv@ 3 @db.counters@ @journal@ @7@ \r\n"),
            Some(7)
        );
        for other in [
            &b"@pv@ 1 @db.counters@ @change@ @42@ \n"[..],
            b"@pv@ 1 @db.counters@ @journal@ @4x@ \n",
            b"@pv@ 1 @db.counters@ @journal@ @@ \n",
            b"@ex@ 1 @db.counters@ @journal@ @42@ \n",
            b"@pv@ @db.counters@ @journal@ @42@ \n",
        ] {
            assert_eq!(
                counter_value(other),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn only_a_record_counts_not_text_inside_a_string() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal");
        std::fs::write(
            &p,
            "@pv@ 0 @db.desc@ @1@ @a description\n@@pv@@ 1 @@db.counters@@ @@journal@@ @@9@@ \nends here@ \n\
             @pv@ 1 @db.counters@ @change@ @5@ \n@pv@ 1 @db.counters@ @journal@ @42@ \n",
        )
        .unwrap();
        assert_eq!(journal_counter(&p).unwrap(), Some(42));
        std::fs::write(&p, "@pv@ 1 @db.counters@ @change@ @5@ \n").unwrap();
        assert_eq!(journal_counter(&p).unwrap(), None);
    }
}
