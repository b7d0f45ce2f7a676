//! Which entries run the command (`is_handled`): a regex on the raw bytes
//! and, for p4 journals, the record's op and table.

use logdaemon_sdk::Entry;
use regex::bytes::Regex;

use crate::config::FilterConfig;

/// A compiled filter; every condition that is set must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    regex: Option<Regex>,
    /// Field 1 of a data record (`db.change`); any of these.
    tables: Option<Vec<Vec<u8>>>,
    /// The record's op (`pv`, `dv`, `ex`, ...); any of these.
    ops: Option<Vec<Vec<u8>>>,
}

/// Why a filter cannot be built; the message names the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("config key \"filter.regex\": {0}")]
    Regex(String),
    #[error(
        "config key \"filter.{0}\" only applies to p4 journals, and journal {1:?} has format {2:?}"
    )]
    NotP4(&'static str, String, String),
}

impl Filter {
    /// Compiles `cfg` for a journal of `format` (`p4` or `lines`).
    pub fn new(cfg: &FilterConfig, journal: &str, format: &str) -> Result<Filter, FilterError> {
        let regex = match &cfg.regex {
            None => None,
            Some(r) => Some(Regex::new(r).map_err(|e| FilterError::Regex(e.to_string()))?),
        };
        let bytes = |v: &Option<crate::config::OneOrMany>,
                     key: &'static str|
         -> Result<Option<Vec<Vec<u8>>>, FilterError> {
            match v {
                None => Ok(None),
                Some(_) if format != "p4" => {
                    Err(FilterError::NotP4(key, journal.into(), format.into()))
                }
                Some(v) => Ok(Some(
                    v.clone()
                        .into_vec()
                        .into_iter()
                        .map(String::into_bytes)
                        .collect(),
                )),
            }
        };
        Ok(Filter {
            regex,
            tables: bytes(&cfg.table, "table")?,
            ops: bytes(&cfg.op, "op")?,
        })
    }

    /// Whether `e` passes every condition.
    pub fn matches(&self, e: &Entry<'_>) -> bool {
        if let Some(ops) = &self.ops {
            if !ops.iter().any(|o| o.as_slice() == e.op()) {
                return false;
            }
        }
        if let Some(tables) = &self.tables {
            match e.field(1) {
                Some(t) if tables.iter().any(|x| x.as_slice() == t) => {}
                _ => return false,
            }
        }
        match &self.regex {
            None => true,
            Some(r) => r.is_match(e.raw()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OneOrMany;
    use logdaemon_sdk::testing::Batch;

    fn filter(regex: Option<&str>, table: Option<&[&str]>, op: Option<&str>) -> Filter {
        let cfg = FilterConfig {
            regex: regex.map(Into::into),
            table: table.map(|t| OneOrMany::Many(t.iter().map(|s| s.to_string()).collect())),
            op: op.map(|o| OneOrMany::One(o.into())),
        };
        Filter::new(&cfg, "p4", "p4").unwrap()
    }

    fn matching(f: &Filter, b: &Batch) -> Vec<usize> {
        b.entries()
            .iter()
            .enumerate()
            .filter(|(_, e)| f.matches(e))
            .map(|(i, _)| i)
            .collect()
    }

    fn batch() -> Batch {
        Batch::p4(
            "p4",
            1,
            0,
            &[
                b"@pv@ 7 @db.change@ 12 12 @c@ @bob@ 1 1 @fix@ \n",
                b"@dv@ 7 @db.change@ 11 11 @c@ @amy@ 1 1 @old@ \n",
                b"@pv@ 0 @db.desc@ 12 @fix the @@db.change@@ bug@ \n",
                b"@ex@ 42 1367791575\n",
            ],
        )
    }

    #[test]
    fn empty_filter_takes_everything() {
        assert_eq!(matching(&Filter::default(), &batch()), [0, 1, 2, 3]);
    }

    #[test]
    fn table_is_field_one_not_a_substring() {
        assert_eq!(
            matching(&filter(None, Some(&["db.change"]), None), &batch()),
            [0, 1]
        );
        assert_eq!(
            matching(
                &filter(None, Some(&["db.desc", "db.change"]), None),
                &batch()
            ),
            [0, 1, 2]
        );
    }

    #[test]
    fn op_and_table_and_regex_all_hold() {
        assert_eq!(matching(&filter(None, None, Some("pv")), &batch()), [0, 2]);
        assert_eq!(
            matching(&filter(None, Some(&["db.change"]), Some("pv")), &batch()),
            [0]
        );
        assert_eq!(
            matching(&filter(Some("bob|amy"), None, None), &batch()),
            [0, 1]
        );
        assert_eq!(
            matching(&filter(Some("bob|amy"), None, Some("dv")), &batch()),
            [1]
        );
    }

    #[test]
    fn regex_sees_raw_bytes_and_bad_regex_names_the_key() {
        let b = Batch::lines("app", 1, 0, &[b"ok \xff\n", b"plain\n"]);
        let f = Filter::new(
            &FilterConfig {
                regex: Some("(?-u)\\xff".into()),
                ..Default::default()
            },
            "app",
            "lines",
        )
        .unwrap();
        assert_eq!(matching(&f, &b), [0]);
        let e = Filter::new(
            &FilterConfig {
                regex: Some("(".into()),
                ..Default::default()
            },
            "p4",
            "p4",
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("config key \"filter.regex\": "),
            "{e}"
        );
    }

    #[test]
    fn table_and_op_refuse_line_journals() {
        let cfg = FilterConfig {
            op: Some(OneOrMany::One("pv".into())),
            ..Default::default()
        };
        assert_eq!(
            Filter::new(&cfg, "app", "lines").unwrap_err().to_string(),
            "config key \"filter.op\" only applies to p4 journals, and journal \"app\" has format \"lines\""
        );
    }
}
