//! Bad input, end to end: every row of the table "Bad input: what
//! happens" (docs/bad-input.md) is backed by a test that asserts the message (its characteristic
//! parts) and that nothing was lost. The rows whose test lives elsewhere are
//! listed here; the rest are the tests of this module (the real binary, real
//! files, a real tmpfs for a full disk, a real SMTP server).
//!
//! | row (README)                              | test                                                                                        |
//! |-------------------------------------------|---------------------------------------------------------------------------------------------|
//! | config: value invalid                     | bad_input::a_bad_duration_in_the_config_runs_nothing                                        |
//! | config: unknown key                       | bad_input::an_unknown_config_key_runs_nothing                                               |
//! | config: listener table refused by `check` | listener_check::check_refuses_an_unknown_key_in_a_file_listener_table (and the hot-backup, syslog, email ones beside it) |
//! | config: file missing                      | bad_input::a_missing_config_file_is_named                                                   |
//! | config: `[http] listen` remote            | status::a_remote_listen_address_is_refused_unless_allowed                                   |
//! | config: `[http] listen` cannot listen     | status::an_endpoint_that_cannot_listen_stops_the_start_and_says_where                       |
//! | status: cannot tell                       | status::status_exit_codes_in_each_state_with_the_daemon_running_or_not                      |
//! | journal: predecessor deleted              | host::a_deleted_predecessor_stops_the_daemon_with_the_way_out_and_an_untouched_checkpoint   |
//! | journal: predecessor deleted, report      | host::with_on_gap_report_the_gap_reaches_the_listeners_and_the_rest_follows                 |
//! | journal: copy-truncate window             | rotation::window::copytruncate_window_is_reported_as_exactly_that_gap                       |
//! | compressed: `dump` of a truncated .gz     | dump::truncated_gzip_prints_what_it_can_then_says_where_and_what_to_do                      |
//! | compressed: `dump` of a corrupt .gz       | dump::corrupt_gzip_says_corrupt_and_where                                                   |
//! | replay: offset inside a record            | replay::replay_p4_by_position_matches_the_reference_and_refuses_a_non_boundary              |
//! | replay: sequence not on disk / too old    | replay::replay_p4_by_position_matches_the_reference_and_refuses_a_non_boundary              |
//! | replay: time range before the oldest      | replay::replay_p4_says_when_the_range_starts_before_the_oldest_file_and_stops_at_a_corrupt_one |
//! | replay: corrupt compressed file           | replay::replay_p4_says_when_the_range_starts_before_the_oldest_file_and_stops_at_a_corrupt_one |
//! | replay: line log without `timestamp`      | replay::lines::replay_lines_without_a_timestamp_setting_refuses_a_time_range                |
//! | replay: stdout is a journal file          | replay::replay_refuses_to_write_into_one_of_the_journal_s_own_files (security)              |
//! | config: bad `[journal.timestamp]`         | logdaemon replay::tests::a_bad_timestamp_setting_names_the_file_line_and_key                |
//! | `dump` of a directory                     | dump::bad_paths_fail_with_the_file_and_advice                                               |
//! | checkpoint: does not parse                | commands::a_corrupt_checkpoint_stops_run_naming_the_file_and_line_and_is_left_as_it_was     |
//! | checkpoint: empty                         | bad_input::an_empty_checkpoint_stops_run_and_the_previous_save_restores_it                  |
//! | checkpoint: newer format                  | state parse::tests::other_versions_are_refused_as_newer_before_their_unknown_keys           |
//! | checkpoint: state directory in use        | commands::checkpoint_set_and_a_second_run_while_the_daemon_runs_are_refused                 |
//! | checkpoint: `set` mid-record              | commands::checkpoint_set_in_the_middle_of_a_record_is_refused_with_the_boundaries           |
//! | checkpoint: `set` for a file not at hand  | commands::checkpoint_set_for_a_file_not_at_hand_needs_force                                 |
//! | plugin: writable by others                | commands::a_group_writable_plugin_file_is_refused (+ _in_/_below_a_group_writable_directory) |
//! | plugin: owned by another user             | bad_input::a_plugin_owned_by_another_user_is_refused                                        |
//! | plugin: another ABI                       | commands::a_plugin_of_another_abi_version_is_refused                                        |
//! | plugin: no entry symbol                   | commands::a_library_without_the_entry_symbol_is_refused                                     |
//! | plugin: path missing                      | commands::a_plugin_path_that_does_not_exist_is_refused                                      |
//! | plugin: never unloaded (security)         | bad_input::a_disabled_listener_s_library_stays_loaded                                       |
//! | plugin: built-in missing                  | bad_input::a_missing_builtin_plugin_names_the_library_and_the_fix                           |
//! | listener fails for good                   | host::a_fatal_listener_with_on_failure_stop_stops_the_daemon_after_the_checkpoint           |
//! | every listener disabled                   | host::when_every_listener_is_disabled_the_daemon_exits_non_zero_keeping_the_cursors         |
//! | file listener: output truncated           | listeners::a_truncated_output_is_refused_with_the_path_and_both_lengths                     |
//! | file listener: output without a record    | file tests/exactly_once.rs::existing_output_without_a_record_is_refused                     |
//! | SSH: unknown or changed host key          | hot-backup tests/standby.rs::unknown_or_mismatched_host_keys_are_fatal_with_the_fingerprint_and_nothing_is_sent |
//! | SSH: key readable by others / refused key | hot-backup tests/standby.rs::a_refused_user_key_and_a_readable_key_file_are_fatal_with_clear_messages |
//! | SSH: standby unreachable                  | hot-backup tests/standby.rs::an_unreachable_standby_is_retried_not_fatal                    |
//! | SSH: standby differs                      | hot-backup tests/standby.rs::a_standby_that_differs_from_the_journal_is_fatal_naming_file_and_offset |
//! | SSH: standby disk full                    | hot-backup tests/standby.rs::a_full_disk_on_the_standby_is_retried_and_cut_back_to_whole_transactions |
//! | secrets: key passphrase never logged      | bad_input::the_key_passphrase_appears_nowhere_in_the_daemon_log (security)                   |
//! | SMTP: untrusted certificate               | email tests/tls.rs::an_untrusted_certificate_is_never_accepted                              |
//! | SMTP: wrong password                      | email tests/tls.rs::a_wrong_password_is_fatal_even_with_on_reject_skip, bad_input::the_smtp_password_appears_nowhere_in_the_daemon_log |
//! | SMTP: recipient rejected                  | email tests/delivery.rs::a_rejected_recipient_is_fatal_or_skipped_and_reported              |
//! | SMTP: no STARTTLS offered                 | email tests/delivery.rs::starttls_is_required_and_never_falls_back_to_plain_text            |
//! | SMTP: relay down or 4xx                   | email tests/delivery.rs::server_down_or_tempfailing_loses_and_repeats_nothing               |
//! | SMTP: password inline in the config       | email src/config.rs::password_from_env_or_file_never_inline                                 |
//! | hooks: entry data never in argv or a shell | bad_input::hostile_entry_data_reaches_a_hook_on_stdin_only_never_a_shell_or_its_argv (security) |
//! | permissions: state dir open to others     | bad_input::a_state_dir_writable_by_others_is_refused_and_left_alone                         |
//! | permissions: output on a read-only fs     | bad_input::an_output_on_a_read_only_filesystem_stops_run_naming_it                          |
//! | disk full: listener output                | bad_input::a_full_output_disk_is_retried_and_the_output_completes_once_there_is_room         |
//! | disk full: state dir at start             | bad_input::a_full_state_disk_at_start_stops_before_anything_is_delivered                    |
//! | disk full: state dir when saving          | bad_input::a_full_state_disk_when_saving_keeps_the_previous_checkpoint                      |
//! | safety rows (outputs, hooks, FIFOs, links, `--once`, jsonl bytes) | listed at the top of `tests/e2e/safety.rs`                                  |
//! | checkpoint: position table removed        | state parse::tests::a_removed_journal_table_is_named_with_what_it_records                   |
//! | config: a glob journal that cannot work   | logdaemon config::glob::tests (one per refusal)                                              |
//! | config: glob listener path without {file} | glob::check_lists_a_globs_streams_and_refuses_a_shared_output_at_its_line                   |
//! | glob: a new file's listener refuses       | glob::files_another_user_creates_in_the_globs_directory_read_and_overwrite_nothing_else     |
//! | checkpoint: `set` of a glob journal       | glob::checkpoint_set_and_dump_take_a_stream_name                                            |
//!
//! The full-disk and read-only tests mount a small tmpfs (they run as root);
//! when mounting is impossible they fail, naming why, rather than pass.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use logdaemon_tests::smtp::{Options, ServerTls, SmtpServer};

use crate::fixture::{bin, stderr, Fixture};
use crate::host::{
    acked, append, config, file_listener, fixture, kit_listener, rec, recs, test_plugin,
    wait_until, Daemon,
};

// ---------------------------------------------------------------- helpers

/// A tmpfs mounted at a path for the length of a test.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "1m") with `opts` (e.g. "ro") at `path`.
    fn mount(path: &Path, size: &str, opts: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap();
        let o = if opts.is_empty() {
            format!("size={size}")
        } else {
            format!("size={size},{opts}")
        };
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &o, "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(out) if out.status.success() => Tmpfs { path: path.to_path_buf() },
            Ok(out) => panic!(
                "cannot mount a tmpfs at {} ({}): {}; this test needs root (or CAP_SYS_ADMIN) to simulate a full or read-only disk",
                path.display(),
                out.status,
                stderr(&out)
            ),
            Err(e) => panic!("cannot run mount for {}: {e}; this test needs the mount command and root", path.display()),
        }
    }

    /// Changes the mount's size (`mount -o remount,size=...`).
    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "cannot resize the tmpfs at {}",
            self.path.display()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes zeros into `path` until the file system is full.
fn fill(path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

fn run_once(f: &Fixture) -> Output {
    f.run(&["run", "--once", "--config", "cfg.toml"])
}

fn refused(out: &Output, words: &[&str]) -> String {
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

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A fixture of ten records copied once by a file listener; returns it and the journal.
fn delivered() -> (Fixture, String) {
    let journal = recs(0, 10);
    let f = fixture(&journal, &config("", &file_listener("copy")));
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), journal);
    (f, journal)
}

// ---------------------------------------------------------------- config

/// Breaks line 7 of a working config; the run refuses with `words`, and
/// neither the checkpoint nor the output moves although the journal grew.
fn config_refused(line7: &str, words: &[&str]) {
    let (f, journal) = delivered();
    let cp = f.join("state/checkpoint.toml");
    let before = read(&cp);
    append(&f.join("p4root/journal"), &recs(10, 20));
    let good = fs::read_to_string(f.join("cfg.toml")).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    assert_eq!(
        lines[6], "start = \"beginning\"",
        "line 7 of the test config moved"
    );
    lines[6] = line7;
    f.write("cfg.toml", lines.join("\n"));
    refused(&run_once(&f), words);
    assert_eq!(
        read(&cp),
        before,
        "the checkpoint moved under a refused config"
    );
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        journal,
        "entries were delivered under a refused config"
    );
    // Fixed, the run delivers exactly the rest.
    f.write("cfg.toml", &good);
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 20)
    );
}

#[test]
fn a_bad_duration_in_the_config_runs_nothing() {
    config_refused(
        "quiet_after = \"2 parsecs\"",
        &[
            "config cfg.toml, line 7: quiet_after: \"2 parsecs\" is not a duration",
            "unknown time unit \"parsecs\"",
            "write e.g. \"2s\"",
        ],
    );
}

#[test]
fn an_unknown_config_key_runs_nothing() {
    config_refused(
        "quiet_aftr = \"2s\"",
        &[
            "config cfg.toml, line 7: unknown field `quiet_aftr`, expected one of",
            "`quiet_after`",
        ],
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let (f, _) = delivered();
    let before = read(&f.join("state/checkpoint.toml"));
    let out = f.run(&["run", "--once", "--config", "nope.toml"]);
    refused(
        &out,
        &["config nope.toml: cannot read: No such file or directory"],
    );
    assert_eq!(read(&f.join("state/checkpoint.toml")), before);
}

// ---------------------------------------------------------------- checkpoint

#[test]
fn an_empty_checkpoint_stops_run_and_the_previous_save_restores_it() {
    let (f, journal) = delivered();
    // A second run saves again, so checkpoint.toml.prev exists.
    append(&f.join("p4root/journal"), &recs(10, 12));
    assert!(run_once(&f).status.success());
    let cp = f.join("state/checkpoint.toml");
    f.write("state/checkpoint.toml", "");
    append(&f.join("p4root/journal"), &recs(12, 15));
    refused(
        &run_once(&f),
        &[
            &format!("checkpoint {}: the checkpoint is empty", cp.display()),
            "restore the previous save from checkpoint.toml.prev beside it (`cp checkpoint.toml.prev checkpoint.toml`)",
            "logdaemon checkpoint set",
        ],
    );
    assert_eq!(read(&cp), b"", "the damaged checkpoint was changed");
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 12),
        "entries were delivered from an empty checkpoint"
    );
    // The advice works: the previous save is behind the output, the file
    // listener's own record skips what it already holds.
    fs::copy(f.join("state/checkpoint.toml.prev"), &cp).unwrap();
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 15),
        "lost or repeated after restoring the previous save"
    );
    assert!(journal.len() < recs(0, 15).len());
}

// ---------------------------------------------------------------- plugins

#[test]
fn a_missing_builtin_plugin_names_the_library_and_the_fix() {
    let (f, journal) = delivered();
    let before = read(&f.join("state/checkpoint.toml"));
    append(&f.join("p4root/journal"), &recs(10, 12));
    let empty = f.join("no-plugins");
    fs::create_dir(&empty).unwrap();
    let out = Command::new(bin())
        .args(["run", "--once", "--config", "cfg.toml"])
        .current_dir(f.path())
        .env("LOGDAEMON_PLUGIN_DIR", &empty)
        .output()
        .unwrap();
    let lib = empty.join("liblogdaemon_listener_file.so");
    refused(
        &out,
        &[
            &format!(
                "plugin \"file\": built-in listener library {} not found",
                lib.display()
            ),
            "build the workspace",
            "or set plugin_dir in the config",
        ],
    );
    assert_eq!(read(&f.join("state/checkpoint.toml")), before);
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), journal);
}

#[test]
fn a_plugin_owned_by_another_user_is_refused() {
    let f = fixture(&recs(0, 3), "");
    let dir = f.join("plugins");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let so = dir.join("libkit.so");
    fs::copy(test_plugin("testkit"), &so).unwrap();
    fs::set_permissions(&so, fs::Permissions::from_mode(0o755)).unwrap();
    f.write("cfg.toml", config("", "\n[[journal.listener]]\nname = \"kit\"\nplugin = \"plugins/libkit.so\"\n[journal.listener.config]\npath = \"out/kit.jsonl\"\n"));
    // Owned by a user that is neither root nor the daemon's.
    std::os::unix::fs::chown(&so, Some(54321), Some(54321)).expect("chown needs root");
    let me = euid();
    let canon = fs::canonicalize(&so).unwrap();
    for args in [
        &["check", "--config", "cfg.toml"][..],
        &["run", "--once", "--config", "cfg.toml"][..],
    ] {
        let out = f.run(args);
        refused(
            &out,
            &[&format!("plugin {}: file {} is owned by uid 54321, neither root nor this daemon's user (uid {me})", canon.display(), canon.display()), &format!("fix: chown it to root or to uid {me}")],
        );
    }
    assert!(
        !f.join("out/kit.jsonl").exists(),
        "the refused plugin was run"
    );
    assert!(
        !f.join("state/checkpoint.toml").exists(),
        "a checkpoint was written without a listener"
    );
    // The same file, given back to root, loads.
    std::os::unix::fs::chown(&so, Some(0), Some(0)).unwrap();
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(acked(&f, "kit"), Some((1, recs(0, 3).len() as u64)));
}

#[test]
fn a_disabled_listener_s_library_stays_loaded() {
    // A listener that fails for good is disabled, its library is never
    // unloaded (its threads or TLS destructors may still run): it stays
    // mapped in the running daemon while the other listener goes on.
    let good = recs(0, 5);
    let cfg = config(
        "",
        &format!(
            "{}{}",
            kit_listener("kit", "on_failure = \"disable\"", "fatal_on = \"BOOM\""),
            file_listener("copy")
        ),
    );
    let f = fixture(&good, &cfg);
    let d = Daemon::start(&f);
    let lib = fs::canonicalize(test_plugin("testkit")).unwrap();
    let maps = |pid: u32| fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    assert!(
        maps(d.pid()).contains(&lib.display().to_string()),
        "the plugin is not mapped after loading"
    );
    // The good records acknowledged (and saved) first: the failing batch
    // then holds only what comes after them.
    wait_until(
        15,
        "the good records to be acknowledged",
        || acked(&f, "kit") == Some((1, good.len() as u64)),
        || d.log(),
    );
    append(
        &f.join("p4root/journal"),
        &format!("{}{}", rec(5, "BOOM"), recs(6, 8)),
    );
    wait_until(
        15,
        "the listener to be disabled",
        || d.log().contains("listener disabled"),
        || d.log(),
    );
    let all = format!("{good}{}{}", rec(5, "BOOM"), recs(6, 8));
    wait_until(
        15,
        "the other listener to go on",
        || fs::read_to_string(f.join("out/copy.raw")).unwrap_or_default() == all,
        || d.log(),
    );
    assert!(
        maps(d.pid()).contains(&lib.display().to_string()),
        "the disabled listener's library was unloaded:\n{}",
        d.log()
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert_eq!(
        acked(&f, "kit"),
        Some((1, good.len() as u64)),
        "the disabled listener's cursor moved\n{log}"
    );
}

fn euid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

// ---------------------------------------------------------------- permissions

#[test]
fn a_state_dir_writable_by_others_is_refused_and_left_alone() {
    let (f, journal) = delivered();
    let state = f.join("state");
    let cp = read(&state.join("checkpoint.toml"));
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    append(&f.join("p4root/journal"), &recs(10, 12));
    let sd = fs::canonicalize(&state).unwrap();
    refused(
        &run_once(&f),
        &[&format!(
            "state directory {}: writable by group or others (mode 0777); run `chmod 700 {}`",
            sd.display(),
            sd.display()
        )],
    );
    assert_eq!(
        fs::metadata(&state).unwrap().permissions().mode() & 0o7777,
        0o777,
        "the mode was changed behind the operator's back"
    );
    assert_eq!(read(&state.join("checkpoint.toml")), cp);
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), journal);
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(run_once(&f).status.success());
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 12)
    );
}

#[test]
fn a_fresh_state_dir_is_created_private() {
    let (f, _) = delivered();
    let mode = fs::metadata(f.join("state")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "state directory created with mode {mode:04o}");
    let mode = fs::metadata(f.join("state/checkpoint.toml"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode & 0o077, 0, "checkpoint readable by others: {mode:04o}");
}

#[test]
fn an_output_on_a_read_only_filesystem_stops_run_naming_it() {
    let journal = recs(0, 10);
    let f = fixture(&journal, &config("", &file_listener("copy")));
    let _ro = Tmpfs::mount(&f.join("out"), "1m", "ro");
    let out_path = f.join("out/copy.raw");
    refused(
        &run_once(&f),
        &[&format!("listener \"copy\" of journal \"p4\" could not start: listener \"copy\": cannot create output {}: Read-only file system", out_path.display())],
    );
    assert_eq!(
        acked(&f, "copy"),
        None,
        "a position was acknowledged for a listener that never started"
    );
    drop(_ro);
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&out_path).unwrap(), journal);
}

// ---------------------------------------------------------------- disk full

#[test]
fn a_full_output_disk_is_retried_and_the_output_completes_once_there_is_room() {
    // More than the 1 MiB the output may take.
    let journal = recs(0, 30_000);
    assert!(journal.len() > 1 << 20);
    let f = fixture(&journal, &config("", &file_listener("copy")));
    let disk = Tmpfs::mount(&f.join("out"), "1m", "");
    let out_path = f.join("out/copy.raw");
    let d = Daemon::start(&f);
    // Batches grow from small ones: the write that fails may be a later one.
    let expect = format!(" bytes to {} at byte ", out_path.display());
    wait_until(
        30,
        "the disk-full retry",
        || {
            let log = d.log();
            log.contains("listener asks to retry: cannot write ")
                && log.contains(&expect)
                && log.contains(": No space left on device (os error 28); retrying")
        },
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    let got = acked(&f, "copy").map_or(0, |(_, o)| o);
    assert!(
        got < journal.len() as u64,
        "acknowledged {got} bytes although the output cannot hold them:\n{log}"
    );
    // Room again: the next run writes everything, nothing twice.
    disk.resize("8m");
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        read(&out_path) == journal.as_bytes(),
        "the output differs from the journal after the disk-full retry"
    );
    assert_eq!(acked(&f, "copy"), Some((1, journal.len() as u64)));
}

#[test]
fn a_full_state_disk_at_start_stops_before_anything_is_delivered() {
    let journal = recs(0, 10);
    let f = fixture(&journal, &config("", &file_listener("copy")));
    let state = f.join("state");
    let disk = Tmpfs::mount(&state, "1m", "mode=0700");
    fill(&state.join("filler"));
    refused(
        &run_once(&f),
        &[
            &format!(
                "checkpoint {}: cannot write the lock file: No space left on device",
                state.join("logdaemon.lock").display()
            ),
            "check that the path exists",
        ],
    );
    assert!(
        !f.join("out/copy.raw").exists(),
        "entries were delivered without a lock"
    );
    fs::remove_file(state.join("filler")).unwrap();
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), journal);
    drop(disk);
}

#[test]
fn a_full_state_disk_when_saving_keeps_the_previous_checkpoint() {
    let journal = recs(0, 10);
    let f = fixture(&journal, &config("", &file_listener("copy")));
    let state = f.join("state");
    let disk = Tmpfs::mount(&state, "1m", "mode=0700");
    assert!(run_once(&f).status.success());
    let cp = state.join("checkpoint.toml");
    let before = read(&cp);
    fill(&state.join("filler"));
    append(&f.join("p4root/journal"), &recs(10, 30));
    let err = refused(
        &run_once(&f),
        &[
            "cannot write the temporary checkpoint: No space left on device",
            &state.join("checkpoint.toml.tmp").display().to_string(),
        ],
    );
    assert_eq!(
        read(&cp),
        before,
        "the checkpoint changed on a full disk:\n{err}"
    );
    // The listener got the entries; its own record keeps them from being written twice.
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 30)
    );
    fs::remove_file(state.join("filler")).unwrap();
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 30),
        "written twice after the disk had room again"
    );
    assert_eq!(acked(&f, "copy"), Some((1, recs(0, 30).len() as u64)));
    drop(disk);
}

// ---------------------------------------------------------------- secrets

/// An `email` listener logging in to a real STARTTLS relay with a password
/// from the environment (`password_env`) or a file (`password_file`).
fn email_config(srv: &SmtpServer, password: &str) -> String {
    let ca = srv.ca_cert().expect("the TLS server has a CA");
    format!(
        "state_dir = \"state\"\n\n[[journal]]\nname = \"log\"\npath = \"app.log\"\nformat = \"lines\"\nstart = \"beginning\"\nquiet_after = \"200ms\"\n\n\
         [[journal.listener]]\nname = \"mail\"\nplugin = \"email\"\n[journal.listener.config]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
         tls = \"starttls\"\nca_file = \"{}\"\ntimeout = \"20s\"\nfrom = \"logdaemon@example.com\"\nto = [\"dev@example.com\"]\n\
         username = \"alice\"\n{password}\nmax_entries = 1\n",
        srv.port(),
        ca.display()
    )
}

fn run_with_env(f: &Fixture, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(["run", "--once", "--config", "cfg.toml"])
        .current_dir(f.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run logdaemon")
}

#[test]
fn the_smtp_password_appears_nowhere_in_the_daemon_log() {
    const SECRET: &str = "s3cret-Horse-7781";
    const WRONG: &str = "wrong-Battery-4410";
    let srv = SmtpServer::start_with(Options {
        tls: ServerTls::Starttls,
        auth: Some(("alice".into(), SECRET.into())),
    });
    let f = Fixture::new();
    f.write("app.log", "first line\nsecond line\n");
    // A wrong password from the environment: fatal, nothing mailed, nothing acknowledged.
    f.write(
        "cfg.toml",
        email_config(&srv, "password_env = \"LD_TEST_SMTP_PW\""),
    );
    let out = run_with_env(
        &f,
        &[("LD_TEST_SMTP_PW", WRONG), ("LOGDAEMON_LOG", "trace")],
    );
    let err = refused(
        &out,
        &[
            "refused the login",
            "check `username` and the password in `password_file`/`password_env`",
        ],
    );
    for leak in [WRONG, SECRET] {
        assert!(
            !err.contains(leak) && !String::from_utf8_lossy(&out.stdout).contains(leak),
            "the password appears in the daemon's output:\n{err}"
        );
    }
    assert!(srv.messages().is_empty(), "mailed with a refused login");
    assert_eq!(
        acked(&f, "mail").map_or(0, |(_, o)| o),
        0,
        "entries acknowledged although nothing was mailed"
    );
    // The right password from a file: mailed, and still never shown.
    f.write("smtp-password", format!("{SECRET}\n"));
    fs::set_permissions(f.join("smtp-password"), fs::Permissions::from_mode(0o600)).unwrap();
    f.write(
        "cfg.toml",
        email_config(&srv, "password_file = \"smtp-password\""),
    );
    let out = run_with_env(&f, &[("LOGDAEMON_LOG", "trace")]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains(SECRET) && !String::from_utf8_lossy(&out.stdout).contains(SECRET),
        "the password appears in the daemon's output:\n{err}"
    );
    let m = srv.wait_for_messages(2, std::time::Duration::from_secs(30));
    assert_eq!(m.len(), 2);
    assert!(m.iter().all(|m| m.tls && m.authenticated));
    assert!(
        m.iter()
            .all(|m| !String::from_utf8_lossy(&m.raw()).contains(SECRET)),
        "the password is in a mail"
    );
}

// ---------------------------------------------------------------- hooks

#[test]
fn hostile_entry_data_reaches_a_hook_on_stdin_only_never_a_shell_or_its_argv() {
    // Records whose payloads are shell syntax: if any reached a shell or the
    // argv, a file would be created or the argv would show them.
    let payloads = [
        "$(touch pwned1)",
        "`touch pwned2`",
        "; touch pwned3 ;",
        "MARK-7731 | touch pwned4",
    ];
    let journal: String = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| rec(i, p))
        .collect();
    let f = fixture(&journal, "");
    let hook = f.write("hook.sh", "#!/bin/sh\ncat >> hook.stdin\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> hook.argv\ntr '\\0' '\\n' < /proc/$$/cmdline >> hook.argv\nenv >> hook.env\n");
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    f.write(
        "cfg.toml",
        config("", "\n[[journal.listener]]\nname = \"hook\"\nplugin = \"exec\"\n[journal.listener.config]\ncommand = [\"./hook.sh\", \"--literal\"]\nstdin = \"raw\"\ntimeout = \"30s\"\n"),
    );
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(f.join("hook.stdin")).unwrap(),
        journal,
        "the entries on stdin, byte for byte"
    );
    let argv = fs::read_to_string(f.join("hook.argv")).unwrap();
    let env = fs::read_to_string(f.join("hook.env")).unwrap();
    for p in payloads {
        assert!(
            !argv.contains(p) && !env.contains(p),
            "entry data {p:?} reached the hook's argv or environment:\n{argv}\n{env}"
        );
    }
    assert!(argv.lines().any(|l| l == "--literal"), "{argv}");
    for n in 1..=4 {
        assert!(
            !f.join(format!("pwned{n}")).exists() && !f.join(format!("p4root/pwned{n}")).exists(),
            "entry data ran in a shell"
        );
    }
    assert_eq!(acked(&f, "hook"), Some((1, journal.len() as u64)));
}

#[test]
fn the_key_passphrase_appears_nowhere_in_the_daemon_log() {
    const SECRET: &str = "locked-Staple-5092";
    const WRONG: &str = "wrong-Staple-1234";
    let sshd =
        logdaemon_tests::sshd::Sshd::start().expect("start sshd (apt-get install openssh-server)");
    let f = Fixture::new();
    // A passphrase-protected key, authorized on the server.
    let key = f.join("id_locked");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", SECRET, "-C", "locked", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen failed");
    let authorized = sshd.dir().join("authorized_keys");
    let keys = fs::read_to_string(&authorized).unwrap()
        + &fs::read_to_string(key.with_extension("pub")).unwrap();
    fs::write(&authorized, keys).unwrap();
    let remote = f.join("standby");
    fs::create_dir(&remote).unwrap();
    let journal = "@pv@ 0 @db.x@ 1 \n@ex@ 1 1\n";
    f.write("journal", journal);
    let cfg = |pass: &str| {
        format!(
            "state_dir = \"state\"\n\n[[journal]]\nname = \"p4\"\npath = \"journal\"\nformat = \"p4\"\nstart = \"beginning\"\nquiet_after = \"200ms\"\n\n\
             [[journal.listener]]\nname = \"standby\"\nplugin = \"hot-backup\"\n[journal.listener.config]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\n\
             identity_file = \"{}\"\nknown_hosts = \"{}\"\nremote_dir = \"{}\"\nconnect_timeout = \"5s\"\nio_timeout = \"20s\"\n{pass}\n",
            sshd.port(),
            sshd.user(),
            key.display(),
            sshd.known_hosts().display(),
            remote.display()
        )
    };
    // A wrong passphrase from the environment: fatal, naming the key, nothing sent.
    f.write("cfg.toml", cfg("passphrase_env = \"LD_TEST_KEY_PASS\""));
    let out = run_with_env(
        &f,
        &[("LD_TEST_KEY_PASS", WRONG), ("LOGDAEMON_LOG", "trace")],
    );
    let err = refused(
        &out,
        &["hot-backup listener 'standby'", &key.display().to_string()],
    );
    for leak in [WRONG, SECRET] {
        assert!(
            !err.contains(leak) && !String::from_utf8_lossy(&out.stdout).contains(leak),
            "the passphrase appears in the daemon's output:\n{err}"
        );
    }
    assert!(
        !remote.join("journal").exists(),
        "sent with a key that could not be unlocked"
    );
    // The right passphrase from a file: shipped, and still never shown.
    f.write("key-passphrase", format!("{SECRET}\n"));
    fs::set_permissions(f.join("key-passphrase"), fs::Permissions::from_mode(0o600)).unwrap();
    f.write("cfg.toml", cfg("passphrase_file = \"key-passphrase\""));
    let out = run_with_env(&f, &[("LOGDAEMON_LOG", "trace")]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains(SECRET) && !String::from_utf8_lossy(&out.stdout).contains(SECRET),
        "the passphrase appears in the daemon's output:\n{err}"
    );
    assert_eq!(fs::read_to_string(remote.join("journal")).unwrap(), journal);
}
