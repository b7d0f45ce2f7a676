//! `init`: a config written from the environment and from flags, that
//! `check` accepts and `run` runs.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::fixture::{bin, stderr, stdout, Fixture};
use crate::host::recs;

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
