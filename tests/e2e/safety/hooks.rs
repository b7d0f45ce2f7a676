//! Hooks (`exec`) and jsonl: a hook another user can rewrite is never run,
//! a stop reaches a running hook, and jsonl can carry any bytes.

use std::fs;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use super::{as_nobody, check, chmod, refused, run_once};
use crate::fixture::stderr;
use crate::host::{acked, config, fixture, wait_until, Daemon};

fn exec_to(name: &str, command: &str, extra: &str) -> String {
    format!("\n[[journal.listener]]\nname = \"{name}\"\nplugin = \"exec\"\n[journal.listener.config]\ncommand = {command}\n{extra}\n")
}

#[test]
fn a_hook_another_user_can_rewrite_is_never_run() {
    let f = fixture(&super::recs(0, 3), "");
    chmod(f.path(), 0o755);
    let ran = f.join("ran-as");
    fs::create_dir(f.join("hooks")).unwrap();
    chmod(&f.join("hooks"), 0o777);
    let cfg = config("", &exec_to("hook", "[\"hooks/hook.sh\"]", ""));
    f.write("cfg.toml", &cfg);
    // `nobody` writes the hook (0777, in a 0777 directory): it would run as root.
    as_nobody(
        f.path(),
        &format!(
            "printf '#!/bin/sh\\nid -u > {}\\n' > hooks/hook.sh && chmod 777 hooks/hook.sh",
            ran.display()
        ),
    );
    let words = [
        "hooks/hook.sh: file",
        "hook.sh is writable by group or others (mode 0777)",
        "anyone who can write it can run code as this daemon",
    ];
    refused(&run_once(&f), &words);
    assert!(!ran.exists(), "the hook ran as root");
    // Not writable by others but owned by `nobody`, in a root-owned
    // directory: still theirs to rewrite.
    chmod(&f.join("hooks"), 0o755);
    as_nobody(f.path(), "chmod 755 hooks/hook.sh");
    refused(
        &run_once(&f),
        &["hook.sh is owned by uid 65534, neither root nor this daemon's user"],
    );
    assert!(!ran.exists(), "the hook ran as root");
    // A root-owned copy in a root-owned directory runs.
    fs::copy(f.join("hooks/hook.sh"), f.join("hook.sh")).unwrap();
    chmod(&f.join("hook.sh"), 0o755);
    f.write(
        "cfg.toml",
        config("", &exec_to("hook", "[\"./hook.sh\"]", "")),
    );
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&ran).unwrap().trim(), "0");
}

/// A hook that records its pid, then runs until killed; `on_term` is its
/// SIGTERM trap (`''` ignores the signal).
fn endless_hook(on_term: &str) -> String {
    let script = format!("echo $$ > hook.pid; trap {on_term} TERM; while :; do sleep 0.1; done");
    let cmd = format!(
        "[\"/bin/sh\", \"-c\", {}]",
        serde_json::to_string(&script).unwrap()
    );
    config("", &exec_to("hook", &cmd, "timeout = \"1h\""))
}

fn alive(pid: &str) -> bool {
    // A zombie is dead for our purpose: its group was killed.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.split_whitespace().nth(2).is_none_or(|st| st != "Z"),
        Err(_) => false,
    }
}

/// Kills a hook's process group when the test ends, pass or fail: a hook
/// runs in its own group, so a daemon killed by a failing test leaves it.
struct Group(String);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Waits for the hook to run; its pid, and a guard that kills its group.
fn hook_started(f: &crate::fixture::Fixture, d: &Daemon) -> (String, Group) {
    let pid = f.join("hook.pid");
    wait_until(
        20,
        "the hook to start",
        || fs::metadata(&pid).is_ok_and(|m| m.len() > 0),
        || d.log(),
    );
    let pid = fs::read_to_string(pid).unwrap().trim().to_string();
    (pid.clone(), Group(pid))
}

#[test]
fn a_stop_during_a_hook_terminates_it_then_kills_it_on_a_second_signal() {
    // A hook that exits on SIGTERM: the stop reaches it at once.
    let f = fixture(
        &super::recs(0, 3),
        &endless_hook("'echo term > got-term; exit 3'"),
    );
    let d = Daemon::start(&f);
    let (pid, _group) = hook_started(&f, &d);
    d.signal("TERM");
    let (st, log) = d.wait(20);
    assert!(st.success(), "{log}");
    assert!(
        f.join("got-term").exists(),
        "the hook never got SIGTERM:\n{log}"
    );
    assert!(log.contains("sent SIGTERM to the command"), "{log}");
    assert!(!alive(&pid));
    assert_eq!(
        acked(&f, "hook"),
        Some((1, 0)),
        "an interrupted hook's entries were acknowledged"
    );

    // A hook that ignores SIGTERM: a second signal kills it at once.
    let f = fixture(&super::recs(0, 3), &endless_hook("''"));
    let d = Daemon::start(&f);
    let (pid, _group) = hook_started(&f, &d);
    d.signal("TERM");
    wait_until(
        20,
        "the SIGTERM to the hook",
        || d.log().contains("sent SIGTERM to the command"),
        || d.log(),
    );
    assert!(alive(&pid), "the hook should still run: it ignores SIGTERM");
    let second = Instant::now();
    d.signal("INT");
    let (st, log) = d.wait(20);
    assert!(st.success(), "{log}");
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "the second signal did not escalate: exit {:?} after it (the grace is 5 s)\n{log}",
        second.elapsed()
    );
    assert!(!alive(&pid), "the hook survived the daemon");
    assert_eq!(acked(&f, "hook"), Some((1, 0)));

    // Ignoring SIGTERM with no second signal: killed after the grace.
    let f = fixture(&super::recs(0, 3), &endless_hook("''"));
    let d = Daemon::start(&f);
    let (pid, _group) = hook_started(&f, &d);
    d.signal("TERM");
    let (st, log) = d.wait(30);
    assert!(st.success(), "{log}");
    assert!(!alive(&pid), "the hook survived the grace");
}

/// The entries' bytes, from jsonl objects in the base64 form.
fn decoded(jsonl: &str) -> Vec<u8> {
    let mut all = Vec::new();
    for l in jsonl.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v.get("raw").is_none(), "{l}");
        let b64 = v["raw_b64"]
            .as_str()
            .unwrap_or_else(|| panic!("no raw_b64 in {l}"));
        all.extend(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        );
    }
    all
}

#[test]
fn jsonl_in_base64_keeps_every_byte_in_the_file_and_the_hook() {
    // A non-Unicode p4 server writes Latin-1: "café" with 0xE9.
    let mut journal = super::recs(0, 2).into_bytes();
    journal.extend_from_slice(b"@pv@ 0 @db.desc@ @caf\xe9@ @\xff\xfe@ \n");
    let hook = "[\"/bin/sh\", \"-c\", \"cat >> got.jsonl\"]";
    let cfg = config(
        "",
        &format!(
            "\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"out/copy.jsonl\"\nformat = \"jsonl\"\nencoding = \"base64\"\n{}",
            exec_to("hook", hook, "stdin = \"jsonl\"\nencoding = \"base64\"")
        ),
    );
    let f = fixture("", &cfg);
    fs::write(f.join("p4root/journal"), &journal).unwrap();
    let out = check(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = fs::read_to_string(f.join("out/copy.jsonl")).unwrap();
    assert_eq!(
        decoded(&file),
        journal,
        "the file listener's jsonl lost bytes"
    );
    let hooked = fs::read_to_string(f.join("got.jsonl")).unwrap();
    assert_eq!(decoded(&hooked), journal, "the hook's jsonl lost bytes");
    let last: Value = serde_json::from_str(file.lines().last().unwrap()).unwrap();
    let fields: Vec<Vec<u8>> = last["fields_b64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(fields[2], b"caf\xe9");
    assert_eq!(fields[3], b"\xff\xfe");
}
