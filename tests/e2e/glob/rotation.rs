//! The glob's files rotated: the real `logrotate` (`create`,
//! `copytruncate`), files created, rotated and deleted under load, and a
//! file rotated before the daemon saw it.

use std::fs::{self};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{checkpoint_show, config, outputs, set, wait_copy, Log};
use crate::fixture::Fixture;
use crate::glob_edges::wait_held_open;
use crate::rotation::harness::Daemon;

/// logrotate's `create` rotation: rename, re-create, compress the one
/// before (`delaycompress`).
const CREATE: &str = "create\n    compress\n    delaycompress";
/// logrotate's `copytruncate` rotation, compressed.
const COPYTRUNCATE: &str = "copytruncate\n    compress";

/// The real logrotate on every `*.log` file of the glob's directory
/// (`logs/`), with `directives`.
pub(crate) fn logrotate(f: &Fixture, directives: &str) {
    let conf = f.write(
        "logrotate.conf",
        format!(
            "{}/*.log {{\n    rotate 1000\n    missingok\n    {directives}\n}}\n",
            f.join("logs").display()
        ),
    );
    let out = Command::new("/usr/sbin/logrotate")
        .arg("-f")
        .arg("-s")
        .arg(f.join("logrotate.state"))
        .arg(&conf)
        .output()
        .expect("run /usr/sbin/logrotate");
    assert!(
        out.status.success(),
        "logrotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn logrotate_create_on_a_glob_journals_files_loses_repeats_and_adds_nothing() {
    rotations(CREATE, true);
}

#[test]
fn logrotate_copytruncate_on_a_glob_journals_files_loses_repeats_and_adds_nothing() {
    rotations(COPYTRUNCATE, false);
}

/// Writes to two logs of a `logs/*` glob and rotates them four times with
/// logrotate and `directives` while the daemon runs (with `create` the
/// application reopens its log after each, and the rotations come faster
/// than the daemon looks; a copy-truncate is made once the daemon has
/// read what was written, as hours apart); each copy must be exact and no
/// rotated name may become a stream.
fn rotations(directives: &str, reopen: bool) {
    let f = Fixture::new();
    let mut logs = [
        Log::new(&f.join("logs/a.log")),
        Log::new(&f.join("logs/b.log")),
    ];
    f.write("cfg.toml", config(""));
    let mut d = Daemon::start(&f);
    for round in 0..4 {
        for l in &mut logs {
            l.write(40 + round * 5);
            if !reopen {
                wait_copy(&f, &mut d, l);
            }
        }
        logrotate(&f, directives);
        // Lines the application writes to its old descriptor before it
        // reopens: they are in the renamed file.
        for l in &mut logs {
            l.write(3);
            if reopen {
                l.reopen();
            }
        }
    }
    for l in &mut logs {
        l.write(20);
    }
    for l in &logs {
        wait_copy(&f, &mut d, l);
    }
    let names: Vec<String> = fs::read_dir(f.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "a.log.2.gz"), "{names:?}");
    assert_eq!(
        outputs(&f),
        set(&["a.log.raw", "b.log.raw"]),
        "rotated names ({names:?}) are not new streams"
    );
    d.term();
}

/// A log written by its own thread, one line at a time, until stopped.
struct Busy {
    log: std::sync::Arc<std::sync::Mutex<Log>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Busy {
    fn start(path: &Path) -> Busy {
        use std::sync::atomic::Ordering;
        let log = std::sync::Arc::new(std::sync::Mutex::new(Log::new(path)));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                l.lock().unwrap().write(1);
                std::thread::sleep(Duration::from_micros(300));
            }
        });
        Busy {
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until `n` more lines were written.
    fn wait_more(&self, n: u64) {
        let want = self.log.lock().unwrap().count + n;
        while self.log.lock().unwrap().count < want {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn stop(self) -> Log {
        let Busy { log, stop, thread } = self;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        thread.unwrap().join().unwrap();
        std::sync::Arc::try_unwrap(log)
            .ok()
            .expect("one owner")
            .into_inner()
            .unwrap()
    }
}

#[test]
fn files_created_rotated_and_deleted_under_load_deliver_every_line_once() {
    let f = Fixture::new();
    let mut busy = vec![
        Busy::start(&f.join("logs/a.log")),
        Busy::start(&f.join("logs/b.log")),
    ];
    f.write("cfg.toml", config(""));
    let mut d = Daemon::start(&f);
    let mut done: Vec<Log> = Vec::new();
    for round in 0..3 {
        // A job log appears, is written while the others are, and is
        // deleted once its job ends (it is never rotated: `*.tmp`).
        let job = Busy::start(&f.join(format!("logs/job-{round}.tmp")));
        busy.push(Busy::start(&f.join(format!("logs/new-{round}.log"))));
        for b in &busy {
            b.wait_more(100);
        }
        logrotate(&f, CREATE);
        for b in &busy {
            b.wait_more(5);
            b.log.lock().unwrap().reopen();
        }
        job.wait_more(50);
        // Deleted once the daemon holds it open, whether or not it read
        // any of it yet (docs/following.md: what is promised).
        wait_held_open(&mut d, &f.join(format!("logs/job-{round}.tmp")));
        let job = job.stop();
        fs::remove_file(&job.path).unwrap();
        done.push(job);
    }
    for b in &busy {
        b.wait_more(100);
    }
    done.extend(busy.into_iter().map(Busy::stop));
    for l in &done {
        wait_copy(&f, &mut d, l);
    }
    let mut want: Vec<String> = done.iter().map(|l| format!("{}.raw", l.name())).collect();
    want.sort();
    assert_eq!(outputs(&f).into_iter().collect::<Vec<_>>(), want);
    d.term();
    let show = checkpoint_show(&f);
    assert!(
        !show.contains(".tmp"),
        "deleted job logs end their streams: {show}"
    );
}

#[test]
fn a_file_rotated_before_the_daemon_saw_it_is_read_whole() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    a.write(2);
    f.write("cfg.toml", config(""));
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &a);
    // Created, written and rotated while the daemon cannot look.
    d.freeze();
    let mut c = Log::new(&f.join("logs/c.log"));
    c.write(10);
    logrotate(&f, CREATE);
    c.write(2);
    c.reopen();
    c.write(5);
    d.thaw();
    wait_copy(&f, &mut d, &c);
    d.term();
    // And while it was stopped.
    let mut e = Log::new(&f.join("logs/e.log"));
    e.write(7);
    logrotate(&f, CREATE);
    e.reopen();
    e.write(3);
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &e);
    d.term();
}
