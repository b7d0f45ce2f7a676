//! Which entries go into a digest (`is_handled`).
//!
//! A rule is a set of conditions that must all hold; an entry is selected
//! when any rule holds. For p4 journals a rule can look at the table
//! (field 1 of a data record, e.g. `db.change`), the op (`pv`, `rv`, `dv`,
//! ...), and any field by index (the same numbering as `Entry::field`:
//! 0 is the table version, 1 the table, 2 the first column). For both
//! formats a `regex` matches the record's raw bytes.

use logdaemon_sdk::Entry;
use regex::bytes::Regex;

/// How a field is compared.
#[derive(Clone, Debug)]
pub enum FieldTest {
    Equals(Vec<u8>),
    Matches(Regex),
}

/// One rule: every condition present must hold.
#[derive(Clone, Debug, Default)]
pub struct Rule {
    pub table: Option<Vec<u8>>,
    pub ops: Vec<Vec<u8>>,
    pub field: Option<(usize, FieldTest)>,
    pub regex: Option<Regex>,
}

impl Rule {
    pub fn matches(&self, e: &Entry<'_>) -> bool {
        if let Some(t) = &self.table {
            if e.field(1) != Some(t.as_slice()) {
                return false;
            }
        }
        if !self.ops.is_empty() && !self.ops.iter().any(|o| o.as_slice() == e.op()) {
            return false;
        }
        if let Some((i, test)) = &self.field {
            let Some(v) = e.field(*i) else { return false };
            let ok = match test {
                FieldTest::Equals(x) => v == x.as_slice(),
                FieldTest::Matches(r) => r.is_match(v),
            };
            if !ok {
                return false;
            }
        }
        if let Some(r) = &self.regex {
            if !r.is_match(e.raw()) {
                return false;
            }
        }
        true
    }
}

/// The selection: no rules at all selects every entry.
#[derive(Clone, Debug, Default)]
pub struct Rules(pub Vec<Rule>);

impl Rules {
    pub fn matches(&self, e: &Entry<'_>) -> bool {
        self.0.is_empty() || self.0.iter().any(|r| r.matches(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logdaemon_sdk::testing::Batch;

    #[test]
    fn p4_table_op_and_field() {
        let b = Batch::p4(
            "p4",
            1,
            0,
            &[
                b"@pv@ 0 @db.change@ 5 5 @c@ @alice@ 1 1 @x@ \n",
                b"@pv@ 0 @db.change@ 6 6 @c@ @bob@ 1 0 @y@ \n",
                b"@dv@ 0 @db.change@ 5 5 @c@ @alice@ 1 1 @x@ \n",
                b"@pv@ 3 @db.user@ @alice@ \n",
            ],
        );
        let e = b.entries();
        let r = Rule {
            table: Some(b"db.change".to_vec()),
            ops: vec![b"pv".to_vec()],
            field: Some((7, FieldTest::Equals(b"1".to_vec()))),
            regex: None,
        };
        let got: Vec<bool> = e.iter().map(|x| r.matches(x)).collect();
        assert_eq!(got, [true, false, false, false]);
        let by_user = Rule {
            field: Some((5, FieldTest::Matches(Regex::new("^b").unwrap()))),
            ..Rule::default()
        };
        let got: Vec<bool> = e.iter().map(|x| by_user.matches(x)).collect();
        assert_eq!(got, [false, true, false, false]);
    }

    #[test]
    fn line_regex_and_any_rule() {
        let b = Batch::lines(
            "app",
            1,
            0,
            &[b"INFO up\n", b"ERROR disk full\n", b"WARN slow\n"],
        );
        let rules = Rules(vec![
            Rule {
                regex: Some(Regex::new("^ERROR").unwrap()),
                ..Rule::default()
            },
            Rule {
                regex: Some(Regex::new("slow").unwrap()),
                ..Rule::default()
            },
        ]);
        let got: Vec<bool> = b.entries().iter().map(|x| rules.matches(x)).collect();
        assert_eq!(got, [false, true, true]);
        assert!(Rules::default().matches(&b.entries()[0]));
    }
}
