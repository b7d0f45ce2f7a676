//! Crash safety of `Checkpoint::save`, tested by killing a real writer.
//!
//! The test binary re-executes itself as a writer process (selected by the
//! `LOGDAEMON_STATE_WRITER` environment variable) that saves ever newer
//! checkpoints of about 100 KB as fast as it can, and kills it with SIGKILL
//! at random moments. After every kill the checkpoint must load, must be
//! exactly one of the versions the writer wrote, must never go back to an
//! older version, and — once a save has completed — must never be missing.
//! The random delay before each kill only chooses *where* the writer dies;
//! no assertion depends on timing. Set `LOGDAEMON_STATE_CRASH_SEED` to
//! replay a sequence of delays.
//!
//! Then the same with the daemon's [`Store`]: a checkpoint of many journals
//! in format version 1, which each writer opens, migrates or folds as the
//! daemon's start does, and saves one changed journal at a time into
//! `checkpoint.log`, folding it when it has grown. After every kill the
//! checkpoint (file and log together) must be exactly a version written,
//! never older, and once migrated never version 1 again.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logdaemon_state::{
    Checkpoint, Cursor, Hash, Identity, JournalState, Store, FILE_NAME, LOG_FILE_NAME,
    PREVIOUS_FILE_NAME,
};

const WRITER_ENV: &str = "LOGDAEMON_STATE_WRITER";
/// Selects the writer that saves through a [`Store`].
const STORE_WRITER_ENV: &str = "LOGDAEMON_STATE_STORE_WRITER";
/// Journals of the [`Store`] writer's checkpoint: past the 64 KiB from
/// which its saves go to the log.
const JOURNALS: u64 = 160;
/// The first version the writer saves: one past what is on disk.
const FIRST_ENV: &str = "LOGDAEMON_STATE_WRITER_FIRST";
const SEED_ENV: &str = "LOGDAEMON_STATE_CRASH_SEED";
/// Listeners per checkpoint: about 100 KB of TOML, so a save takes long
/// enough for kills to land in the middle of it.
const LISTENERS: u64 = 400;
const MAX_KILLS: usize = 400;
/// How long to keep killing once the test has exercised enough.
const TIME_BUDGET: Duration = Duration::from_secs(4);
/// How long to try, on a loaded machine, to exercise enough: at least
/// `MIN_KILLS` kills, `MIN_SAVES` completed saves, and one kill mid-save.
const HARD_LIMIT: Duration = Duration::from_secs(30);
const MIN_KILLS: usize = 20;
const MIN_SAVES: u64 = 10;

fn main() {
    if let Ok(dir) = std::env::var(WRITER_ENV) {
        let first = std::env::var(FIRST_ENV).unwrap().parse().unwrap();
        write_forever(Path::new(&dir), first);
    }
    if let Ok(dir) = std::env::var(STORE_WRITER_ENV) {
        store_write_forever(Path::new(&dir));
    }
    let seed = seed();
    kill_the_writer_at_random_moments(seed);
    kill_the_store_writer_at_random_moments(seed);
}

fn seed() -> u64 {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("crash test: seed {seed} (set {SEED_ENV} to replay)");
    seed
}

/// A xorshift generator of kill delays.
fn delays(mut rng: u64) -> impl FnMut() -> u64 {
    move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    }
}

/// Version `n` of the checkpoint: every value derives from `n`, so a loaded
/// checkpoint can be compared with what the writer wrote.
fn version(n: u64) -> Checkpoint {
    let identity = |offset: u64, salt: u64| Identity {
        path: format!("/p4/root/journal.{salt}"),
        dev: 2049,
        inode: 131_075 + salt,
        head_len: 4096,
        head_hash: Hash::of(&salt.to_le_bytes()),
        tail_len: offset.min(4096),
        tail_hash: Hash::of(&(n ^ salt).to_le_bytes()),
    };
    let reader_offset = n * 1000;
    let mut j = JournalState {
        reader: Cursor {
            sequence: n,
            offset: reader_offset,
            line: n * 10 + 1,
            identity: Some(identity(reader_offset, 0)),
        },
        ..Default::default()
    };
    for i in 0..LISTENERS {
        let offset = reader_offset.saturating_sub(i);
        let c = Cursor {
            sequence: n,
            offset,
            line: n * 10 + 1,
            identity: Some(identity(offset, i + 1)),
        };
        j.listeners.insert(format!("listener-{i:04}"), c);
    }
    Checkpoint {
        journals: [("p4".to_string(), j)].into(),
    }
}

/// The version number a loaded checkpoint claims to be.
fn number_of(c: &Checkpoint) -> u64 {
    c.journals["p4"].reader.sequence
}

/// The writer: saves versions `first`, `first + 1`, ... until killed.
fn write_forever(dir: &Path, first: u64) -> ! {
    for n in first.. {
        if let Err(e) = version(n).save(dir) {
            eprintln!("writer: {e}");
            std::process::exit(4)
        }
    }
    unreachable!("u64 versions exhausted")
}

fn temp_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("checkpoint.toml.tmp."))
        .collect()
}

fn kill_the_writer_at_random_moments(seed: u64) {
    let mut next = delays(seed);

    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let (mut last, mut kills, mut mid_save, mut first_save_at) = (0u64, 0usize, 0usize, None);
    let mut temps = BTreeSet::new();
    let mut stalled = 0u64; // kills in a row after which the version had not moved
    let enough = |kills: usize, last: u64, mid_save: usize| {
        kills >= MIN_KILLS && last >= MIN_SAVES && mid_save >= 1
    };
    while kills < MAX_KILLS
        && (started.elapsed() < TIME_BUDGET || !enough(kills, last, mid_save))
        && started.elapsed() < HARD_LIMIT
    {
        let mut child = Command::new(&exe)
            .env(WRITER_ENV, dir.path())
            .env(FIRST_ENV, (last + 1).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Where the writer dies: anywhere from before its first save to
        // several saves in. When the writer makes no progress (a slow,
        // loaded machine) it is given longer.
        std::thread::sleep(Duration::from_micros(next() % (30_000 + stalled * 20_000)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            status.code().is_none(),
            "the writer stopped by itself ({status}); see its message above"
        );
        kills += 1;

        let loaded =
            Checkpoint::load(dir.path()).unwrap_or_else(|e| panic!("after kill {kills}: {e}"));
        match loaded {
            None => assert_eq!(
                last, 0,
                "after kill {kills}: the checkpoint vanished after version {last} was saved"
            ),
            Some(c) => {
                let n = number_of(&c);
                assert!(c == version(n), "after kill {kills}: the checkpoint claims version {n} but is not what the writer wrote");
                assert!(
                    n >= last,
                    "after kill {kills}: the checkpoint went back from version {last} to {n}"
                );
                stalled = if n == last { stalled + 1 } else { 0 };
                last = n;
                first_save_at.get_or_insert(kills);
            }
        }
        // The previous save is the version before the current one, or the
        // current one when the kill came between keeping it and the rename.
        if dir.path().join(PREVIOUS_FILE_NAME).exists() {
            let prev = Checkpoint::load_file(&dir.path().join(PREVIOUS_FILE_NAME))
                .unwrap_or_else(|e| panic!("after kill {kills}: {e}"));
            let matches = |m: u64| m >= 1 && prev == version(m);
            assert!(
                matches(last) || matches(last.wrapping_sub(1)),
                "after kill {kills}: {PREVIOUS_FILE_NAME} is neither version {last} nor the one before"
            );
        }
        // A temporary file that was not there before: the writer died
        // between creating its new checkpoint and renaming it into place.
        let now = temp_files(dir.path());
        if now.difference(&temps).next().is_some() {
            mid_save += 1;
        }
        temps = now;
    }
    println!(
        "crash test: {kills} kills in {:?}, reached version {last}, first save survived kill {first_save_at:?}, \
         {mid_save} kills in the middle of a save",
        started.elapsed()
    );
    assert!(kills >= 20, "only {kills} kills in the time budget");
    assert!(
        last >= 10,
        "the writer completed only {last} saves; the kills did not exercise saving"
    );

    // Whatever the kills left behind, the next save cleans up.
    let c = Checkpoint::load(dir.path()).unwrap().unwrap();
    version(number_of(&c) + 1).save(dir.path()).unwrap();
    assert_eq!(
        temp_files(dir.path()),
        BTreeSet::new(),
        "temporary files survived a save"
    );
    assert_eq!(
        Checkpoint::load(dir.path()).unwrap(),
        Some(version(number_of(&c) + 1))
    );
    assert!(dir.path().join(FILE_NAME).exists());
    println!("crash test: ok");
}

/// Version `n` of the [`Store`] writer's checkpoint: save `n` moved journal
/// `n % JOURNALS` to position `n`; each journal is where the last save that
/// moved it left it (0 before any).
fn many(n: u64) -> Checkpoint {
    let mut cp = Checkpoint::default();
    for j in 0..JOURNALS {
        let k = (1..=n).rev().find(|k| k % JOURNALS == j).unwrap_or(0);
        let c = Cursor {
            sequence: k,
            offset: k * 100,
            line: k + 1,
            identity: Some(Identity {
                path: format!("/var/log/app/{j:03}.log"),
                dev: 2049,
                inode: 1000 + j,
                head_len: 100,
                head_hash: Hash::of(&j.to_le_bytes()),
                tail_len: 100.min(k * 100),
                tail_hash: Hash::of(&k.to_le_bytes()),
            }),
        };
        let mut js = JournalState {
            reader: c.clone(),
            ..Default::default()
        };
        js.listeners.insert("copy".into(), c);
        cp.journals.insert(format!("j{j:03}"), js);
    }
    cp
}

/// The version a loaded [`many`] checkpoint claims to be.
fn number_of_many(c: &Checkpoint) -> u64 {
    c.journals
        .values()
        .map(|j| j.reader.sequence)
        .max()
        .unwrap_or(0)
}

/// The [`Store`] writer: opens the checkpoint, migrates or folds it as the
/// daemon's start does, then saves the journal each version moves.
fn store_write_forever(dir: &Path) -> ! {
    let fail = |e: logdaemon_state::StateError| -> ! {
        eprintln!("store writer: {e}");
        std::process::exit(4)
    };
    let (mut store, loaded) = Store::open(dir).unwrap_or_else(|e| fail(e));
    let first = loaded.as_ref().map_or(0, number_of_many);
    store.compact(&many(first)).unwrap_or_else(|e| fail(e));
    for n in first + 1.. {
        let moved = format!("j{:03}", n % JOURNALS);
        store
            .save_changed(&many(n), [moved])
            .unwrap_or_else(|e| fail(e));
    }
    unreachable!("u64 versions exhausted")
}

fn is_version_1(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(FILE_NAME)).is_ok_and(|t| t.contains("\nversion = 1\n"))
}

fn kill_the_store_writer_at_random_moments(seed: u64) {
    let mut next = delays(seed ^ 0x5eed);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // As a logdaemon of format version 1 wrote it.
    let v1 = many(0)
        .to_toml()
        .replace("\nversion = 2\n", "\nversion = 1\n");
    std::fs::write(dir.path().join(FILE_NAME), v1).unwrap();
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let (mut last, mut kills, mut logged, mut in_version_1, mut stalled) = (0, 0, 0, 0, 0u64);
    let mut migrated = false;
    while kills < MAX_KILLS
        && (started.elapsed() < TIME_BUDGET || kills < MIN_KILLS || last < MIN_SAVES || logged == 0)
        && started.elapsed() < HARD_LIMIT
    {
        let mut child = Command::new(&exe)
            .env(STORE_WRITER_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(next() % (30_000 + stalled * 20_000)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            status.code().is_none(),
            "the store writer stopped by itself ({status}); see its message above"
        );
        kills += 1;
        let c = Checkpoint::load(dir.path())
            .unwrap_or_else(|e| panic!("after kill {kills}: {e}"))
            .unwrap_or_else(|| panic!("after kill {kills}: no checkpoint"));
        let n = number_of_many(&c);
        assert!(c == many(n), "after kill {kills}: the checkpoint claims version {n} but is not what the writer wrote");
        assert!(
            n >= last,
            "after kill {kills}: the checkpoint went back from version {last} to {n}"
        );
        stalled = if n == last { stalled + 1 } else { 0 };
        last = n;
        if is_version_1(dir.path()) {
            assert!(
                !migrated,
                "after kill {kills}: version 1 again after the migration"
            );
            in_version_1 += 1;
        } else {
            migrated = true;
        }
        if dir.path().join(LOG_FILE_NAME).exists() {
            logged += 1;
        }
        if let Ok(prev) = Checkpoint::load_file(&dir.path().join(PREVIOUS_FILE_NAME)) {
            let m = number_of_many(&prev);
            assert!(
                prev == many(m) && m <= n,
                "after kill {kills}: {PREVIOUS_FILE_NAME} is not an earlier version"
            );
        }
    }
    println!(
        "crash test, store: {kills} kills in {:?}, reached version {last}, {in_version_1} kills left \
         version 1 (before or during the migration), {logged} left a checkpoint.log",
        started.elapsed()
    );
    assert!(migrated, "the migration never completed");
    assert!(
        kills >= MIN_KILLS && last >= MIN_SAVES && logged > 0,
        "not exercised enough"
    );
    // The next start folds whatever the kills left.
    let (mut store, c) = Store::open(dir.path()).unwrap();
    store.compact(c.as_ref().unwrap()).unwrap();
    assert!(!dir.path().join(LOG_FILE_NAME).exists());
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), Some(many(last)));
    println!("crash test, store: ok");
}
