//! [`collect_reusing`]: a caught-up journal's status is taken from the last
//! build while its files and listeners are unchanged, and built again as
//! soon as either changed.

use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use logdaemon_state::{Cursor, Identity};

use super::{collect_reusing, Context, Input, Reuse, Run};
use crate::config::Config;

fn config(dir: &std::path::Path) -> Config {
    let text = "[[journal]]\nname = \"app\"\npath = \"app.log\"\nformat = \"lines\"\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n";
    Config::parse(text, &dir.join("cfg.toml")).unwrap()
}

/// The listener's input with its cursor at `offset` of the live file.
fn input(cfg: &Config, offset: u64) -> Input {
    let md = std::fs::metadata(&cfg.journals[0].path).unwrap();
    Input {
        journal: "app".into(),
        listener: "copy".into(),
        cursor: Some(Cursor {
            sequence: 1,
            offset,
            line: 1,
            identity: Some(Identity {
                dev: md.dev(),
                inode: md.ino(),
                ..Default::default()
            }),
        }),
        run: Run::Running,
        stats: Default::default(),
        history: Default::default(),
    }
}

/// The status of `app` now, its path as kept in `reuse` marked so that a
/// status taken from the last build shows it.
fn path_now(cfg: &Config, inputs: &[Input], reuse: &mut Reuse) -> String {
    let ctx = Context {
        cfg,
        running: true,
        pid: None,
        start_sequences: &Default::default(),
        now: SystemTime::now(),
    };
    let snap = collect_reusing(&ctx, inputs, reuse);
    if let Some((_, js)) = reuse.journals.get_mut("app") {
        js.path = "reused".into();
    }
    snap.journals[0].path.clone()
}

/// A journal `app` whose live file holds one line, no status kept yet,
/// and the path its status shows when built (not reused).
fn setup() -> (tempfile::TempDir, Config, Reuse, String) {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path());
    std::fs::write(&cfg.journals[0].path, b"one\n").unwrap();
    let built = cfg.journals[0].path.display().to_string();
    (d, cfg, Reuse::default(), built)
}

#[test]
fn an_unchanged_caught_up_journal_is_reused_and_a_change_builds_it_again() {
    let (_d, cfg, mut reuse, built) = setup();

    assert_eq!(path_now(&cfg, &[input(&cfg, 4)], &mut reuse), built);
    assert_eq!(path_now(&cfg, &[input(&cfg, 4)], &mut reuse), "reused");

    // The listener moved: built again.
    let mut moved = input(&cfg, 4);
    moved.stats.delivered_entries = 1;
    assert_eq!(path_now(&cfg, &[moved.clone()], &mut reuse), built);
    assert_eq!(path_now(&cfg, &[moved.clone()], &mut reuse), "reused");

    // The file grew: built again, and behind, so not reused after.
    std::fs::write(&cfg.journals[0].path, b"one\ntwo, longer\n").unwrap();
    assert_eq!(path_now(&cfg, &[moved.clone()], &mut reuse), built);
    assert_eq!(path_now(&cfg, &[moved], &mut reuse), built);
}

#[test]
fn a_listener_more_or_less_builds_the_journal_again() {
    let (_d, cfg, mut reuse, built) = setup();
    let mut second = input(&cfg, 4);
    second.listener = "other".into();

    path_now(&cfg, &[input(&cfg, 4)], &mut reuse);
    assert_eq!(path_now(&cfg, &[input(&cfg, 4)], &mut reuse), "reused");
    assert_eq!(path_now(&cfg, &[input(&cfg, 4), second], &mut reuse), built);
    assert_eq!(path_now(&cfg, &[], &mut reuse), built);
}
