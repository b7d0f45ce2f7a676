//! The operator's commands through the real binary: `check` and `run`
//! refusing plugin files of another ABI, without the entry symbol, missing,
//! or that others could replace (the file, its directory or one above); `checkpoint show`; `checkpoint set` (accepted on a
//! record boundary, refused in the middle of a record, for a file not at hand
//! without `--force`, and while the daemon runs); `init` from the
//! environment and from flags; a corrupt checkpoint left as it was; and the
//! README's bundled example.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::fixture::{bin, stderr, stdout, Fixture};
use crate::host::{
    acked, config, entry_text, file_listener, fixture, kit_listener, recs, test_plugin, Daemon,
};

fn run_once(f: &Fixture) {
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(
        out.status.success(),
        "logdaemon run --once failed:\n{}",
        stderr(&out)
    );
}

/// Ten one-line records delivered once to a testkit and a file listener.
fn delivered() -> (Fixture, String) {
    let f = Fixture::new();
    let journal = recs(0, 10);
    f.write("p4root/journal", &journal);
    f.write(
        "cfg.toml",
        config(
            "",
            &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
        ),
    );
    run_once(&f);
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), journal);
    (f, journal)
}

/// Byte offset of record `i` of `recs(0, n)`.
fn boundary(i: usize) -> u64 {
    recs(0, i).len() as u64
}

fn checkpoint(f: &Fixture) -> Vec<u8> {
    fs::read(f.join("state/checkpoint.toml")).expect("checkpoint.toml")
}

fn refused(out: &Output, words: &[&str]) -> String {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "accepted, but should have been refused:\n{}{err}",
        stdout(out)
    );
    for w in words {
        assert!(err.contains(w), "the message does not say {w:?}:\n{err}");
    }
    err
}

// ---------------------------------------------------------------- refusals

/// Runs `check` and `run --once` on a plugin file and expects both to
/// refuse it with a message containing each of `words` (`words[1]` once).
fn plugin_refused(f: &Fixture, words: &[&str]) {
    for args in [
        &["check", "--config", "cfg.toml"][..],
        &["run", "--once", "--config", "cfg.toml"][..],
    ] {
        let out = f.run(args);
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "logdaemon {args:?} accepted the plugin:\n{err}"
        );
        for w in words {
            assert!(
                err.contains(w),
                "logdaemon {args:?}: the message does not say {w:?}:\n{err}"
            );
        }
        // Said once: a cause quoted in the message is not appended again.
        assert_eq!(
            err.matches(words[1]).count(),
            1,
            "logdaemon {args:?} repeats itself:\n{err}"
        );
    }
    assert!(
        !f.join("out/kit.jsonl").exists(),
        "the refused plugin was run"
    );
}

/// A fixture whose listener loads `plugins/NAME` (a copy of `lib`).
fn plugin_fixture(lib: &Path, name: &str) -> (Fixture, PathBuf) {
    let f = fixture(&recs(0, 3), &config("", &format!("\n[[journal.listener]]\nname = \"kit\"\nplugin = \"plugins/{name}\"\n[journal.listener.config]\npath = \"out/kit.jsonl\"\n")));
    let dir = f.join("plugins");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let so = dir.join(name);
    fs::copy(lib, &so).unwrap();
    fs::set_permissions(&so, fs::Permissions::from_mode(0o755)).unwrap();
    (f, so)
}

#[test]
fn the_testkit_copy_used_below_is_accepted_as_is() {
    // The refusals below differ from this fixture in one thing each.
    let (f, so) = plugin_fixture(&test_plugin("testkit"), "libkit.so");
    let out = f.run(&["check", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&so.display().to_string()),
        "{}",
        stdout(&out)
    );
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), recs(0, 3));
}

#[test]
fn a_plugin_of_another_abi_version_is_refused() {
    let (f, so) = plugin_fixture(&test_plugin("badabi"), "libbadabi.so");
    plugin_refused(
        &f,
        &[
            &so.display().to_string(),
            "ABI version 99",
            "rebuild the plugin",
        ],
    );
}

#[test]
fn a_library_without_the_entry_symbol_is_refused() {
    let (f, so) = plugin_fixture(&test_plugin("nosymbol"), "libnosymbol.so");
    plugin_refused(
        &f,
        &[
            &so.display().to_string(),
            "logdaemon_listener_v1",
            "rebuild it",
        ],
    );
}

#[test]
fn a_plugin_path_that_does_not_exist_is_refused() {
    let (f, so) = plugin_fixture(&test_plugin("testkit"), "libkit.so");
    fs::remove_file(&so).unwrap();
    plugin_refused(
        &f,
        &[
            &so.display().to_string(),
            "no such file",
            "check `plugin = ...` in the config",
        ],
    );
}

#[test]
fn a_group_writable_plugin_file_is_refused() {
    let (f, so) = plugin_fixture(&test_plugin("testkit"), "libkit.so");
    fs::set_permissions(&so, fs::Permissions::from_mode(0o775)).unwrap();
    plugin_refused(
        &f,
        &[
            &so.display().to_string(),
            "writable by group or others",
            &format!("chmod go-w {}", so.display()),
        ],
    );
}

#[test]
fn a_plugin_in_a_group_writable_directory_is_refused() {
    let (f, so) = plugin_fixture(&test_plugin("testkit"), "libkit.so");
    let dir = so.parent().unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o775)).unwrap();
    plugin_refused(
        &f,
        &[
            &so.display().to_string(),
            &format!("directory {} is writable by group", dir.display()),
            &format!("chmod go-w {}", dir.display()),
        ],
    );
}

#[test]
fn a_plugin_below_a_group_writable_directory_is_refused() {
    // Whoever can write the parent can swap the plugin's directory for another.
    let (f, so) = plugin_fixture(&test_plugin("testkit"), "libkit.so");
    let sub = f.join("plugins/v1");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(&so, sub.join("libkit.so")).unwrap();
    f.write(
        "cfg.toml",
        fs::read_to_string(f.join("cfg.toml"))
            .unwrap()
            .replace("plugins/libkit.so", "plugins/v1/libkit.so"),
    );
    let top = f.join("plugins");
    fs::set_permissions(&top, fs::Permissions::from_mode(0o775)).unwrap();
    plugin_refused(
        &f,
        &[
            &sub.join("libkit.so").display().to_string(),
            &format!("directory {} is writable by group", top.display()),
            &format!("chmod go-w {}", top.display()),
        ],
    );
    fs::set_permissions(&top, fs::Permissions::from_mode(0o755)).unwrap();
    let out = f.run(&["check", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn checkpoint_show_names_the_file_and_every_position() {
    let f = Fixture::new();
    f.write("p4root/journal", recs(0, 10));
    f.write(
        "cfg.toml",
        config(
            "",
            &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
        ),
    );
    let cp = f.join("state/checkpoint.toml");
    let out = f.run(&["checkpoint", "show", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("no checkpoint at {}", cp.display())),
        "{}",
        stdout(&out)
    );
    run_once(&f);
    let end = boundary(10);
    for args in [
        &["checkpoint", "show", "--config", "cfg.toml"][..],
        &["checkpoint", "show", "--state-dir", "state"][..],
    ] {
        let out = f.run(args);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let live = f.join("p4root/journal").canonicalize().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("checkpoint ") && lines[0].ends_with("state/checkpoint.toml"),
            "{text}"
        );
        let at = format!("sequence 1 offset {end} line 11 in {}", live.display());
        let reader = lines
            .iter()
            .find(|l| l.starts_with("journal p4: read up to "))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            reader.contains(&at) && reader.contains("(dev ") && reader.contains(" inode "),
            "{reader}"
        );
        for l in ["copy", "kit"] {
            let want = format!("  listener {l}: acknowledged up to {at}");
            assert!(
                lines.iter().any(|x| x.starts_with(&want)),
                "no line {want:?} in\n{text}"
            );
        }
    }
}

#[test]
fn checkpoint_set_to_a_record_boundary_replays_from_there() {
    let (f, journal) = delivered();
    let out = f.run(&[
        "checkpoint",
        "set",
        "--config",
        "cfg.toml",
        "--journal",
        "p4",
        "--listener",
        "kit",
        "--sequence",
        "1",
        "--offset",
        &boundary(6).to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "journal p4 listener kit: set to sequence 1 offset {} line 7",
            boundary(6)
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(acked(&f, "kit"), Some((1, boundary(6))));
    assert_eq!(
        acked(&f, "copy"),
        Some((1, boundary(10))),
        "another listener was moved"
    );
    run_once(&f);
    // The testkit got records 6..10 again, nothing else; the file listener nothing.
    assert_eq!(
        entry_text(&f.join("out/kit.jsonl")),
        format!("{journal}{}", &journal[boundary(6) as usize..])
    );
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), journal);
    assert_eq!(acked(&f, "kit"), Some((1, boundary(10))));
}

#[test]
fn checkpoint_set_before_the_first_run_says_where_to_start() {
    let f = Fixture::new();
    f.write("p4root/journal", recs(0, 10));
    f.write("cfg.toml", config("", &kit_listener("kit", "", "")));
    let out = f.run(&[
        "checkpoint",
        "set",
        "--config",
        "cfg.toml",
        "--journal",
        "p4",
        "--sequence",
        "1",
        "--offset",
        &boundary(7).to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = fs::metadata(f.join("state")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "state directory mode {mode:o}");
    run_once(&f);
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), recs(7, 10));
}

#[test]
fn checkpoint_set_in_the_middle_of_a_record_is_refused_with_the_boundaries() {
    let (f, _) = delivered();
    let before = checkpoint(&f);
    let mid = boundary(3) + 5;
    let out = f.run(&[
        "checkpoint",
        "set",
        "--config",
        "cfg.toml",
        "--journal",
        "p4",
        "--sequence",
        "1",
        "--offset",
        &mid.to_string(),
    ]);
    let live = f.join("p4root/journal");
    refused(
        &out,
        &[
            &live.display().to_string(),
            &format!(
                "offset {mid} is in the middle of the record at offset {} (line 4",
                boundary(3)
            ),
            &format!("boundaries are {} and {}", boundary(3), boundary(4)),
        ],
    );
    assert_eq!(
        checkpoint(&f),
        before,
        "a refused set changed the checkpoint"
    );
}

#[test]
fn checkpoint_set_for_a_file_not_at_hand_needs_force() {
    let (f, _) = delivered();
    let before = checkpoint(&f);
    let args = [
        "checkpoint",
        "set",
        "--state-dir",
        "state",
        "--journal",
        "p4",
        "--sequence",
        "7",
        "--offset",
        "1234",
    ];
    let out = f.run(&args);
    refused(
        &out,
        &[
            "journal \"p4\"",
            "sequence 7 is not at hand",
            "--config",
            "--force",
        ],
    );
    assert_eq!(
        checkpoint(&f),
        before,
        "a refused set changed the checkpoint"
    );
    let out = f.run(&[&args[..], &["--force"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(acked(&f, "kit"), Some((7, 1234)));
    assert_eq!(acked(&f, "copy"), Some((7, 1234)));
    let shown = stdout(&f.run(&["checkpoint", "show", "--state-dir", "state"]));
    assert!(
        shown.contains("sequence 7 offset 1234 line 1 (unverified: set by hand)"),
        "{shown}"
    );
}

#[test]
fn checkpoint_set_and_a_second_run_while_the_daemon_runs_are_refused() {
    let (f, _) = delivered();
    let d = Daemon::start(&f);
    let out = f.run(&[
        "checkpoint",
        "set",
        "--config",
        "cfg.toml",
        "--journal",
        "p4",
        "--sequence",
        "1",
        "--offset",
        "0",
    ]);
    refused(
        &out,
        &[
            "state directory",
            "in use by another logdaemon",
            "stop the daemon",
        ],
    );
    // Nor does a second daemon start on the same state.
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    refused(
        &out,
        &[
            "in use by another logdaemon",
            &format!("pid {}", d.pid()),
            "stop that daemon first",
        ],
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert_eq!(
        acked(&f, "kit"),
        Some((1, boundary(10))),
        "the refused set moved the checkpoint"
    );
}

#[test]
fn a_corrupt_checkpoint_stops_run_naming_the_file_and_line_and_is_left_as_it_was() {
    let (f, _) = delivered();
    let text = String::from_utf8(checkpoint(&f)).unwrap();
    let n = text
        .lines()
        .position(|l| l.starts_with("offset = "))
        .expect("an offset line")
        + 1;
    let bad: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == n {
                "offset = twelve\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    f.write("state/checkpoint.toml", &bad);
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let cp = f.join("state/checkpoint.toml");
    refused(&out, &[&cp.display().to_string(), &format!("line {n}")]);
    assert_eq!(
        fs::read_to_string(&cp).unwrap(),
        bad,
        "the corrupt checkpoint was changed"
    );
    assert_eq!(
        entry_text(&f.join("out/kit.jsonl")),
        recs(0, 10),
        "entries were delivered from a corrupt checkpoint"
    );
    // `checkpoint set` cannot change one position of it, and says how to start over.
    let set = [
        "checkpoint",
        "set",
        "--config",
        "cfg.toml",
        "--journal",
        "p4",
        "--sequence",
        "1",
    ];
    let out = f.run(&[&set[..], &["--offset", &boundary(8).to_string()]].concat());
    let prev = f.join("state/checkpoint.toml.prev");
    refused(
        &out,
        &[
            &format!("line {n}"),
            "to start over",
            &format!("move both {} and {}", cp.display(), prev.display()),
        ],
    );
    assert_eq!(
        fs::read_to_string(&cp).unwrap(),
        bad,
        "a refused set changed the checkpoint"
    );
    // Following that advice works.
    fs::rename(&cp, f.join("damaged.toml")).unwrap();
    let _ = fs::rename(&prev, f.join("damaged.prev"));
    let out = f.run(&[&set[..], &["--offset", &boundary(8).to_string()]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    run_once(&f);
    assert_eq!(
        entry_text(&f.join("out/kit.jsonl")),
        format!("{}{}", recs(0, 10), recs(8, 10))
    );
}

#[test]
fn run_before_the_journal_exists_waits_for_it_then_and_later() {
    // The daemon may start before the server has written its first journal.
    let f = Fixture::new();
    fs::create_dir(f.join("p4root")).unwrap();
    f.write("cfg.toml", config("", &kit_listener("kit", "", "")));
    run_once(&f);
    assert_eq!(entry_text(&f.join("out/kit.jsonl")), "");
    let d = Daemon::start(&f);
    f.write("p4root/journal", recs(0, 4));
    let kit = f.join("out/kit.jsonl");
    crate::host::wait_until(
        15,
        "the entries of the new journal",
        || entry_text(&kit) == recs(0, 4),
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert_eq!(acked(&f, "kit"), Some((1, boundary(4))));
}

#[test]
fn sigterm_while_a_listener_is_still_starting_stops_cleanly() {
    // A listener may take long to open (a server to reach): a SIGTERM then
    // is an orderly stop with exit 0, not death by the signal.
    let f = Fixture::new();
    f.write("p4root/journal", recs(0, 3));
    f.write(
        "cfg.toml",
        config(
            "",
            &kit_listener("kit", "", "open_waits_for_file = \"flag\""),
        ),
    );
    let kit = f.join("out/kit.jsonl");
    let d = Daemon::spawn(&f);
    let opening = || {
        crate::host::events(&kit)
            .iter()
            .any(|e| e["event"] == "opening")
    };
    crate::host::wait_until(15, "the listener to be opening", opening, || d.log());
    d.signal("TERM");
    f.write("flag", "");
    let (st, log) = d.wait(20);
    assert!(
        st.success() && log.contains("stopping"),
        "SIGTERM during start-up gave {st}:\n{log}"
    );
    // Nothing was delivered, so a later run delivers everything.
    assert_eq!(entry_text(&kit), "");
    run_once(&f);
    assert_eq!(entry_text(&kit), recs(0, 3));
}

// ---------------------------------------------------------------- init

fn init(f: &Fixture, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut c = Command::new(bin());
    c.arg("init")
        .args(args)
        .current_dir(f.path())
        .env_remove("P4ROOT")
        .env_remove("P4JOURNAL");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run logdaemon init")
}

/// `check` accepts the config at `cfg` and `run --once` copies `journal`.
fn init_config_works(f: &Fixture, cfg: &str, journal: &Path) {
    let out = f.run(&["check", "--config", cfg]);
    assert!(
        out.status.success(),
        "check refused the config `init` wrote:\n{}",
        stderr(&out)
    );
    let said = stdout(&out);
    assert!(
        said.contains(&format!("journal p4 (p4): {}\n", journal.display())),
        "{said}"
    );
    assert!(said.contains("listener copy: plugin file"), "{said}");
    let out = f.run(&["run", "--once", "--config", cfg]);
    assert!(
        out.status.success(),
        "run --once failed on the config `init` wrote:\n{}",
        stderr(&out)
    );
    let copy = f.join(cfg).parent().unwrap().join("journal.copy");
    assert_eq!(fs::read(copy).unwrap(), fs::read(journal).unwrap());
}

#[test]
fn init_from_p4root_writes_a_config_that_check_accepts_and_run_runs() {
    let f = Fixture::new();
    f.write("p4root/journal", recs(0, 5));
    let root = f.join("p4root");
    let out = init(&f, &[("P4ROOT", &root)], &["--output", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("logdaemon check --config cfg.toml"),
        "{}",
        stderr(&out)
    );
    init_config_works(&f, "cfg.toml", &root.join("journal"));
    // It never overwrites a config.
    let before = fs::read(f.join("cfg.toml")).unwrap();
    let out = init(&f, &[("P4ROOT", &root)], &["--output", "cfg.toml"]);
    assert!(
        !out.status.success() && stderr(&out).contains("not overwriting"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read(f.join("cfg.toml")).unwrap(), before);
}

#[test]
fn init_takes_p4journal_relative_to_p4root_and_flags_over_the_environment() {
    let f = Fixture::new();
    f.write("p4root/logs/live.jnl", recs(0, 5));
    f.write("other/journal", recs(5, 7));
    let root = f.join("p4root");
    // P4JOURNAL relative to P4ROOT, written to standard output.
    let out = init(
        &f,
        &[("P4ROOT", &root), ("P4JOURNAL", Path::new("logs/live.jnl"))],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    f.write("env/cfg.toml", stdout(&out));
    init_config_works(&f, "env/cfg.toml", &root.join("logs/live.jnl"));
    // Flags win over the environment.
    let other = f.join("other");
    let out = init(
        &f,
        &[("P4ROOT", &root)],
        &[
            "--p4root",
            other.to_str().unwrap(),
            "--output",
            "flags.toml",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    init_config_works(&f, "flags.toml", &other.join("journal"));
    let j = other.join("journal");
    fs::create_dir(f.join("j")).unwrap();
    let out = init(
        &f,
        &[("P4ROOT", &root)],
        &["--journal", j.to_str().unwrap(), "--output", "j/cfg.toml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    init_config_works(&f, "j/cfg.toml", &j);
    // Nothing to go on: a message that says what to set.
    let out = init(&f, &[], &[]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("P4ROOT") && stderr(&out).contains("--p4root"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_writes_a_relative_p4root_absolute_and_any_directory_name_quoted() {
    let f = Fixture::new();
    let odd = "p4 \"root\" \\ x";
    f.write(format!("{odd}/journal"), recs(0, 3));
    fs::create_dir(f.join("etc")).unwrap();
    // P4ROOT relative to where init runs; the config goes elsewhere.
    let out = init(
        &f,
        &[("P4ROOT", Path::new(odd))],
        &["--output", "etc/cfg.toml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    init_config_works(&f, "etc/cfg.toml", &f.join(odd).join("journal"));
}

// ---------------------------------------------------------------- README example

fn gunzip(path: &Path) -> Vec<u8> {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("run gzip");
    assert!(
        out.status.success(),
        "gzip -dc {}: {}",
        path.display(),
        stderr(&out)
    );
    out.stdout
}

#[test]
fn the_readme_example_runs_once_and_a_second_run_repeats_nothing() {
    let src = crate::fixture::manifest_dir().join("../examples/p4");
    let f = Fixture::new();
    fs::copy(src.join("logdaemon.toml"), f.join("logdaemon.toml"))
        .expect("examples/p4/logdaemon.toml");
    fs::create_dir(f.join("p4root")).unwrap();
    for name in ["journal", "journal.1", "journal.2.gz"] {
        fs::copy(src.join("p4root").join(name), f.join("p4root").join(name)).unwrap();
    }
    let root = f.join("p4root");
    let want: Vec<u8> = [
        fs::read(root.join("journal.1")).unwrap(),
        gunzip(&root.join("journal.2.gz")),
        fs::read(root.join("journal")).unwrap(),
    ]
    .concat();
    let once = |f: &Fixture| {
        let out = f.run(&["run", "--once", "--config", "logdaemon.toml"]);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    once(&f);
    let raw = fs::read(f.join("out/journal.raw")).unwrap();
    assert!(
        raw == want,
        "out/journal.raw ({} bytes) is not journal.1 + journal.2.gz + journal ({} bytes)",
        raw.len(),
        want.len()
    );
    let jsonl = fs::read_to_string(f.join("out/entries.jsonl")).unwrap();
    let offsets: Vec<(u64, u64)> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["sequence"].as_u64().unwrap(),
                v["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    let seqs: std::collections::BTreeSet<u64> = offsets.iter().map(|o| o.0).collect();
    assert_eq!(
        seqs.into_iter().collect::<Vec<_>>(),
        [1, 2, 3],
        "entries of journal.1, journal.2.gz and the live journal"
    );
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "entries out of order"
    );
    once(&f);
    assert!(
        fs::read(f.join("out/journal.raw")).unwrap() == want,
        "the second run changed out/journal.raw"
    );
    assert_eq!(
        fs::read_to_string(f.join("out/entries.jsonl")).unwrap(),
        jsonl,
        "the second run delivered again"
    );
}
