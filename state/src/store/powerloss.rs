//! Power loss during checkpoint saves, simulated with a fault-injecting
//! file system.
//!
//! The SIGKILL crash test (`tests/crash.rs`) kills only the writer: the
//! kernel's page cache survives, so every write it made reaches the disk.
//! A power loss is harsher: whatever was not made durable by an fsync may
//! vanish or be half applied, and a rename not followed by an fsync of the
//! directory may be undone. Pulling the plug on a real machine cannot be
//! done in a unit test, and replaying a recorded block trace (as
//! dm-log-writes does) needs root and a device. So the choice here is a
//! fault-injecting file system wrapper: the real [`Checkpoint::save`] code
//! runs against [`SimFs`], which implements the same [`Fs`] trait as the
//! production file system but models a disk that is crash-consistent and
//! unordered (see `simfs.rs` for the exact rules). It is exhaustive where a
//! kill test is random: after every single call a save makes, it lists
//! every state the disk may be found in after a power loss, writes each
//! one into a real temporary directory, and runs the real
//! [`Checkpoint::load`] on it.
//!
//! Each state must load a checkpoint equal to one of the saved versions,
//! never older than the last save that returned Ok and never newer than the
//! one in progress; before any save has returned, "no checkpoint yet" is
//! fine. When `checkpoint.toml.prev` is there it must hold a complete
//! earlier version, the operator's documented fallback. A state that does
//! not load follows the documented way out (the message says to copy or
//! move `checkpoint.toml.prev`, which must then hold a version no older
//! than allowed); the real save must never need it. On each acceptable
//! state a restarted daemon then saves once more: the save must work, leave
//! only the checkpoint and its previous save, and survive a power loss.
//!
//! The same exploration of a disk that ignores file fsyncs, and of one that
//! ignores directory fsyncs, must find bad states: the model sees the bugs
//! it is meant to catch.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use self::changes::{changed_by, version_1_text, version_of_changes};
use super::disk::Fs;
use super::simfs::{CrashPoint, Disk, Omit, SimFs};
use super::writer::Writer;
use super::{create_dirs, Loaded, LOG_FILE_NAME, PREVIOUS_FILE_NAME, TEMP_PREFIX};
use crate::error::{StateError, RESTORE_HINT};
use crate::hash::Hash;
use crate::model::{Checkpoint, Cursor, Identity, JournalState};
use crate::FILE_NAME;

/// Saves in a row: the first (no checkpoint yet), the second (no previous
/// save yet), and steady state with a previous save to replace.
const SAVES: u64 = 5;

/// Saves on a disk that ignores an fsync: enough for a save that returned
/// and one after it; the crash states grow exponentially with the changes
/// that are never made durable.
const SAVES_ON_A_FAULTY_DISK: u64 = 3;

/// Where the simulated state directory claims to be; nothing is written there.
const ROOT: &str = "/simulated/state";

/// Version `n` of the checkpoint: every value derives from `n`, so a loaded
/// checkpoint tells which save wrote it.
fn version(n: u64) -> Checkpoint {
    let cursor = |offset: u64, salt: u64| Cursor {
        sequence: n,
        offset,
        line: n * 10 + 1,
        identity: Some(Identity {
            path: format!("/p4/root/journal.{salt}"),
            dev: 2049,
            inode: 131_075 + salt,
            head_len: 4096,
            head_hash: Hash::of(&salt.to_le_bytes()),
            tail_len: offset.min(4096),
            tail_hash: Hash::of(&(n ^ salt).to_le_bytes()),
        }),
    };
    let mut j = JournalState {
        reader: cursor(n * 1000, 0),
        ..Default::default()
    };
    for i in 0..3 {
        j.listeners
            .insert(format!("listener-{i}"), cursor(n * 1000 - i, i + 1));
    }
    Checkpoint {
        journals: [("p4".to_string(), j)].into(),
    }
}

/// How the saves are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// [`Checkpoint::save`]: `checkpoint.toml` rewritten whole each time.
    Whole,
    /// The daemon's [`Writer`] saving only the journal that changed, with
    /// the log from the first byte: records appended to `checkpoint.log`,
    /// its creation, and the whole saves that fold it in.
    Changes,
    /// [`Mode::Changes`] on a disk holding version 1 of the checkpoint in
    /// format version 1, which the first save migrates (the daemon's start).
    Migration,
}

impl Mode {
    fn version(self, n: u64) -> Checkpoint {
        match self {
            Mode::Whole => version(n),
            Mode::Changes | Mode::Migration => version_of_changes(n),
        }
    }
}

mod changes;

/// What loading a crash state gave, when it is acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Outcome {
    /// No checkpoint, before any save returned.
    FirstStart,
    /// The last save that returned.
    LastReturned,
    /// The save in progress, already durable.
    InProgress,
    /// Only after the documented restore from `checkpoint.toml.prev`.
    ViaPrevious,
}

/// The figures of one exploration.
#[derive(Debug, Default)]
struct Figures {
    saves: u64,
    /// Moments a crash was simulated at.
    points: usize,
    /// Crash states, summed over the points.
    states: usize,
    /// Real loads run (a state met again with the same expectations is
    /// judged once).
    loads: usize,
    /// Crash states a restarted daemon saved on.
    restarts: usize,
    outcomes: HashMap<Outcome, usize>,
    /// Crash states with a `checkpoint.log`, and those whose last record is torn.
    logged_states: usize,
    torn_records: usize,
    /// Crash states whose `checkpoint.toml` is still in format version 1.
    version_1_states: usize,
    /// Bad states: where the crash came, what the disk held, what went wrong.
    bad: Vec<String>,
}

impl Figures {
    fn count(&self, o: Outcome) -> usize {
        self.outcomes.get(&o).copied().unwrap_or(0)
    }

    fn summary(&self) -> String {
        format!(
            "{} saves, {} crash points, {} crash states ({} real loads, {} restarts with a save): \
             {} first start, {} last returned save, {} save in progress, \
             {} via {PREVIOUS_FILE_NAME}, {} bad",
            self.saves,
            self.points,
            self.states,
            self.loads,
            self.restarts,
            self.count(Outcome::FirstStart),
            self.count(Outcome::LastReturned),
            self.count(Outcome::InProgress),
            self.count(Outcome::ViaPrevious),
            self.bad.len()
        )
    }
}

/// Runs `saves` real saves against the simulated disk, then judges every
/// state a power loss at every point in between may leave; with `restart`,
/// also a save made after the restart on each acceptable one.
fn explore(omit: Omit, saves: u64, restart: bool) -> Figures {
    explore_in(Mode::Whole, omit, saves, restart)
}

/// [`explore`], with the saves made as `mode` says.
fn explore_in(mode: Mode, omit: Omit, saves: u64, restart: bool) -> Figures {
    let root = Path::new(ROOT);
    // What a process that died in mid-save left, long ago: the first save
    // removes it, and that removal is itself not durable for a while.
    let stale = version(99).to_toml();
    let stale = (
        vec![format!("{TEMP_PREFIX}1-dead.0")],
        stale.as_bytes()[..stale.len() / 3].to_vec(),
    );
    let versions: Vec<Checkpoint> = (1..=saves).map(|n| mode.version(n)).collect();
    let mut files: Disk = [stale].into();
    let mut loaded = None;
    if mode == Mode::Migration {
        let text = version_1_text(&versions[0]);
        loaded = Some(Loaded {
            checkpoint: versions[0].clone(),
            version: 1,
            generation: 0,
            text: (text.len() as u64, Hash::of(text.as_bytes())),
            has_log: false,
            logged: Vec::new(),
        });
        files.insert((vec![FILE_NAME.into()], text.into_bytes()));
    }
    let mut sim = SimFs::new(root, omit, &files);
    if mode == Mode::Migration {
        // Version 1 is on disk: the migration is its save, and may not lose it.
        sim = sim.saved_before(1);
    }
    // The daemon's writer, logging from the first byte on.
    let mut writer = Writer::new(sim, root, loaded.as_ref(), 0);
    for (n, v) in (1..).zip(&versions) {
        writer.fs().save_started(n);
        let saved = match mode {
            Mode::Whole => v.save_on(writer.fs(), root),
            Mode::Migration if n == 1 => writer.compact(v),
            Mode::Changes | Mode::Migration => writer.save_changed(v, [changed_by(n)]),
        };
        saved.unwrap_or_else(|e| panic!("save {n} on the simulated disk: {e}"));
        writer.fs().save_returned(n);
    }
    let sim = writer.fs();

    let scratch = tempfile::tempdir().unwrap();
    let mut figures = Figures {
        saves,
        ..Default::default()
    };
    let mut judged: HashMap<(Disk, u64, u64), Result<Outcome, String>> = HashMap::new();
    for point in sim.crash_points() {
        figures.points += 1;
        for disk in point.crash_states() {
            figures.states += 1;
            let file = disk
                .iter()
                .find(|(names, _)| names.iter().any(|n| n == FILE_NAME));
            if file.is_some_and(|(_, b)| b.windows(13).any(|w| w == b"\nversion = 1\n")) {
                figures.version_1_states += 1;
            }
            if let Some((_, log)) = disk
                .iter()
                .find(|(names, _)| names.iter().any(|n| n == LOG_FILE_NAME))
            {
                figures.logged_states += 1;
                if log.last() != Some(&b'\n') || log.contains(&0) {
                    figures.torn_records += 1;
                }
            }
            let key = (disk, point.returned, point.started);
            let verdict = match judged.get(&key) {
                Some(v) => v.clone(),
                None => {
                    figures.loads += 1;
                    materialise(scratch.path(), &key.0);
                    let v = judge(scratch.path(), &point, &versions);
                    let v = match v {
                        Ok((o, loaded)) if restart => {
                            figures.restarts += 1;
                            restart_and_save(mode, &key.0, loaded, saves + 1, scratch.path())
                                .map(|()| o)
                        }
                        other => other.map(|(o, _)| o),
                    };
                    judged.insert(key.clone(), v.clone());
                    v
                }
            };
            match verdict {
                Ok(o) => *figures.outcomes.entry(o).or_default() += 1,
                Err(why) => figures.bad.push(format!(
                    "power loss after `{}` (save {} returned, save {} started), disk {}: {why}",
                    point.after,
                    point.returned,
                    point.started,
                    describe(&key.0),
                )),
            }
        }
    }
    figures
}

/// The daemon restarted on the crash state `disk`, which loaded version
/// `loaded`, saves version `next` (on a disk that loses power no more):
/// the save works, leaves only the checkpoint and the previous save (the
/// loaded version), and every crash state after it returned loads `next`.
/// The restart is another process: the crash state's temporary files are
/// renamed to look like a dead process's.
fn restart_and_save(
    mode: Mode,
    disk: &Disk,
    loaded: Option<u64>,
    next: u64,
    dir: &Path,
) -> Result<(), String> {
    let root = Path::new(ROOT);
    let disk: Disk = (0..)
        .zip(disk)
        .map(|(i, (names, bytes))| {
            let names = (0..)
                .zip(names)
                .map(|(j, n)| match n.starts_with(TEMP_PREFIX) {
                    true => format!("{TEMP_PREFIX}2-dead.{i}.{j}"),
                    false => n.clone(),
                })
                .collect();
            (names, bytes.clone())
        })
        .collect();
    let sim = SimFs::new(root, Omit::Nothing, &disk);
    mode.version(next)
        .save_on(&sim, root)
        .map_err(|e| format!("after a restart, the save fails: {e}"))?;
    let left: Vec<String> = sim
        .list_dir(root)
        .unwrap()
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let expected = match loaded {
        Some(_) => vec![FILE_NAME, PREVIOUS_FILE_NAME],
        None => vec![FILE_NAME],
    };
    if left != expected {
        return Err(format!("after a restart, the save leaves {left:?}"));
    }
    sim.save_returned(next);
    let points = sim.crash_points();
    for after in points.last().unwrap().crash_states() {
        materialise(dir, &after);
        match Checkpoint::load(dir) {
            Ok(Some(c)) if c == mode.version(next) => {}
            other => {
                return Err(format!(
                    "after a restart and a save that returned, a power loss leaves {}, \
                     which loads {other:?}",
                    describe(&after)
                ))
            }
        }
        // The previous save is the checkpoint.toml the restart found: the
        // loaded version, or with a log beside it, the one the log continued.
        let earlier = |p: &Checkpoint, n: u64| match mode {
            Mode::Whole => *p == version(n),
            Mode::Changes | Mode::Migration => (1..=n).any(|m| *p == version_of_changes(m)),
        };
        if let Some(n) = loaded {
            match Checkpoint::load_file(&dir.join(PREVIOUS_FILE_NAME)) {
                Ok(p) if earlier(&p, n) => {}
                other => {
                    return Err(format!(
                        "after a restart and a save, {PREVIOUS_FILE_NAME} is not version {n} \
                         (or, {mode:?}, an earlier one): {other:?}"
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Writes `disk` into `dir`, replacing whatever was there.
fn materialise(dir: &Path, disk: &Disk) {
    for entry in fs::read_dir(dir).unwrap() {
        fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for (names, bytes) in disk {
        let first = dir.join(&names[0]);
        fs::write(&first, bytes).unwrap();
        for other in &names[1..] {
            fs::hard_link(&first, dir.join(other)).unwrap();
        }
    }
}

/// `{name=name2: N bytes, ...}` for messages.
fn describe(disk: &Disk) -> String {
    let files: Vec<String> = disk
        .iter()
        .map(|(names, bytes)| {
            let zeros = bytes.iter().filter(|&&b| b == 0).count();
            let nul = if zeros > 0 {
                format!(" ({zeros} NUL)")
            } else {
                String::new()
            };
            format!("{}: {} bytes{nul}", names.join("="), bytes.len())
        })
        .collect();
    format!("{{{}}}", files.join(", "))
}

/// Loads the crash state in `dir` as the daemon would, and says whether
/// what it got is acceptable at `point`, and which version it loaded.
fn judge(
    dir: &Path,
    point: &CrashPoint,
    versions: &[Checkpoint],
) -> Result<(Outcome, Option<u64>), String> {
    let (returned, started) = (point.returned, point.started);
    let which = |c: &Checkpoint| (1..).zip(versions).find(|(_, v)| *v == c).map(|(n, _)| n);
    let allowed = |n: u64| n >= returned.max(1) && n <= started;
    let current = dir.join(FILE_NAME);
    let previous = dir.join(PREVIOUS_FILE_NAME);
    let error = match Checkpoint::load(dir) {
        Ok(None) if returned == 0 => return Ok((Outcome::FirstStart, None)),
        Ok(None) => return Err(format!("no checkpoint, though save {returned} returned")),
        Ok(Some(c)) => {
            let n = which(&c).ok_or("loaded a checkpoint that was never saved (half written)")?;
            if !allowed(n) {
                return Err(format!(
                    "loaded version {n}, though save {returned} returned"
                ));
            }
            // The operator's fallback, when there is one, is a complete
            // earlier save.
            if previous.exists() {
                let p = Checkpoint::load_file(&previous)
                    .map_err(|e| format!("{PREVIOUS_FILE_NAME} does not load: {e}"))?;
                match which(&p) {
                    Some(p) if p <= n => {}
                    Some(p) => {
                        return Err(format!(
                            "{PREVIOUS_FILE_NAME} is version {p}, newer than the checkpoint's {n}"
                        ))
                    }
                    None => {
                        return Err(format!(
                            "{PREVIOUS_FILE_NAME} is not a saved version (half written)"
                        ))
                    }
                }
            }
            let outcome = if n == returned {
                Outcome::LastReturned
            } else {
                Outcome::InProgress
            };
            return Ok((outcome, Some(n)));
        }
        Err(e) => e,
    };
    // The documented ways out of a checkpoint that does not load.
    let message = error.to_string();
    let restored = match &error {
        StateError::Empty { .. } | StateError::Corrupt { .. } | StateError::Invalid { .. } => {
            if !message.contains(RESTORE_HINT) {
                return Err(format!(
                    "{message} (does not say how to restore {PREVIOUS_FILE_NAME})"
                ));
            }
            fs::copy(&previous, &current).map(drop)
        }
        StateError::MissingWithPrevious { .. } => fs::rename(&previous, &current),
        _ => return Err(format!("unexpected error: {message}")),
    };
    restored.map_err(|e| format!("{message}; and {PREVIOUS_FILE_NAME} cannot be restored: {e}"))?;
    match Checkpoint::load(dir) {
        Ok(Some(c)) => match which(&c) {
            Some(n) if allowed(n) => Ok((Outcome::ViaPrevious, Some(n))),
            Some(n) => Err(format!(
                "{message}; and {PREVIOUS_FILE_NAME} is version {n}, though save {returned} returned"
            )),
            None => Err(format!("{message}; and {PREVIOUS_FILE_NAME} is not a saved version")),
        },
        Ok(None) => Err(format!("{message}; and then no checkpoint at all")),
        Err(e) => Err(format!("{message}; and {PREVIOUS_FILE_NAME} does not load either: {e}")),
    }
}

/// Prints a line on the test's standard error even when libtest captures
/// the test's output, so the figures show in every run.
fn show(line: &str) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

#[test]
fn every_power_loss_during_saves_leaves_a_complete_checkpoint_no_older_than_the_last_returned_save()
{
    let f = explore(Omit::Nothing, SAVES, true);
    show(&format!("power loss (simulated fs model): {}", f.summary()));
    assert!(
        f.bad.is_empty(),
        "{} of {} crash states are bad, e.g.:\n{}",
        f.bad.len(),
        f.states,
        f.bad[..f.bad.len().min(5)].join("\n")
    );
    assert_eq!(
        f.count(Outcome::ViaPrevious),
        0,
        "a crash state needed the operator's restore: {}",
        f.summary()
    );
    // The exploration reached what it is meant to: states from before the
    // first save, from a durable save in progress, and many of them.
    assert!(
        f.count(Outcome::FirstStart) > 0 && f.count(Outcome::InProgress) > 0,
        "{}",
        f.summary()
    );
    assert!(
        f.points as u64 >= 9 * SAVES && f.states > f.points,
        "{}",
        f.summary()
    );
    if let Some(p) = std::env::var_os("LOGDAEMON_TORTURE_REPORT") {
        let line = format!(
            "10b|power loss during checkpoint writes (simulated fs model)|-|-|0|0|{} crash states over {} saves; \
             each loaded a complete checkpoint, never older than the last save that returned\n",
            f.states, f.saves
        );
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .expect("open LOGDAEMON_TORTURE_REPORT");
        file.write_all(line.as_bytes())
            .expect("append to LOGDAEMON_TORTURE_REPORT");
    }
}

#[test]
fn a_save_whose_file_fsync_does_nothing_is_caught() {
    let f = explore(Omit::FileSync, SAVES_ON_A_FAULTY_DISK, false);
    show(&format!("power loss, file fsync ignored: {}", f.summary()));
    // The rename survives, the data does not: an empty or partial
    // checkpoint after the save returned, with no good save to go back to.
    assert!(
        f.bad.iter().any(|b| b.contains("the checkpoint is empty")),
        "the model missed the zero-length file: {}",
        f.summary()
    );
}

#[test]
fn a_save_whose_directory_fsync_does_nothing_is_caught() {
    let f = explore(Omit::DirSync, SAVES_ON_A_FAULTY_DISK, false);
    show(&format!(
        "power loss, directory fsync ignored: {}",
        f.summary()
    ));
    // The rename is undone after the save returned: an older checkpoint.
    assert!(
        f.bad
            .iter()
            .any(|b| b.contains("no checkpoint, though save 1 returned")),
        "the model missed the lost first save: {}",
        f.summary()
    );
    assert!(
        f.bad.iter().any(|b| b.contains(&format!(
            "loaded version {}, though save {} returned",
            SAVES_ON_A_FAULTY_DISK - 1,
            SAVES_ON_A_FAULTY_DISK
        ))),
        "the model missed the undone rename: {}",
        f.summary()
    );
}

/// Whether every state a power loss right after creating the directory
/// `state` in the simulated one may leave still has it.
fn state_dir_survives(omit: Omit) -> bool {
    let parent = Path::new(ROOT).parent().unwrap();
    let sim = SimFs::new(parent, omit, &Disk::new());
    create_dirs(&sim, Path::new(ROOT)).unwrap();
    let name = Path::new(ROOT).file_name().unwrap().to_str().unwrap();
    let points = sim.crash_points();
    let states = points.last().unwrap().crash_states();
    assert!(!states.is_empty());
    states.iter().all(|disk| {
        disk.iter()
            .any(|(names, _)| names.iter().any(|n| n == name))
    })
}

#[test]
fn a_new_state_directory_survives_a_power_loss() {
    assert!(
        state_dir_survives(Omit::Nothing),
        "a power loss may take the new state directory away"
    );
    assert!(
        !state_dir_survives(Omit::DirSync),
        "the model missed a state directory whose parent was not fsynced"
    );
}
