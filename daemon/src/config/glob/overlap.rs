//! Two glob journals in one directory whose patterns match one file name:
//! the file would be followed twice. Whether two globs (with their
//! `exclude` lists) share a name is only decided here in simple cases: we
//! look for a witness, a name built from the patterns themselves that both
//! match, and refuse the config only with one in hand. Overlaps this misses
//! are handled at run time (`crate::streams`): the file goes to one
//! journal only, and the other says so.

use std::collections::BTreeMap;

use super::super::raw::RawJournal;
use super::super::{ConfigError, Ctx, JournalConfig};
use super::GlobSpec;

/// Refuses the second of two glob journals in one directory that match a
/// common file name, at its `path` line.
pub(in crate::config) fn refuse_glob_overlap(
    ctx: &Ctx<'_>,
    journals: &[JournalConfig],
    globs: &BTreeMap<String, GlobSpec>,
    raws: &[RawJournal],
) -> Result<(), ConfigError> {
    let with_glob: Vec<(&JournalConfig, &RawJournal, &GlobSpec)> = journals
        .iter()
        .zip(raws)
        .filter_map(|(j, r)| Some((j, r, globs.get(&j.name)?)))
        .collect();
    for (i, (b, raw, sb)) in with_glob.iter().enumerate() {
        for (a, ra, sa) in &with_glob[..i] {
            if sa.dir != sb.dir {
                continue;
            }
            if let Some(name) = common_name(sa, sb) {
                return ctx.at(raw.path.span(), format!(
                    "journal {:?}: path {:?} matches file names that journal {:?} (path {:?}) matches too, e.g. {name:?} in {}: such a file would be followed twice; narrow one pattern, or exclude the names from one journal (in journal {:?}: exclude = [\"{}\"])",
                    b.name, raw.path.get_ref(), a.name, ra.path.get_ref(), sb.dir.display(), a.name, sb.pattern.as_str()
                ));
            }
        }
    }
    Ok(())
}

/// A file name both globs match (their `exclude` lists included), if one
/// built from the patterns shows it; `None` proves nothing.
pub(super) fn common_name(a: &GlobSpec, b: &GlobSpec) -> Option<String> {
    let (pa, pb) = (a.pattern.as_str(), b.pattern.as_str());
    let mut candidates = Vec::new();
    for (x, y) in [(pa, pb), (pb, pa)] {
        for fill in ["x", &expand(y, ""), ""] {
            candidates.push(expand(x, fill));
        }
    }
    candidates
        .into_iter()
        .find(|n| !n.is_empty() && a.matches(n) && b.matches(n))
}

/// A name `pattern` matches, if its guesses hold: each `*` becomes `fill`,
/// each `?` an `x`, each `[...]` a character of the class (or one the
/// negated class leaves out).
fn expand(pattern: &str, fill: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(fill),
            '?' => out.push('x'),
            '[' => {
                let negated = chars.next_if(|&c| c == '!').is_some();
                let mut class = String::new();
                // A `]` right after the opening is a member.
                if let Some(c) = chars.next_if(|&c| c == ']') {
                    class.push(c);
                }
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    class.push(c);
                }
                let pick = if negated {
                    "xyz0_".chars().find(|c| !class.contains(*c))
                } else {
                    class.chars().next()
                };
                out.extend(pick);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn spec(pattern: &str, exclude: &[&str]) -> GlobSpec {
        GlobSpec {
            dir: PathBuf::from("/l"),
            pattern: glob::Pattern::new(pattern).unwrap(),
            exclude: exclude
                .iter()
                .map(|e| glob::Pattern::new(e).unwrap())
                .collect(),
        }
    }

    #[test]
    fn a_witness_is_found_in_simple_cases() {
        let cases = [
            ("*.log", "app*", "app.log"),
            ("*.log", "*.log", "x.log"),
            ("app-*.log", "*-2026.log", "app-.log-2026.log"),
            ("[ab]*", "b?", "bx"),
            ("[!a]?.txt", "*.txt", "xx.txt"),
        ];
        for (a, b, want) in cases {
            let got = common_name(&spec(a, &[]), &spec(b, &[]));
            assert_eq!(got.as_deref(), Some(want), "{a} and {b}");
        }
    }

    #[test]
    fn no_witness_for_disjoint_patterns_or_an_exclude_that_separates_them() {
        assert_eq!(common_name(&spec("*.log", &[]), &spec("*.txt", &[])), None);
        assert_eq!(
            common_name(&spec("*.log", &["app*"]), &spec("app*", &[])),
            None
        );
        // A real overlap (`abc-d.log`) this search does not find: the run
        // time guard handles it.
        assert_eq!(
            common_name(&spec("?????.log", &[]), &spec("*-?.log", &[])),
            None
        );
    }
}
