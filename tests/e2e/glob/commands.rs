//! The commands on a glob journal: `check` lists its streams and refuses
//! a shared output; `checkpoint set` and `dump` take a stream name.

use std::fs::{self};

use super::{config, Log};
use crate::fixture::{stderr, stdout, Fixture};

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
    let o = f.checkpoint_set("app/a.log", 1, second as u64, &["--file", "logs/a.log"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.checkpoint_set("app", 1, 0, &[]);
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
