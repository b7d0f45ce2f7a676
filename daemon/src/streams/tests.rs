use std::path::Path;

use super::*;

fn config(dir: &Path, path: &str, extra: &str) -> Config {
    let text = format!(
        "[[journal]]\nname = \"app\"\nformat = \"lines\"\npath = \"{path}\"\n{extra}\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"/out/{{file}}.copy\"\n"
    );
    Config::parse(&text, &dir.join("cfg.toml")).unwrap()
}

fn names<J: std::borrow::Borrow<JournalConfig>>(js: &[J]) -> Vec<String> {
    js.iter().map(|j| j.borrow().name.clone()).collect()
}

/// A poll made at least [`MIN_GAP`] after the previous look.
fn look(s: &mut Streams, dirs: Option<&[PathBuf]>) -> Changes {
    for g in &mut s.globs {
        g.last -= MIN_GAP;
    }
    s.poll(dirs)
}

#[test]
fn each_matching_file_is_a_stream_named_after_it_with_its_own_output() {
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for f in ["a.log", "b.log", "c.txt", "skip.log"] {
        std::fs::write(logs.join(f), b"x\n").unwrap();
    }
    let cfg = config(d.path(), "logs/*.log", "exclude = [\"skip*\"]");
    let mut s = Streams::new(&cfg);
    let js = s.initial(&cfg, &mut Checkpoint::default());
    assert_eq!(names(&js), ["app/a.log", "app/b.log"]);
    assert_eq!(js[0].path, logs.join("a.log"));
    let t: toml::Table = toml::from_str(&js[1].listeners[0].config_toml).unwrap();
    assert_eq!(t["path"].as_str(), Some("/out/b.log.copy"));
}

#[test]
fn rotated_names_of_a_live_file_are_not_new_streams_even_while_it_is_missing() {
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for f in ["a.log", "a.log.1", "a.log.2.gz", "a.log-20260101"] {
        std::fs::write(logs.join(f), b"x\n").unwrap();
    }
    let cfg = config(d.path(), "logs/a.log*", "");
    let mut s = Streams::new(&cfg);
    assert_eq!(
        names(&s.initial(&cfg, &mut Checkpoint::default())),
        ["app/a.log"]
    );
    // Renamed away, not yet re-created: neither gone nor a new stream.
    std::fs::rename(logs.join("a.log"), logs.join("a.log.0")).unwrap();
    let c = look(&mut s, Some(&[]));
    assert!(c.added.is_empty() && c.gone.is_empty(), "{c:?}");
    std::fs::write(logs.join("a.log"), b"new\n").unwrap();
    let c = look(&mut s, Some(&[]));
    assert!(c.added.is_empty() && c.gone.is_empty(), "{c:?}");
}

#[test]
fn a_new_file_is_added_from_its_beginning_and_a_deleted_one_is_gone_once() {
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(logs.join("a.log"), b"x\n").unwrap();
    let cfg = config(d.path(), "logs/*.log", "start = \"end\"");
    let mut s = Streams::new(&cfg);
    let js = s.initial(&cfg, &mut Checkpoint::default());
    assert_eq!(
        js[0].start,
        Start::End,
        "files there at the first start: start applies"
    );
    std::fs::write(logs.join("b.log"), b"y\n").unwrap();
    let c = look(&mut s, Some(std::slice::from_ref(&logs)));
    assert_eq!(names(&c.added), ["app/b.log"]);
    let seen: std::collections::BTreeSet<String> = ["a.log".to_string()].into();
    assert_eq!(
        c.added[0].start,
        Start::New(std::sync::Arc::new(seen)),
        "a new file is read whole, from its rotated files made since the look before"
    );
    assert!(
        look(&mut s, Some(std::slice::from_ref(&logs)))
            .added
            .is_empty(),
        "added once"
    );
    std::fs::remove_file(logs.join("a.log")).unwrap();
    assert_eq!(look(&mut s, Some(&[])).gone, ["app/a.log"]);
    assert!(look(&mut s, Some(&[])).gone.is_empty(), "told once");
    // Re-created while the old stream still ends: not yet a new stream.
    std::fs::write(logs.join("a.log"), b"z\n").unwrap();
    assert!(look(&mut s, Some(&[])).added.is_empty());
    s.ended("app/a.log", 1);
    assert_eq!(names(&look(&mut s, Some(&[])).added), ["app/a.log"]);
}

#[test]
fn a_poll_of_another_directory_looks_at_nothing() {
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let cfg = config(d.path(), "logs/*.log", "");
    let mut s = Streams::new(&cfg);
    assert!(s.initial(&cfg, &mut Checkpoint::default()).is_empty());
    std::fs::write(logs.join("a.log"), b"x\n").unwrap();
    assert!(look(&mut s, Some(&[d.path().to_path_buf()]))
        .added
        .is_empty());
    assert_eq!(look(&mut s, Some(&[logs])).added.len(), 1);
}

#[test]
fn a_checkpoint_stream_whose_file_is_gone_is_dropped_and_one_rotated_away_kept() {
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(logs.join("b.log.1"), b"x\n").unwrap();
    let cfg = config(d.path(), "logs/*.log", "start = \"end\"");
    let mut cp = Checkpoint::default();
    cp.journals.insert("app/a.log".into(), Default::default());
    cp.journals.insert("app/b.log".into(), Default::default());
    std::fs::write(logs.join("c.log"), b"x\n").unwrap();
    let mut s = Streams::new(&cfg);
    let js = s.initial(&cfg, &mut cp);
    assert_eq!(names(&js), ["app/b.log", "app/c.log"]);
    assert!(!cp.journals.contains_key("app/a.log"));
    assert_eq!(
        js[1].start,
        Start::New(Default::default()),
        "not the first start: new files whole, with any rotated files"
    );
}

#[test]
fn without_events_a_glob_is_looked_at_every_reconcile_every() {
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let cfg = config(d.path(), "logs/*.log", "reconcile_every = \"1h\"");
    let mut s = Streams::new(&cfg);
    assert!(s.initial(&cfg, &mut Checkpoint::default()).is_empty());
    std::fs::write(logs.join("a.log"), b"x\n").unwrap();
    assert!(s.poll(None).added.is_empty(), "not due for an hour");
    s.globs[0].last -= std::time::Duration::from_secs(3600);
    assert_eq!(s.poll(None).added.len(), 1);
}

#[test]
fn a_link_or_a_directory_the_glob_matches_is_no_stream() {
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(d.path().join("secret"), b"x\n").unwrap();
    std::os::unix::fs::symlink(d.path().join("secret"), logs.join("a.log")).unwrap();
    std::fs::create_dir(logs.join("d.log")).unwrap();
    std::fs::write(logs.join("b.log"), b"x\n").unwrap();
    let cfg = config(d.path(), "logs/*.log", "");
    let mut s = Streams::new(&cfg);
    assert_eq!(
        names(&s.initial(&cfg, &mut Checkpoint::default())),
        ["app/b.log"]
    );
}

#[test]
fn events_right_after_a_look_are_taken_at_the_next_tick_not_lost() {
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let cfg = config(d.path(), "logs/*.log", "reconcile_every = \"1h\"");
    let mut s = Streams::new(&cfg);
    assert!(s.initial(&cfg, &mut Checkpoint::default()).is_empty());
    s.globs[0].last -= MIN_GAP;
    assert!(s.poll(Some(&[])).added.is_empty(), "a look");
    std::fs::write(logs.join("a.log"), b"x\n").unwrap();
    assert!(
        s.poll(Some(&[])).added.is_empty(),
        "too soon after the look"
    );
    assert!(s.poll(None).added.is_empty(), "still too soon");
    s.globs[0].last -= MIN_GAP;
    assert_eq!(s.poll(None).added.len(), 1, "the event is not lost");
}

#[test]
fn a_file_two_globs_match_is_followed_by_one_journal_only() {
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for f in ["abc-d.log", "other.log", "x-y.log"] {
        std::fs::write(logs.join(f), b"x\n").unwrap();
    }
    // Patterns the config check cannot show to overlap (`abc-d.log`).
    let text = "[[journal]]\nname = \"five\"\nformat = \"lines\"\npath = \"logs/?????.log\"\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"/out/five-{file}\"\n[[journal]]\nname = \"dash\"\nformat = \"lines\"\npath = \"logs/*-?.log\"\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"/out/dash-{file}\"\n";
    let cfg = Config::parse(text, &d.path().join("cfg.toml")).unwrap();
    let mut s = Streams::new(&cfg);
    let js = s.initial(&cfg, &mut Checkpoint::default());
    assert_eq!(
        names(&js),
        ["five/abc-d.log", "five/other.log", "dash/x-y.log"]
    );
    assert!(s.globs[1].declined.contains("abc-d.log"));
    // A new file both match: the first journal to look takes it, and
    // the other leaves it, again at every look.
    std::fs::write(logs.join("qrs-t.log"), b"x\n").unwrap();
    for _ in 0..3 {
        let c = look(&mut s, Some(&[]));
        assert!(c.gone.is_empty(), "{c:?}");
        assert!(
            c.added.iter().all(|j| j.name == "five/qrs-t.log"),
            "{:?}",
            names(&c.added)
        );
    }
    assert!(!s.globs[1].live.contains("qrs-t.log"));
    // Once no longer matching, it is forgotten (a warning again if it
    // comes back).
    std::fs::remove_file(logs.join("abc-d.log")).unwrap();
    look(&mut s, Some(&[]));
    assert!(!s.globs[1].declined.contains("abc-d.log"));
}
