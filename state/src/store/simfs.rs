//! A model of one directory on a disk that can lose power at any moment,
//! implementing [`Fs`] so that the real save runs against it.
//!
//! Every call is applied to a volatile view (what the running process sees)
//! and remembered as not yet durable. The model is crash-consistent but
//! unordered: it keeps no more than fsync promises, as a file system that
//! reorders writes freely (ext4 with `data=writeback`, for one) may:
//!
//! - A file's contents are durable only once it is fsynced. Before that, a
//!   crash leaves the last durable contents, all that was written since, or
//!   anything in between: a prefix, or the full length with the unwritten
//!   part as NUL bytes (size updated, data blocks lost).
//! - A name created, linked, renamed or removed is durable only once the
//!   directory is fsynced. Before that, a crash keeps or undoes each such
//!   change independently, except that a change is kept only if every
//!   earlier pending change to a name it touches is kept too (a rename of a
//!   file whose creation was undone cannot survive).
//! - Names and contents are independent: a rename can survive the crash while
//!   the renamed file's unsynced data does not (the zero-length-file bug).
//!
//! [`SimFs::crash_points`] holds a snapshot after every call; each snapshot
//! enumerates the disks a power loss at that moment may leave.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use super::disk::Fs;

/// A file's contents: what is durable, and what the process sees.
#[derive(Clone, Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    current: Vec<u8>,
}

/// One not-yet-durable directory change, applied atomically if kept.
#[derive(Clone, Debug)]
struct DirChange {
    /// New bindings: a name to an inode, or `None` to remove the name.
    sets: Vec<(String, Option<usize>)>,
    /// Every name the call read or wrote: a change depends on the earlier
    /// pending changes that share one of them.
    touches: Vec<String>,
}

/// Which durability call the simulated disk ignores, to show that the test
/// notices a save that forgets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Omit {
    Nothing,
    /// `fsync` of files does nothing.
    FileSync,
    /// `fsync` of the directory does nothing.
    DirSync,
}

/// The disk as it would be found after a crash: each surviving file as its
/// names (hard links) and contents, sorted.
pub(crate) type Disk = BTreeSet<(Vec<String>, Vec<u8>)>;

/// The model's whole state at one moment.
#[derive(Clone, Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    /// Names as the last directory fsync left them.
    durable: BTreeMap<String, usize>,
    /// Names as the process sees them.
    names: BTreeMap<String, usize>,
    /// Changes since the last directory fsync, oldest first.
    pending: Vec<DirChange>,
}

/// A moment a crash may come, with what the test expects of it.
#[derive(Clone, Debug)]
pub(crate) struct CrashPoint {
    /// The call just made ("start" before the first).
    pub(crate) after: String,
    /// The last save that returned Ok (0: none yet).
    pub(crate) returned: u64,
    /// The save in progress, or `returned` between saves.
    pub(crate) started: u64,
    state: State,
}

/// The simulated directory `root`, with its crash points.
pub(crate) struct SimFs {
    root: PathBuf,
    omit: Omit,
    inner: RefCell<Inner>,
}

struct Inner {
    state: State,
    returned: u64,
    started: u64,
    points: Vec<CrashPoint>,
}

/// Most pending directory changes a crash point may have: the enumeration
/// is exponential in them.
const MAX_PENDING: usize = 12;

impl SimFs {
    /// The directory `root` holding `files`, every name and byte durable.
    pub(crate) fn new(root: &Path, omit: Omit, files: &Disk) -> SimFs {
        let mut state = State::default();
        for (names, bytes) in files {
            state.inodes.push(Inode {
                durable: bytes.clone(),
                current: bytes.clone(),
            });
            for name in names {
                state.names.insert(name.clone(), state.inodes.len() - 1);
            }
        }
        state.durable = state.names.clone();
        let fs = SimFs {
            root: root.into(),
            omit,
            inner: RefCell::new(Inner {
                state,
                returned: 0,
                started: 0,
                points: Vec::new(),
            }),
        };
        fs.record("start".into());
        fs
    }

    /// The files it was made with are save number `n`, returned long ago.
    pub(crate) fn saved_before(self, n: u64) -> SimFs {
        {
            let mut inner = self.inner.borrow_mut();
            inner.returned = n;
            inner.started = n;
            for p in &mut inner.points {
                (p.returned, p.started) = (n, n);
            }
        }
        self
    }

    /// Save number `n` begins.
    pub(crate) fn save_started(&self, n: u64) {
        self.inner.borrow_mut().started = n;
    }

    /// Save number `n` returned Ok: from now on no crash may lose it.
    pub(crate) fn save_returned(&self, n: u64) {
        let mut inner = self.inner.borrow_mut();
        inner.returned = n;
        inner.started = n;
        drop(inner);
        self.record(format!("save {n} returned"));
    }

    /// The snapshots taken so far: at the start, after every call and after
    /// every save that returned.
    pub(crate) fn crash_points(&self) -> Vec<CrashPoint> {
        self.inner.borrow().points.clone()
    }

    fn record(&self, after: String) {
        let mut inner = self.inner.borrow_mut();
        let point = CrashPoint {
            after,
            returned: inner.returned,
            started: inner.started,
            state: inner.state.clone(),
        };
        inner.points.push(point);
    }

    /// The name of `path` in the simulated directory.
    fn name(&self, path: &Path) -> io::Result<String> {
        match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
            (Some(dir), Some(name)) if dir == self.root => Ok(name.into()),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not in the simulated directory", path.display()),
            )),
        }
    }

    fn dir(&self, path: &Path) -> io::Result<()> {
        if path == self.root {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not the simulated directory", path.display()),
            ))
        }
    }

    /// Runs one call against the state and records the crash point after it.
    fn call<T>(&self, what: String, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let result = f(&mut self.inner.borrow_mut().state);
        let outcome = match &result {
            Ok(_) => String::new(),
            Err(e) => format!(" (failed: {e})"),
        };
        self.record(format!("{what}{outcome}"));
        result
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file"))
}

fn exists(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::AlreadyExists, format!("{name}: file exists"))
}

impl State {
    fn change(&mut self, sets: Vec<(String, Option<usize>)>, touches: Vec<String>) {
        for (name, ino) in &sets {
            match ino {
                Some(i) => self.names.insert(name.clone(), *i),
                None => self.names.remove(name),
            };
        }
        self.pending.push(DirChange { sets, touches });
    }

    fn lookup(&self, name: &str) -> io::Result<usize> {
        self.names.get(name).copied().ok_or_else(|| not_found(name))
    }
}

impl Fs for SimFs {
    type File = usize;

    fn create_new(&self, path: &Path) -> io::Result<usize> {
        let name = self.name(path)?;
        self.call(format!("create {name}"), |s| {
            if s.names.contains_key(&name) {
                return Err(exists(&name));
            }
            s.inodes.push(Inode::default());
            let ino = s.inodes.len() - 1;
            s.change(vec![(name.clone(), Some(ino))], vec![name.clone()]);
            Ok(ino)
        })
    }

    fn write_all(&self, file: &mut usize, bytes: &[u8]) -> io::Result<()> {
        let ino = *file;
        self.call(format!("write {} bytes", bytes.len()), |s| {
            s.inodes[ino].current.extend_from_slice(bytes);
            Ok(())
        })
    }

    fn sync_file(&self, file: &mut usize) -> io::Result<()> {
        let ino = *file;
        let omit = self.omit == Omit::FileSync;
        self.call("fsync the file".into(), |s| {
            if !omit {
                s.inodes[ino].durable = s.inodes[ino].current.clone();
            }
            Ok(())
        })
    }

    fn hard_link(&self, original: &Path, link: &Path) -> io::Result<()> {
        let (from, to) = (self.name(original)?, self.name(link)?);
        self.call(format!("link {from} {to}"), |s| {
            let ino = s.lookup(&from)?;
            if s.names.contains_key(&to) {
                return Err(exists(&to));
            }
            s.change(
                vec![(to.clone(), Some(ino))],
                vec![from.clone(), to.clone()],
            );
            Ok(())
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (self.name(from)?, self.name(to)?);
        self.call(format!("rename {from} {to}"), |s| {
            let ino = s.lookup(&from)?;
            if s.names.get(&to) == Some(&ino) {
                return Ok(()); // both names are the same file: rename(2) does nothing
            }
            s.change(
                vec![(from.clone(), None), (to.clone(), Some(ino))],
                vec![from.clone(), to.clone()],
            );
            Ok(())
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let name = self.name(path)?;
        self.call(format!("remove {name}"), |s| {
            s.lookup(&name)?;
            s.change(vec![(name.clone(), None)], vec![name.clone()]);
            Ok(())
        })
    }

    /// A directory inside the simulated one: only its name is modelled.
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let name = self.name(path)?;
        self.call(format!("mkdir {name}"), |s| {
            if s.names.contains_key(&name) {
                return Err(exists(&name));
            }
            s.inodes.push(Inode::default());
            let ino = s.inodes.len() - 1;
            s.change(vec![(name.clone(), Some(ino))], vec![name.clone()]);
            Ok(())
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.dir(dir)?;
        let omit = self.omit == Omit::DirSync;
        self.call("fsync the directory".into(), |s| {
            if !omit {
                s.durable = s.names.clone();
                s.pending.clear();
            }
            Ok(())
        })
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        self.dir(dir)?;
        self.call("list the directory".into(), |s| {
            Ok(s.names.keys().map(OsString::from).collect())
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let name = self.name(path)?;
        self.call(format!("read {name}"), |s| {
            Ok(s.inodes[s.lookup(&name)?].current.clone())
        })
    }
}

impl CrashPoint {
    /// Every disk a power loss at this moment may leave, each once.
    pub(crate) fn crash_states(&self) -> BTreeSet<Disk> {
        let s = &self.state;
        let n = s.pending.len();
        assert!(
            n <= MAX_PENDING,
            "{n} directory changes pending after {}: too many to enumerate",
            self.after
        );
        // deps[j]: the earlier pending changes that change j relies on.
        let deps: Vec<u32> = (0..n)
            .map(|j| {
                (0..j)
                    .filter(|&i| {
                        s.pending[i]
                            .touches
                            .iter()
                            .any(|t| s.pending[j].touches.contains(t))
                    })
                    .fold(0, |m, i| m | 1 << i)
            })
            .collect();
        let mut disks = BTreeSet::new();
        for kept in 0u32..1 << n {
            if (0..n).any(|j| kept & 1 << j != 0 && deps[j] & !kept != 0) {
                continue; // keeps a change without one it relies on
            }
            let mut names = s.durable.clone();
            for (j, change) in s.pending.iter().enumerate() {
                if kept & 1 << j != 0 {
                    for (name, ino) in &change.sets {
                        match ino {
                            Some(i) => names.insert(name.clone(), *i),
                            None => names.remove(name),
                        };
                    }
                }
            }
            disks.extend(s.contents_after_crash(&names));
        }
        disks
    }
}

impl State {
    /// The disks `names` may come with: every combination of what each of
    /// the files they name may hold after the crash.
    fn contents_after_crash(&self, names: &BTreeMap<String, usize>) -> Vec<Disk> {
        let mut files: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (name, &ino) in names {
            files.entry(ino).or_default().push(name.clone());
        }
        let mut disks = vec![Disk::new()];
        for (ino, names) in files {
            let choices = self.inodes[ino].after_crash();
            let mut next = Vec::with_capacity(disks.len() * choices.len());
            for disk in &disks {
                for bytes in &choices {
                    let mut d = disk.clone();
                    d.insert((names.clone(), bytes.clone()));
                    next.push(d);
                }
            }
            disks = next;
        }
        disks
    }
}

impl Inode {
    /// What the file may hold after a crash: the durable contents, all that
    /// was written, prefixes in between (cut at the first byte, the middle
    /// and the last byte), and the full length with the unwritten part
    /// as NUL bytes.
    fn after_crash(&self) -> BTreeSet<Vec<u8>> {
        let (d, c) = (&self.durable, &self.current);
        if d == c {
            return [c.clone()].into();
        }
        if !c.starts_with(d) {
            return [d.clone(), c.clone()].into();
        }
        let (lo, hi) = (d.len(), c.len());
        let mut choices: BTreeSet<Vec<u8>> = [lo, lo + 1, (lo + hi) / 2, hi - 1, hi]
            .into_iter()
            .filter(|&k| (lo..=hi).contains(&k))
            .map(|k| c[..k].to_vec())
            .collect();
        let mut zeros = d.clone();
        zeros.resize(hi, 0);
        choices.insert(zeros);
        choices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/simulated/dir";

    fn path(name: &str) -> PathBuf {
        Path::new(ROOT).join(name)
    }

    /// The names each crash state of the last point holds, with their sizes.
    fn last_states(fs: &SimFs) -> BTreeSet<Vec<(String, usize)>> {
        let points = fs.crash_points();
        points
            .last()
            .unwrap()
            .crash_states()
            .into_iter()
            .map(|disk| {
                disk.into_iter()
                    .flat_map(|(names, bytes)| names.into_iter().map(move |n| (n, bytes.len())))
                    .collect()
            })
            .collect()
    }

    /// Creates `name` holding `bytes`, optionally fsynced.
    fn create(fs: &SimFs, name: &str, bytes: &[u8], sync: bool) {
        let mut f = fs.create_new(&path(name)).unwrap();
        fs.write_all(&mut f, bytes).unwrap();
        if sync {
            fs.sync_file(&mut f).unwrap();
        }
    }

    #[test]
    fn a_rename_may_outlive_the_unsynced_data_but_not_the_creation() {
        let fs = SimFs::new(Path::new(ROOT), Omit::Nothing, &Disk::new());
        create(&fs, "tmp", b"0123456789", false);
        fs.rename(&path("tmp"), &path("cur")).unwrap();
        let states = last_states(&fs);
        // Nothing, the new file under its first name, or under its second:
        // never both names, and its contents anything from empty to whole.
        assert!(states.contains(&vec![]), "{states:?}");
        assert!(states.contains(&vec![("cur".into(), 0)]), "{states:?}");
        assert!(states.contains(&vec![("cur".into(), 10)]), "{states:?}");
        assert!(states.contains(&vec![("tmp".into(), 5)]), "{states:?}");
        assert!(states.iter().all(|s| s.len() <= 1), "{states:?}");

        fs.sync_dir(Path::new(ROOT)).unwrap();
        assert!(last_states(&fs).contains(&vec![("cur".into(), 0)]));
    }

    #[test]
    fn only_synced_data_and_synced_names_are_certain() {
        let fs = SimFs::new(Path::new(ROOT), Omit::Nothing, &Disk::new());
        create(&fs, "tmp", b"0123456789", true);
        fs.rename(&path("tmp"), &path("cur")).unwrap();
        assert_eq!(
            last_states(&fs),
            [vec![], vec![("cur".into(), 10)], vec![("tmp".into(), 10)]].into()
        );
        fs.sync_dir(Path::new(ROOT)).unwrap();
        assert_eq!(last_states(&fs), [vec![("cur".into(), 10)]].into());
    }

    #[test]
    fn changes_to_unrelated_names_survive_independently() {
        let files = [
            (vec!["a".into()], b"a".to_vec()),
            (vec!["b".into()], b"b".to_vec()),
        ];
        let fs = SimFs::new(Path::new(ROOT), Omit::Nothing, &files.into());
        fs.remove_file(&path("a")).unwrap();
        fs.remove_file(&path("b")).unwrap();
        // Either removal may be the one that survives.
        assert_eq!(
            last_states(&fs),
            [
                vec![],
                vec![("a".into(), 1)],
                vec![("b".into(), 1)],
                vec![("a".into(), 1), ("b".into(), 1)]
            ]
            .into()
        );
    }

    #[test]
    fn renaming_a_file_onto_another_name_of_itself_does_nothing() {
        let files = [(vec!["cur".into(), "prev".into()], b"x".to_vec())];
        let fs = SimFs::new(Path::new(ROOT), Omit::Nothing, &files.into());
        fs.rename(&path("prev"), &path("cur")).unwrap();
        assert_eq!(
            fs.list_dir(Path::new(ROOT)).unwrap(),
            [OsString::from("cur"), OsString::from("prev")]
        );
        assert_eq!(
            last_states(&fs),
            [vec![("cur".into(), 1), ("prev".into(), 1)]].into()
        );
    }

    #[test]
    fn an_ignored_fsync_leaves_everything_uncertain() {
        let fs = SimFs::new(Path::new(ROOT), Omit::FileSync, &Disk::new());
        create(&fs, "f", b"0123", true);
        fs.sync_dir(Path::new(ROOT)).unwrap();
        assert!(last_states(&fs).contains(&vec![("f".into(), 0)]));

        let fs = SimFs::new(Path::new(ROOT), Omit::DirSync, &Disk::new());
        create(&fs, "f", b"0123", true);
        fs.sync_dir(Path::new(ROOT)).unwrap();
        assert!(last_states(&fs).contains(&vec![]));
    }
}
