//! Rotation naming schemes: where a journal's rotated predecessors live and
//! in which order they were written.
//!
//! Names only *find* candidates and *order* them; whether a candidate holds
//! the bytes we need is proven by content elsewhere (`identity`). A pattern
//! is a file name with placeholders, in the live file's directory:
//!
//! | placeholder | matches | order |
//! |---|---|---|
//! | `{name}` | the live file's name | |
//! | `{N}` | a number, higher is newer (p4 `journal.N`) | ascending |
//! | `{n}` | a number, higher is older (logrotate, Python `name.1`) | descending |
//! | `{date}` | `YYYYMMDD`, `YYYY-MM-DD`, optional `_HH-MM[-SS]`, optional `-epoch` | ascending |
//! | `{ext}` | optional `.gz`, `.bz2`, `.xz`, `.zst`, `.zstd` | |
//! | `*` | any characters but `/` | |

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use regex::Regex;

use crate::format::Format;

mod listing;

#[derive(Debug, Clone)]
struct Pattern {
    source: String,
    /// Shared by every clone of the scheme (a journal's config is cloned for
    /// each of its listeners): a cloned `Regex` gets caches of its own.
    regex: std::sync::Arc<Regex>,
    /// Bytes of a name before what `regex` matches: the live name's, for
    /// a pattern that begins with `{name}` (see [`compile`]).
    skip: usize,
    /// The literal start every name it matches has (`{name}` resolved):
    /// most names of a directory of many logs are told apart by it
    /// without running the regex.
    prefix: String,
}

/// The rotation scheme of one journal.
#[derive(Debug, Clone)]
pub struct Scheme {
    dir: PathBuf,
    live_name: String,
    patterns: Vec<Pattern>,
}

/// A rotated file that may hold part of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    /// The journal number, for `{N}` patterns.
    pub number: Option<u64>,
    key: (String, i128),
    pub mtime: Option<SystemTime>,
}

impl Candidate {
    /// True if this candidate was written before `other` by its name.
    pub fn older_than(&self, other: &Candidate) -> bool {
        self.key < other.key
    }
}

const EXT: &str = r"(?:\.gz|\.bz2|\.xz|\.zst|\.zstd)?";
// ASCII digits (`[0-9]`, not Unicode's `\d`): the numbers and dates in
// rotated names are ASCII, and the Unicode classes made compiling the
// patterns of thousands of journals take seconds.
const DATE: &str =
    r"[0-9]{4}-?[0-9]{2}-?[0-9]{2}(?:[_T-][0-9]{2}(?:-?[0-9]{2}){0,2})?(?:-[0-9]{9,})?";

impl Scheme {
    /// The usual names for a format: p4 `journal.N[.gz]` and `PREFIX.jnl.N[.gz]`;
    /// lines: logrotate `name.N[.ext]` and `name-DATE[.ext]`, Python
    /// `name.N` and `name.DATE[.N]`.
    pub fn default_for(format: &Format, live: &Path) -> Scheme {
        let pats: &[&str] = match format {
            Format::P4 => &["{name}.{N}{ext}", "*.jnl.{N}{ext}"],
            Format::Lines { .. } => &[
                "{name}.{n}{ext}",
                "{name}-{date}{ext}",
                "{name}.{date}{ext}",
                "{name}.{date}.{n}{ext}",
            ],
        };
        let list: Vec<String> = pats.iter().map(|s| s.to_string()).collect();
        Scheme::from_patterns(live, &list).expect("built-in patterns are valid")
    }

    /// Builds a scheme from `rotated = [...]` patterns.
    pub fn from_patterns(live: &Path, patterns: &[String]) -> Result<Scheme, String> {
        let dir = live
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let live_name = live
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if patterns.is_empty() {
            return Err("the list is empty; leave `rotated` out for the default names".into());
        }
        let mut out = Vec::new();
        for p in patterns {
            if p.contains('/') {
                return Err(format!(
                    "pattern {p:?}: rotated files must be in the live file's directory (no '/')"
                ));
            }
            let (regex, skip) = compile(p, &live_name)?;
            out.push(Pattern {
                source: p.clone(),
                regex,
                skip,
                prefix: literal_prefix(p, &live_name),
            });
        }
        // Kept for the run, per journal: no room beyond the patterns.
        out.shrink_to_fit();
        Ok(Scheme {
            dir,
            live_name,
            patterns: out,
        })
    }

    /// Whether a file of this name in the live file's directory would be
    /// taken for a rotated journal.
    pub fn is_rotated_name(&self, name: &str) -> bool {
        name != self.live_name && self.classify(name).is_some()
    }

    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.source.as_str())
    }

    /// The rotated files that exist now, oldest first. The live file is not
    /// among them.
    ///
    /// A compressed file whose plain original is still there (`journal.9.gz`
    /// next to `journal.9`) is left out: gzip, xz, zstd and logrotate write
    /// the compressed file progressively and remove the original only once
    /// it is complete, so until then the compressed one is a partial copy of
    /// the plain one (or, with `gzip -k`, a duplicate of it).
    ///
    /// A file renamed or removed while the directory is listed (gzip
    /// removing `journal.9` as it finishes `journal.9.gz`) can make one
    /// listing miss it under both names; when a listed file has vanished
    /// the directory is listed again.
    pub fn candidates(&self) -> std::io::Result<Vec<Candidate>> {
        const ATTEMPTS: usize = 20;
        for attempt in 1..ATTEMPTS {
            // The names of the directory's last listing, unless it may have
            // changed since; after a vanished file, listed again.
            if let Some(c) = self.list(true, attempt > 1)? {
                return Ok(c);
            }
        }
        Ok(self.list(false, true)?.unwrap_or_default())
    }

    /// One listing; `None` if `strict` and a listed file vanished meanwhile
    /// (and was not found under its other name either).
    /// `fresh`: list the directory whatever [`listing`] holds.
    fn list(&self, strict: bool, fresh: bool) -> std::io::Result<Option<Vec<Candidate>>> {
        let mut out: Vec<Candidate> = Vec::new();
        let all = listing::names(&self.dir, fresh)?;
        for name in self.worth_a_look(&all) {
            let Some(name) = name.to_str() else { continue };
            if name == self.live_name || self.classify(name).is_none() {
                continue;
            }
            match self.candidate(name) {
                Ok(Some(c)) => out.push(c),
                Ok(None) => {}
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {}
                // Compressed or uncompressed since it was listed: taken
                // under the name it has now.
                Err(_) => match self.moved(name) {
                    Some(c) => out.push(c),
                    None if strict => return Ok(None),
                    None => {}
                },
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out.dedup_by(|a, b| a.path == b.path);
        let names: std::collections::HashSet<PathBuf> =
            out.iter().map(|c| c.path.clone()).collect();
        out.retain(|c| compressed_original(&c.path).is_none_or(|orig| !names.contains(&orig)));
        out.sort_by(|a, b| {
            a.key
                .cmp(&b.key)
                .then(a.mtime.cmp(&b.mtime))
                .then(a.path.cmp(&b.path))
        });
        Ok(Some(out))
    }

    /// The names of `sorted` that some pattern may match: those that begin
    /// with a pattern's literal prefix, found by bisection (a directory of
    /// thousands of logs holds few names of any one of them), or all when
    /// a pattern has no literal prefix.
    fn worth_a_look<'a>(&self, sorted: &'a [std::ffi::OsString]) -> Vec<&'a std::ffi::OsString> {
        use std::os::unix::ffi::OsStrExt;
        if self.patterns.iter().any(|p| p.prefix.is_empty()) {
            return sorted.iter().collect();
        }
        let mut at: Vec<usize> = Vec::new();
        for p in &self.patterns {
            let pre = p.prefix.as_bytes();
            let start = sorted.partition_point(|n| n.as_bytes() < pre);
            at.extend((start..sorted.len()).take_while(|&i| sorted[i].as_bytes().starts_with(pre)));
        }
        at.sort_unstable();
        at.dedup();
        at.into_iter().map(|i| &sorted[i]).collect()
    }

    /// The rotated file `name` as it is now: `Ok(None)` when it is not a
    /// regular file.
    fn candidate(&self, name: &str) -> std::io::Result<Option<Candidate>> {
        let Some(c) = self.classify(name) else {
            return Ok(None);
        };
        let path = self.dir.join(name);
        let md = std::fs::metadata(&path)?;
        Ok(md.is_file().then(|| Candidate {
            path,
            number: c.0,
            key: c.1,
            mtime: md.modified().ok(),
        }))
    }

    /// The file listed as `name` under the name a compressor gives it (or
    /// takes from it), when `name` is gone.
    fn moved(&self, name: &str) -> Option<Candidate> {
        let others: Vec<String> = match compressed_original(Path::new(name)) {
            Some(orig) => vec![orig.to_str()?.to_string()],
            None => COMPRESSED_EXTS
                .iter()
                .map(|e| format!("{name}{e}"))
                .collect(),
        };
        others.iter().find_map(|n| self.candidate(n).ok().flatten())
    }

    fn classify(&self, name: &str) -> Option<(Option<u64>, (String, i128))> {
        for p in &self.patterns {
            if !name.starts_with(&p.prefix) {
                continue;
            }
            // The prefix begins with the skipped live name.
            let Some(tail) = name.get(p.skip..) else {
                continue;
            };
            if let Some(c) = p.regex.captures(tail) {
                let date = c
                    .name("date")
                    .map(|m| m.as_str().replace(['-', '_', 'T'], ""))
                    .unwrap_or_default();
                let big: Option<u64> = c.name("N").and_then(|m| m.as_str().parse().ok());
                let small: Option<u64> = c.name("n").and_then(|m| m.as_str().parse().ok());
                let num = match (big, small) {
                    (Some(n), _) => n as i128,
                    (None, Some(n)) => -(n as i128),
                    (None, None) => 0,
                };
                return Some((big, (date, num)));
            }
        }
        None
    }
}

/// The extensions of compressed rotated files.
const COMPRESSED_EXTS: [&str; 5] = [".gz", ".bz2", ".xz", ".zst", ".zstd"];

/// For `X.gz` (or another compression extension), the path `X`.
fn compressed_original(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = COMPRESSED_EXTS.iter().find_map(|e| name.strip_suffix(e))?;
    Some(path.with_file_name(stem))
}

/// The literal start of the names `pattern` matches: up to its first
/// wildcard or placeholder other than `{name}`.
fn literal_prefix(pattern: &str, live_name: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("{name}") {
            out.push_str(live_name);
            rest = r;
        } else if c == '*' || c == '{' {
            break;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The regex of `pattern` for the live file `live_name`, and how many
/// bytes of a name come before what it matches.
///
/// A pattern that begins with `{name}` (every built-in one) is matched on
/// what follows the live name, which makes its regex the same for every
/// journal: it is compiled once per daemon, not once per journal.
fn compile(pattern: &str, live_name: &str) -> Result<(std::sync::Arc<Regex>, usize), String> {
    let (body, skip) = match pattern.strip_prefix("{name}") {
        Some(rest) if !rest.contains("{name}") => (rest, live_name.len()),
        _ => (pattern, 0),
    };
    let re = regex_source(pattern, body, live_name)?;
    if re == "^$" || re == format!("^{}$", regex::escape(live_name)) {
        return Err(format!(
            "pattern {pattern:?} matches only the live file itself"
        ));
    }
    type Compiled = std::collections::HashMap<String, std::sync::Arc<Regex>>;
    static COMPILED: std::sync::Mutex<Option<Compiled>> = std::sync::Mutex::new(None);
    let mut compiled = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    let compiled = compiled.get_or_insert_with(Default::default);
    if let Some(r) = compiled.get(&re) {
        return Ok((r.clone(), skip));
    }
    let r = std::sync::Arc::new(Regex::new(&re).map_err(|e| format!("pattern {pattern:?}: {e}"))?);
    compiled.insert(re, r.clone());
    Ok((r, skip))
}

/// The anchored regex source of `body` (all of `pattern`, or what follows
/// its leading `{name}`).
fn regex_source(pattern: &str, body: &str, live_name: &str) -> Result<String, String> {
    let mut re = String::from("^");
    let mut rest = body;
    let mut seen = std::collections::HashSet::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('*') {
            re.push_str("[^/]*");
            rest = r;
        } else if rest.starts_with('{') {
            let end = rest
                .find('}')
                .ok_or_else(|| format!("pattern {pattern:?}: '{{' without '}}'"))?;
            let ph = &rest[1..end];
            if !seen.insert(ph.to_string()) {
                return Err(format!("pattern {pattern:?}: {{{ph}}} appears twice"));
            }
            match ph {
                "name" => re.push_str(&regex::escape(live_name)),
                "N" => re.push_str(r"(?P<N>[0-9]+)"),
                "n" => re.push_str(r"(?P<n>[0-9]+)"),
                "date" => re.push_str(&format!("(?P<date>{DATE})")),
                "ext" => re.push_str(EXT),
                other => return Err(format!("pattern {pattern:?}: unknown placeholder {{{other}}}; use {{name}}, {{N}}, {{n}}, {{date}} or {{ext}}")),
            }
            rest = &rest[end + 1..];
        } else {
            let c = rest.chars().next().unwrap();
            re.push_str(&regex::escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    re.push('$');
    Ok(re)
}

#[cfg(test)]
mod tests;
