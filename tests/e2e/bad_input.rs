//! Bad input, end to end: every row of the table "Bad input: what
//! happens" (docs/bad-input.md) is backed by a test that asserts the message (its characteristic
//! parts) and that nothing was lost. The rows whose test lives elsewhere are
//! listed here; the rest are the tests of this module (the real binary, real
//! files, a real tmpfs for a full disk, a real SMTP server).
//!
//! | row (README)                              | test                                                                                        |
//! |-------------------------------------------|---------------------------------------------------------------------------------------------|
//! | config: value invalid                     | bad_input::config::a_bad_duration_in_the_config_runs_nothing                                |
//! | config: unknown key                       | bad_input::config::an_unknown_config_key_runs_nothing                                       |
//! | config: listener table refused by `check` | listener_check::check_refuses_an_unknown_key_in_a_file_listener_table (and the hot-backup, syslog, email ones beside it) |
//! | config: file missing                      | bad_input::config::a_missing_config_file_is_named                                           |
//! | config: `[http] listen` remote            | status::a_remote_listen_address_is_refused_unless_allowed                                   |
//! | config: `[http] listen` cannot listen     | status::an_endpoint_that_cannot_listen_stops_the_start_and_says_where                       |
//! | status: cannot tell                       | status::status_exit_codes_in_each_state_with_the_daemon_running_or_not                      |
//! | journal: predecessor deleted              | host::predecessor::a_deleted_predecessor_stops_the_daemon_with_the_way_out_and_an_untouched_checkpoint |
//! | journal: predecessor deleted, report      | host::predecessor::with_on_gap_report_the_gap_reaches_the_listeners_and_the_rest_follows    |
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
//! | checkpoint: does not parse                | commands::checkpoint::a_corrupt_checkpoint_stops_run_naming_the_file_and_line_and_is_left_as_it_was |
//! | checkpoint: empty                         | bad_input::config::an_empty_checkpoint_stops_run_and_the_previous_save_restores_it          |
//! | checkpoint: newer format                  | state parse::tests::other_versions_are_refused_as_newer_before_their_unknown_keys           |
//! | checkpoint: state directory in use        | commands::checkpoint::checkpoint_set_and_a_second_run_while_the_daemon_runs_are_refused     |
//! | checkpoint: `set` mid-record              | commands::checkpoint::checkpoint_set_in_the_middle_of_a_record_is_refused_with_the_boundaries |
//! | checkpoint: `set` for a file not at hand  | commands::checkpoint::checkpoint_set_for_a_file_not_at_hand_needs_force                     |
//! | plugin: writable by others                | commands::plugins::a_group_writable_plugin_file_is_refused (+ _in_/_below_a_group_writable_directory) |
//! | plugin: owned by another user             | bad_input::plugins::a_plugin_owned_by_another_user_is_refused                               |
//! | plugin: another ABI                       | commands::plugins::a_plugin_of_another_abi_version_is_refused                               |
//! | plugin: no entry symbol                   | commands::plugins::a_library_without_the_entry_symbol_is_refused                            |
//! | plugin: path missing                      | commands::plugins::a_plugin_path_that_does_not_exist_is_refused                             |
//! | plugin: never unloaded (security)         | bad_input::plugins::a_disabled_listener_s_library_stays_loaded                              |
//! | plugin: built-in missing                  | bad_input::plugins::a_missing_builtin_plugin_names_the_library_and_the_fix                  |
//! | listener fails for good                   | host::failures::a_fatal_listener_with_on_failure_stop_stops_the_daemon_after_the_checkpoint |
//! | every listener disabled                   | host::failures::when_every_listener_is_disabled_the_daemon_exits_non_zero_keeping_the_cursors |
//! | file listener: output truncated           | listeners::a_truncated_output_is_refused_with_the_path_and_both_lengths                     |
//! | file listener: output without a record    | file tests/exactly_once.rs::existing_output_without_a_record_is_refused                     |
//! | SSH: unknown or changed host key          | hot-backup tests/standby.rs::unknown_or_mismatched_host_keys_are_fatal_with_the_fingerprint_and_nothing_is_sent |
//! | SSH: key readable by others / refused key | hot-backup tests/standby.rs::a_refused_user_key_and_a_readable_key_file_are_fatal_with_clear_messages |
//! | SSH: standby unreachable                  | hot-backup tests/standby.rs::an_unreachable_standby_is_retried_not_fatal                    |
//! | SSH: standby differs                      | hot-backup tests/standby.rs::a_standby_that_differs_from_the_journal_is_fatal_naming_file_and_offset |
//! | SSH: standby disk full                    | hot-backup tests/standby.rs::a_full_disk_on_the_standby_is_retried_and_cut_back_to_whole_transactions |
//! | secrets: key passphrase never logged      | bad_input::secrets::the_key_passphrase_appears_nowhere_in_the_daemon_log (security)                   |
//! | SMTP: untrusted certificate               | email tests/tls.rs::an_untrusted_certificate_is_never_accepted                              |
//! | SMTP: wrong password                      | email tests/tls.rs::a_wrong_password_is_fatal_even_with_on_reject_skip, bad_input::secrets::the_smtp_password_appears_nowhere_in_the_daemon_log |
//! | SMTP: recipient rejected                  | email tests/delivery.rs::a_rejected_recipient_is_fatal_or_skipped_and_reported              |
//! | SMTP: no STARTTLS offered                 | email tests/delivery.rs::starttls_is_required_and_never_falls_back_to_plain_text            |
//! | SMTP: relay down or 4xx                   | email tests/delivery.rs::server_down_or_tempfailing_loses_and_repeats_nothing               |
//! | SMTP: password inline in the config       | email src/config.rs::password_from_env_or_file_never_inline                                 |
//! | hooks: entry data never in argv or a shell | bad_input::secrets::hostile_entry_data_reaches_a_hook_on_stdin_only_never_a_shell_or_its_argv (security) |
//! | permissions: state dir open to others     | bad_input::filesystem::a_state_dir_writable_by_others_is_refused_and_left_alone             |
//! | permissions: output on a read-only fs     | bad_input::filesystem::an_output_on_a_read_only_filesystem_stops_run_naming_it              |
//! | disk full: listener output                | bad_input::filesystem::a_full_output_disk_is_retried_and_the_output_completes_once_there_is_room |
//! | disk full: state dir at start             | bad_input::filesystem::a_full_state_disk_at_start_stops_before_anything_is_delivered        |
//! | disk full: state dir when saving          | bad_input::filesystem::a_full_state_disk_when_saving_keeps_the_previous_checkpoint          |
//! | safety rows (outputs, hooks, FIFOs, links, `--once`, jsonl bytes) | listed at the top of `tests/e2e/safety.rs`                                  |
//! | checkpoint: position table removed        | state parse::tests::a_removed_journal_table_is_named_with_what_it_records                   |
//! | config: a glob journal that cannot work   | logdaemon config::glob::tests (one per refusal)                                              |
//! | config: glob listener path without {file} | glob::commands::check_lists_a_globs_streams_and_refuses_a_shared_output_at_its_line         |
//! | glob: a new file's listener refuses       | glob::security::files_another_user_creates_in_the_globs_directory_read_and_overwrite_nothing_else |
//! | checkpoint: `set` of a glob journal       | glob::commands::checkpoint_set_and_dump_take_a_stream_name                                  |
//!
//! The full-disk and read-only tests mount a small tmpfs (they run as root);
//! when mounting is impossible they fail, naming why, rather than pass.

mod config;
mod filesystem;
mod plugins;
mod secrets;

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::fixture::{stderr, Fixture};
use crate::host::{config, file_listener, fixture, recs};

// ---------------------------------------------------------------- helpers

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
