//! The remote scripts run by a local `sh`, as the standby runs them.

use super::*;
use std::process::{Command, Stdio};

/// Runs requests through [`SHELL_LOOP`] under a local `sh`, as the
/// standby does; returns each request's status and output.
fn run_loop(reqs: &[(&Script, &[u8])]) -> Vec<(i32, String)> {
    run_loop_path(reqs, None)
}

/// The loop's input for `reqs`.
fn frames(reqs: &[(&Script, &[u8])]) -> Vec<u8> {
    let mut input = Vec::new();
    let mut last = String::new();
    for (s, data) in reqs {
        // Repeated defs are left out, as the connection does.
        let defs = s.defs();
        input.extend_from_slice(&s.frame(
            data.len() as u64,
            defs == last,
            s.ready && !data.is_empty(),
        ));
        last = defs;
        input.extend_from_slice(data);
    }
    input
}

/// [`run_loop`] with `dir` first in `PATH`.
fn run_loop_path(reqs: &[(&Script, &[u8])], dir: Option<&std::path::Path>) -> Vec<(i32, String)> {
    run_input(&frames(reqs), dir)
}

/// Runs the loop on `input` as it is (then end of input); returns each
/// request's status and output.
fn run_input(input: &[u8], dir: Option<&std::path::Path>) -> Vec<(i32, String)> {
    // Ready lines (the data was sent at once here) are left out.
    let text = run_raw(input, dir).replace("\n@@T+\n", "");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\n@@T ") {
        let (body, tail) = rest.split_at(i);
        let tail = &tail[5..];
        let nl = tail.find('\n').unwrap();
        out.push((tail[..nl].parse().unwrap(), body.to_string()));
        rest = &tail[nl + 1..];
    }
    out
}

/// What the loop prints for `input`.
fn run_raw(input: &[u8], dir: Option<&std::path::Path>) -> String {
    use std::io::Write;
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(SHELL_LOOP.replace("TOKEN", "@@T"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Some(d) = dir {
        c.env(
            "PATH",
            format!(
                "{}:{}",
                d.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    }
    let mut c = c.spawn().unwrap();
    c.stdin.take().unwrap().write_all(input).unwrap();
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `script` in a fresh loop that first claims `l`'s standby, as
/// every connection does.
pub(super) fn sh_owned(l: &Layout, script: &Script, stdin: &[u8]) -> (i32, String) {
    run_loop(&[(&l.query(&[]), b""), (script, stdin)])
        .pop()
        .expect("two answers")
}

pub(super) fn sh(script: &Script, stdin: &[u8]) -> (i32, String) {
    run_loop(&[(script, stdin)]).pop().expect("one answer")
}

pub(super) fn sh_text(script: &str) -> (i32, String) {
    let o = Command::new("sh").arg("-c").arg(script).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn the_loop_never_runs_data_as_a_request_and_ends_on_a_failed_write() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary");
    let evil = format!("0 0 0 0\ntouch '{}'\n", canary.display());
    let refused = Script::only("exit 3".into());
    let echo = Script::only("printf hi".into());
    let to_file = Script {
        pre: String::new(),
        post: "echo posted".into(),
        target: dir.path().join("f").display().to_string(),
        ..Default::default()
    };
    let to_nowhere = Script {
        pre: String::new(),
        post: String::new(),
        target: "/nonexistent/dir/f".into(),
        ..Default::default()
    };
    let answers = run_loop(&[
        (&echo, b""),
        (&to_file, evil.as_bytes()),
        (&to_nowhere, evil.as_bytes()),
        (&echo, b""),
    ]);
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        [0, 0, status::IO],
        "{answers:?}"
    );
    assert_eq!(answers[0].1, "hi");
    assert_eq!(answers[1].1, "posted\n");
    assert_eq!(
        std::fs::read(dir.path().join("f")).unwrap(),
        evil.as_bytes()
    );
    // A failed request ends the loop: what was sent behind it never runs.
    let answers = run_loop(&[(&refused, evil.as_bytes()), (&echo, b"")]);
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        [3],
        "{answers:?}"
    );
    assert!(!canary.exists(), "data was executed");
}

/// Megabytes are appended exactly, with GNU `dd` and (when `dd` is
/// missing or not GNU's) with `head -c`; the next request follows intact,
/// and without its defs (the same as the previous request's). A request
/// whose data ends early (the client died while sending) is cut back to
/// the size before it.
#[test]
fn the_loop_appends_exactly_with_and_without_gnu_dd() {
    use std::os::unix::fs::PermissionsExt;
    for gnu_dd in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let calls = dir.path().join("dd-calls");
        if !gnu_dd {
            std::fs::write(
                bin.join("dd"),
                format!("#!/bin/sh\necho x >> '{}'\nexit 1\n", calls.display()),
            )
            .unwrap();
            std::fs::set_permissions(bin.join("dd"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let f = dir.path().join("f");
        let to_file = |expect: u64| Script {
            post: "echo posted".into(),
            target: f.display().to_string(),
            expect,
            ..Default::default()
        };
        let (first, second) = (to_file(0), to_file(3_000_000));
        assert_eq!(
            first.defs(),
            second.defs(),
            "consecutive appends share their defs"
        );
        let echo = Script::only("printf hi".into());
        let answers = run_loop_path(
            &[(&first, &data), (&second, b"tail\n"), (&echo, b"")],
            Some(&bin),
        );
        assert_eq!(
            answers.iter().map(|a| a.0).collect::<Vec<_>>(),
            [0, 0, 0],
            "gnu dd {gnu_dd}: {answers:?}"
        );
        assert_eq!(
            (answers[1].1.as_str(), answers[2].1.as_str()),
            ("posted\n", "hi")
        );
        let mut want = data.clone();
        want.extend_from_slice(b"tail\n");
        assert!(
            std::fs::read(&f).unwrap() == want,
            "gnu dd {gnu_dd}: the appended bytes differ"
        );
        if !gnu_dd {
            assert_eq!(
                std::fs::read_to_string(&calls).unwrap(),
                "x\n",
                "dd is probed once, then never used"
            );
        }

        // 2 MB announced, 1 MB sent, then the end of the input.
        let third = to_file(want.len() as u64);
        let mut input = frames(&[(&third, &data[..2_000_000])]);
        input.truncate(input.len() - 1_000_000);
        let answers = run_input(&input, Some(&bin));
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(
            answers[0].0,
            status::SIZE_AFTER,
            "gnu dd {gnu_dd}: {answers:?}"
        );
        assert!(
            answers[0]
                .1
                .ends_with("f: 1000000 of 2000000 bytes appended, cut back to 3000005 bytes"),
            "{answers:?}"
        );
        assert!(
            std::fs::read(&f).unwrap() == want,
            "gnu dd {gnu_dd}: half a request was kept"
        );
    }
}

/// The fsync of one request overlaps the next request's data, answers
/// stay in order and a failed fsync ends the loop. The `sync` put
/// first in `PATH` only succeeds once the next request's bytes are in
/// the file, which can only happen if the loop went on without it.
#[test]
fn the_fsync_overlaps_the_next_request_and_its_failure_ends_the_loop() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (bin, f, calls) = (
        dir.path().join("bin"),
        dir.path().join("f"),
        dir.path().join("sync-calls"),
    );
    std::fs::create_dir(&bin).unwrap();
    let fake = format!(
        "#!/bin/sh\necho x >> '{calls}'\n[ \"$(wc -l < '{calls}')\" -eq 1 ] || exit 0\n\
         i=0; while [ \"$(wc -c < '{f}')\" -lt 10 ]; do i=$((i+1)); [ $i -lt 2000 ] || {{ echo 'the next request never came' >&2; exit 1; }}; sleep 0.01; done\n",
        calls = calls.display(),
        f = f.display()
    );
    std::fs::write(bin.join("sync"), fake).unwrap();
    std::fs::set_permissions(bin.join("sync"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let append = Script {
        post: "echo posted".into(),
        sync: "sync || exit 71".into(),
        target: f.display().to_string(),
        ..Default::default()
    };
    let echo = Script::only("printf hi".into());
    let answers = run_loop_path(
        &[(&append, b"first"), (&append, b"again"), (&echo, b"")],
        Some(&bin),
    );
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        [0, 0, 0],
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().map(|a| a.1.as_str()).collect::<Vec<_>>(),
        ["posted", "posted", "hi"]
    );
    assert_eq!(std::fs::read(&f).unwrap(), b"firstagain");
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "x\nx\n",
        "one fsync per request"
    );

    // The first fsync fails: its answer says so and nothing behind it is answered.
    std::fs::write(
        bin.join("sync"),
        "#!/bin/sh\necho 'disk gone' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::remove_file(&f).unwrap();
    let answers = run_loop_path(
        &[(&append, b"first"), (&append, b"again"), (&echo, b"")],
        Some(&bin),
    );
    assert_eq!(answers.len(), 1, "{answers:?}");
    // (Kept output loses its trailing newlines, as `$(...)` does.)
    assert_eq!(
        (answers[0].0, answers[0].1.as_str()),
        (71, "posteddisk gone")
    );
}

/// A request that asks to (a rotation) runs only once the previous
/// request's fsync is done, though it has a deferred fsync of its own.
#[test]
fn a_request_that_waits_first_runs_after_the_previous_fsync() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (bin, f, done) = (
        dir.path().join("bin"),
        dir.path().join("f"),
        dir.path().join("synced"),
    );
    std::fs::create_dir(&bin).unwrap();
    // Slow enough that a request not waiting for it finds no mark.
    std::fs::write(
        bin.join("sync"),
        format!("#!/bin/sh\nsleep 0.3\necho x >> '{}'\n", done.display()),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("sync"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let append = Script {
        sync: "sync || exit 71".into(),
        target: f.display().to_string(),
        ..Default::default()
    };
    let check = format!(
        "[ -f '{}' ] || {{ echo 'ran before the fsync'; exit 9; }}",
        done.display()
    );
    let waits = Script {
        pre: check.clone(),
        wait_first: true,
        ..append.clone()
    };
    let answers = run_loop_path(&[(&append, b"one"), (&waits, b"two")], Some(&bin));
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        [0, 0],
        "{answers:?}"
    );
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "x\nx\n");
    // Without `wait_first` the same request does not wait (the check above can fail).
    std::fs::remove_file(&done).unwrap();
    let eager = Script {
        pre: check,
        ..append.clone()
    };
    let answers = run_loop_path(&[(&append, b"one"), (&eager, b"two")], Some(&bin));
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        [0, 9],
        "{answers:?}"
    );
}

/// Catching up, an append whose expected size is the one the loop's own
/// last append left checks it without running `wc`; any other expectation
/// is checked against the file and refused when it is wrong.
#[test]
fn the_loop_checks_the_size_with_wc_only_when_it_does_not_know_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (d, bin) = (dir.path().join("standby"), dir.path().join("bin"));
    std::fs::create_dir(&d).unwrap();
    std::fs::create_dir(&bin).unwrap();
    let calls = dir.path().join("wc-calls");
    std::fs::write(
        bin.join("wc"),
        format!(
            "#!/bin/sh\necho x >> '{}'\nexec /usr/bin/env -i PATH=/usr/bin:/bin wc \"$@\"\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("wc"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let l = Layout {
        dir: d.to_str().unwrap().into(),
        live: "journal".into(),
    };
    let append_with = |at: u64, len: u64, trust: bool| {
        Batch {
            append: Some((at, len)),
            fsync: false,
            trust_cached_size: trust,
            ..Default::default()
        }
        .script(&l, None)
    };
    let append = |at: u64, len: u64| append_with(at, len, true);
    let wc_calls = || {
        std::fs::read_to_string(&calls)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };

    let answers = run_loop_path(
        &[
            (&l.query(&[]), b""),
            (&append(0, 5), b"hello"),
            (&append(5, 3), b" wo"),
            (&append(8, 3), b"rld"),
        ],
        Some(&bin),
    );
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        [0, 0, 0, 0],
        "{answers:?}"
    );
    assert_eq!(std::fs::read(d.join("journal")).unwrap(), b"hello world");
    assert_eq!(
        wc_calls(),
        1,
        "only the first append of the connection counts the file"
    );

    // A new connection does not know the size; a wrong expectation is refused.
    std::fs::remove_file(&calls).unwrap();
    let answers = run_loop_path(
        &[
            (&l.query(&[]), b""),
            (&append(11, 1), b"!"),
            (&append(11, 1), b"?"),
        ],
        Some(&bin),
    );
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        [0, 0, status::SIZE_BEFORE],
        "{answers:?}"
    );
    assert!(
        answers[2].1.contains("journal is 12 bytes, expected 11"),
        "{answers:?}"
    );
    assert_eq!(std::fs::read(d.join("journal")).unwrap(), b"hello world!");
    assert_eq!(wc_calls(), 3, "query, first append, the mismatch");

    // With `verify` (the default) every append counts the file first.
    std::fs::remove_file(&calls).unwrap();
    let answers = run_loop_path(
        &[
            (&l.query(&[]), b""),
            (&append_with(12, 1, false), b"1"),
            (&append_with(13, 1, false), b"2"),
        ],
        Some(&bin),
    );
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        [0, 0, 0],
        "{answers:?}"
    );
    assert_eq!(wc_calls(), 3, "query and each append");
}

/// A request that asks the loop to say when it is ready gets a ready line
/// after its `pre` and before its answer; one whose `pre` fails gets no
/// ready line and its data is not read (the sender keeps it back), nor
/// taken for a request.
#[test]
fn a_request_that_waits_to_be_ready_is_told_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    let canary = dir.path().join("canary");
    let ready = Script {
        pre: "printf checked".into(),
        target: f.display().to_string(),
        ready: true,
        ..Default::default()
    };
    let echo = Script::only("printf hi".into());
    let mut input = frames(&[(&ready, b"data"), (&echo, b"")]);
    let out = run_raw(&input, None);
    assert_eq!(out, "checked\n@@T+\n\n@@T 0\nhi\n@@T 0\n");
    assert_eq!(std::fs::read(&f).unwrap(), b"data");

    let refused = Script {
        pre: "exit 3".into(),
        ..ready.clone()
    };
    input = refused.frame(4, false, true);
    input.extend_from_slice(format!("0 0 0 0\ntouch '{}'\n", canary.display()).as_bytes());
    assert_eq!(run_raw(&input, None), "\n@@T 3\n");
    assert!(!canary.exists(), "data was executed");
    assert_eq!(std::fs::read(&f).unwrap(), b"data");
}
