//! `check` and `run` refusing plugin files: of another ABI, without the
//! entry symbol, missing, or that others could replace (the file, its
//! directory or one above).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::fixture::{stderr, stdout, Fixture};
use crate::host::{config, entry_text, fixture, recs, test_plugin};

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
