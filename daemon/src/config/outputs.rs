//! What the config lets the daemon write: an output may never be an input.
//!
//! A `file` listener's output (and its `.gaps` side file) is refused when
//! it is, or resolves to, a followed journal, a file one of the journals'
//! rotation patterns matches, another listener's output, or a file in the
//! state directory (where the checkpoint and the listeners' own records
//! live); and when it is not a regular file, or lies in a directory other
//! users can write. Journals must be regular files (a FIFO would block the
//! daemon in `open`). Both `check` and `run` go through here, so each
//! refusal names both config lines before anything is opened.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use logdaemon_sdk::trust::kind_of;
use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Ctx, JournalConfig, PluginRef};

/// Just the keys this check needs, with their places in the text.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    journal: Vec<ProbeJournal>,
}

#[derive(Deserialize)]
struct ProbeJournal {
    path: Spanned<String>,
    #[serde(default)]
    listener: Vec<ProbeListener>,
}

#[derive(Deserialize)]
struct ProbeListener {
    config: Option<ProbeConfig>,
}

#[derive(Deserialize)]
struct ProbeConfig {
    path: Option<Spanned<toml::Value>>,
    format: Option<toml::Value>,
}

/// A file the config makes the daemon write or read, with its config line.
struct Place {
    /// As resolved against the config's directory.
    path: PathBuf,
    /// Symbolic links resolved (as far as the path exists).
    real: PathBuf,
    /// Device and inode, when the file exists (hard links share them).
    id: Option<(u64, u64)>,
    line: usize,
    what: String,
}

impl Place {
    fn new(path: PathBuf, line: usize, what: String) -> Place {
        Place {
            real: resolved(&path),
            id: std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino())),
            path,
            line,
            what,
        }
    }

    /// Whether both name the same file: by name once links are resolved,
    /// or by device and inode (a hard link).
    fn same_file(&self, other: &Place) -> bool {
        self.real == other.real || (self.id.is_some() && self.id == other.id)
    }
}

/// Places by resolved name and by device and inode, so that checking each
/// output costs the same however many journals and outputs there are.
#[derive(Default)]
struct Index<'a> {
    by_real: HashMap<PathBuf, usize>,
    by_id: HashMap<(u64, u64), usize>,
    places: Vec<&'a Place>,
}

impl<'a> Index<'a> {
    fn add(&mut self, p: &'a Place) {
        let i = self.places.len();
        self.places.push(p);
        self.by_real.entry(p.real.clone()).or_insert(i);
        if let Some(id) = p.id {
            self.by_id.entry(id).or_insert(i);
        }
    }

    /// The first place that is the same file as `o`.
    fn find(&self, o: &Place) -> Option<&'a Place> {
        let i = self
            .by_real
            .get(&o.real)
            .or_else(|| o.id.and_then(|id| self.by_id.get(&id)))?;
        Some(self.places[*i])
    }
}

/// `p` (absolute) as the kernel resolves it, as far as it exists: each
/// existing prefix with its symbolic links resolved, then `.` and `..` of
/// the part that does not exist yet (the file is created there).
fn resolved(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => out = PathBuf::from("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => {
                out.push(n);
                if let Ok(r) = std::fs::canonicalize(&out) {
                    out = r;
                }
            }
        }
    }
    out
}

/// Checks the journals' files and the `file` listeners' outputs.
pub(super) fn check(
    ctx: &Ctx<'_>,
    dir: &Path,
    state_dir: &Path,
    journals: &[JournalConfig],
    globs: &std::collections::BTreeMap<String, super::glob::GlobSpec>,
) -> Result<(), ConfigError> {
    let Ok(probe) = toml::from_str::<Probe>(ctx.text) else {
        return Ok(());
    };
    let inputs = journal_places(ctx, journals, &probe)?;
    let mut input_index = Index::default();
    let mut by_dir: HashMap<PathBuf, Vec<(&JournalConfig, &Place)>> = HashMap::new();
    for (j, i) in &inputs {
        input_index.add(i);
        let jdir = resolved(j.path.parent().unwrap_or(Path::new("/")));
        by_dir.entry(jdir).or_default().push((j, i));
    }
    let inputs = Inputs {
        index: input_index,
        by_dir,
    };
    let mut outputs: Vec<Place> = Vec::new();
    for (j, pj) in journals.iter().zip(&probe.journal) {
        for (l, pl) in j.listeners.iter().zip(&pj.listener) {
            if l.plugin != PluginRef::Builtin("file".into()) {
                continue;
            }
            let Some((p, mine)) = file_outputs(ctx, dir, j, &l.name, pl) else {
                continue;
            };
            for o in &mine {
                refuse_input(ctx, p, o, &inputs)?;
                refuse_glob_dir(ctx, p, o, globs)?;
                refuse_output(ctx, p, o, &outputs)?;
                refuse_state(ctx, p, o, state_dir)?;
                refuse_kind(ctx, p, o)?;
            }
            outputs.extend(mine);
        }
    }
    Ok(())
}

/// The journals' files, each refused unless it is a regular file (or
/// does not exist yet).
fn journal_places<'a>(
    ctx: &Ctx<'_>,
    journals: &'a [JournalConfig],
    probe: &Probe,
) -> Result<Vec<(&'a JournalConfig, Place)>, ConfigError> {
    let mut inputs = Vec::new();
    for (j, pj) in journals.iter().zip(&probe.journal) {
        if let Some(kind) = std::fs::metadata(&j.path)
            .ok()
            .and_then(|m| kind_of(m.file_type()))
        {
            return ctx.at(pj.path.span(), format!("journal {:?}: {} is {kind}, not a regular file; logdaemon follows regular files only (it would wait on a FIFO or a device for ever): point path at the journal file", j.name, j.path.display()));
        }
        let line = ctx.line(pj.path.span().start);
        let what = format!("the journal {:?} follows", j.name);
        inputs.push((j, Place::new(j.path.clone(), line, what)));
    }
    Ok(inputs)
}

/// The files a `file` listener writes: its output and, in raw format, the
/// `.gaps` file beside it; with the `path` value they come from.
fn file_outputs<'p>(
    ctx: &Ctx<'_>,
    dir: &Path,
    j: &JournalConfig,
    listener: &str,
    pl: &'p ProbeListener,
) -> Option<(&'p Spanned<toml::Value>, Vec<Place>)> {
    let cfg = pl.config.as_ref()?;
    let p = cfg.path.as_ref()?;
    let text = p.get_ref().as_str().filter(|t| !t.is_empty())?;
    let line = ctx.line(p.span().start);
    let who = format!("listener {listener:?} of journal {:?}", j.name);
    let raw = cfg
        .format
        .as_ref()
        .and_then(|f| f.as_str())
        .is_none_or(|f| f == "raw");
    let mut mine = vec![Place::new(
        dir.join(text),
        line,
        format!("the output of {who}"),
    )];
    if raw {
        let mut gaps = dir.join(text).into_os_string();
        gaps.push(".gaps");
        mine.push(Place::new(
            gaps.into(),
            line,
            format!("the gaps file of {who}"),
        ));
    }
    Some((p, mine))
}

/// The journals' files, indexed, and the journals by (resolved) directory.
struct Inputs<'a> {
    index: Index<'a>,
    by_dir: HashMap<PathBuf, Vec<(&'a JournalConfig, &'a Place)>>,
}

fn refuse_input(
    ctx: &Ctx<'_>,
    at: &Spanned<toml::Value>,
    o: &Place,
    inputs: &Inputs<'_>,
) -> Result<(), ConfigError> {
    let why = if let Some(i) = inputs.index.find(o) {
        format!("{} (line {})", i.what, i.line)
    } else {
        let name = o.real.file_name().and_then(|n| n.to_str());
        let same_dir = o.real.parent().and_then(|d| inputs.by_dir.get(d));
        let rotated = same_dir
            .into_iter()
            .flatten()
            .find(|(j, _)| name.is_some_and(|n| j.scheme.is_rotated_name(n)));
        match rotated {
            Some((j, i)) => format!(
                "a name the rotation patterns of journal {:?} (line {}) match: a rotated journal",
                j.name, i.line
            ),
            None => return Ok(()),
        }
    };
    ctx.at(at.span(), format!("{} is {}, which is {why}; an output may never be an input (writing it would destroy the journal): point config key \"path\" elsewhere", o.what, o.path.display()))
}

/// An output in a glob journal's directory: a file created there may be
/// matched by the glob (now, or once renamed), and then followed.
fn refuse_glob_dir(
    ctx: &Ctx<'_>,
    at: &Spanned<toml::Value>,
    o: &Place,
    globs: &std::collections::BTreeMap<String, super::glob::GlobSpec>,
) -> Result<(), ConfigError> {
    for (name, g) in globs {
        if o.real.parent() == Some(resolved(&g.dir).as_path()) {
            return ctx.at(at.span(), format!("{} is {}, in {}, the directory whose files the glob of journal {name:?} follows; an output may never be an input: point config key \"path\" at another directory", o.what, o.path.display(), g.dir.display()));
        }
    }
    Ok(())
}

fn refuse_output(
    ctx: &Ctx<'_>,
    at: &Spanned<toml::Value>,
    o: &Place,
    outputs: &[Place],
) -> Result<(), ConfigError> {
    if let Some(other) = outputs.iter().find(|x| o.same_file(x)) {
        return ctx.at(at.span(), format!("{} is {}, which is also {} (line {}); two listeners writing one file overwrite each other: give each its own path", o.what, o.path.display(), other.what, other.line));
    }
    Ok(())
}

fn refuse_state(
    ctx: &Ctx<'_>,
    at: &Spanned<toml::Value>,
    o: &Place,
    state_dir: &Path,
) -> Result<(), ConfigError> {
    if o.real.starts_with(resolved(state_dir)) {
        return ctx.at(at.span(), format!("{} is {}, inside the state directory {} (where the checkpoint and the listeners' own records live): point config key \"path\" elsewhere", o.what, o.path.display(), state_dir.display()));
    }
    Ok(())
}

fn refuse_kind(ctx: &Ctx<'_>, at: &Spanned<toml::Value>, o: &Place) -> Result<(), ConfigError> {
    if let Some(kind) = std::fs::symlink_metadata(&o.path)
        .ok()
        .and_then(|m| kind_of(m.file_type()))
    {
        return ctx.at(at.span(), format!("{} is {}, which is {kind}, not a regular file; the file listener appends to a regular file it owns, never through a link or to a device or FIFO: point config key \"path\" at a regular file", o.what, o.path.display()));
    }
    if o.path.parent().is_some_and(Path::exists) {
        if let Err(u) = logdaemon_sdk::trust::check_directories(&o.path) {
            return ctx.at(at.span(), format!("{} is {}: {u}; anyone who can change it can make this daemon overwrite any file through a link; fix: {}, or write the output into a directory only root (or the daemon's user) can write", o.what, o.path.display(), u.fix()));
        }
    }
    Ok(())
}
