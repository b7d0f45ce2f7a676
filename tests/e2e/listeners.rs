//! The built-in `file` and `exec` listeners and the example plugin through
//! the real daemon (`logdaemon run --once`) on the real p4 corpus: exact
//! copies, nothing written twice when the daemon's checkpoint lags the
//! listener, a damaged output refused with an actionable message, hooks
//! that get filtered entries on stdin, and a plugin loaded by path.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::{bin, data_dir, stderr, target_dir, Fixture};

/// Several journals of the corpus end to end: one long journal.
fn corpus() -> Vec<u8> {
    let mut names: Vec<_> = fs::read_dir(data_dir().join("p4"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("__jnl"))
        .collect();
    names.sort();
    assert!(
        names.len() > 20,
        "the p4 corpus is missing from tests/data/p4"
    );
    names
        .iter()
        .flat_map(|n| fs::read(data_dir().join("p4").join(n)).unwrap())
        .collect()
}

/// The p4 records of `data`: a record ends at a newline after an even
/// number of `@` (the corpus has no unfinished record).
fn p4_records(data: &[u8]) -> Vec<&[u8]> {
    let (mut out, mut start, mut ats) = (Vec::new(), 0, 0usize);
    for (i, &b) in data.iter().enumerate() {
        if b == b'@' {
            ats += 1;
        } else if b == b'\n' && ats % 2 == 0 {
            out.push(&data[start..=i]);
            start = i + 1;
            ats = 0;
        }
    }
    assert_eq!(start, data.len(), "trailing bytes after the last record");
    out
}

/// Field 1 (the table) of a p4 data record, if it is a quoted `db.` name.
fn table(record: &[u8]) -> Option<&[u8]> {
    let rest = record.splitn(3, |&b| b == b' ').nth(2)?;
    let rest = rest.strip_prefix(b"@")?;
    let end = rest.iter().position(|&b| b == b'@')?;
    Some(&rest[..end]).filter(|t| t.starts_with(b"db."))
}

const HEAD: &str = r#"state_dir = "state"

[[journal]]
name = "p4"
path = "p4root/journal"
format = "p4"
start = "beginning"
"#;

const COPY: &str = r#"
[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "out/journal.raw"
format = "raw"

[[journal.listener]]
name = "json"
plugin = "file"
[journal.listener.config]
path = "out/journal.jsonl"
format = "jsonl"
"#;

fn run_once(f: &Fixture) -> Output {
    f.run(&["run", "--once", "--config", "cfg.toml"])
}

fn run_ok(f: &Fixture) {
    let out = run_once(f);
    assert!(
        out.status.success(),
        "logdaemon run --once failed:\n{}",
        stderr(&out)
    );
}

fn append(f: &Fixture, data: &[u8]) {
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(f.join("p4root/journal"))
        .unwrap();
    std::io::Write::write_all(&mut file, data).unwrap();
}

/// Checks the jsonl output against the records: one object per record,
/// contiguous offsets, the op and the raw text where it is UTF-8.
fn check_jsonl(path: &Path, records: &[&[u8]]) {
    let text = fs::read_to_string(path).unwrap();
    let objs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        objs.len(),
        records.len(),
        "one JSON object per record in {}",
        path.display()
    );
    let mut offset = 0u64;
    for (o, r) in objs.iter().zip(records) {
        assert_eq!(o["journal"], "p4");
        assert_eq!(o["offset"].as_u64(), Some(offset), "{o}");
        assert_eq!(o["len"].as_u64(), Some(r.len() as u64), "{o}");
        let op =
            String::from_utf8_lossy(&r[1..r[1..].iter().position(|&b| b == b'@').unwrap() + 1])
                .into_owned();
        assert_eq!(o["op"].as_str(), Some(op.as_str()), "{o}");
        if let Ok(s) = std::str::from_utf8(r) {
            assert_eq!(o["raw"].as_str(), Some(s), "{o}");
        }
        offset += r.len() as u64;
    }
}

#[test]
fn file_copies_the_p4_corpus_exactly_across_runs() {
    let f = Fixture::new();
    let journal = corpus();
    let records = p4_records(&journal);
    let half: usize = records[..records.len() / 2].iter().map(|r| r.len()).sum();
    f.write("p4root/journal", &journal[..half]);
    f.write("cfg.toml", format!("{HEAD}{COPY}"));
    run_ok(&f);
    assert_eq!(
        fs::read(f.join("out/journal.raw")).unwrap(),
        &journal[..half]
    );
    append(&f, &journal[half..]);
    run_ok(&f);
    assert_eq!(
        fs::read(f.join("out/journal.raw")).unwrap(),
        journal,
        "the second run adds exactly the new records"
    );
    check_jsonl(&f.join("out/journal.jsonl"), &records);
    run_ok(&f);
    assert_eq!(
        fs::read(f.join("out/journal.raw")).unwrap(),
        journal,
        "a run with nothing new adds nothing"
    );
}

#[test]
fn a_lagging_checkpoint_redelivers_but_nothing_is_written_twice() {
    let f = Fixture::new();
    let journal = corpus();
    let records = p4_records(&journal);
    let half: usize = records[..records.len() / 2].iter().map(|r| r.len()).sum();
    // A hook beside the copies counts deliveries: it proves the second
    // half really was delivered twice.
    let hook = f.write("count.sh", "#!/bin/sh\nwc -l >> deliveries\n");
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let counter = "\n[[journal.listener]]\nname = \"count\"\nplugin = \"exec\"\n[journal.listener.config]\ncommand = [\"./count.sh\"]\nstdin = \"jsonl\"\n";
    f.write("cfg.toml", format!("{HEAD}{COPY}{counter}"));
    f.write("p4root/journal", &journal[..half]);
    run_ok(&f);
    let lagging = fs::read(f.join("state/checkpoint.toml")).unwrap();
    append(&f, &journal[half..]);
    run_ok(&f);
    // The listeners acted on the second half, then the daemon "crashed"
    // before its checkpoint reached disk: the old checkpoint is back.
    fs::write(f.join("state/checkpoint.toml"), &lagging).unwrap();
    let _ = fs::remove_file(f.join("state/checkpoint.toml.prev"));
    run_ok(&f);
    let delivered: usize = fs::read_to_string(f.join("deliveries"))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse::<usize>().unwrap())
        .sum();
    assert_eq!(
        delivered,
        records.len() + (records.len() - records.len() / 2),
        "the second half was delivered again"
    );
    assert_eq!(
        fs::read(f.join("out/journal.raw")).unwrap(),
        journal,
        "raw output has every record once"
    );
    check_jsonl(&f.join("out/journal.jsonl"), &records);
}

#[test]
fn sigkill_during_a_catch_up_loses_and_repeats_nothing() {
    let f = Fixture::new();
    let one = corpus();
    let records = p4_records(&one);
    // About 20 MB in small batches: many record updates to land a kill in.
    let copies = (20 << 20) / one.len() + 1;
    let journal = one.repeat(copies);
    f.write("p4root/journal", &journal);
    f.write("cfg.toml", format!("{HEAD}batch_bytes = 65536\n{COPY}"));
    let raw = f.join("out/journal.raw");
    let mut kills = 0;
    for step in 1..=3u64 {
        let mut child = Command::new(bin())
            .args(["run", "--once", "--config", "cfg.toml"])
            .current_dir(f.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill once the output has grown past the next quarter of the journal.
        let mark = journal.len() as u64 * step / 4;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if fs::metadata(&raw).map(|m| m.len()).unwrap_or(0) >= mark {
                child.kill().unwrap();
                kills += 1;
                break;
            }
            assert!(Instant::now() < deadline, "the catch-up made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        child.wait().unwrap();
    }
    eprintln!("killed the daemon {kills} times during the catch-up");
    assert!(
        kills > 0,
        "the daemon finished before any kill; the journal is too small for this machine"
    );
    run_ok(&f);
    let out = fs::read(&raw).unwrap();
    assert_eq!(out.len(), journal.len());
    assert!(
        out == journal,
        "raw output differs from the journal after {kills} kills"
    );
    let all: Vec<&[u8]> = (0..copies).flat_map(|_| records.iter().copied()).collect();
    check_jsonl(&f.join("out/journal.jsonl"), &all);
}

#[test]
fn a_truncated_output_is_refused_with_the_path_and_both_lengths() {
    let f = Fixture::new();
    let journal = corpus();
    f.write("p4root/journal", &journal);
    f.write("cfg.toml", format!("{HEAD}{COPY}"));
    run_ok(&f);
    let raw = f.join("out/journal.raw");
    fs::OpenOptions::new()
        .write(true)
        .open(&raw)
        .unwrap()
        .set_len(100)
        .unwrap();
    append(&f, b"@ex@ 1 1367791575\n");
    let out = run_once(&f);
    assert!(
        !out.status.success(),
        "the daemon must not continue with a damaged output"
    );
    let err = stderr(&out);
    assert!(err.contains(&raw.display().to_string()), "{err}");
    assert!(
        err.contains("is 100 bytes") && err.contains(&format!("records {} bytes", journal.len())),
        "{err}"
    );
    assert_eq!(
        fs::metadata(&raw).unwrap().len(),
        100,
        "the damaged output is left alone"
    );
}

#[test]
fn exec_hook_gets_filtered_entries_on_stdin_and_the_batch_in_its_environment() {
    let f = Fixture::new();
    let journal = corpus();
    let records = p4_records(&journal);
    f.write("p4root/journal", &journal);
    let hook = f.write("hook.sh", "#!/bin/sh\ncat >> hook.stdin\nenv | grep '^LOGDAEMON_' | sort >> hook.env\necho --- >> hook.env\n");
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = format!(
        "{HEAD}\n[[journal.listener]]\nname = \"hook\"\nplugin = \"exec\"\n[journal.listener.config]\n\
         command = [\"./hook.sh\"]\nstdin = \"raw\"\ntimeout = \"30s\"\nfilter = {{ table = \"db.rev\", op = \"pv\" }}\n"
    );
    f.write("cfg.toml", cfg);
    run_ok(&f);
    let want: Vec<u8> = records
        .iter()
        .filter(|r| r.starts_with(b"@pv@ ") && table(r) == Some(b"db.rev"))
        .flat_map(|r| r.to_vec())
        .collect();
    assert!(!want.is_empty(), "the corpus has db.rev records");
    assert_eq!(
        fs::read(f.join("hook.stdin")).unwrap(),
        want,
        "exactly the pv db.rev records, in order"
    );
    let env = fs::read_to_string(f.join("hook.env")).unwrap();
    let runs: Vec<&str> = env.split("---\n").filter(|r| !r.is_empty()).collect();
    assert!(!runs.is_empty());
    let mut count = 0;
    for run in &runs {
        assert!(
            run.contains("LOGDAEMON_EVENT=entries\n") && run.contains("LOGDAEMON_JOURNAL=p4\n"),
            "{run}"
        );
        assert!(
            run.contains("LOGDAEMON_LISTENER=hook\n") && run.contains("LOGDAEMON_HAD_DATA=1\n"),
            "{run}"
        );
        let n = run
            .lines()
            .find_map(|l| l.strip_prefix("LOGDAEMON_COUNT="))
            .unwrap();
        count += n.parse::<usize>().unwrap();
    }
    assert_eq!(
        count,
        records
            .iter()
            .filter(|r| r.starts_with(b"@pv@ ") && table(r) == Some(b"db.rev"))
            .count()
    );
}

#[test]
fn the_example_plugin_loads_by_path() {
    let f = Fixture::new();
    f.write("p4root/journal", corpus());
    let dir = f.join("plugins");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let so = dir.join("liblogdaemon_listener_example.so");
    fs::copy(target_dir().join("liblogdaemon_listener_example.so"), &so).unwrap();
    fs::set_permissions(&so, fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = format!(
        "{HEAD}\n[[journal.listener]]\nname = \"stats\"\nplugin = \"plugins/liblogdaemon_listener_example.so\"\n\
         [journal.listener.config]\ntables = [\"db.rev\"]\n"
    );
    f.write("cfg.toml", cfg);
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("plugin=\"example\""),
        "{}",
        stderr(&out)
    );
    // A bad key in its table is refused by the plugin, naming the key.
    f.write("cfg.toml", format!("{HEAD}\n[[journal.listener]]\nname = \"stats\"\nplugin = \"plugins/liblogdaemon_listener_example.so\"\n[journal.listener.config]\ntabels = []\n"));
    let out = run_once(&f);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("tabels"), "{}", stderr(&out));
}
