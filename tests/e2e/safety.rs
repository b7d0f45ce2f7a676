//! Safety of what the daemon writes and runs, as root: an output that
//! would destroy an input, files and hooks other users could hijack, inputs
//! that could hang it, a stop during a hook, bytes jsonl would lose, and
//! `--once` exit statuses a cron job relies on. The attackers' steps run as
//! the unprivileged user `nobody` (`runuser`); the tests run as root, as the
//! daemon does.
//!
//! | README row                                   | test                                                              |
//! |----------------------------------------------|-------------------------------------------------------------------|
//! | output: the journal or a rotated journal     | safety::an_output_that_is_an_input_is_refused_naming_both_lines   |
//! | output: another listener's output            | safety::two_listeners_with_one_output_are_refused_naming_both_lines |
//! | output: directory writable by others, link   | safety::a_link_planted_by_another_user_is_never_written_through   |
//! | output: FIFO or device                       | safety::an_output_that_is_not_a_regular_file_is_refused_at_start  |
//! | journal / dump: FIFO                         | safety::a_fifo_journal_is_refused_not_waited_on                   |
//! | hook: owned or writable by another user      | hooks::a_hook_another_user_can_rewrite_is_never_run               |
//! | hook: stop while it runs                     | hooks::a_stop_during_a_hook_terminates_it_then_kills_it_on_a_second_signal |
//! | jsonl: bytes that are not UTF-8              | hooks::jsonl_in_base64_keeps_every_byte_in_the_file_and_the_hook  |
//! | `--once` with a listener disabled            | safety::once_exits_non_zero_when_a_listener_ended_disabled        |
//! | journal: a link retargeted while down        | retarget::a_link_retargeted_while_down_is_reported_with_both_files_and_the_way_out_reads_them (+ retarget::the_other_way_out_skips_the_old_file_s_rest_as_it_says) |

#[path = "safety/hooks.rs"]
mod hooks;
#[path = "safety/retarget.rs"]
mod retarget;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::{bin, stderr, Fixture};
use crate::host::{config, file_listener, fixture, kit_listener, rec, recs};

/// `logdaemon ARGS` in the fixture, killed (and the test failed) if it has
/// not exited within `secs`: a hang is a failure, not a stuck suite.
pub(crate) fn run_within(f: &Fixture, args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(f.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run logdaemon");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`logdaemon {}` did not exit within {secs} s (it hangs); stderr:\n{}",
                args.join(" "),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

pub(crate) fn run_once(f: &Fixture) -> Output {
    run_within(f, &["run", "--once", "--config", "cfg.toml"], 60)
}

pub(crate) fn check(f: &Fixture) -> Output {
    run_within(f, &["check", "--config", "cfg.toml"], 60)
}

/// Asserts a refusal whose message holds every one of `words`.
pub(crate) fn refused(out: &Output, words: &[&str]) -> String {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "accepted, but should have been refused:\n{err}"
    );
    for w in words {
        assert!(err.contains(w), "the message does not say {w:?}:\n{err}");
    }
    err
}

/// Runs `sh -c script` as the unprivileged user `nobody`.
pub(crate) fn as_nobody(dir: &Path, script: &str) {
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "sh", "-c", script])
        .current_dir(dir)
        .output()
        .expect("runuser");
    assert!(
        out.status.success(),
        "as nobody: `{script}` failed: {}",
        stderr(&out)
    );
}

pub(crate) fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A file listener table writing `path` in `format`.
fn file_to(name: &str, path: &str, extra: &str) -> String {
    format!("\n[[journal.listener]]\nname = \"{name}\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"{path}\"\n{extra}\n")
}

/// The 1-based line of the first line of `cfg` that starts with `start`,
/// after line `after`.
pub(crate) fn line_of(cfg: &str, start: &str, after: usize) -> usize {
    cfg.lines()
        .enumerate()
        .skip(after)
        .find(|(_, l)| l.starts_with(start))
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{cfg}"))
}

#[test]
fn an_output_that_is_an_input_is_refused_naming_both_lines() {
    let journal = recs(0, 5);
    for (path, words) in [
        (
            "p4root/journal",
            "which is the journal \"p4\" follows (line 5)",
        ),
        (
            "p4root/journal.7",
            "rotation patterns of journal \"p4\" (line 5) match",
        ),
        (
            "linked/journal",
            "which is the journal \"p4\" follows (line 5)",
        ),
    ] {
        let cfg = config("", &file_to("copy", path, "format = \"jsonl\""));
        let f = fixture(&journal, &cfg);
        std::os::unix::fs::symlink("p4root", f.join("linked")).unwrap();
        let line = line_of(&cfg, "path = ", 5);
        let at =
            format!("cfg.toml, line {line}: the output of listener \"copy\" of journal \"p4\"");
        refused(&check(&f), &[&at, words, "an output may never be an input"]);
        refused(&run_once(&f), &[&at, words]);
        assert_eq!(
            fs::read_to_string(f.join("p4root/journal")).unwrap(),
            journal,
            "the journal was changed through output {path}"
        );
        assert!(!f.join("state/checkpoint.toml").exists());
    }
}

#[test]
fn two_listeners_with_one_output_are_refused_naming_both_lines() {
    let cfg = format!(
        "{}\n[[journal]]\nname = \"app\"\npath = \"logs/app.log\"\nformat = \"lines\"\n{}",
        config("", &file_listener("copy")),
        file_to("copy2", "out/../out/copy.raw", "")
    );
    let f = fixture(&recs(0, 5), &cfg);
    f.write("logs/app.log", "a line\n");
    let first = line_of(&cfg, "path = \"out/copy.raw\"", 0);
    let second = line_of(&cfg, "path = \"out/../out/copy.raw\"", 0);
    let words = [
        format!("cfg.toml, line {second}: the output of listener \"copy2\" of journal \"app\""),
        format!("which is also the output of listener \"copy\" of journal \"p4\" (line {first})"),
        "give each its own path".to_string(),
    ];
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    refused(&check(&f), &words);
    refused(&run_once(&f), &words);
    assert!(!f.join("out/copy.raw").exists(), "an output was written");
}

#[test]
fn a_link_planted_by_another_user_is_never_written_through() {
    let f = fixture(&recs(0, 5), &config("", &file_listener("copy")));
    chmod(f.path(), 0o755);
    let victim = f.write("victim", "precious root-owned data\n");
    // An output directory anyone can write: refused before anything is
    // written, by `check` and `run` alike.
    fs::create_dir(f.join("out")).unwrap();
    chmod(&f.join("out"), 0o777);
    let words = [
        "directory",
        "out is writable by group or others (mode 0777)",
        "chmod go-w",
    ];
    refused(&check(&f), &words);
    refused(&run_once(&f), &words);
    // The attacker replaces the output by a link to a root-owned file.
    as_nobody(f.path(), "ln -sfn ../victim out/copy.raw");
    refused(&run_once(&f), &[]);
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        "precious root-owned data\n"
    );
    // A sticky directory (like /tmp): others may create entries, so a
    // dangling link planted before the first start must not make root
    // create the file it points to.
    fs::remove_dir_all(f.join("out")).unwrap();
    fs::create_dir(f.join("out")).unwrap();
    chmod(&f.join("out"), 0o1777);
    as_nobody(f.path(), "ln -s ../created-by-root out/copy.raw");
    refused(&run_once(&f), &["out/copy.raw", "symbolic link"]);
    assert!(
        !f.join("created-by-root").exists(),
        "root created a file through a planted link"
    );
    // Without the link, the sticky directory is fine.
    fs::remove_file(f.join("out/copy.raw")).unwrap();
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 5)
    );
}

#[test]
fn an_output_that_is_not_a_regular_file_is_refused_at_start() {
    let f = fixture(&recs(0, 5), &config("", &file_listener("copy")));
    fs::create_dir(f.join("out")).unwrap();
    let st = Command::new("mkfifo")
        .arg(f.join("out/fifo"))
        .status()
        .unwrap();
    assert!(st.success(), "mkfifo failed");
    for (path, kind) in [
        ("/dev/null", "a character device"),
        ("/dev/full", "a character device"),
        ("out/fifo", "a FIFO (named pipe)"),
    ] {
        let cfg = config("", &file_to("copy", path, ""));
        f.write("cfg.toml", &cfg);
        let line = line_of(&cfg, "path = ", 5);
        let words = [
            format!("cfg.toml, line {line}: the output of listener \"copy\""),
            format!("which is {kind}, not a regular file"),
        ];
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        refused(&check(&f), &words);
        refused(&run_once(&f), &words);
    }
    assert!(!f.join("state/checkpoint.toml").exists());
}

#[test]
fn a_fifo_journal_is_refused_not_waited_on() {
    let f = Fixture::new();
    fs::create_dir(f.join("p4root")).unwrap();
    let st = Command::new("mkfifo")
        .arg(f.join("p4root/journal"))
        .status()
        .unwrap();
    assert!(st.success(), "mkfifo failed");
    f.write("cfg.toml", config("", &file_listener("copy")));
    let words = [
        "cfg.toml, line 5: journal \"p4\"",
        "is a FIFO (named pipe), not a regular file",
    ];
    refused(&check(&f), &words);
    refused(&run_once(&f), &words);
    let out = run_within(&f, &["run", "--config", "cfg.toml"], 30);
    refused(&out, &words);
    let out = run_within(&f, &["dump", "p4root/journal"], 30);
    refused(
        &out,
        &["p4root/journal: is a FIFO (named pipe), not a regular file"],
    );
}

#[test]
fn once_exits_non_zero_when_a_listener_ended_disabled() {
    let journal = format!("{}{}", recs(0, 3), rec(3, "BOOM"));
    let cfg = config(
        "",
        &format!(
            "{}{}",
            file_listener("copy"),
            kit_listener("kit", "on_failure = \"disable\"", "fatal_on = \"BOOM\"")
        ),
    );
    let f = fixture(&journal, &cfg);
    let out = run_once(&f);
    refused(
        &out,
        &[
            "--once: 1 of 2 listeners ended disabled",
            "listener \"kit\" of journal \"p4\" failed for good",
        ],
    );
    // The other listener got everything all the same.
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), journal);
}
