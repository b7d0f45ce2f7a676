use super::*;

#[test]
fn the_literal_prefix_stops_at_the_first_wildcard_or_placeholder() {
    assert_eq!(literal_prefix("{name}.{n}{ext}", "app.log"), "app.log.");
    assert_eq!(literal_prefix("*.jnl.{N}{ext}", "journal"), "");
    assert_eq!(literal_prefix("old-{name}-{date}", "a"), "old-a-");
}

fn names(dir: &Path, s: &Scheme) -> Vec<String> {
    let _ = dir;
    s.candidates()
        .unwrap()
        .iter()
        .map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn touch(dir: &Path, names: &[&str]) {
    for n in names {
        std::fs::write(dir.join(n), n).unwrap();
    }
}

#[test]
fn p4_numbers_ascend_and_compressed_count() {
    let d = tempfile::tempdir().unwrap();
    touch(
        d.path(),
        &[
            "journal",
            "journal.10",
            "journal.9.gz",
            "journal.11.zst",
            "ckp.jnl.3",
            "journal.x",
            "checkpoint.5",
        ],
    );
    let s = Scheme::default_for(&Format::P4, &d.path().join("journal"));
    assert_eq!(
        names(d.path(), &s),
        ["ckp.jnl.3", "journal.9.gz", "journal.10", "journal.11.zst"]
    );
}

#[test]
fn logrotate_numbers_descend_dates_ascend() {
    let d = tempfile::tempdir().unwrap();
    touch(
        d.path(),
        &[
            "app.log",
            "app.log.1",
            "app.log.2.gz",
            "app.log.0",
            "other.log.1",
        ],
    );
    let s = Scheme::default_for(
        &Format::Lines { record_start: None },
        &d.path().join("app.log"),
    );
    assert_eq!(
        names(d.path(), &s),
        ["app.log.2.gz", "app.log.1", "app.log.0"]
    );
    let d = tempfile::tempdir().unwrap();
    touch(
        d.path(),
        &[
            "app.log",
            "app.log-20250102.gz",
            "app.log-20250101",
            "app.log-20250103-1735900000.xz",
        ],
    );
    let s = Scheme::default_for(
        &Format::Lines { record_start: None },
        &d.path().join("app.log"),
    );
    assert_eq!(
        names(d.path(), &s),
        [
            "app.log-20250101",
            "app.log-20250102.gz",
            "app.log-20250103-1735900000.xz"
        ]
    );
}

#[test]
fn a_compression_in_progress_is_not_a_candidate() {
    // gzip has started writing journal.9.gz and not yet removed journal.9.
    let d = tempfile::tempdir().unwrap();
    touch(
        d.path(),
        &[
            "journal",
            "journal.8.gz",
            "journal.9",
            "journal.9.gz",
            "journal.10",
        ],
    );
    std::fs::write(d.path().join("journal.9.gz"), b"").unwrap();
    let s = Scheme::default_for(&Format::P4, &d.path().join("journal"));
    assert_eq!(
        names(d.path(), &s),
        ["journal.8.gz", "journal.9", "journal.10"]
    );
    // Once the original is gone, the compressed file is the candidate.
    std::fs::remove_file(d.path().join("journal.9")).unwrap();
    assert_eq!(
        names(d.path(), &s),
        ["journal.8.gz", "journal.9.gz", "journal.10"]
    );
    // logrotate: app.log.1 being compressed while app.log.2.gz is done.
    let d = tempfile::tempdir().unwrap();
    touch(
        d.path(),
        &["app.log", "app.log.1", "app.log.1.gz", "app.log.2.gz"],
    );
    let s = Scheme::default_for(
        &Format::Lines { record_start: None },
        &d.path().join("app.log"),
    );
    assert_eq!(names(d.path(), &s), ["app.log.2.gz", "app.log.1"]);
}

#[test]
fn a_file_compressed_while_listing_is_never_missed() {
    // Another thread compresses and "uncompresses" journal.5 without
    // end, always creating the new name before removing the old one, as
    // gzip does: every listing must hold journal.5 under one name.
    let d = tempfile::tempdir().unwrap();
    touch(d.path(), &["journal", "journal.4", "journal.5"]);
    let s = Scheme::default_for(&Format::P4, &d.path().join("journal"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (dir, st) = (d.path().to_path_buf(), stop.clone());
    let t = std::thread::spawn(move || {
        let (plain, gz) = (dir.join("journal.5"), dir.join("journal.5.gz"));
        while !st.load(std::sync::atomic::Ordering::Relaxed) {
            std::fs::write(&gz, b"z").unwrap();
            std::fs::remove_file(&plain).unwrap();
            std::fs::write(&plain, b"p").unwrap();
            std::fs::remove_file(&gz).unwrap();
        }
    });
    for i in 0..20000 {
        let c = s.candidates().unwrap();
        assert!(
            c.iter().any(|c| c.number == Some(5)),
            "listing {i} misses journal.5: {c:?}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    t.join().unwrap();
}

#[test]
fn only_names_with_a_patterns_literal_start_are_looked_at() {
    let names: Vec<std::ffi::OsString> = [
        "aaa",
        "app.log",
        "app.log-20250101",
        "app.log.1",
        "app.log.2.gz",
        "app.logx",
        "other.log.1",
        "zzz",
    ]
    .iter()
    .map(|n| n.into())
    .collect();
    let lines = Scheme::default_for(
        &Format::Lines { record_start: None },
        Path::new("/d/app.log"),
    );
    let seen: Vec<&str> = lines
        .worth_a_look(&names)
        .iter()
        .map(|n| n.to_str().unwrap())
        .collect();
    assert_eq!(seen, ["app.log-20250101", "app.log.1", "app.log.2.gz"]);
    // `*.jnl.{N}` has no literal start: every name is looked at.
    let p4 = Scheme::default_for(&Format::P4, Path::new("/d/journal"));
    assert_eq!(p4.worth_a_look(&names).len(), names.len());
}

#[test]
fn python_timed_names() {
    let d = tempfile::tempdir().unwrap();
    touch(
        d.path(),
        &[
            "app.log",
            "app.log.2025-01-02_10-00-00",
            "app.log.2025-01-02_09-00",
            "app.log.2025-01-01",
        ],
    );
    let s = Scheme::default_for(
        &Format::Lines { record_start: None },
        &d.path().join("app.log"),
    );
    assert_eq!(
        names(d.path(), &s),
        [
            "app.log.2025-01-01",
            "app.log.2025-01-02_09-00",
            "app.log.2025-01-02_10-00-00"
        ]
    );
}

#[test]
fn bad_patterns_are_refused() {
    let live = Path::new("/x/journal");
    assert!(Scheme::from_patterns(live, &["{name}.{M}".into()])
        .unwrap_err()
        .contains("unknown placeholder"));
    assert!(Scheme::from_patterns(live, &["{name}".into()])
        .unwrap_err()
        .contains("only the live file"));
    assert!(Scheme::from_patterns(live, &["old/{name}.{N}".into()])
        .unwrap_err()
        .contains("directory"));
    assert!(Scheme::from_patterns(live, &[]).is_err());
}
