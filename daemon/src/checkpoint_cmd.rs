//! `logdaemon checkpoint show|set`: the operator's hands on the checkpoint.
//!
//! `set` is for manual recovery (a lost predecessor, a listener to replay
//! from an earlier point). It refuses a position that is not on a record
//! boundary of the file that holds it, unless told `--force` for a file that
//! is not at hand, and writes the checkpoint atomically like the daemon does.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use logdaemon_state::{Checkpoint, Cursor, JournalState, PendingGap, StateError, StateLock};

use crate::config::Config;
use crate::format::{Format, RecordReader};
use crate::identity;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointCmdError {
    #[error(transparent)]
    State(#[from] logdaemon_state::StateError),
    #[error("{0}")]
    Refused(String),
}

/// What `checkpoint set` is asked to do.
#[derive(Debug, Clone)]
pub struct SetRequest {
    pub journal: String,
    pub listener: Option<String>,
    pub sequence: u64,
    pub offset: u64,
    pub line: Option<u64>,
    /// The file holding the position, when the configuration cannot find it.
    pub file: Option<PathBuf>,
    pub force: bool,
}

/// The checkpoint in a readable form.
pub fn show(state_dir: &Path) -> Result<String, CheckpointCmdError> {
    let path = state_dir.join(logdaemon_state::FILE_NAME);
    let cp = match Checkpoint::load(state_dir)? {
        Some(c) => c,
        None => {
            return Ok(format!(
                "no checkpoint at {} (nothing delivered yet)\n",
                path.display()
            ))
        }
    };
    let mut s = format!("checkpoint {}\n", path.display());
    for (name, j) in &cp.journals {
        let _ = writeln!(s, "journal {name}: read up to {}", describe(&j.reader));
        for (l, c) in &j.listeners {
            let _ = writeln!(s, "  listener {l}: acknowledged up to {}", describe(c));
        }
        for f in &j.finished {
            let _ = writeln!(
                s,
                "  finished: sequence {} ({} bytes) {}",
                f.sequence, f.size, f.path
            );
        }
    }
    Ok(s)
}

fn describe(c: &Cursor) -> String {
    let mut s = format!(
        "sequence {} offset {} line {}",
        c.sequence, c.offset, c.line
    );
    match &c.identity {
        Some(id) => {
            let _ = write!(
                s,
                " in {}",
                if id.path.is_empty() {
                    "(unnamed file)"
                } else {
                    &id.path
                }
            );
            if id.inode != 0 {
                let _ = write!(s, " (dev {} inode {})", id.dev, id.inode);
            }
        }
        None => s.push_str(" (unverified: set by hand)"),
    }
    s
}

/// Sets a position and writes the checkpoint. Returns a summary line.
pub fn set(
    state_dir: &Path,
    cfg: Option<&Config>,
    req: &SetRequest,
) -> Result<String, CheckpointCmdError> {
    // A position may be set before the daemon's first run (where to start).
    logdaemon_state::ensure_state_dir(state_dir)?;
    let _lock = StateLock::acquire(state_dir).map_err(|e| match e {
        StateError::Locked { .. } => CheckpointCmdError::Refused(format!(
            "{e}; stop the daemon before setting its checkpoint"
        )),
        e => CheckpointCmdError::State(e),
    })?;
    let mut cp = match Checkpoint::load(state_dir) {
        Ok(c) => c.unwrap_or_default(),
        Err(
            e
            @ (StateError::Invalid { .. } | StateError::Corrupt { .. } | StateError::Empty { .. }),
        ) => return Err(damaged(state_dir, &e)),
        Err(e) => return Err(e.into()),
    };
    // A glob journal's positions are its streams', `NAME/FILE`.
    let stream = cfg.and_then(|c| crate::streams::config_of(c, &req.journal));
    let jcfg = cfg
        .and_then(|c| c.journals.iter().find(|j| j.name == req.journal))
        .map(|j| &**j)
        .filter(|j| cfg.is_some_and(|c| !c.globs.contains_key(&j.name)))
        .or(stream.as_ref());
    if let Some(files) = cfg.and_then(|c| crate::streams::files_now(c, &req.journal)) {
        return Err(CheckpointCmdError::Refused(format!(
            "journal {:?} has a glob path: each file it matches is a stream with its own position; name one as {:?} (files now: {})",
            req.journal,
            format!("{}/FILE", req.journal),
            files.join(", ")
        )));
    }
    if cfg.is_some() && jcfg.is_none() {
        return Err(CheckpointCmdError::Refused(format!(
            "the config has no journal named {:?}",
            req.journal
        )));
    }
    let existing = cp.journals.get(&req.journal).cloned().unwrap_or_default();
    // Which file holds this sequence?
    let mut looked: Vec<PathBuf> = Vec::new();
    let file = match &req.file {
        Some(p) if p.is_file() => Some(p.clone()),
        Some(p) => {
            return Err(CheckpointCmdError::Refused(format!(
                "{}: no such file",
                p.display()
            )))
        }
        None => find_file(jcfg, &existing, req.sequence, &mut looked),
    };
    let format = jcfg.map(|j| j.format.clone());
    let cursor = match file {
        Some(path) => {
            let format = format.unwrap_or_else(|| guess_format(&path));
            let line = check_boundary(&path, &format, req.offset)?;
            if let Some(l) = req.line {
                if l != line && !req.force {
                    return Err(CheckpointCmdError::Refused(format!(
                        "{}: offset {} is at line {line}, not line {l}; leave --line out, or pass --force",
                        path.display(),
                        req.offset
                    )));
                }
            }
            let id = identity::compute(&path, req.offset)
                .map_err(|e| CheckpointCmdError::Refused(format!("{}: {e}", path.display())))?;
            Cursor {
                sequence: req.sequence,
                offset: req.offset,
                line: req.line.unwrap_or(line),
                identity: Some(id),
            }
        }
        None if req.force => Cursor {
            sequence: req.sequence,
            offset: req.offset,
            line: req.line.unwrap_or(1),
            identity: None,
        },
        None => {
            let list: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
            return Err(CheckpointCmdError::Refused(format!(
                "journal {:?}: the file of sequence {} is not at hand (looked at: {}); pass --config so its files can be found, or --force to set the position without checking it",
                req.journal,
                req.sequence,
                if list.is_empty() { "nothing: no config and no recorded path".to_string() } else { list.join(", ") }
            )));
        }
    };
    let js = cp
        .journals
        .entry(req.journal.clone())
        .or_insert_with(JournalState::default);
    let mut names: Vec<String> = js.listeners.keys().cloned().collect();
    if let Some(j) = jcfg {
        names.extend(j.listeners.iter().map(|l| l.name.clone()));
    }
    names.sort();
    names.dedup();
    match &req.listener {
        Some(l) => {
            if let Some(j) = jcfg {
                if !j.listeners.iter().any(|x| &x.name == l) {
                    return Err(CheckpointCmdError::Refused(format!(
                        "journal {:?} has no listener {l:?} in the config",
                        req.journal
                    )));
                }
            }
            owe_gap(js, l, &cursor);
            js.listeners.insert(l.clone(), cursor.clone());
            if cursor.position() > js.reader.position() {
                js.reader = cursor.clone();
            }
        }
        None => {
            js.reader = cursor.clone();
            for n in names {
                owe_gap(js, &n, &cursor);
                js.listeners.insert(n, cursor.clone());
            }
        }
    }
    cp.save(state_dir)?;
    Ok(format!(
        "journal {}{}: set to {}",
        req.journal,
        req.listener
            .as_ref()
            .map(|l| format!(" listener {l}"))
            .unwrap_or_default(),
        describe(&cursor)
    ))
}

/// Moving a listener forward past entries it never acknowledged is a gap
/// it must be told about: recorded in the checkpoint, the daemon reports
/// it to the listener before its next entry. Moved back (a replay), the
/// part of an owed gap that will be delivered again is no gap any more.
fn owe_gap(js: &mut JournalState, listener: &str, to: &Cursor) {
    let Some(old) = js.listeners.get(listener) else {
        return;
    };
    let at = |c: &Cursor| (c.sequence, c.offset, c.line);
    let (old, new) = (at(old), at(to));
    let owed = js.pending_gaps.remove(listener);
    let pos = |p: (u64, u64, u64)| (p.0, p.1);
    let from = match owed {
        Some(g) if pos(new) > pos(g.from) => g.from,
        Some(_) => return,
        None if pos(new) > pos(old) => old,
        None => return,
    };
    let detail = format!(
        "the acknowledged position was moved from sequence {} offset {} to sequence {} offset {} (logdaemon checkpoint set): the entries in between were not delivered",
        from.0, from.1, new.0, new.1
    );
    js.pending_gaps.insert(
        listener.to_string(),
        PendingGap {
            from,
            to: new,
            cause: "operator".into(),
            detail,
        },
    );
}

/// `set` changes one position of a readable checkpoint; a damaged one needs
/// repairing or replacing first, and the way to replace it is spelt out.
fn damaged(state_dir: &Path, e: &StateError) -> CheckpointCmdError {
    let cp = state_dir.join(logdaemon_state::FILE_NAME);
    let prev = state_dir.join(logdaemon_state::PREVIOUS_FILE_NAME);
    CheckpointCmdError::Refused(format!(
        "{e}\n`checkpoint set` changes positions in a readable checkpoint, and this one is damaged. \
         Repair it or restore the previous save as said above; or, to start over, move both {} and {} \
         out of the way and set the position of every journal with `logdaemon checkpoint set` (nothing \
         is set here)",
        cp.display(),
        prev.display()
    ))
}

fn find_file(
    jcfg: Option<&crate::config::JournalConfig>,
    existing: &JournalState,
    sequence: u64,
    looked: &mut Vec<PathBuf>,
) -> Option<PathBuf> {
    // A recorded cursor of the same sequence knows its file.
    let recorded = std::iter::once(&existing.reader).chain(existing.listeners.values());
    for c in recorded {
        if c.sequence != sequence {
            continue;
        }
        if let Some(id) = &c.identity {
            let p = PathBuf::from(&id.path);
            if !id.path.is_empty() && !looked.contains(&p) {
                looked.push(p.clone());
                if identity::open_matching(&p, id, c.offset).is_ok() {
                    return Some(p);
                }
            }
            if let Some(j) = jcfg {
                let mut paths = vec![j.path.clone()];
                paths.extend(
                    j.scheme
                        .candidates()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|k| k.path),
                );
                for p in paths {
                    if identity::open_matching(&p, id, c.offset).is_ok() {
                        return Some(p);
                    }
                }
            }
        }
    }
    let j = jcfg?;
    for k in j.scheme.candidates().unwrap_or_default() {
        if k.number == Some(sequence) {
            return Some(k.path);
        }
    }
    looked.push(j.path.clone());
    let live_seq = existing
        .listeners
        .values()
        .chain(std::iter::once(&existing.reader))
        .map(|c| c.sequence)
        .max();
    if j.path.exists()
        && (live_seq.is_none() || live_seq == Some(sequence) || matches!(j.format, Format::P4))
    {
        return Some(j.path.clone());
    }
    None
}

fn guess_format(path: &Path) -> Format {
    let mut b = [0u8; 1];
    let first = crate::compress::open(path)
        .ok()
        .and_then(|(_, mut r)| std::io::Read::read(&mut r, &mut b).ok())
        .unwrap_or(0);
    if first == 1 && b[0] == b'@' {
        Format::P4
    } else {
        Format::Lines { record_start: None }
    }
}

/// The line number at `offset` if a record starts there (or the file ends there).
fn check_boundary(path: &Path, format: &Format, offset: u64) -> Result<u64, CheckpointCmdError> {
    let refused = |m: String| CheckpointCmdError::Refused(format!("{}: {m}", path.display()));
    let (_, reader) = crate::compress::open(path).map_err(|e| refused(e.to_string()))?;
    let mut rr = RecordReader::new(reader, format, 0, 1);
    loop {
        let here = rr.offset();
        let line = rr.line();
        if here == offset {
            return Ok(line);
        }
        match rr.next_record().map_err(|e| refused(e.to_string()))? {
            None => return Err(refused(format!("offset {offset} is past the end of the file ({here} bytes); the last record boundary is {here}"))),
            Some(r) => {
                let end = r.offset + r.bytes.len() as u64;
                if end > offset {
                    return Err(refused(format!(
                        "offset {offset} is in the middle of the record at offset {} (line {}, {} bytes); the nearest record boundaries are {} and {end}; use one of them (or --force for a file that is not this one)",
                        r.offset,
                        r.line,
                        r.bytes.len(),
                        r.offset
                    )));
                }
            }
        }
    }
}
