//! Glob journals end to end: `path = "logs/*"` with `exclude`, followed by
//! the real daemon while files are written, created, rotated by the real
//! `logrotate` and deleted. Each matching file is a stream with its own
//! `file` listener output (`out/{file}.raw`) that must equal what was
//! written to that file, every line once and in order.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fixture::{stderr, stdout, Fixture};
use crate::glob_edges::wait_held_open;
use crate::rotation::harness::{diff, Daemon};

/// A config following `logs/*` (less `skip*`) with a raw `file` listener
/// per stream; `journal_extra` goes into the `[[journal]]` table.
fn config(journal_extra: &str) -> String {
    format!(
        r#"state_dir = "state"

[[journal]]
name = "app"
path = "logs/*"
exclude = ["skip*"]
format = "lines"
quiet_after = "200ms"
reconcile_every = "200ms"
{journal_extra}

[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "out/{{file}}.raw"
format = "raw"
fsync = false
"#
    )
}

/// An application log: appends numbered lines naming their file, and keeps
/// a ledger of what it wrote.
struct Log {
    path: PathBuf,
    file: File,
    ledger: Vec<u8>,
    count: u64,
}

impl Log {
    fn new(path: &Path) -> Log {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        Log {
            path: path.to_path_buf(),
            file: open_append(path),
            ledger: Vec::new(),
            count: 0,
        }
    }

    fn name(&self) -> String {
        self.path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    fn write(&mut self, n: u64) {
        for _ in 0..n {
            let line = format!(
                "2026-12-07T10:00:00 {} line {:06} {}\n",
                self.name(),
                self.count,
                "z".repeat((self.count * 7 % 40) as usize)
            );
            self.file.write_all(line.as_bytes()).unwrap();
            self.ledger.extend_from_slice(line.as_bytes());
            self.count += 1;
        }
    }

    /// The application reopening its log (after logrotate's `create`).
    fn reopen(&mut self) {
        self.file = open_append(&self.path);
    }
}

fn open_append(p: &Path) -> File {
    File::options().create(true).append(true).open(p).unwrap()
}

/// Waits (up to 30 s) until `out/NAME.raw` is as long as the log's ledger,
/// then checks it byte for byte.
fn wait_copy(f: &Fixture, d: &mut Daemon, log: &Log) {
    let out = f.join(format!("out/{}.raw", log.name()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::metadata(&out).map_or(0, |m| m.len()) < log.ledger.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "{}: the copy stayed short for 30 s\n{}\ndaemon log:\n{}",
            log.name(),
            diff(&fs::read(&out).unwrap_or_default(), &log.ledger),
            d.log_tail()
        );
        d.assert_running();
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = fs::read(&out).unwrap();
    assert!(
        got == log.ledger,
        "{}: the copy differs from what was written\n{}\ndaemon log:\n{}",
        log.name(),
        diff(&got, &log.ledger),
        d.log_tail()
    );
}

/// The outputs the daemon wrote: the names in `out/` ending in `.raw`.
fn outputs(f: &Fixture) -> BTreeSet<String> {
    fs::read_dir(f.join("out"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".raw"))
                .collect()
        })
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `logdaemon checkpoint show` of the fixture's state.
fn checkpoint_show(f: &Fixture) -> String {
    let o = f.run(&["checkpoint", "show", "--config", "cfg.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

#[test]
fn each_file_a_glob_matches_is_a_stream_with_its_own_cursor_and_output() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    let mut b = Log::new(&f.join("logs/b.txt"));
    let mut skip = Log::new(&f.join("logs/skip.log"));
    a.write(30);
    b.write(10);
    skip.write(5);
    f.write("cfg.toml", config(""));
    let mut d = Daemon::start(&f);
    a.write(20);
    b.write(40);
    skip.write(5);
    wait_copy(&f, &mut d, &a);
    wait_copy(&f, &mut d, &b);
    d.term();
    assert_eq!(
        outputs(&f),
        set(&["a.log.raw", "b.txt.raw"]),
        "skip.log is excluded"
    );
    let show = checkpoint_show(&f);
    for stream in ["app/a.log", "app/b.txt"] {
        assert!(show.contains(&format!("journal {stream}:")), "{show}");
    }
    assert!(!show.contains("skip"), "{show}");
    // Each stream resumes at its own cursor: nothing again, nothing lost.
    a.write(7);
    let mut d = Daemon::start(&f);
    b.write(3);
    wait_copy(&f, &mut d, &a);
    wait_copy(&f, &mut d, &b);
    d.term();
}

#[test]
fn a_file_created_while_running_is_followed_from_its_first_line() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    a.write(10);
    // `start = "end"` applies to the files there at the first start only.
    f.write("cfg.toml", config("start = \"end\""));
    let mut d = Daemon::start(&f);
    a.ledger.clear();
    a.write(5);
    let mut c = Log::new(&f.join("logs/c.log"));
    c.write(25);
    wait_copy(&f, &mut d, &a);
    wait_copy(&f, &mut d, &c);
    d.term();
    // Created while the daemon was stopped: also read whole.
    let mut e = Log::new(&f.join("logs/e.log"));
    e.write(12);
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &e);
    d.term();
}

#[test]
fn listeners_of_a_glob_journal_see_which_file_an_entry_came_from() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    let mut b = Log::new(&f.join("logs/b.log"));
    a.write(3);
    b.write(2);
    f.write(
        "cfg.toml",
        config("").replace("format = \"raw\"", "format = \"jsonl\""),
    );
    let o = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (log, n) in [(&a, 3), (&b, 2)] {
        let text = fs::read_to_string(f.join(format!("out/{}.raw", log.name()))).unwrap();
        let journals: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["journal"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(journals, vec![format!("app/{}", log.name()); n], "{text}");
    }
}

/// logrotate's `create` rotation: rename, re-create, compress the one
/// before (`delaycompress`).
const CREATE: &str = "create\n    compress\n    delaycompress";
/// logrotate's `copytruncate` rotation, compressed.
const COPYTRUNCATE: &str = "copytruncate\n    compress";

/// The real logrotate on every `*.log` file of the glob's directory.
fn logrotate(f: &Fixture, directives: &str) {
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

#[test]
fn a_file_deleted_without_rotation_ends_its_stream_after_its_last_lines() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    let mut b = Log::new(&f.join("logs/b.log"));
    a.write(10);
    b.write(10);
    f.write("cfg.toml", config(""));
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &a);
    // Written and deleted while the daemon cannot look: its last lines
    // are read from the deleted file before the stream ends.
    d.freeze();
    a.write(15);
    fs::remove_file(&a.path).unwrap();
    d.thaw();
    wait_copy(&f, &mut d, &a);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(f.join("daemon.log"))
        .unwrap_or_default()
        .contains("stream ended")
    {
        assert!(
            Instant::now() < deadline,
            "no end of stream:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    b.write(5);
    wait_copy(&f, &mut d, &b);
    d.term();
    let show = checkpoint_show(&f);
    assert!(
        !show.contains("app/a.log"),
        "the ended stream is gone: {show}"
    );
    assert!(show.contains("journal app/b.log:"), "{show}");
}

#[test]
fn a_file_created_again_under_an_ended_streams_name_is_read_whole_into_its_output() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    a.write(10);
    f.write("cfg.toml", config(""));
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &a);
    fs::remove_file(&a.path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(f.join("daemon.log"))
        .unwrap_or_default()
        .contains("stream ended")
    {
        d.assert_running();
        assert!(
            Instant::now() < deadline,
            "no end of stream:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The same name again (a job run again): its output goes on, and no
    // entry of the new file is taken for one already written.
    a.reopen();
    a.write(4);
    wait_copy(&f, &mut d, &a);
    d.term();
}

#[test]
fn check_lists_a_globs_streams_and_refuses_a_shared_output_at_its_line() {
    let f = Fixture::new();
    Log::new(&f.join("logs/a.log")).write(1);
    Log::new(&f.join("logs/b.log")).write(1);
    Log::new(&f.join("logs/skip.log")).write(1);
    f.write("cfg.toml", config(""));
    let o = f.run(&["check", "--config", "cfg.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("2 files match now, each a stream of its own: a.log, b.log"),
        "{}",
        stdout(&o)
    );
    f.write(
        "cfg.toml",
        config("").replace("out/{file}.raw", "out/all.raw"),
    );
    let o = f.run(&["check", "--config", "cfg.toml"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("config cfg.toml, line 16:") && e.contains("config key \"path\" has no {file}"),
        "{e}"
    );
}

#[test]
fn checkpoint_set_and_dump_take_a_stream_name() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    a.write(4);
    f.write("cfg.toml", config(""));
    let second = a.ledger.iter().position(|&c| c == b'\n').unwrap() + 1;
    let o = f.run(&[
        "checkpoint",
        "set",
        "--config",
        "cfg.toml",
        "--journal",
        "app/a.log",
        "--sequence",
        "1",
        "--offset",
        &second.to_string(),
        "--file",
        "logs/a.log",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.run(&[
        "checkpoint",
        "set",
        "--config",
        "cfg.toml",
        "--journal",
        "app",
        "--sequence",
        "1",
        "--offset",
        "0",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("name one as \"app/FILE\" (files now: a.log)"),
        "{}",
        stderr(&o)
    );
    let o = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::read(f.join("out/a.log.raw")).unwrap(),
        &a.ledger[second..]
    );
    let o = f.run(&["dump", "--config", "cfg.toml", "--journal", "app/a.log"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 4, "{}", stdout(&o));
}

#[test]
fn files_another_user_creates_in_the_globs_directory_read_and_overwrite_nothing_else() {
    use crate::safety::{as_nobody, chmod};
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    a.write(5);
    // The application's log directory belongs to its (unprivileged) user.
    let st = Command::new("chown")
        .args(["nobody", f.join("logs").to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    chmod(f.path(), 0o755);
    let secret = f.write("secret", "TOP SECRET\n");
    chmod(&secret, 0o600);
    let victim = f.write("out/victim.log.raw", "precious\n");
    f.write("cfg.toml", config(""));
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &a);
    as_nobody(
        &f.join("logs"),
        "ln -s ../secret evil.log && echo 'new line' > victim.log",
    );
    a.write(5);
    wait_copy(&f, &mut d, &a);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(f.join("daemon.log"))
        .unwrap_or_default()
        .contains("stream=app/victim.log")
    {
        d.assert_running();
        assert!(
            Instant::now() < deadline,
            "victim.log not seen:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    a.write(5);
    wait_copy(&f, &mut d, &a);
    d.term();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        outputs(&f),
        set(&["a.log.raw", "victim.log.raw"]),
        "no stream through the link"
    );
    for name in outputs(&f) {
        let text = fs::read_to_string(f.join("out").join(name)).unwrap();
        assert!(!text.contains("TOP SECRET"));
    }
}

#[test]
fn with_watch_poll_a_new_file_is_found_by_the_periodic_check() {
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    a.write(3);
    f.write("cfg.toml", format!("watch = \"poll\"\n{}", config("")));
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &a);
    let mut b = Log::new(&f.join("logs/b.log"));
    b.write(8);
    wait_copy(&f, &mut d, &b);
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
