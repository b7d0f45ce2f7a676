//! `apply` on the standby: every transaction once across a crash between
//! append and apply, a failure reported as such, a hung one killed at
//! `command_timeout` and never run twice at once.

use super::common::*;

#[test]
fn apply_gets_every_transaction_exactly_once_across_a_crash_between_append_and_apply() {
    let env = Env::new();
    let (a, b) = (journal(9, 30), journal(10, 30));
    std::fs::write(env.journal_path(), &b).unwrap();
    let recs = stream(&[(1, &a), (2, &b)]);
    let sink = env.tmp.path().join("applied.out");
    let sizes = env.tmp.path().join("applied.sizes");
    let crash = env.tmp.path().join("crash-next-apply");
    let script = env.tmp.path().join("apply.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             # Simulates the standby crashing after the append, before apply: kill the batch.\n\
             if [ -f '{crash}' ]; then rm -f '{crash}'; kill -9 $(cat ./.logdaemon-loop); exit 1; fi\n\
             cat > '{sink}.part' && cat '{sink}.part' >> '{sink}' && wc -c < '{sink}.part' >> '{sizes}'\n",
            crash = crash.display(),
            sink = sink.display(),
            sizes = sizes.display()
        ),
    )
    .unwrap();
    let extra = format!("apply = [\"sh\", \"{}\"]\n", script.display());
    let mut l = env.open(&extra);
    let mut host = Host::new(&recs, 6);
    let mut calls = 0;
    let mut crashes = 0;
    while !host.done() {
        calls += 1;
        let crash_now = calls % 6 == 3;
        if crash_now {
            std::fs::write(&crash, b"").unwrap();
        }
        // A crash surfaces at the call that queued the batch or a later one;
        // flushing after a simulated crash makes it surface now. The flush
        // (a checkpoint) before each crash makes every round progress,
        // however many batches the listener keeps in flight.
        let flush_now = crash_now || calls % 6 == 2;
        match host
            .step(&mut l)
            .and_then(|a| if flush_now { host.flush(&mut l) } else { Ok(a) })
        {
            Ok(_) => {}
            Err(f) => {
                assert!(!crash.exists(), "a failure without a simulated crash: {f}");
                assert_eq!(f.kind, logdaemon_sdk::FailureKind::Retry, "{f}");
                crashes += 1;
            }
        }
    }
    host.flush(&mut l).unwrap();
    assert!(crashes >= 3, "crashes simulated: {crashes}");
    let mut both = a.clone();
    both.extend_from_slice(&b);
    assert_eq!(
        std::fs::read(&sink).unwrap(),
        both,
        "the applied stream is the journal, exactly once"
    );
    // Every apply ended on a transaction boundary.
    let mut bounds: Vec<u64> = ex_ends(&a);
    bounds.extend(ex_ends(&b).into_iter().map(|e| e + a.len() as u64));
    let mut total = 0;
    for line in std::fs::read_to_string(&sizes).unwrap().lines() {
        total += line.trim().parse::<u64>().unwrap();
        assert!(
            bounds.contains(&total),
            "apply stopped at {total}, not after an @ex@"
        );
    }
    assert_eq!(
        env.remote_file(".logdaemon-applied"),
        b"2 "
            .iter()
            .chain(format!("{}\n", b.len()).as_bytes())
            .copied()
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_failing_apply_is_reported_as_such_with_requests_pipelined_behind_it() {
    let env = Env::new();
    let a = journal(12, 200);
    std::fs::write(env.journal_path(), &a).unwrap();
    let recs = stream(&[(1, &a)]);
    let extra = "apply = [\"sh\", \"-c\", \"cat > /dev/null; echo replay refused; exit 4\"]\n";
    let mut l = env.open(extra);
    let mut host = Host::new(&recs, 3);
    let mut failures = Vec::new();
    for _ in 0..60 {
        if host.done() || failures.len() >= 5 {
            break;
        }
        if let Err(f) = host.step(&mut l) {
            failures.push(f);
        }
    }
    if let Err(f) = host.flush(&mut l) {
        failures.push(f);
    }
    assert!(!failures.is_empty());
    for f in &failures {
        assert!(
            f.kind == logdaemon_sdk::FailureKind::Error
                && f.message.contains("the apply command failed")
                && f.message.contains("exited with status 4")
                && f.message.contains("replay refused"),
            "{f}"
        );
    }
}

/// Processes whose command line contains `pattern` (read from /proc).
fn running(pattern: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(pattern))
        .count()
}

#[test]
fn a_hung_apply_is_killed_at_command_timeout_and_never_runs_twice_at_once() {
    let env = Env::new();
    let a = journal(11, 20);
    std::fs::write(env.journal_path(), &a).unwrap();
    let recs = stream(&[(1, &a)]);
    // A sleep no other test runs: its processes are this apply's.
    let secs = 200_000 + u64::from(std::process::id() % 100_000);
    let pattern = format!("sleep {secs}");
    let starts = env.tmp.path().join("apply.starts");
    let script = env.tmp.path().join("apply.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho start >> '{}'\ncat > /dev/null\n# a child that keeps running, then the hang itself\nsleep {secs} &\nexec sleep {secs}\n",
            starts.display()
        ),
    )
    .unwrap();
    let extra = format!(
        "apply = [\"sh\", \"{}\"]\ncommand_timeout = \"2s\"\n",
        script.display()
    );
    let mut l = env.open(&extra);
    let mut host = Host::new(&recs, 100);
    for round in 1..=2 {
        let t0 = std::time::Instant::now();
        let r = host.step(&mut l).and_then(|_| host.flush(&mut l));
        let f = r.expect_err("a hung apply cannot succeed");
        assert_eq!(f.kind, logdaemon_sdk::FailureKind::Error, "{f}");
        assert!(
            f.message.contains("timed out")
                && f.message
                    .contains("did not finish within command_timeout (2s)"),
            "round {round}: {f}"
        );
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(15),
            "reported after {:?}",
            t0.elapsed()
        );
        assert_eq!(
            running(&pattern),
            0,
            "round {round}: the apply and its child were killed"
        );
        let n = std::fs::read_to_string(&starts).unwrap().lines().count();
        assert_eq!(n, round, "one apply per attempt, never two at once");
    }
    // The bytes stay appended; the range is applied by the next attempt.
    assert_eq!(env.remote_file("journal"), a);
}
