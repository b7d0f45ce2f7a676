//! Scenario 10: kill -9 while a writer thread appends and the journal is
//! renamed, one kill in four aimed at a checkpoint save; after every
//! restart the output is the start of the ledger, at the end all of it.

use std::fs;

use crate::fixture::Fixture;
use crate::rotation::harness::{config, live, wait_output, Daemon};
use crate::torture::tally::Tally;
use crate::writer::{Kind, Writer};

/// The temporary checkpoint files in the state directory: one exists from
/// its creation to its rename, during each save.
fn temps(f: &Fixture) -> Vec<std::ffi::OsString> {
    let Ok(d) = fs::read_dir(f.join("state")) else {
        return Vec::new();
    };
    d.flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("checkpoint.toml.tmp."))
        .collect()
}

/// The checkpoint's inode: a new one at every save (the rename).
fn checkpoint_inode(f: &Fixture) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(f.join("state/checkpoint.toml"))
        .ok()
        .map(|m| m.ino())
}

/// How a kill is aimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aim {
    /// As soon as a temporary checkpoint file is seen.
    DuringSave,
    /// A random number of microseconds (0..2000) after a save's rename.
    AfterSave,
    /// After a random short life (2..100 ms).
    Anywhere,
}

/// Waits (up to 3 s) for `cond`, polling as fast as the machine allows:
/// the temporary file lives only as long as a write and an fsync.
fn poll_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

#[test]
fn s10_kill_9_aimed_at_checkpoint_saves() {
    use crate::rotation::p4_rename;
    use crate::writer::Pump;
    use std::time::Duration;

    let kills: u64 = super::tally::scale(30, 200);
    let seed = match std::env::var("LOGDAEMON_CHAOS_SEED") {
        Ok(s) => s.parse().expect("LOGDAEMON_CHAOS_SEED must be a number"),
        Err(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        }
    };
    eprintln!("s10 seed {seed} (replay with LOGDAEMON_CHAOS_SEED={seed})");
    let mut state = seed;
    let mut draw = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let f = Fixture::new();
    let mut w = Writer::new(&f.join(live(Kind::P4)), Kind::P4);
    w.write(20);
    f.write("cfg.toml", config(Kind::P4, "", "fsync = false"));
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, Duration::from_micros(300));
    let (mut rotations, mut mid_save, mut aimed) = (0u64, 0u64, [0u64; 3]);
    for k in 0..kills {
        if draw(3) == 0 {
            rotations += 1;
            p4_rename(&f, &mut pump.lock(), rotations);
        }
        let left_before = temps(&f);
        // One kill in four aimed at a save (each waits for the next one,
        // a second apart), the others anywhere.
        let aim = match (k % 4, draw(2)) {
            (0, 0) => Aim::DuringSave,
            (0, _) => Aim::AfterSave,
            _ => Aim::Anywhere,
        };
        match aim {
            Aim::DuringSave => {
                poll_until(|| temps(&f).iter().any(|t| !left_before.contains(t)));
            }
            Aim::AfterSave => {
                let before = checkpoint_inode(&f);
                if poll_until(|| checkpoint_inode(&f) != before) {
                    let until = std::time::Instant::now() + Duration::from_micros(draw(2000));
                    while std::time::Instant::now() < until {
                        std::hint::spin_loop();
                    }
                }
            }
            Aim::Anywhere => std::thread::sleep(Duration::from_millis(2 + draw(98))),
        }
        d.kill();
        aimed[aim as usize] += 1;
        if temps(&f).iter().any(|t| !left_before.contains(t)) {
            mid_save += 1;
        }
        d = Daemon::start(&f);
        // Whatever was delivered so far is exactly the start of the ledger.
        let out = fs::read(f.join(crate::rotation::harness::OUT)).unwrap_or_default();
        let expected = pump.lock().expected();
        assert!(
            out.len() <= expected.len() && out[..] == expected[..out.len()],
            "s10 seed {seed}: after kill {} ({aim:?}) the output is not the start of the ledger\n{}",
            k + 1,
            crate::rotation::harness::diff(&out, &expected)
        );
    }
    pump.wait_more(50);
    let w = pump.stop();
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        &format!("s10 seed {seed}: {kills} kills, {rotations} renames"),
    );
    d.term();
    let t = Tally::count(
        &w,
        &fs::read(f.join(crate::rotation::harness::OUT)).unwrap(),
        0,
    );
    t.assert_exact(&format!("s10 seed {seed}"));
    t.report(
        "10",
        "kill -9 aimed at checkpoint saves, with renames",
        &format!(
            "{kills} kills ({} at a temp file seen, {} µs after a save, {} anywhere); {mid_save} left a temporary checkpoint (killed mid-save); {rotations} renames",
            aimed[0], aimed[1], aimed[2]
        ),
    );
}
