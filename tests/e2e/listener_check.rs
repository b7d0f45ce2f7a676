//! `logdaemon check` running each listener's own validation through the
//! real binary: an unknown key (file), a private key others can read
//! (hot-backup), a target that is no URL (syslog), a sender that is no
//! address (email) are refused naming the file, the line and the key, and
//! nothing is created; a good config still checks (without connecting to
//! the standby, shown by a loopback socket nobody dials); a version-1 C
//! plugin, which has no check, still passes.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;

use crate::abi::build_c_listener;
use crate::fixture::{stderr, stdout, Fixture};
use crate::host::{config, file_listener, recs};

/// The 1-based line of the first line of `text` that starts with `start`.
fn line_of(text: &str, start: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in:\n{text}"))
        + 1
}

/// A fixture with a journal and `listeners` in its config; returns the
/// config's text.
fn fixture(listeners: &str) -> (Fixture, String) {
    let f = Fixture::new();
    f.write("p4root/journal", recs(0, 3));
    let text = config("", listeners);
    f.write("cfg.toml", &text);
    (f, text)
}

/// Runs `check`, expects a refusal naming the config file, `line`, the
/// listener and `needles`, and that neither the state nor `out/` exists.
fn refused(f: &Fixture, line: usize, listener: &str, needles: &[&str]) {
    let out = f.run(&["check", "--config", "cfg.toml"]);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "check passed:\n{}{err}",
        stdout(&out)
    );
    let at = format!("config {}, line {line} ", f.join("cfg.toml").display());
    assert!(err.contains(&at), "no {at:?} in:\n{err}");
    assert!(err.contains(&format!("listener \"{listener}\"")), "{err}");
    for n in needles {
        assert!(err.contains(n), "no {n:?} in:\n{err}");
    }
    assert!(!f.join("state").exists(), "check created the state");
    assert!(
        !f.join("out").exists(),
        "check created the output's directory"
    );
}

#[test]
fn check_refuses_an_unknown_key_in_a_file_listener_table() {
    let (f, text) = fixture(&format!("{}colour = \"red\"\n", file_listener("copy")));
    refused(
        &f,
        line_of(&text, "colour ="),
        "copy",
        &["key colour", "unknown field `colour`"],
    );
    assert!(!f.join("out/copy.raw").exists());
}

/// A hot-backup listener table with the key `keys/id`.
fn hot_backup(port: u16) -> String {
    format!(
        "\n[[journal.listener]]\nname = \"standby\"\nplugin = \"hot-backup\"\n[journal.listener.config]\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"backup\"\nidentity_file = \"keys/id\"\nknown_hosts = \"keys/known_hosts\"\nremote_dir = \"/srv/standby\"\n"
    )
}

fn write_keys(f: &Fixture, mode: u32) {
    fs::create_dir(f.join("keys")).unwrap();
    fs::set_permissions(f.join("keys"), fs::Permissions::from_mode(0o700)).unwrap();
    let key = f.write("keys/id", "not used: check never connects\n");
    fs::set_permissions(&key, fs::Permissions::from_mode(mode)).unwrap();
    f.write("keys/known_hosts", "");
}

#[test]
fn check_refuses_a_hot_backup_identity_file_others_can_read() {
    let (f, text) = fixture(&hot_backup(22));
    write_keys(&f, 0o644);
    refused(
        &f,
        line_of(&text, "identity_file ="),
        "standby",
        &["key identity_file", "mode 0644", "chmod 600"],
    );
}

#[test]
fn check_refuses_a_syslog_target_that_is_not_a_url() {
    let (f, text) = fixture("\n[[journal.listener]]\nname = \"ship\"\nplugin = \"syslog\"\n[journal.listener.config]\ntarget = \"loghost 514\"\n");
    refused(
        &f,
        line_of(&text, "target ="),
        "ship",
        &["key target", "loghost 514"],
    );
}

#[test]
fn check_refuses_an_email_sender_that_is_not_an_address() {
    let (f, text) = fixture("\n[[journal.listener]]\nname = \"reviews\"\nplugin = \"email\"\n[journal.listener.config]\nsmtp_host = \"127.0.0.1\"\ntls = \"none\"\nto = [\"dev@example.com\"]\nfrom = \"logdaemon at example\"\n");
    refused(
        &f,
        line_of(&text, "from ="),
        "reviews",
        &["key from", "`logdaemon at example` is not an address"],
    );
}

#[test]
fn a_good_config_is_checked_valid_without_connecting_or_creating_anything() {
    // The standby's port: a socket nobody may dial during `check`.
    let standby = TcpListener::bind("127.0.0.1:0").unwrap();
    standby.set_nonblocking(true).unwrap();
    let port = standby.local_addr().unwrap().port();
    let (f, _) = fixture(&format!("{}{}", file_listener("copy"), hot_backup(port)));
    write_keys(&f, 0o600);
    let out = f.run(&["check", "--config", "cfg.toml"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    assert!(text.contains(": valid;"), "{text}");
    assert!(text.contains("listener copy: plugin file"), "{text}");
    assert_eq!(text.matches("; config checked").count(), 2, "{text}");
    match standby.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("check connected to the standby: {other:?}"),
    }
    assert!(!f.join("out").exists() && !f.join("state").exists());
}

#[test]
fn a_version_1_plugin_without_a_check_still_passes_check() {
    let scratch = Fixture::new();
    let lib = build_c_listener(&scratch.join("plugins"), "v1");
    let (f, _) = fixture(&format!(
        "\n[[journal.listener]]\nname = \"changes\"\nplugin = \"{}\"\n[journal.listener.config]\npath = \"out/changes.txt\"\n",
        lib.display()
    ));
    let out = f.run(&["check", "--config", "cfg.toml"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    assert!(
        text.contains("listener changes: plugin example-c") && text.contains("no config check"),
        "{text}"
    );
}

/// What `run` refuses in the state directory, `check` refuses the same
/// way without changing anything: a state directory others can write, a
/// checkpoint that does not load; a good one passes and is named.
#[test]
fn check_refuses_the_state_directory_and_checkpoint_that_run_would_refuse() {
    let (f, _) = fixture(&file_listener("copy"));
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = f.run(&["check", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("checkpoint of 1 journals loads"),
        "{}",
        stdout(&out)
    );

    let state = f.join("state");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    let (c, r) = (
        f.run(&["check", "--config", "cfg.toml"]),
        f.run(&["run", "--once", "--config", "cfg.toml"]),
    );
    let want = format!(
        "state directory {}: writable by group or others (mode 0777); run `chmod 700 {}`",
        state.display(),
        state.display()
    );
    for (what, o) in [("check", &c), ("run", &r)] {
        assert!(!o.status.success(), "{what} passed");
        assert!(stderr(o).contains(&want), "{what}:\n{}", stderr(o));
    }
    assert_eq!(
        fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o777,
        "check changed the mode"
    );

    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    let cp = f.join("state/checkpoint.toml");
    fs::write(&cp, "this is not a checkpoint\n").unwrap();
    let (c, r) = (
        f.run(&["check", "--config", "cfg.toml"]),
        f.run(&["run", "--once", "--config", "cfg.toml"]),
    );
    for (what, o) in [("check", &c), ("run", &r)] {
        assert!(!o.status.success(), "{what} passed");
        assert!(
            stderr(o).contains(&format!("checkpoint {}", cp.display())),
            "{what}:\n{}",
            stderr(o)
        );
    }
    assert_eq!(
        fs::read_to_string(&cp).unwrap(),
        "this is not a checkpoint\n"
    );
}
