//! The listener ABI as a C author sees it: the example C listener
//! (listeners/example-c) compiled here with the system C compiler against
//! the checked-in header and loaded into the real daemon, in its version-2
//! and version-1 builds, with its exact output against a journal; and the
//! host refusing an acknowledgement in the middle of a record.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixture::{data_dir, stderr, Fixture};
use crate::host::{acked, append, config, kit_listener, rec, recs, wait_until, Daemon};

/// Builds the example C listener with its Makefile (`target`: `all` or
/// `v1`) into `dir`, and returns the library.
pub(crate) fn build_c_listener(dir: &Path, target: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let src = crate::fixture::manifest_dir().join("../listeners/example-c");
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(&src)
        .arg(format!("OUT={}", dir.display()))
        .arg(target)
        .output()
        .expect("run make (scripts/deps.sh installs it with the C compiler)");
    assert!(
        out.status.success(),
        "building the C listener failed:\n{}",
        stderr(&out)
    );
    let name = if target == "v1" {
        "liblogdaemon_example_c_v1.so"
    } else {
        "liblogdaemon_example_c.so"
    };
    dir.join(name)
}

/// A fixture with the test journal and a config with the C listener `lib`.
fn c_fixture(lib: &Path, journal_extra: &str, listener_config: &str) -> Fixture {
    let f = Fixture::new();
    f.write(
        "p4root/journal",
        fs::read(data_dir().join("c-listener/journal")).unwrap(),
    );
    fs::create_dir_all(f.join("out")).unwrap();
    let listener = format!(
        "\n[[journal.listener]]\nname = \"changes\"\nplugin = \"{}\"\n[journal.listener.config]\n{listener_config}\n",
        lib.display()
    );
    f.write("cfg.toml", config(journal_extra, &listener));
    f
}

fn expected() -> String {
    fs::read_to_string(data_dir().join("c-listener/expected.txt")).unwrap()
}

fn journal_len() -> u64 {
    fs::metadata(data_dir().join("c-listener/journal"))
        .unwrap()
        .len()
}

#[test]
fn the_c_listener_writes_the_fields_of_whole_transactions_and_the_rest_at_flush() {
    let scratch = Fixture::new();
    let lib = build_c_listener(&scratch.join("plugins"), "all");
    let f = c_fixture(&lib, "", "path = \"out/changes.txt\"");
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(
        fs::read_to_string(f.join("out/changes.txt")).unwrap(),
        expected()
    );
    // The entry after the last `ex` was held by `listen` and written by `flush`.
    assert!(
        log.contains("example-c: flush: wrote 1 held entries"),
        "{log}"
    );
    assert!(log.contains("abi=2"), "{log}");
    // The journal says it is number 2 (its db.counters journal record).
    assert_eq!(acked(&f, "changes"), Some((2, journal_len())));
}

#[test]
fn the_c_listener_built_against_the_version_1_layout_still_loads_and_hears_no_data() {
    let scratch = Fixture::new();
    let lib = build_c_listener(&scratch.join("plugins"), "v1");
    let f = c_fixture(
        &lib,
        "quiet_after = \"300ms\"",
        "path = \"out/changes.txt\"",
    );
    let d = Daemon::start(&f);
    let path = f.join("out/changes.txt");
    wait_until(
        15,
        "the held entry written once the journal is quiet",
        || fs::read_to_string(&path).unwrap_or_default() == expected(),
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "exit {st}: {log}");
    assert!(log.contains("abi=1"), "{log}");
    assert!(
        log.contains("example-c: the journal is quiet: wrote 1 held entries"),
        "{log}"
    );
    // The journal says it is number 2 (its db.counters journal record).
    assert_eq!(acked(&f, "changes"), Some((2, journal_len())));
}

#[test]
fn the_c_listener_without_a_path_fails_to_open_with_its_own_message() {
    let scratch = Fixture::new();
    let lib = build_c_listener(&scratch.join("plugins"), "all");
    let f = c_fixture(&lib, "", "# no path");
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let log = stderr(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("listener \"changes\" (example-c): the config needs path = \"FILE\""),
        "{log}"
    );
    assert!(!f.join("out/changes.txt").exists());
}

#[test]
fn an_acknowledgement_in_the_middle_of_a_record_is_refused_logged_and_never_recorded() {
    let first = recs(0, 3);
    let kit = kit_listener(
        "buggy",
        "retry_max = \"200ms\"",
        "ack_mid_record_on = \"MIDDLE\"",
    );
    let f = crate::host::fixture(&first, &config("", &kit));
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let good = (1, first.len() as u64);
    assert_eq!(acked(&f, "buggy"), Some(good));
    // One good record, then one whose middle the listener acknowledges.
    append(
        &f.join("p4root/journal"),
        &format!("{}{}", rec(3, "v"), rec(4, "MIDDLE")),
    );
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let log = stderr(&out);
    assert!(
        log.contains("which is not on a record boundary: refused, the cursor stays at"),
        "{log}"
    );
    assert!(log.contains("listener=buggy"), "{log}");
    assert_eq!(acked(&f, "buggy"), Some(good), "{log}");
}
