//! The `exec` listener driven through the `Listener` trait with real child
//! processes: small shell scripts written by each test report what they
//! were given (argv, stdin, environment) into files the test reads back.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use logdaemon_listener_exec::ExecListener;
use logdaemon_sdk::testing::Batch;
use logdaemon_sdk::{Ack, Failure, FailureKind, Listener, Logger, OpenContext, Position};

fn open_as(dir: &Path, format: &str, config: &str) -> Result<ExecListener, Failure> {
    let state = dir.join("state");
    fs::create_dir_all(&state).unwrap();
    let journal = dir.join("journal");
    let ctx = OpenContext {
        listener: "hook",
        journal: "p4",
        format,
        journal_path: &journal,
        config_toml: config,
        config_dir: dir,
        state_dir: &state,
        cursor: Position::default(),
        logger: Logger::discard(),
    };
    ExecListener::open(&ctx)
}

fn open(dir: &Path, config: &str) -> ExecListener {
    match open_as(dir, "p4", config) {
        Ok(l) => l,
        Err(f) => panic!("open failed: {f}"),
    }
}

fn open_err(dir: &Path, config: &str) -> Failure {
    match open_as(dir, "p4", config) {
        Ok(_) => panic!("open succeeded, expected a failure"),
        Err(f) => f,
    }
}

/// Writes an executable script into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn toml_str(s: impl AsRef<str>) -> String {
    toml::Value::String(s.as_ref().to_string()).to_string()
}

fn command(parts: &[&str]) -> String {
    format!(
        "command = [{}]",
        parts.iter().map(toml_str).collect::<Vec<_>>().join(", ")
    )
}

/// Offset just past `records()`.
fn records_end() -> u64 {
    records().entries().iter().map(|e| e.len()).sum::<u64>() + 100
}

fn records() -> Batch {
    Batch::p4(
        "p4",
        5,
        100,
        &[
            b"@pv@ 7 @db.change@ 12 12 @c@ @bob@ 1 1 @fix $(rm -rf /); `id`@ \n",
            b"@pv@ 0 @db.desc@ 12 @two\nlines@ \n",
            b"@ex@ 42 1367791575\n",
        ],
    )
}

#[test]
fn arguments_are_passed_literally_without_a_shell() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("argv");
    let s = script(
        d.path(),
        "argv.sh",
        "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$1\"",
    );
    let args = [
        s.to_str().unwrap(),
        out.to_str().unwrap(),
        "; rm -rf pwned-dir",
        "$(touch pwned)",
        "`touch pwned2`",
        "a b",
        "*",
    ];
    fs::create_dir(d.path().join("pwned-dir")).unwrap();
    let mut l = open(d.path(), &command(&args));
    assert_eq!(l.listen(records().entries()), Ok(Ack::All));
    let got = fs::read_to_string(&out).unwrap();
    let want: String = args[1..].iter().map(|a| format!("{a}\n")).collect();
    assert_eq!(got, want);
    assert!(
        d.path().join("pwned-dir").is_dir()
            && !d.path().join("pwned").exists()
            && !d.path().join("pwned2").exists()
    );
}

#[test]
fn raw_stdin_is_the_entries_bytes() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("stdin");
    let s = script(d.path(), "cat.sh", "cat > \"$1\"");
    let cfg = format!(
        "{}\nstdin = \"raw\"\ntimeout = \"20s\"",
        command(&[s.to_str().unwrap(), out.to_str().unwrap()])
    );
    let mut l = open(d.path(), &cfg);
    let b = records();
    l.listen(b.entries()).unwrap();
    let want: Vec<u8> = b.entries().iter().flat_map(|e| e.raw().to_vec()).collect();
    assert_eq!(fs::read(&out).unwrap(), want);
}

#[test]
fn jsonl_stdin_is_one_object_per_entry() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("stdin");
    let s = script(d.path(), "cat.sh", "cat > \"$1\"");
    let cfg = format!(
        "{}\nstdin = \"jsonl\"",
        command(&[s.to_str().unwrap(), out.to_str().unwrap()])
    );
    let mut l = open(d.path(), &cfg);
    l.listen(records().entries()).unwrap();
    let text = fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[2],
        format!(
            r#"{{"journal":"p4","sequence":5,"offset":{},"len":19,"line":4,"lines":1,"op":"ex","fields":["42","1367791575"],"raw":"@ex@ 42 1367791575\n"}}"#,
            records_end() - 19
        )
    );
}

fn env_script(d: &Path) -> (PathBuf, PathBuf) {
    let out = d.join("env");
    let s = script(
        d,
        "env.sh",
        "env | grep '^LOGDAEMON_' | sort >> \"$1\"; echo --- >> \"$1\"",
    );
    (s, out)
}

#[test]
fn environment_describes_the_batch() {
    let d = tempfile::tempdir().unwrap();
    let (s, out) = env_script(d.path());
    let mut l = open(
        d.path(),
        &command(&[s.to_str().unwrap(), out.to_str().unwrap()]),
    );
    l.listen(records().entries()).unwrap();
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        format!(
            "LOGDAEMON_COUNT=3\nLOGDAEMON_END_OFFSET={}\nLOGDAEMON_EVENT=entries\nLOGDAEMON_FIRST_OFFSET=100\nLOGDAEMON_HAD_DATA=1\n\
             LOGDAEMON_JOURNAL=p4\nLOGDAEMON_LISTENER=hook\nLOGDAEMON_SEQUENCE=5\n---\n",
            records_end()
        )
    );
}

#[test]
fn only_chosen_variables_of_the_daemon_reach_the_command() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("env");
    let s = script(d.path(), "env.sh", "env | sort > \"$1\"");
    let base = logdaemon_listener_exec::config::BASE_ENV;
    let (secret, value) = std::env::vars()
        .find(|(k, v)| {
            !base.contains(&k.as_str()) && !k.starts_with("LOGDAEMON_") && !v.contains('\n')
        })
        .expect("the test process has some variable outside the base set");
    let run = |extra: &str| -> String {
        let cfg = format!(
            "{}\n{extra}",
            command(&[s.to_str().unwrap(), out.to_str().unwrap()])
        );
        open(d.path(), &cfg).listen(records().entries()).unwrap();
        fs::read_to_string(&out).unwrap()
    };
    let plain = run("");
    assert!(
        !plain.contains(&format!("\n{secret}=")) && !plain.starts_with(&format!("{secret}=")),
        "{secret} leaked:\n{plain}"
    );
    assert!(plain.contains("LOGDAEMON_EVENT=entries\n"), "{plain}");
    if let Ok(path) = std::env::var("PATH") {
        assert!(plain.contains(&format!("PATH={path}\n")), "{plain}");
    }
    let passed = run(&format!(
        "pass_env = [{}]\nenv = {{ QUEUE = \"ci nightly\" }}",
        toml_str(&secret)
    ));
    assert!(passed.contains(&format!("{secret}={value}\n")), "{passed}");
    assert!(passed.contains("QUEUE=ci nightly\n"), "{passed}");
}

#[test]
fn a_batch_across_sequences_runs_once_per_sequence() {
    let d = tempfile::tempdir().unwrap();
    let (s, out) = env_script(d.path());
    let mut l = open(
        d.path(),
        &command(&[s.to_str().unwrap(), out.to_str().unwrap()]),
    );
    // Two journals' records in one batch: the Batch helper makes one
    // sequence per batch, so deliver them as the host would, one call.
    let a = Batch::p4("p4", 5, 100, &[b"@ex@ 1 2\n"]);
    let b = Batch::p4("p4", 6, 0, &[b"@ex@ 3 4\n", b"@ex@ 5 6\n"]);
    let raw: Vec<_> = a
        .entries()
        .iter()
        .chain(b.entries())
        .map(|e| *e.as_raw())
        .collect();
    // SAFETY: the pointers point into `a` and `b`, alive for this scope.
    let both = unsafe { logdaemon_sdk::Entry::from_raw_slice(&raw) };
    l.listen(both).unwrap();
    let text = fs::read_to_string(&out).unwrap();
    let runs: Vec<&str> = text.split("---\n").filter(|r| !r.is_empty()).collect();
    assert_eq!(runs.len(), 2, "{text}");
    assert!(
        runs[0].contains("LOGDAEMON_SEQUENCE=5\n") && runs[0].contains("LOGDAEMON_COUNT=1\n"),
        "{}",
        runs[0]
    );
    assert!(
        runs[1].contains("LOGDAEMON_SEQUENCE=6\n") && runs[1].contains("LOGDAEMON_COUNT=2\n"),
        "{}",
        runs[1]
    );
    assert!(
        runs[1].contains("LOGDAEMON_FIRST_OFFSET=0\n")
            && runs[1].contains("LOGDAEMON_END_OFFSET=18\n"),
        "{}",
        runs[1]
    );
}

#[test]
fn no_data_event() {
    let d = tempfile::tempdir().unwrap();
    let (s, out) = env_script(d.path());
    let cfg = format!(
        "{}\non = [\"no_data\"]",
        command(&[s.to_str().unwrap(), out.to_str().unwrap()])
    );
    let mut l = open(d.path(), &cfg);
    let b = records();
    assert!(
        !l.is_handled(&b.entries()[0]),
        "entries are not an event of this listener"
    );
    assert_eq!(l.no_data(true), Ok(Ack::All));
    assert_eq!(l.no_data(false), Ok(Ack::All));
    let text = fs::read_to_string(&out).unwrap();
    let runs: Vec<&str> = text.split("---\n").filter(|r| !r.is_empty()).collect();
    assert_eq!(runs.len(), 2);
    assert!(
        runs[0].contains("LOGDAEMON_EVENT=no_data\n") && runs[0].contains("LOGDAEMON_HAD_DATA=1\n"),
        "{}",
        runs[0]
    );
    assert!(
        runs[0].contains("LOGDAEMON_COUNT=0\n") && runs[0].contains("LOGDAEMON_END_OFFSET=\n"),
        "{}",
        runs[0]
    );
    assert!(runs[1].contains("LOGDAEMON_HAD_DATA=0\n"), "{}", runs[1]);
}

#[test]
fn no_data_reports_the_last_position_and_is_off_by_default() {
    let d = tempfile::tempdir().unwrap();
    let (s, out) = env_script(d.path());
    let mut l = open(
        d.path(),
        &command(&[s.to_str().unwrap(), out.to_str().unwrap()]),
    );
    l.no_data(true).unwrap();
    assert!(!out.exists(), "no_data is not an event unless configured");
    let cfg = format!(
        "{}\non = [\"entries\", \"no_data\"]",
        command(&[s.to_str().unwrap(), out.to_str().unwrap()])
    );
    let mut l = open(d.path(), &cfg);
    l.listen(records().entries()).unwrap();
    l.no_data(true).unwrap();
    let text = fs::read_to_string(&out).unwrap();
    let last = text
        .split("---\n")
        .filter(|r| !r.is_empty())
        .last()
        .unwrap()
        .to_string();
    assert!(
        last.contains("LOGDAEMON_EVENT=no_data\n")
            && last.contains(&format!("LOGDAEMON_END_OFFSET={}\n", records_end())),
        "{last}"
    );
    assert!(last.contains("LOGDAEMON_SEQUENCE=5\n"), "{last}");
}

#[test]
fn non_zero_exit_is_retry_with_status_and_stderr() {
    let d = tempfile::tempdir().unwrap();
    let s = script(
        d.path(),
        "fail.sh",
        "echo first >&2; echo 'disk full' >&2; exit 3",
    );
    let mut l = open(d.path(), &command(&[s.to_str().unwrap()]));
    let f = l.listen(records().entries()).unwrap_err();
    assert_eq!(f.kind, FailureKind::Retry);
    assert!(f.message.contains("exit status: 3"), "{}", f.message);
    assert!(f.message.contains("first | disk full"), "{}", f.message);
    assert!(f.message.contains(s.to_str().unwrap()), "{}", f.message);
}

fn dead(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its new parent to reap it is dead too.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
    }
}

/// SIGKILL is delivered asynchronously to the rest of the group: poll for
/// the death, with a deadline far below the `sleep 10` it would otherwise live.
fn gone(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn timeout_kills_the_process_group_and_retries() {
    let d = tempfile::tempdir().unwrap();
    let pids = d.path().join("pids");
    let body = "echo $$ > \"$1\"; sleep 10 & echo $! >> \"$1\"; exec sleep 10";
    let cfg = format!(
        "{}\ntimeout = \"300ms\"\nstdin = \"raw\"",
        command(&["/bin/sh", "-c", body, "sh", pids.to_str().unwrap()])
    );
    let mut l = open(d.path(), &cfg);
    let t = Instant::now();
    let f = l.listen(records().entries()).unwrap_err();
    let took = t.elapsed();
    assert_eq!(f.kind, FailureKind::Retry, "{f}");
    assert!(
        f.message.contains("did not finish within 300ms"),
        "{}",
        f.message
    );
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}: the child was not killed at its deadline"
    );
    let text = fs::read_to_string(&pids).unwrap();
    let pids: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(pids.len(), 2, "{text}");
    for p in pids {
        assert!(gone(p), "process {p} still runs");
    }
}

#[test]
fn a_child_that_ignores_stdin_and_floods_stdout_does_not_deadlock() {
    let d = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{}\nstdin = \"raw\"\ntimeout = \"20s\"",
        command(&[
            "/bin/sh",
            "-c",
            "head -c 3000000 /dev/zero | tr '\\0' 'x'; echo; echo done >&2"
        ])
    );
    let mut l = open(d.path(), &cfg);
    let big = vec![b'y'; 1 << 20];
    let mut rec = big.clone();
    rec.push(b'\n');
    let b = Batch::lines("app", 1, 0, &[&rec, &rec, &rec]);
    let t = Instant::now();
    assert_eq!(l.listen(b.entries()), Ok(Ack::All));
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
fn missing_or_non_executable_program_is_fatal() {
    let d = tempfile::tempdir().unwrap();
    let f = open_err(d.path(), &command(&["/nonexistent/hook"]));
    assert_eq!(f.kind, FailureKind::Fatal);
    assert!(
        f.message
            .starts_with("listener \"hook\": command /nonexistent/hook cannot be used"),
        "{}",
        f.message
    );
    let p = d.path().join("plain.sh");
    fs::write(&p, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    let f = open_err(d.path(), &command(&["plain.sh"]));
    assert!(
        f.message
            .contains("\"plain.sh\" is not an executable in PATH"),
        "{}",
        f.message
    );
    // A bare name is looked up in PATH.
    let mut l = open(d.path(), &command(&["sh", "-c", "exit 0"]));
    assert_eq!(l.listen(records().entries()), Ok(Ack::All));
    let f = open_err(d.path(), &command(&["./plain.sh"]));
    assert!(
        f.message.contains("plain.sh is not executable (mode 644)"),
        "{}",
        f.message
    );
    // Removed after open: fatal at run time too, naming the path.
    let s = script(d.path(), "gone.sh", "exit 0");
    let mut l = open(d.path(), &command(&["./gone.sh"]));
    fs::remove_file(&s).unwrap();
    let f = l.listen(records().entries()).unwrap_err();
    assert_eq!(f.kind, FailureKind::Fatal);
    assert!(
        f.message.contains("gone.sh cannot be started"),
        "{}",
        f.message
    );
}

#[test]
fn filter_decides_is_handled() {
    let d = tempfile::tempdir().unwrap();
    let cfg = "command = [\"/bin/true\"]\nfilter = { table = \"db.change\", op = [\"pv\", \"dv\"], regex = \"bob\" }";
    let mut l = open(d.path(), cfg);
    let b = Batch::p4(
        "p4",
        1,
        0,
        &[
            b"@pv@ 7 @db.change@ 12 12 @c@ @bob@ 1 1 @d@ \n",
            b"@rv@ 7 @db.change@ 12 12 @c@ @bob@ 1 1 @d@ \n",
            b"@pv@ 7 @db.change@ 13 13 @c@ @amy@ 1 1 @d@ \n",
            b"@pv@ 0 @db.desc@ 12 @bob@ \n",
        ],
    );
    let handled: Vec<bool> = b.entries().iter().map(|e| l.is_handled(e)).collect();
    assert_eq!(handled, [true, false, false, false]);
    let f = open_as(
        d.path(),
        "lines",
        "command = [\"/bin/true\"]\nfilter = { table = \"db.change\" }",
    )
    .err()
    .unwrap();
    assert!(
        f.message.contains("only applies to p4 journals"),
        "{}",
        f.message
    );
}
