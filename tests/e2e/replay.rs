//! `logdaemon replay` and `dump --config` end to end: histories written
//! by the test (the real p4 corpus rotated into `journal.N`, some
//! gzipped; line logs in every rotation naming, compressed by the real
//! tools), each range compared byte for byte with a reference filter over
//! the concatenated history (`history::slice`); the live file appended to
//! and rotated while replaying; and `--listener email` through the real
//! SMTP server without moving the live cursor.

mod email;
pub mod history;
mod lines;

use std::process::Output;

use crate::fixture::{self, stderr, Fixture};
use history::{entries, p4_records, rfc3339, slice, write_file, Entry, Range};

/// Runs `logdaemon replay --config cfg.toml --journal J ARGS`.
pub fn replay(fx: &Fixture, journal: &str, args: &[String]) -> Output {
    let mut all: Vec<String> = ["replay", "--config", "cfg.toml", "--journal", journal]
        .iter()
        .map(|s| s.to_string())
        .collect();
    all.extend_from_slice(args);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    fx.run(&refs)
}

/// The arguments of `r` for a history whose file `i` has sequence `seqs[i]`.
pub fn args_of(r: Range, seqs: &[u64]) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(s) = r.since {
        a.extend(["--since".to_string(), rfc3339(s)]);
    }
    if let Some(u) = r.until {
        a.extend(["--until".to_string(), rfc3339(u)]);
    }
    if let Some((f, o)) = r.from {
        a.extend(["--from".to_string(), format!("{}:{o}", seqs[f])]);
    }
    if let Some((f, o)) = r.to {
        a.extend(["--to".to_string(), format!("{}:{o}", seqs[f])]);
    }
    a
}

/// Replays each range and compares with the reference filter.
pub fn check_ranges(fx: &Fixture, journal: &str, all: &[Entry], seqs: &[u64], ranges: &[Range]) {
    for r in ranges {
        let want = slice(all, *r);
        let o = replay(fx, journal, &args_of(*r, seqs));
        assert!(o.status.success(), "{r:?}: {}", stderr(&o));
        assert!(
            o.stdout == want,
            "{r:?}: replay returned {} bytes, the reference {} (first difference at byte {})",
            o.stdout.len(),
            want.len(),
            o.stdout
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(o.stdout.len().min(want.len()))
        );
    }
}

/// The corpus journals without transaction markers, as records, with a
/// marker `@ex@` closing every fourth record; times rise by 0, 1 or 2
/// seconds from one marker to the next.
fn p4_history() -> Vec<(Vec<u8>, Option<i64>)> {
    let dir = fixture::data_dir().join("p4");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().contains("LICENSE"))
        .collect();
    names.sort();
    let (mut out, mut t, mut k) = (Vec::new(), 1_700_000_000i64, 0i64);
    for p in names {
        let recs = p4_records(&std::fs::read(&p).unwrap());
        if recs
            .iter()
            .any(|r| r.starts_with(b"@ex@") || r.starts_with(b"@mx@"))
        {
            continue;
        }
        for (i, r) in recs.into_iter().enumerate() {
            out.push((r, None));
            if i % 4 == 3 {
                k += 1;
                t += k % 3;
                out.push((format!("@ex@ 4242 {t}\n").into_bytes(), Some(t)));
            }
        }
    }
    assert!(
        out.len() > 2000,
        "the p4 corpus is missing from tests/data/p4"
    );
    out
}

const P4_FILES: [&str; 5] = [
    "journal.5",
    "journal.6.gz",
    "journal.7",
    "journal.8.gz",
    "journal",
];
const P4_SEQS: [u64; 5] = [5, 6, 7, 8, 9];

fn p4_fixture() -> (Fixture, Vec<Entry>) {
    let recs = p4_history();
    let n = recs.len();
    // Cuts that split transactions: the records after a file's last
    // marker take the time of the next file's first.
    let cuts = [n / 5 + 1, 2 * n / 5 + 2, 3 * n / 5 + 3, 4 * n / 5 + 1];
    let all = entries(&recs, &cuts, true);
    let fx = Fixture::new();
    for (name, data) in P4_FILES.iter().zip(history::files(&all)) {
        write_file(&fx.join(name), &data);
    }
    fx.write(
        "cfg.toml",
        "[[journal]]\nname = \"p4\"\npath = \"journal\"\nformat = \"p4\"\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"out/j.raw\"\n",
    );
    (fx, all)
}

/// A marker time in file `f`, `q` quarters of the way through it.
fn time_in(all: &[Entry], f: usize, q: usize) -> i64 {
    let times: Vec<i64> = all
        .iter()
        .filter(|e| e.file == f && e.time != i64::MAX)
        .map(|e| e.time)
        .collect();
    times[times.len() * q / 4]
}

/// The offset of a record of file `f`, `q` quarters of the way through it.
fn offset_in(all: &[Entry], f: usize, q: usize) -> u64 {
    let offs: Vec<u64> = all
        .iter()
        .filter(|e| e.file == f)
        .map(|e| e.offset)
        .collect();
    offs[offs.len() * q / 4]
}

#[test]
fn replay_p4_by_time_matches_the_reference_across_plain_and_gzipped_journals() {
    let (fx, all) = p4_fixture();
    let t = |f, q| time_in(&all, f, q);
    let r = |since, until| Range {
        since,
        until,
        ..Range::default()
    };
    let last = all
        .iter()
        .filter(|e| e.time != i64::MAX)
        .map(|e| e.time)
        .max()
        .unwrap();
    check_ranges(
        &fx,
        "p4",
        &all,
        &P4_SEQS,
        &[
            r(Some(t(0, 1)), Some(t(0, 3))),         // inside the oldest file
            r(Some(t(1, 1)), Some(t(1, 2))),         // inside a gzipped file
            r(Some(t(0, 2)), Some(t(3, 1))),         // plain, gzip, plain, gzip
            r(Some(t(2, 2)), Some(t(4, 2))),         // bisection, into the live file
            r(Some(t(4, 1)), None),                  // the live file to its end
            r(None, Some(t(2, 1))),                  // from the start
            r(Some(t(2, 2) + 1), Some(t(2, 3) + 1)), // times between markers
            r(Some(last + 10), None),                // after everything: nothing
        ],
    );
}

#[test]
fn replay_p4_by_position_matches_the_reference_and_refuses_a_non_boundary() {
    let (fx, all) = p4_fixture();
    let o = |f, q| (f, offset_in(&all, f, q));
    let r = |from, to| Range {
        from,
        to,
        ..Range::default()
    };
    check_ranges(
        &fx,
        "p4",
        &all,
        &P4_SEQS,
        &[
            r(Some(o(2, 1)), Some(o(2, 3))), // inside a plain file
            r(Some(o(1, 2)), Some(o(3, 1))), // from inside a gzipped file
            r(Some(o(3, 3)), Some(o(4, 2))), // into the live file
            r(Some(o(4, 1)), None),
            r(None, Some(o(0, 2))),
        ],
    );
    // Whole sequences: --from 6 --to 7 is all of journal.6.gz and journal.7.
    let out = replay(
        &fx,
        "p4",
        &["--from".into(), "6".into(), "--to".into(), "7".into()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let want: Vec<u8> = all
        .iter()
        .filter(|e| e.file == 1 || e.file == 2)
        .flat_map(|e| e.bytes.clone())
        .collect();
    assert!(out.stdout == want, "--from 6 --to 7");

    // An offset inside a record: refused, naming the file and the boundaries.
    let (f, off) = o(2, 2);
    let out = replay(&fx, "p4", &["--from".into(), format!("7:{}", off + 1)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("journal.7") && err.contains(&format!("record at offset {off}")),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing printed before the error");
    let _ = f;

    // Before the oldest file: said, then everything on disk.
    let out = replay(&fx, "p4", &["--from".into(), "3".into()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("before the oldest file still on disk") && err.contains("journal.5"),
        "{err}"
    );
    assert!(out.stdout == slice(&all, Range::default()));
    // Past the end of a gzipped file: its uncompressed length is named.
    let len6: usize = all
        .iter()
        .filter(|e| e.file == 1)
        .map(|e| e.bytes.len())
        .sum();
    let out = replay(&fx, "p4", &["--from".into(), format!("6:{}", len6 + 1)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("past the end of sequence 6 ({len6} bytes)")),
        "{err}"
    );
    // Its very end is a boundary: the next file follows.
    let out = replay(
        &fx,
        "p4",
        &[
            "--from".into(),
            format!("6:{len6}"),
            "--to".into(),
            "7".into(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let journal7: Vec<u8> = all
        .iter()
        .filter(|e| e.file == 2)
        .flat_map(|e| e.bytes.clone())
        .collect();
    assert!(out.stdout == journal7, "--from the end of 6 --to 7");
    // A sequence that is not there.
    let out = replay(&fx, "p4", &["--from".into(), "12".into()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no sequence 12 in the history of journal \"p4\": the files on disk hold sequences 5 to 9"), "{err}");
}

#[test]
fn replay_refuses_to_write_into_one_of_the_journal_s_own_files() {
    let (fx, _) = p4_fixture();
    let live = std::fs::read(fx.join("journal")).unwrap();
    let out = std::fs::OpenOptions::new()
        .append(true)
        .open(fx.join("journal"))
        .unwrap();
    let o = std::process::Command::new(fixture::bin())
        .args(["replay", "--config", "cfg.toml", "--journal", "p4"])
        .current_dir(fx.path())
        .stdout(out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("an output may never be an input") && err.contains("journal"),
        "{err}"
    );
    assert!(
        std::fs::read(fx.join("journal")).unwrap() == live,
        "the live journal is unchanged"
    );
}

#[test]
fn replay_p4_jsonl_and_dump_config_name_sequence_and_file_of_every_entry() {
    let (fx, all) = p4_fixture();
    let o = fx.run(&["dump", "--config", "cfg.toml", "--journal", "p4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let objs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), all.len(), "every entry of the family, once");
    let mut line = 1u64;
    for (j, e) in objs.iter().zip(&all) {
        assert_eq!(j["sequence"].as_u64(), Some(P4_SEQS[e.file]));
        assert!(
            j["file"].as_str().unwrap().ends_with(P4_FILES[e.file]),
            "{j}"
        );
        assert_eq!(j["offset"].as_u64(), Some(e.offset));
        assert_eq!(j["len"].as_u64(), Some(e.bytes.len() as u64));
        if e.offset == 0 {
            line = 1;
        }
        assert_eq!(j["line"].as_u64(), Some(line), "{j}");
        line += e.bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        assert!(j["op"].is_string());
    }
    // jsonl replay from the middle of a plain file counts its lines.
    let start = all
        .iter()
        .position(|e| e.file == 2 && e.offset > 0)
        .unwrap()
        + 40;
    let from = format!("7:{}", all[start].offset);
    let o = replay(
        &fx,
        "p4",
        &["--format".into(), "jsonl".into(), "--from".into(), from],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8(o.stdout).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first, objs[start]);
}

#[test]
fn replay_p4_says_when_the_range_starts_before_the_oldest_file_and_stops_at_a_corrupt_one() {
    let (fx, all) = p4_fixture();
    let first = all.iter().find(|e| e.time != i64::MAX).unwrap().time;
    let o = replay(
        &fx,
        "p4",
        &[
            "--since".into(),
            rfc3339(first - 3600),
            "--until".into(),
            rfc3339(first + 1),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("before the oldest entry still on disk") && err.contains("journal.5"),
        "{err}"
    );
    assert_eq!(
        o.stdout,
        slice(
            &all,
            Range {
                until: Some(first + 1),
                ..Range::default()
            }
        )
    );

    // Damage the middle of journal.6.gz: replay stops there with its name
    // and offset, after everything of journal.5.
    let p = fx.join("journal.6.gz");
    let mut gz = std::fs::read(&p).unwrap();
    let mid = gz.len() / 2;
    for b in &mut gz[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&p, gz).unwrap();
    let o = replay(&fx, "p4", &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("journal.6.gz") && err.contains("offset"),
        "{err}"
    );
    let journal5: Vec<u8> = all
        .iter()
        .filter(|e| e.file == 0)
        .flat_map(|e| e.bytes.clone())
        .collect();
    assert!(
        o.stdout.starts_with(&journal5),
        "journal.5 was printed whole before the error"
    );
}
