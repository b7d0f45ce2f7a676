//! Scenario 19: a glob journal (`path = "logs/*"`) under load: several
//! writer threads append without pause while files are created, rotated
//! by the real `logrotate` (`create`, `compress`, `delaycompress`) and
//! deleted (job logs, never rotated) while the daemon has them open, with
//! the daemon killed and restarted once in the middle. Each file is a stream with its own raw
//! `file` output (`out/{file}.raw`), counted against that file's writer:
//! every record once, in order, and no rotated name taken for a new file.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::tally::{scale, Tally};
use crate::fixture::Fixture;
use crate::glob::rotation::logrotate;
use crate::glob_edges::wait_held_open;
use crate::rotation::harness::{diff, Daemon};
use crate::writer::{Kind, Pump, Writer};

/// Time between two records of each writer thread.
const PACE: Duration = Duration::from_micros(400);

fn config() -> String {
    r#"state_dir = "state"

[[journal]]
name = "app"
path = "logs/*"
format = "lines"
quiet_after = "200ms"
reconcile_every = "200ms"

[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "out/{file}.raw"
format = "raw"
fsync = false
"#
    .to_string()
}

/// Waits (up to 30 s) until `out` is as long as `expected`.
fn wait_file(d: &mut Daemon, out: &Path, expected: &[u8], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::metadata(out).map_or(0, |m| m.len()) < expected.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "{what}: the output stayed short for 30 s\n{}\ndaemon log:\n{}",
            diff(&fs::read(out).unwrap_or_default(), expected),
            d.log_tail()
        );
        d.assert_running();
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn s19a_glob_journal_files_created_rotated_and_deleted_under_load() {
    let f = Fixture::new();
    let pump = |name: &str| {
        Pump::start(
            Writer::new(&f.join(format!("logs/{name}")), Kind::Lines),
            PACE,
        )
    };
    let mut live = vec![pump("a.log"), pump("b.log")];
    f.write("cfg.toml", config());
    let mut d = Daemon::start(&f);
    let mut finished: Vec<Writer> = Vec::new();
    let (mut rotations, mut deleted) = (0, 0);
    let rounds = scale(4, 12);
    for round in 0..rounds {
        let job = pump(&format!("job-{round}.tmp"));
        live.push(pump(&format!("new-{round}.log")));
        for p in &live {
            p.wait_more(scale(150, 1500));
        }
        {
            let mut held: Vec<_> = live.iter().map(|p| p.lock()).collect();
            logrotate(&f, "create\n    compress\n    delaycompress");
            rotations += 1;
            for w in &mut held {
                w.reopen();
            }
        }
        if round == rounds / 2 {
            // Killed, and started again while every file grows. A file
            // deleted while no daemon holds it open is in no file any
            // more: the job's log is deleted once the daemon has it open.
            d.kill();
            for p in &live {
                p.wait_more(50);
            }
            d = Daemon::start(&f);
            let (path, seen) = {
                let w = job.lock();
                (w.path().to_path_buf(), w.expected())
            };
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let out = f.join(format!("out/{name}.raw"));
            wait_file(&mut d, &out, &seen, "19a: the job log after the restart");
        }
        job.wait_more(scale(100, 1000));
        // Deleted once the daemon holds it open, read or not
        // (docs/following.md: what is promised of a deleted file).
        let path = job.lock().path().to_path_buf();
        wait_held_open(&mut d, &path);
        let w = job.stop();
        fs::remove_file(w.path()).unwrap();
        deleted += 1;
        finished.push(w);
    }
    for p in &live {
        p.wait_more(100);
    }
    finished.extend(live.into_iter().map(Pump::stop));
    let mut total = Tally::default();
    for w in &finished {
        let name = w.path().file_name().unwrap().to_string_lossy().into_owned();
        let out = f.join(format!("out/{name}.raw"));
        wait_file(&mut d, &out, &w.expected(), &format!("19a: {name}"));
        let t = Tally::count(w, &fs::read(&out).unwrap(), 0);
        t.assert_exact(&format!("19a: {name}"));
        total.written += t.written;
        total.delivered += t.delivered;
        total.duplicated += t.duplicated;
        total.out_of_order += t.out_of_order;
        total.foreign_bytes += t.foreign_bytes;
        total.silently_lost += t.silently_lost;
    }
    d.term();
    let outputs = fs::read_dir(f.join("out"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".raw")
        })
        .count();
    assert_eq!(
        outputs,
        finished.len(),
        "one output per file, none for a rotated name"
    );
    total.assert_exact("19a");
    total.report(
        "19a",
        "glob journal: files created, rotated (logrotate create, delaycompress) and deleted under load, killed once",
        &format!(
            "{} files ({} deleted job logs); {rotations} rotations of every *.log; no stream for a rotated name",
            finished.len(),
            deleted
        ),
    );
}
