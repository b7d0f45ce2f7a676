//! A line log rotated Perforce-style (`app.log` renamed to `app.log.1`,
//! later to `app.log.2`, `app.log.3`: higher is newer) under the default
//! config, which assumes logrotate's numbering (higher is older): the
//! files the daemon has finished are known by content, so a name order
//! that contradicts it never makes it read them again.

use std::fs;

use crate::fixture::{stderr, Fixture};
use crate::host::file_listener;

fn config() -> String {
    format!(
        "state_dir = \"state\"\n\n[[journal]]\nname = \"app\"\npath = \"logs/app.log\"\nformat = \"lines\"\n{}",
        file_listener("copy")
    )
}

fn lines(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("line {i:05}\n")).collect()
}

/// Each written line at most once in `out`; returns how many are in it.
fn count_once(out: &str) -> usize {
    let mut seen = std::collections::HashSet::new();
    for l in out.lines() {
        assert!(seen.insert(l.to_string()), "{l:?} delivered twice");
    }
    seen.len()
}

#[test]
fn ascending_rotation_of_a_line_log_one_run_per_generation_delivers_once() {
    let f = Fixture::new();
    f.write("cfg.toml", config());
    let live = f.join("logs/app.log");
    let mut written = String::new();
    for g in 1..=5 {
        let gen = lines(g * 100, g * 100 + 100);
        f.write("logs/app.log", &gen);
        written.push_str(&gen);
        let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
        assert!(out.status.success(), "generation {g}: {}", stderr(&out));
        let copy = fs::read_to_string(f.join("out/copy.raw")).unwrap_or_default();
        count_once(&copy);
        assert_eq!(copy, written, "generation {g}");
        fs::rename(&live, f.join(format!("logs/app.log.{g}"))).unwrap();
    }
    f.write("logs/app.log", lines(9000, 9010));
    written.push_str(&lines(9000, 9010));
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = fs::read_to_string(f.join("out/copy.raw")).unwrap();
    assert_eq!(count_once(&copy), 510);
    assert_eq!(copy, written);
}

#[test]
fn ascending_rotation_while_stopped_refuses_naming_the_setting_that_fits() {
    // Two generations rotated while the daemon was down: the names put
    // app.log.2 before app.log.1, content cannot say where it belongs, and
    // it was created after app.log.1: the daemon stops saying which
    // `rotated` setting fits, and with that setting everything arrives once.
    let f = Fixture::new();
    f.write("cfg.toml", config());
    let live = f.join("logs/app.log");
    f.write("logs/app.log", lines(0, 100));
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    crate::host::append(&live, &lines(100, 150));
    fs::rename(&live, f.join("logs/app.log.1")).unwrap();
    f.write("logs/app.log", lines(200, 300));
    fs::rename(&live, f.join("logs/app.log.2")).unwrap();
    f.write("logs/app.log", lines(300, 310));
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "app.log.2 passed over silently:\n{err}"
    );
    let copy = fs::read_to_string(f.join("out/copy.raw")).unwrap_or_default();
    assert_eq!(copy, lines(0, 150));
    for w in [
        f.join("logs/app.log.2").display().to_string(),
        f.join("logs/app.log.1").display().to_string(),
        "rotated = [\"{name}.{N}{ext}\"]".to_string(),
    ] {
        assert!(err.contains(&w), "the stop does not say {w:?}:\n{err}");
    }
    // The way out, as printed: the setting that fits.
    f.write(
        "cfg.toml",
        config().replace(
            "format = \"lines\"\n",
            "format = \"lines\"\nrotated = [\"{name}.{N}{ext}\"]\n",
        ),
    );
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = fs::read_to_string(f.join("out/copy.raw")).unwrap();
    count_once(&copy);
    assert_eq!(
        copy,
        format!("{}{}{}", lines(0, 150), lines(200, 300), lines(300, 310))
    );
}
