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
//!
//! Each file is resolved and stat'ed once (each directory resolved once
//! for all the files in it), and compared with the others through maps: a
//! config of thousands of journals is checked in time proportional to its
//! size, not to its square.

use std::cell::RefCell;
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
    /// Device and inode of the file, if it exists.
    id: Option<(u64, u64)>,
    line: usize,
    what: String,
}

impl Place {
    fn new(r: &Resolver, path: PathBuf, line: usize, what: String) -> Place {
        Place {
            real: r.resolved(&path),
            id: std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino())),
            path,
            line,
            what,
        }
    }
}

/// Places by what makes two of them the same file: the same name once
/// links are resolved, or the same device and inode (a hard link).
#[derive(Default)]
struct Index {
    by_real: HashMap<PathBuf, usize>,
    by_id: HashMap<(u64, u64), usize>,
}

impl Index {
    /// Adds place number `i` (numbers grow as places are added).
    fn add(&mut self, i: usize, p: &Place) {
        self.by_real.entry(p.real.clone()).or_insert(i);
        if let Some(id) = p.id {
            self.by_id.entry(id).or_insert(i);
        }
    }

    /// The number of the first place added that is the same file as `p`.
    fn find(&self, p: &Place) -> Option<usize> {
        let by_id = p.id.and_then(|id| self.by_id.get(&id));
        [self.by_real.get(&p.real), by_id]
            .into_iter()
            .flatten()
            .copied()
            .min()
    }
}

/// [`resolved`] with each directory resolved once: the files of a config
/// are mostly in a few directories.
#[derive(Default)]
struct Resolver {
    dirs: RefCell<HashMap<PathBuf, PathBuf>>,
}

impl Resolver {
    fn resolved(&self, p: &Path) -> PathBuf {
        // `file_name` is none for a path ending in `..` (or the root).
        let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
            return resolved(p);
        };
        let known = self.dirs.borrow().get(dir).cloned();
        let mut out = known.unwrap_or_else(|| {
            let r = resolved(dir);
            self.dirs.borrow_mut().insert(dir.to_path_buf(), r.clone());
            r
        });
        step(&mut out, name);
        out
    }
}

/// Appends `name` to `out`, a resolved path, resolving `name` if it is a
/// symbolic link.
fn step(out: &mut PathBuf, name: &std::ffi::OsStr) {
    out.push(name);
    let link = std::fs::symlink_metadata(&*out).is_ok_and(|m| m.is_symlink());
    if let Some(r) = link.then(|| std::fs::canonicalize(&*out).ok()).flatten() {
        *out = r;
    }
}

/// `p` (absolute) as the kernel resolves it, as far as it exists: each
/// existing prefix with its symbolic links resolved, then `.` and `..` of
/// the part that does not exist yet (the file is created there).
///
/// The prefix built so far is resolved already, so only a component that
/// is itself a symbolic link needs resolving: one `lstat` per component,
/// where resolving every prefix whole cost one `readlink` per component of
/// each prefix (a config of thousands of outputs paid for it at start).
fn resolved(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => out = PathBuf::from("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => step(&mut out, n),
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
    let r = Resolver::default();
    let inputs = Inputs::new(&r, journal_places(ctx, &r, journals, &probe)?);
    let state_real = r.resolved(state_dir);
    let glob_dirs: Vec<(&String, PathBuf)> = globs
        .iter()
        .map(|(name, g)| (name, r.resolved(&g.dir)))
        .collect();
    let mut outputs: Vec<Place> = Vec::new();
    let mut seen = Index::default();
    for (j, pj) in journals.iter().zip(&probe.journal) {
        for (l, pl) in j.listeners.iter().zip(&pj.listener) {
            if l.plugin != PluginRef::Builtin("file".into()) {
                continue;
            }
            let Some((p, mine)) = file_outputs(ctx, &r, dir, j, &l.name, pl) else {
                continue;
            };
            for o in &mine {
                refuse_input(ctx, p, o, &inputs)?;
                refuse_glob_dir(ctx, p, o, &glob_dirs, globs)?;
                refuse_output(ctx, p, o, &outputs, &seen)?;
                refuse_state(ctx, p, o, state_dir, &state_real)?;
                refuse_kind(ctx, p, o)?;
            }
            for o in mine {
                seen.add(outputs.len(), &o);
                outputs.push(o);
            }
        }
    }
    Ok(())
}

/// The journals' files, each refused unless it is a regular file (or
/// does not exist yet).
fn journal_places<'a>(
    ctx: &Ctx<'_>,
    r: &Resolver,
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
        inputs.push((j, Place::new(r, j.path.clone(), line, what)));
    }
    Ok(inputs)
}

/// The files a `file` listener writes: its output and, in raw format, the
/// `.gaps` file beside it; with the `path` value they come from.
fn file_outputs<'p>(
    ctx: &Ctx<'_>,
    r: &Resolver,
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
        r,
        dir.join(text),
        line,
        format!("the output of {who}"),
    )];
    if raw {
        let mut gaps = dir.join(text).into_os_string();
        gaps.push(".gaps");
        mine.push(Place::new(
            r,
            gaps.into(),
            line,
            format!("the gaps file of {who}"),
        ));
    }
    Some((p, mine))
}

/// The journals' files, found by file and by the directory they rotate in.
struct Inputs<'a> {
    places: Vec<(&'a JournalConfig, Place)>,
    files: Index,
    /// The resolved directory of each journal, to the journals in it, in
    /// config order.
    dirs: HashMap<PathBuf, Vec<usize>>,
}

impl<'a> Inputs<'a> {
    fn new(r: &Resolver, places: Vec<(&'a JournalConfig, Place)>) -> Inputs<'a> {
        let mut files = Index::default();
        let mut dirs: HashMap<PathBuf, Vec<usize>> = HashMap::new();
        for (k, (j, i)) in places.iter().enumerate() {
            files.add(k, i);
            let dir = r.resolved(j.path.parent().unwrap_or(Path::new("/")));
            dirs.entry(dir).or_default().push(k);
        }
        Inputs {
            places,
            files,
            dirs,
        }
    }

    /// The first journal whose rotation patterns match `o`'s name in its
    /// directory.
    fn rotated_as(&self, o: &Place) -> Option<usize> {
        let name = o.real.file_name()?.to_str()?;
        let in_dir = self.dirs.get(o.real.parent()?)?;
        in_dir
            .iter()
            .copied()
            .find(|&k| self.places[k].0.scheme.is_rotated_name(name))
    }
}

fn refuse_input(
    ctx: &Ctx<'_>,
    at: &Spanned<toml::Value>,
    o: &Place,
    inputs: &Inputs<'_>,
) -> Result<(), ConfigError> {
    // The first journal, in config order, that `o` is or rotates as.
    let same = inputs.files.find(o);
    let Some(k) = [same, inputs.rotated_as(o)].into_iter().flatten().min() else {
        return Ok(());
    };
    let (j, i) = &inputs.places[k];
    let why = if same == Some(k) {
        format!("{} (line {})", i.what, i.line)
    } else {
        format!(
            "a name the rotation patterns of journal {:?} (line {}) match: a rotated journal",
            j.name, i.line
        )
    };
    ctx.at(at.span(), format!("{} is {}, which is {why}; an output may never be an input (writing it would destroy the journal): point config key \"path\" elsewhere", o.what, o.path.display()))
}

/// An output in a glob journal's directory: a file created there may be
/// matched by the glob (now, or once renamed), and then followed.
fn refuse_glob_dir(
    ctx: &Ctx<'_>,
    at: &Spanned<toml::Value>,
    o: &Place,
    glob_dirs: &[(&String, PathBuf)],
    globs: &std::collections::BTreeMap<String, super::glob::GlobSpec>,
) -> Result<(), ConfigError> {
    for (name, real) in glob_dirs {
        if o.real.parent() == Some(real.as_path()) {
            let dir = globs[*name].dir.display();
            return ctx.at(at.span(), format!("{} is {}, in {dir}, the directory whose files the glob of journal {name:?} follows; an output may never be an input: point config key \"path\" at another directory", o.what, o.path.display()));
        }
    }
    Ok(())
}

fn refuse_output(
    ctx: &Ctx<'_>,
    at: &Spanned<toml::Value>,
    o: &Place,
    outputs: &[Place],
    seen: &Index,
) -> Result<(), ConfigError> {
    if let Some(other) = seen.find(o).map(|k| &outputs[k]) {
        return ctx.at(at.span(), format!("{} is {}, which is also {} (line {}); two listeners writing one file overwrite each other: give each its own path", o.what, o.path.display(), other.what, other.line));
    }
    Ok(())
}

fn refuse_state(
    ctx: &Ctx<'_>,
    at: &Spanned<toml::Value>,
    o: &Place,
    state_dir: &Path,
    state_real: &Path,
) -> Result<(), ConfigError> {
    if o.real.starts_with(state_real) {
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

#[cfg(test)]
mod tests {
    use super::{resolved, Resolver};
    use std::os::unix::fs::symlink;

    /// As the kernel walks a path: links resolved where they are met
    /// (chains, relative targets), `..` taken from the resolved place, the
    /// part that does not exist kept as written.
    #[test]
    fn paths_resolve_as_the_kernel_walks_them() {
        let d = tempfile::tempdir().unwrap();
        let t = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir_all(t.join("real/dir")).unwrap();
        symlink(t.join("real"), t.join("l1")).unwrap();
        symlink("l1", t.join("l2")).unwrap();
        symlink("nowhere", t.join("dangling")).unwrap();
        let cases = [
            ("l2/dir/new.out", t.join("real/dir/new.out")),
            ("l2/dir", t.join("real/dir")),
            ("l2/../x", t.join("x")),
            ("real/./dir/../dir/a", t.join("real/dir/a")),
            ("dangling/x", t.join("dangling/x")),
            ("missing/../real/dir", t.join("real/dir")),
        ];
        // One resolver for all: its directories, once resolved, are reused.
        let r = Resolver::default();
        for _ in 0..2 {
            for (rel, want) in &cases {
                assert_eq!(resolved(&d.path().join(rel)), *want, "{rel}");
                assert_eq!(r.resolved(&d.path().join(rel)), *want, "{rel}, cached");
            }
        }
    }
}
