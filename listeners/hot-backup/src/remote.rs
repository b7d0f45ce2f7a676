//! What the standby holds, as reported by the query script: the live file's
//! sequence (the marker), its size, how far `apply` got, and the sizes of
//! the rotated files asked about.

use std::collections::HashMap;

use crate::error::{fatal, Result};
use crate::shell::Layout;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Sequence of the live file (from the marker); `None` on a fresh standby.
    pub live_seq: Option<u64>,
    /// Size of the live file; `None` when it is missing (a rotation that
    /// renamed it and stopped before creating the new one).
    pub live_size: Option<u64>,
    /// `(sequence, offset)` applied up to.
    pub applied: Option<(u64, u64)>,
    /// Sizes of the files the query reported, by name.
    pub sizes: HashMap<String, u64>,
}

impl View {
    /// Parses the query's output; `Ok(None)` when `remote_dir` is missing.
    pub fn parse(out: &str, l: &Layout) -> Result<Option<View>> {
        let mut v = View::default();
        let bad = |line: &str| {
            fatal(format!("unexpected answer from the standby's shell: `{line}` (is the login shell a POSIX sh?)"))
        };
        let mut marker = None;
        for line in out.lines() {
            if line == "nodir" {
                return Ok(None);
            }
            if line == "noclaim" {
                return Err(crate::error::transient(format!(
                    "cannot write in {} on the standby (creating {}): disk full, or the user lacks write permission there",
                    l.dir,
                    crate::shell::OWNER
                )));
            }
            if let Some(m) = line.strip_prefix("marker") {
                let m = m.trim();
                if !m.is_empty() {
                    marker = Some(m.parse::<u64>().map_err(|_| {
                        fatal(format!(
                            "{}/{} holds `{m}`, not a journal sequence; fix or remove it",
                            l.dir,
                            crate::shell::MARKER
                        ))
                    })?);
                }
            } else if let Some(a) = line.strip_prefix("applied") {
                let mut it = a.split_whitespace().map(str::parse::<u64>);
                match (it.next(), it.next()) {
                    (None, _) => {}
                    (Some(Ok(s)), Some(Ok(o))) => v.applied = Some((s, o)),
                    _ => {
                        return Err(fatal(format!(
                            "{}/{} holds `{}`, not `SEQUENCE OFFSET`; fix or remove it",
                            l.dir,
                            crate::shell::APPLIED,
                            a.trim()
                        )))
                    }
                }
            } else if let Some(rest) = line.strip_prefix("size ") {
                let rest = rest.trim_start();
                let (n, name) = rest.split_once(' ').ok_or_else(|| bad(line))?;
                let n = n.trim().parse::<u64>().map_err(|_| bad(line))?;
                v.sizes
                    .insert(name.trim_start().trim_start_matches("./").to_string(), n);
            } else if !line.trim().is_empty() {
                return Err(bad(line));
            }
        }
        v.live_size = v.sizes.get(&l.live).copied();
        v.live_seq = marker;
        if let (Some(m), None) = (marker, v.live_size) {
            if !v.sizes.contains_key(&l.rotated(m)) {
                // A rotation wrote the new marker and stopped before creating
                // the new live file: it is empty (the next append creates it).
                v.live_size = Some(0);
            }
        }
        Ok(Some(v))
    }

    /// The file holding `seq` and its size on the standby, if it exists.
    pub fn file_of(&self, l: &Layout, seq: u64) -> (String, Option<u64>) {
        if self.live_seq == Some(seq) && self.live_size.is_some() {
            (l.live.clone(), self.live_size)
        } else {
            let name = l.rotated(seq);
            let size = self.sizes.get(&name).copied();
            (name, size)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_marker_and_applied() {
        let l = Layout {
            dir: "/srv".into(),
            live: "journal".into(),
        };
        let v = View::parse(
            "marker 8\napplied 7 120\nsize 30 ./journal\nsize       6 ./journal.7\n",
            &l,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (v.live_seq, v.live_size, v.applied),
            (Some(8), Some(30), Some((7, 120)))
        );
        assert_eq!(v.file_of(&l, 8), ("journal".to_string(), Some(30)));
        assert_eq!(v.file_of(&l, 7), ("journal.7".to_string(), Some(6)));
        assert_eq!(v.file_of(&l, 6), ("journal.6".to_string(), None));
        let fresh = View::parse("marker \napplied \n", &l).unwrap().unwrap();
        assert_eq!(fresh, View::default());
        assert_eq!(View::parse("nodir\n", &l).unwrap(), None);
        assert!(View::parse("noclaim\n", &l)
            .unwrap_err()
            .to_string()
            .contains("cannot write in /srv"));
        assert!(View::parse("marker x\n", &l)
            .unwrap_err()
            .to_string()
            .contains(".logdaemon-standby"));
        // Marker written, live file not yet created: an empty live file.
        let v = View::parse("marker 9\napplied \nsize 6 ./journal.8\n", &l)
            .unwrap()
            .unwrap();
        assert_eq!((v.live_seq, v.live_size), (Some(9), Some(0)));
        // Live file renamed, marker not yet moved on: the sequence lives in journal.9.
        let v = View::parse("marker 9\napplied \nsize 6 ./journal.9\n", &l)
            .unwrap()
            .unwrap();
        assert_eq!((v.live_seq, v.live_size), (Some(9), None));
        assert_eq!(v.file_of(&l, 9), ("journal.9".to_string(), Some(6)));
        assert!(View::parse("Welcome to the server!\n", &l).is_err());
    }
}
