//! Installing logdaemon: the man pages the binary writes from its command
//! line, and the .deb of `scripts/package-deb.sh` built from the binaries
//! under test, installed with `dpkg -i` (as root: CI runs the tests as
//! root), then used as an operator would from `PATH`: `logdaemon check` on
//! the installed example config (its built-in listener found in
//! /usr/lib/logdaemon/plugins), `systemd-analyze verify` on the installed
//! unit, the man pages in `man`'s path, and a printed recovery command run
//! exactly as printed. The package is purged at the end, whatever happens.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::fixture::{bin, stderr, stdout, target_dir, Fixture};
use crate::host::{append, config, file_listener, fixture, recs};

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

#[test]
fn the_man_pages_cover_every_subcommand_with_its_options_help() {
    let f = Fixture::new();
    ok(&f.run(&["man", "--output", "man"]), "logdaemon man");
    for page in [
        "logdaemon",
        "logdaemon-run",
        "logdaemon-check",
        "logdaemon-dump",
        "logdaemon-replay",
        "logdaemon-init",
        "logdaemon-checkpoint",
        "logdaemon-checkpoint-show",
        "logdaemon-checkpoint-set",
        "logdaemon-man",
    ] {
        let text = fs::read_to_string(f.join(format!("man/{page}.1")))
            .unwrap_or_else(|e| panic!("{page}.1: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text}"
        );
    }
    let run = fs::read_to_string(f.join("man/logdaemon-run.1")).unwrap();
    for needle in [
        "\\-\\-once",
        "Deliver everything available now",
        "\\-\\-config",
        "The config file (TOML)",
        "\\-\\-log\\-format",
    ] {
        assert!(
            run.contains(needle),
            "no {needle:?} in logdaemon-run.1:\n{run}"
        );
    }
    let set = fs::read_to_string(f.join("man/logdaemon-checkpoint-set.1")).unwrap();
    assert!(set.contains("The byte offset in that file"), "{set}");
}

/// Purges the package when dropped, so that a failed test leaves no install behind.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "logdaemon"]).output();
    }
}

fn root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    stdout(&out).trim() == "0"
}

#[test]
fn the_deb_installs_checks_its_example_config_verifies_its_unit_and_recovers_from_path() {
    assert!(
        root(),
        "dpkg -i needs root: run the end-to-end tests as root (CI does)"
    );
    let scratch = Fixture::new();
    let script = crate::fixture::manifest_dir().join("../scripts/package-deb.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--from")
        .arg(target_dir())
        .arg("--out")
        .arg(scratch.join("deb"))
        .arg("--fast")
        .output()
        .unwrap();
    ok(&out, "scripts/package-deb.sh");
    let deb = stdout(&out).lines().last().unwrap_or_default().to_string();
    assert!(deb.ends_with(".deb") && Path::new(&deb).exists(), "{deb}");
    let listing = Command::new("dpkg-deb")
        .args(["-c", &deb])
        .output()
        .unwrap();
    ok(&listing, "dpkg-deb -c");
    let listing = stdout(&listing);
    for path in [
        "./usr/bin/logdaemon",
        "./usr/lib/logdaemon/plugins/liblogdaemon_listener_file.so",
        "./usr/lib/logdaemon/plugins/liblogdaemon_listener_hot_backup.so",
        "./usr/lib/systemd/system/logdaemon.service",
        "./etc/logdaemon/logdaemon.toml",
        "./usr/share/man/man1/logdaemon.1.gz",
        "./usr/share/man/man1/logdaemon-run.1.gz",
    ] {
        assert!(
            listing.contains(path),
            "no {path} in the package:\n{listing}"
        );
    }

    let _purge = Installed;
    ok(
        &Command::new("dpkg").args(["-i", &deb]).output().unwrap(),
        "dpkg -i",
    );
    let check = Command::new("logdaemon")
        .args(["check", "--config", "/etc/logdaemon/logdaemon.toml"])
        .output()
        .unwrap();
    ok(&check, "logdaemon check on the installed example config");
    assert!(
        stdout(&check).contains(
            "from /usr/lib/logdaemon/plugins/liblogdaemon_listener_file.so; config checked"
        ),
        "{}",
        stdout(&check)
    );
    let verify = Command::new("systemd-analyze")
        .args(["verify", "/usr/lib/systemd/system/logdaemon.service"])
        .output()
        .unwrap();
    ok(&verify, "systemd-analyze verify");
    let warnings: Vec<&str> = std::str::from_utf8(&verify.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.contains("logdaemon.service"))
        .collect();
    assert!(warnings.is_empty(), "the unit has warnings: {warnings:#?}");
    let man = Command::new("man")
        .args(["-w", "logdaemon-run"])
        .output()
        .unwrap();
    ok(&man, "man -w logdaemon-run");
    assert!(stdout(&man).contains("/usr/share/man/man1/logdaemon-run.1"));

    recovery_command_works_from_path();
}

/// A lost predecessor: the installed daemon refuses to go on and prints
/// `logdaemon checkpoint set …`; that line, run as printed (the command
/// found through `PATH`), lets the next run deliver the new journal.
fn recovery_command_works_from_path() {
    let first = recs(0, 10);
    let f = fixture(&first, &config("", &file_listener("copy")));
    let installed = |args: &[&str]| {
        Command::new("logdaemon")
            .args(args)
            .current_dir(f.path())
            .output()
            .unwrap()
    };
    ok(
        &installed(&["run", "--once", "--config", "cfg.toml"]),
        "the first run",
    );
    let live = f.join("p4root/journal");
    append(&live, &recs(10, 20));
    fs::rename(&live, f.join("p4root/journal.1")).unwrap();
    fs::remove_file(f.join("p4root/journal.1")).unwrap();
    let next = recs(20, 30);
    f.write("p4root/journal", &next);
    let out = installed(&["run", "--once", "--config", "cfg.toml"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let line = err
        .lines()
        .find_map(|l| l.find("logdaemon checkpoint set ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no recovery command:\n{err}"));
    let mut words = line.split_whitespace();
    let program = words.next().unwrap();
    assert_eq!(program, "logdaemon", "{line}");
    let out = Command::new(program)
        .args(words)
        .current_dir(f.path())
        .output()
        .unwrap();
    ok(&out, line);
    ok(
        &installed(&["run", "--once", "--config", "cfg.toml"]),
        "the run after the recovery",
    );
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        format!("{first}{next}")
    );
    // Not the binary under test by accident: the one found in PATH is the installed one.
    assert_ne!(bin(), Path::new("/usr/bin/logdaemon"));
}
