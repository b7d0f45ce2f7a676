//! Line logs: every rotation naming (logrotate numbers and dateext,
//! Python's timed names, a configured pattern), every compression made by
//! the real tools, multi-line records and lines without a timestamp; and
//! the live file appended to and rotated while replay reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::history::{entries, files, python_time, slice, write_file, Entry, Range};
use super::{args_of, check_ranges, offset_in, replay, time_in};
use crate::fixture::{stderr, Fixture};

/// `n` records in Python logging's layout; every ninth has a traceback:
/// part of its record with `multiline`, else lines of their own without a
/// time.
fn line_history(n: usize, multiline: bool) -> Vec<(Vec<u8>, Option<i64>)> {
    let mut out = Vec::new();
    let mut t = 1_790_000_000i64;
    for i in 0..n {
        t += [0, 3, 7][i % 3];
        let mut rec = format!(
            "{} INFO worker-{} request {i} done\n",
            python_time(t, (i % 1000) as u32),
            i % 7
        )
        .into_bytes();
        let trace = [
            "Traceback (most recent call last):\n",
            "  File \"app.py\", line 3\n",
        ];
        if i % 9 == 4 && multiline {
            rec.extend(trace.concat().bytes());
        }
        out.push((rec, Some(t)));
        if i % 9 == 4 && !multiline {
            for l in trace {
                out.push((l.as_bytes().to_vec(), None));
            }
        }
    }
    out
}

/// A naming scheme: the rotated files' names, oldest first, and the
/// journal's extra settings.
struct Scheme {
    rotated: &'static [&'static str],
    extra: &'static str,
    multiline: bool,
}

const SCHEMES: &[Scheme] = &[
    Scheme {
        rotated: &["app.log.4.gz", "app.log.3.bz2", "app.log.2.xz", "app.log.1"],
        extra: "",
        multiline: true,
    },
    Scheme {
        rotated: &[
            "app.log-20261201.zst",
            "app.log-20261202.gz",
            "app.log-20261203",
        ],
        extra: "",
        multiline: true,
    },
    Scheme {
        rotated: &["app.log.2026-12-01_10-00", "app.log.2026-12-01_11-00.gz"],
        extra: "",
        multiline: false,
    },
    Scheme {
        rotated: &["app.1.log.xz", "app.2.log", "app.3.log.bz2"],
        extra: "rotated = [\"app.{N}.log{ext}\"]\n",
        multiline: false,
    },
];

fn config(s: &Scheme) -> String {
    let rs = if s.multiline {
        "record_start = '^\\d{4}-\\d\\d-\\d\\d '\n"
    } else {
        ""
    };
    format!(
        "[[journal]]\nname = \"app\"\npath = \"app.log\"\nformat = \"lines\"\n{rs}{}[journal.timestamp]\npreset = \"python\"\nzone = \"UTC\"\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"out/j.raw\"\n",
        s.extra
    )
}

/// Writes the history of `s` (`n` records over the rotated files and the
/// live one).
fn fixture(s: &Scheme, n: usize) -> (Fixture, Vec<Entry>, Vec<u64>) {
    let recs = line_history(n, s.multiline);
    let k = s.rotated.len() + 1;
    let cuts: Vec<usize> = (1..k).map(|i| i * recs.len() / k + i).collect();
    let all = entries(&recs, &cuts, false);
    let fx = Fixture::new();
    let names: Vec<&str> = s.rotated.iter().copied().chain(["app.log"]).collect();
    for (name, data) in names.iter().zip(files(&all)) {
        write_file(&fx.join(name), &data);
    }
    fx.write("cfg.toml", config(s));
    let seqs = (1..=k as u64).collect();
    (fx, all, seqs)
}

#[test]
fn replay_lines_in_every_naming_and_compression_matches_the_reference() {
    for s in SCHEMES {
        let (fx, all, seqs) = fixture(s, 6000);
        let last = seqs.len() - 1;
        let t = |f, q| time_in(&all, f, q);
        let o = |f, q| (f, offset_in(&all, f, q));
        let ranges = [
            Range {
                since: Some(t(0, 1)),
                until: Some(t(0, 3)),
                ..Range::default()
            },
            Range {
                since: Some(t(1, 2)),
                until: Some(t(last, 1)),
                ..Range::default()
            },
            Range {
                since: Some(t(last - 1, 1) + 1),
                until: Some(t(last - 1, 3) - 1),
                ..Range::default()
            },
            Range {
                since: Some(t(last, 2)),
                ..Range::default()
            },
            Range {
                until: Some(t(1, 1)),
                ..Range::default()
            },
            Range {
                from: Some(o(1, 1)),
                to: Some(o(last, 2)),
                ..Range::default()
            },
            Range {
                from: Some(o(last - 1, 2)),
                until: Some(t(last, 1)),
                ..Range::default()
            },
        ];
        check_ranges(&fx, "app", &all, &seqs, &ranges);
    }
}

#[test]
fn replay_lines_without_a_timestamp_setting_refuses_a_time_range() {
    let (fx, _, _) = fixture(&SCHEMES[0], 100);
    let cfg = std::fs::read_to_string(fx.join("cfg.toml")).unwrap();
    let cut = cfg.find("[journal.timestamp]").unwrap();
    let end = cfg.find("[[journal.listener]]").unwrap();
    fx.write("cfg.toml", format!("{}{}", &cfg[..cut], &cfg[end..]));
    let o = replay(&fx, "app", &["--since".into(), "-2h".into()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("journal \"app\" has no `timestamp` setting"),
        "{err}"
    );
}

/// Appends lines with times after every range to the live file, and
/// rotates it (dateext with an epoch suffix) every `every` lines, until
/// told to stop.
fn appender(
    dir: std::path::PathBuf,
    stop: Arc<AtomicBool>,
    every: usize,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        use std::io::Write;
        let (mut n, mut rotations) = (0usize, 0usize);
        while !stop.load(Ordering::SeqCst) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("app.log"))
                .unwrap();
            let line = format!(
                "{} INFO late {n}\n",
                python_time(1_999_000_000 + n as i64, 0)
            );
            f.write_all(line.as_bytes()).unwrap();
            n += 1;
            // Pacing: a rotation every `every` lines, some tens of ms apart.
            std::thread::sleep(std::time::Duration::from_millis(2));
            if n % every == 0 {
                rotations += 1;
                let to = dir.join(format!("app.log-20261231-{rotations:010}"));
                std::fs::rename(dir.join("app.log"), to).unwrap();
            }
        }
        rotations
    })
}

#[test]
fn replay_lines_while_the_live_file_is_appended_to_and_rotated() {
    let s = &SCHEMES[1];
    let (fx, all, seqs) = fixture(s, 4000);
    let last = seqs.len() - 1;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = appender(fx.path().to_path_buf(), stop.clone(), 40);
    let ranges = [
        Range {
            since: Some(time_in(&all, 1, 1)),
            until: Some(time_in(&all, last, 3)),
            ..Range::default()
        },
        Range {
            since: Some(time_in(&all, last, 1)),
            until: Some(time_in(&all, last, 2)),
            ..Range::default()
        },
    ];
    for round in 0..12 {
        for r in &ranges {
            let want = slice(&all, *r);
            // Positions of the live file move with rotations: times only.
            let o = replay(&fx, "app", &args_of(*r, &seqs));
            assert!(o.status.success(), "round {round} {r:?}: {}", stderr(&o));
            assert!(
                o.stdout == want,
                "round {round} {r:?}: {} bytes, want {}",
                o.stdout.len(),
                want.len()
            );
        }
    }
    stop.store(true, Ordering::SeqCst);
    let rotations = writer.join().unwrap();
    assert!(rotations > 0, "the live file was rotated while replaying");
}
