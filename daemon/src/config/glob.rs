//! A journal whose `path` is a glob (`/var/log/app/*.log`): the checks
//! made on it before anything runs.
//!
//! The wildcard may only be in the file name: the directory is fixed, so
//! that one directory is watched and every stream's rotated files lie
//! beside it, where the rotation patterns look. Each matching file becomes
//! a stream of its own (see `crate::streams`); here we only prove that the
//! pattern, its `exclude` list and the listeners' settings make sense for
//! that: a `start` that names a journal number means nothing for many
//! files, and a listener `path` without `{file}` would be shared by every
//! stream.

use std::path::{Path, PathBuf};

use super::raw::RawJournal;
use super::{ConfigError, Ctx, JournalConfig, Start};

/// The placeholder a glob journal's listener `path` holds: the stream's
/// file name.
pub const FILE_PLACEHOLDER: &str = "{file}";

/// A validated glob journal path.
#[derive(Debug, Clone)]
pub struct GlobSpec {
    /// The fixed directory the files are in (absolute).
    pub dir: PathBuf,
    /// Matches the file names in `dir` that are streams.
    pub pattern: glob::Pattern,
    /// File names matching any of these are not streams.
    pub exclude: Vec<glob::Pattern>,
}

impl GlobSpec {
    /// Whether the file name `name` in `dir` is a stream's live file by the
    /// patterns alone (rotated names are weeded out by `crate::streams`).
    pub fn matches(&self, name: &str) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        name != "."
            && name != ".."
            && self.pattern.matches_with(name, opts)
            && !self.exclude.iter().any(|e| e.matches_with(name, opts))
    }
}

/// Whether `s` holds a glob wildcard.
fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The glob of journal `j` (read from `raw`), if its path has a wildcard;
/// an error naming the line and key when the glob or its `exclude` list
/// cannot work.
pub(super) fn spec(
    ctx: &Ctx<'_>,
    j: &JournalConfig,
    raw: &RawJournal,
) -> Result<Option<GlobSpec>, ConfigError> {
    let name = &j.name;
    let text = raw.path.get_ref();
    if !has_wildcard(text) {
        if let Some(ex) = &raw.exclude {
            return ctx.at(ex.span(), format!("journal {name:?}: exclude applies only to a path with a wildcard (path = \"/var/log/app/*.log\"); remove it, or put a wildcard in path"));
        }
        return Ok(None);
    }
    let file_name = j.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let dir = j.path.parent().unwrap_or(Path::new("/"));
    if has_wildcard(&dir.to_string_lossy()) {
        return ctx.at(raw.path.span(), format!("journal {name:?}: path {text:?}: a wildcard may only be in the file name; the directory must be fixed (one directory is watched, and rotated files lie beside their live file): write e.g. \"/var/log/app/*.log\""));
    }
    let pattern = glob::Pattern::new(file_name).or_else(|e| {
        ctx.at(
            raw.path.span(),
            format!("journal {name:?}: path {text:?} is not a valid glob: {e}"),
        )
    })?;
    let mut exclude = Vec::new();
    for e in raw
        .exclude
        .as_ref()
        .map(|e| e.get_ref().as_slice())
        .unwrap_or(&[])
    {
        let at = raw.exclude.as_ref().expect("listed").span();
        if e.contains('/') {
            return ctx.at(
                at,
                format!(
                    "journal {name:?}: exclude {e:?}: patterns match file names in {}, without '/'",
                    dir.display()
                ),
            );
        }
        match glob::Pattern::new(e) {
            Ok(p) => exclude.push(p),
            Err(err) => {
                return ctx.at(
                    at,
                    format!("journal {name:?}: exclude {e:?} is not a valid glob: {err}"),
                )
            }
        }
    }
    if let (Start::Journal(_), Some(s)) = (&j.start, &raw.start) {
        return ctx.at(s.span(), format!("journal {name:?}: start = a journal number does not apply to a glob path (each file is its own stream); use \"beginning\" or \"end\""));
    }
    listener_paths(ctx, j, raw)?;
    Ok(Some(GlobSpec {
        dir: dir.to_path_buf(),
        pattern,
        exclude,
    }))
}

/// Every listener config `path` of a glob journal must hold `{file}`:
/// without it, all the journal's streams would write one file.
fn listener_paths(ctx: &Ctx<'_>, j: &JournalConfig, raw: &RawJournal) -> Result<(), ConfigError> {
    for l in &raw.listener {
        let Some(cfg) = &l.config else { continue };
        for (k, v) in cfg {
            if k.get_ref() != "path" {
                continue;
            }
            if v.as_str().is_some_and(|s| !s.contains(FILE_PLACEHOLDER)) {
                return ctx.at(k.span(), format!("listener {:?} of journal {:?}: config key \"path\" has no {FILE_PLACEHOLDER}, so every file the glob matches would write to it; put {FILE_PLACEHOLDER} in it (path = \"out/{FILE_PLACEHOLDER}.copy\"), which becomes each file's name", l.name.get_ref(), j.name));
            }
        }
    }
    Ok(())
}

/// A plain journal's listener `path` with `{file}`: a mistake (it would be
/// written literally).
pub(super) fn refuse_placeholder(
    ctx: &Ctx<'_>,
    j: &JournalConfig,
    raw: &RawJournal,
) -> Result<(), ConfigError> {
    for l in &raw.listener {
        let Some(cfg) = &l.config else { continue };
        for (k, v) in cfg {
            if k.get_ref() == "path" && v.as_str().is_some_and(|s| s.contains(FILE_PLACEHOLDER)) {
                return ctx.at(k.span(), format!("listener {:?} of journal {:?}: {FILE_PLACEHOLDER} in config key \"path\" applies only to a journal whose path is a glob; write the file name", l.name.get_ref(), j.name));
            }
        }
    }
    Ok(())
}

/// A plain journal whose file a glob journal also matches: the file would
/// be followed twice.
pub(super) fn refuse_overlap(
    ctx: &Ctx<'_>,
    journals: &[JournalConfig],
    globs: &std::collections::BTreeMap<String, GlobSpec>,
    raws: &[RawJournal],
) -> Result<(), ConfigError> {
    for (j, raw) in journals.iter().zip(raws) {
        if globs.contains_key(&j.name) {
            continue;
        }
        let (Some(dir), Some(file)) =
            (j.path.parent(), j.path.file_name().and_then(|n| n.to_str()))
        else {
            continue;
        };
        for (g, spec) in globs {
            if spec.dir == dir && spec.matches(file) {
                return ctx.at(raw.path.span(), format!("journal {:?} follows {}, which the glob of journal {g:?} matches too: it would be followed twice; add {file:?} to the exclude list of journal {g:?}, or remove one", j.name, j.path.display()));
            }
        }
    }
    Ok(())
}

/// A copy of a glob journal's listener config (TOML text) with `{file}`
/// in its `path` replaced by `file`.
pub(crate) fn with_file(config_toml: &str, file: &str) -> String {
    let Ok(mut table) = toml::from_str::<toml::Table>(config_toml) else {
        return config_toml.to_string();
    };
    if let Some(toml::Value::String(p)) = table.get_mut("path") {
        *p = p.replace(FILE_PLACEHOLDER, file);
    }
    toml::to_string(&table).unwrap_or_else(|_| config_toml.to_string())
}

mod overlap;
pub(super) use overlap::refuse_glob_overlap;

#[cfg(test)]
mod tests;
