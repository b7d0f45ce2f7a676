//! Rotated names against file times taken at the file clock's resolution.

use std::fs::File;
use std::time::Duration;

use super::tests::{config, cursor_at, gzip, saved};
use crate::follow::{Batch, FollowError, Follower};

/// Reads until the follower stops or goes idle; the records read, and
/// the stop if there was one.
fn read_to_stop(f: &mut Follower) -> (Vec<String>, Option<FollowError>) {
    let mut got = Vec::new();
    for _ in 0..10 {
        let mut b = Batch::default();
        let fill = f.fill(&mut b, 1 << 20);
        got.extend(
            b.entries
                .iter()
                .map(|m| String::from_utf8_lossy(b.raw(m)).into_owned()),
        );
        match fill {
            Err(e) => return (got, Some(e)),
            Ok(crate::follow::Fill::Idle) if b.is_empty() => break,
            Ok(_) => {}
        }
    }
    (got, None)
}

/// An application renamed `app.log` to `app.log.1` and gzipped it, then
/// renamed the next live file to `app.log.2` (a higher number is newer,
/// against the default `rotated` setting). It created that next file at
/// once after its last write to the first: the file clock ticks every few
/// milliseconds, so `app.log.2` was born at the very time `app.log.1.gz`
/// says it was last written. That tie must not let the follower take the
/// live file after `app.log.1.gz` and pass over `app.log.2`, never read:
/// it stops, naming the setting that fits.
#[test]
fn a_newer_file_born_in_the_tick_of_our_last_write_stops_the_follower() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let live = d.path().join("app.log");
    let first = d.path().join("app.log.1");
    let newer = d.path().join("app.log.2");
    std::fs::write(&first, "old-1\nold-2\n").unwrap();
    let cursor = cursor_at(&first, 1, 6, 2);
    saved(&state, &cursor, Duration::from_secs(10));
    // The next live file, since renamed: born before the first is gzipped.
    std::fs::write(&newer, "newer-1\n").unwrap();
    let born = std::fs::metadata(&newer)
        .unwrap()
        .created()
        .expect("this file system keeps no birth times");
    gzip(
        &std::fs::read(&first).unwrap(),
        &d.path().join("app.log.1.gz"),
    );
    std::fs::remove_file(&first).unwrap();
    // gzip keeps the original's last write time: the tick `newer` was born in.
    let ours = d.path().join("app.log.1.gz");
    let set = |p: &std::path::Path, t| {
        let f = File::options().append(true).open(p).unwrap();
        f.set_modified(t).unwrap();
    };
    set(&ours, born);
    set(&newer, born + Duration::from_secs(1));
    std::fs::write(&live, "live-1\n").unwrap();

    let mut f = Follower::open(config(&live), Some(&cursor), Some(state)).unwrap();
    let (got, stop) = read_to_stop(&mut f);
    assert_eq!(got, ["old-2\n"], "read past the end of app.log.1.gz");
    match stop {
        Some(e @ FollowError::Other { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("app.log.2 is older than") && m.contains("{name}.{N}{ext}"),
                "{m}"
            );
        }
        Some(e) => panic!("stopped otherwise: {e}"),
        None => panic!("no stop: app.log.2 was passed over for the live file"),
    }
}
