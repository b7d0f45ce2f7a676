//! Secrets and entry data where they must never go: an SMTP password and
//! an SSH key passphrase never in the daemon's log, and hostile entry data
//! on a hook's stdin only, never in a shell or its argv.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use logdaemon_tests::smtp::{Options, ServerTls, SmtpServer};

use super::{refused, run_once};
use crate::fixture::{bin, stderr, Fixture};
use crate::host::{acked, config, fixture, rec};

// ---------------------------------------------------------------- secrets

/// An `email` listener logging in to a real STARTTLS relay with a password
/// from the environment (`password_env`) or a file (`password_file`).
fn email_config(srv: &SmtpServer, password: &str) -> String {
    let ca = srv.ca_cert().expect("the TLS server has a CA");
    format!(
        "state_dir = \"state\"\n\n[[journal]]\nname = \"log\"\npath = \"app.log\"\nformat = \"lines\"\nstart = \"beginning\"\nquiet_after = \"200ms\"\n\n\
         [[journal.listener]]\nname = \"mail\"\nplugin = \"email\"\n[journal.listener.config]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
         tls = \"starttls\"\nca_file = \"{}\"\ntimeout = \"20s\"\nfrom = \"logdaemon@example.com\"\nto = [\"dev@example.com\"]\n\
         username = \"alice\"\n{password}\nmax_entries = 1\n",
        srv.port(),
        ca.display()
    )
}

fn run_with_env(f: &Fixture, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(["run", "--once", "--config", "cfg.toml"])
        .current_dir(f.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run logdaemon")
}

#[test]
fn the_smtp_password_appears_nowhere_in_the_daemon_log() {
    const SECRET: &str = "s3cret-Horse-7781";
    const WRONG: &str = "wrong-Battery-4410";
    let srv = SmtpServer::start_with(Options {
        tls: ServerTls::Starttls,
        auth: Some(("alice".into(), SECRET.into())),
    });
    let f = Fixture::new();
    f.write("app.log", "first line\nsecond line\n");
    // A wrong password from the environment: fatal, nothing mailed, nothing acknowledged.
    f.write(
        "cfg.toml",
        email_config(&srv, "password_env = \"LD_TEST_SMTP_PW\""),
    );
    let out = run_with_env(
        &f,
        &[("LD_TEST_SMTP_PW", WRONG), ("LOGDAEMON_LOG", "trace")],
    );
    let err = refused(
        &out,
        &[
            "refused the login",
            "check `username` and the password in `password_file`/`password_env`",
        ],
    );
    for leak in [WRONG, SECRET] {
        assert!(
            !err.contains(leak) && !String::from_utf8_lossy(&out.stdout).contains(leak),
            "the password appears in the daemon's output:\n{err}"
        );
    }
    assert!(srv.messages().is_empty(), "mailed with a refused login");
    assert_eq!(
        acked(&f, "mail").map_or(0, |(_, o)| o),
        0,
        "entries acknowledged although nothing was mailed"
    );
    // The right password from a file: mailed, and still never shown.
    f.write("smtp-password", format!("{SECRET}\n"));
    fs::set_permissions(f.join("smtp-password"), fs::Permissions::from_mode(0o600)).unwrap();
    f.write(
        "cfg.toml",
        email_config(&srv, "password_file = \"smtp-password\""),
    );
    let out = run_with_env(&f, &[("LOGDAEMON_LOG", "trace")]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains(SECRET) && !String::from_utf8_lossy(&out.stdout).contains(SECRET),
        "the password appears in the daemon's output:\n{err}"
    );
    let m = srv.wait_for_messages(2, std::time::Duration::from_secs(30));
    assert_eq!(m.len(), 2);
    assert!(m.iter().all(|m| m.tls && m.authenticated));
    assert!(
        m.iter()
            .all(|m| !String::from_utf8_lossy(&m.raw()).contains(SECRET)),
        "the password is in a mail"
    );
}

// ---------------------------------------------------------------- hooks

#[test]
fn hostile_entry_data_reaches_a_hook_on_stdin_only_never_a_shell_or_its_argv() {
    // Records whose payloads are shell syntax: if any reached a shell or the
    // argv, a file would be created or the argv would show them.
    let payloads = [
        "$(touch pwned1)",
        "`touch pwned2`",
        "; touch pwned3 ;",
        "MARK-7731 | touch pwned4",
    ];
    let journal: String = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| rec(i, p))
        .collect();
    let f = fixture(&journal, "");
    let hook = f.write("hook.sh", "#!/bin/sh\ncat >> hook.stdin\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> hook.argv\ntr '\\0' '\\n' < /proc/$$/cmdline >> hook.argv\nenv >> hook.env\n");
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    f.write(
        "cfg.toml",
        config("", "\n[[journal.listener]]\nname = \"hook\"\nplugin = \"exec\"\n[journal.listener.config]\ncommand = [\"./hook.sh\", \"--literal\"]\nstdin = \"raw\"\ntimeout = \"30s\"\n"),
    );
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(f.join("hook.stdin")).unwrap(),
        journal,
        "the entries on stdin, byte for byte"
    );
    let argv = fs::read_to_string(f.join("hook.argv")).unwrap();
    let env = fs::read_to_string(f.join("hook.env")).unwrap();
    for p in payloads {
        assert!(
            !argv.contains(p) && !env.contains(p),
            "entry data {p:?} reached the hook's argv or environment:\n{argv}\n{env}"
        );
    }
    assert!(argv.lines().any(|l| l == "--literal"), "{argv}");
    for n in 1..=4 {
        assert!(
            !f.join(format!("pwned{n}")).exists() && !f.join(format!("p4root/pwned{n}")).exists(),
            "entry data ran in a shell"
        );
    }
    assert_eq!(acked(&f, "hook"), Some((1, journal.len() as u64)));
}

#[test]
fn the_key_passphrase_appears_nowhere_in_the_daemon_log() {
    const SECRET: &str = "locked-Staple-5092";
    const WRONG: &str = "wrong-Staple-1234";
    let sshd =
        logdaemon_tests::sshd::Sshd::start().expect("start sshd (apt-get install openssh-server)");
    let f = Fixture::new();
    // A passphrase-protected key, authorized on the server.
    let key = f.join("id_locked");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", SECRET, "-C", "locked", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen failed");
    let authorized = sshd.dir().join("authorized_keys");
    let keys = fs::read_to_string(&authorized).unwrap()
        + &fs::read_to_string(key.with_extension("pub")).unwrap();
    fs::write(&authorized, keys).unwrap();
    let remote = f.join("standby");
    fs::create_dir(&remote).unwrap();
    let journal = "@pv@ 0 @db.x@ 1 \n@ex@ 1 1\n";
    f.write("journal", journal);
    let cfg = |pass: &str| {
        format!(
            "state_dir = \"state\"\n\n[[journal]]\nname = \"p4\"\npath = \"journal\"\nformat = \"p4\"\nstart = \"beginning\"\nquiet_after = \"200ms\"\n\n\
             [[journal.listener]]\nname = \"standby\"\nplugin = \"hot-backup\"\n[journal.listener.config]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\n\
             identity_file = \"{}\"\nknown_hosts = \"{}\"\nremote_dir = \"{}\"\nconnect_timeout = \"5s\"\nio_timeout = \"20s\"\n{pass}\n",
            sshd.port(),
            sshd.user(),
            key.display(),
            sshd.known_hosts().display(),
            remote.display()
        )
    };
    // A wrong passphrase from the environment: fatal, naming the key, nothing sent.
    f.write("cfg.toml", cfg("passphrase_env = \"LD_TEST_KEY_PASS\""));
    let out = run_with_env(
        &f,
        &[("LD_TEST_KEY_PASS", WRONG), ("LOGDAEMON_LOG", "trace")],
    );
    let err = refused(
        &out,
        &["hot-backup listener 'standby'", &key.display().to_string()],
    );
    for leak in [WRONG, SECRET] {
        assert!(
            !err.contains(leak) && !String::from_utf8_lossy(&out.stdout).contains(leak),
            "the passphrase appears in the daemon's output:\n{err}"
        );
    }
    assert!(
        !remote.join("journal").exists(),
        "sent with a key that could not be unlocked"
    );
    // The right passphrase from a file: shipped, and still never shown.
    f.write("key-passphrase", format!("{SECRET}\n"));
    fs::set_permissions(f.join("key-passphrase"), fs::Permissions::from_mode(0o600)).unwrap();
    f.write("cfg.toml", cfg("passphrase_file = \"key-passphrase\""));
    let out = run_with_env(&f, &[("LOGDAEMON_LOG", "trace")]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains(SECRET) && !String::from_utf8_lossy(&out.stdout).contains(SECRET),
        "the passphrase appears in the daemon's output:\n{err}"
    );
    assert_eq!(fs::read_to_string(remote.join("journal")).unwrap(), journal);
}
