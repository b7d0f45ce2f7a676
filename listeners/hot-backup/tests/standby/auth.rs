//! Who may talk to whom: unknown, mismatched and revoked host keys are
//! fatal before anything is sent; refused user keys and readable key files
//! say so; passphrase files and agents authenticate; the documented forced
//! command admits the listener alone.

use super::common::*;
use logdaemon_sdk::testing::Batch;
use logdaemon_sdk::{Ack, Listener, Position};

#[test]
fn unknown_or_mismatched_host_keys_are_fatal_with_the_fingerprint_and_nothing_is_sent() {
    let env = Env::new();
    let fp = {
        let o = std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(env.sshd.known_hosts())
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert!(fp.starts_with("SHA256:"));
    let line = env.sshd.known_hosts_line().unwrap();

    let empty = env.tmp.path().join("known_hosts.empty");
    std::fs::write(&empty, "").unwrap();
    let cfg = env.config("").replace(
        &env.sshd.known_hosts().display().to_string(),
        &empty.display().to_string(),
    );
    let msg = assert_fatal(env.open_with(&cfg, Position::default()));
    assert!(
        msg.contains("is not in") && msg.contains(&fp) && msg.contains(&line),
        "{msg}"
    );

    let wrong = env.sshd.wrong_known_hosts().unwrap();
    let cfg = env.config("").replace(
        &env.sshd.known_hosts().display().to_string(),
        &wrong.display().to_string(),
    );
    let msg = assert_fatal(env.open_with(&cfg, Position::default()));
    assert!(
        msg.contains("HOST KEY MISMATCH") && msg.contains(&fp) && msg.contains(&line),
        "{msg}"
    );
    assert!(
        env.remote_listing().is_empty(),
        "nothing was written to the standby"
    );
    assert!(
        env.sshd.log().contains("Connection closed by 127.0.0.1")
            || !env.sshd.log().contains("Accepted publickey"),
        "{}",
        env.sshd.log()
    );
}

#[test]
fn a_revoked_host_key_is_refused_naming_the_line_even_when_also_listed_plainly() {
    let env = Env::new();
    let line = env.sshd.known_hosts_line().unwrap();
    let with = |name: &str, text: String| {
        let p = env.tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        env.config("").replace(
            &env.sshd.known_hosts().display().to_string(),
            &p.display().to_string(),
        )
    };
    // Trusted plainly and revoked: OpenSSH says "REVOKED HOST KEY DETECTED".
    let both = with(
        "kh.both",
        format!("{line}\n# revoked after a leak\n@revoked {line}\n"),
    );
    let msg = assert_fatal(env.open_with(&both, Position::default()));
    assert!(
        msg.contains("REVOKED HOST KEY") && msg.contains("kh.both line 3"),
        "{msg}"
    );
    // Only the revoked line: refused as revoked, never "add this line".
    let only = with("kh.only", format!("@revoked {line}\n"));
    let msg = assert_fatal(env.open_with(&only, Position::default()));
    assert!(
        msg.contains("REVOKED HOST KEY") && !msg.contains("add this line"),
        "{msg}"
    );
    // A @cert-authority line cannot vouch for a plain key: not trusted,
    // and the message says why.
    let ca = with("kh.ca", format!("@cert-authority {line}\n"));
    let msg = assert_fatal(env.open_with(&ca, Position::default()));
    assert!(
        msg.contains("is not in") && msg.contains("kh.ca line 1 is a @cert-authority line"),
        "{msg}"
    );
    assert!(env.remote_listing().is_empty(), "nothing was written");
}

#[test]
fn a_refused_user_key_and_a_readable_key_file_are_fatal_with_clear_messages() {
    let env = Env::new();
    let other = env.sshd.other_key("id_stranger").unwrap();
    let cfg = env.config("").replace(
        &env.sshd.client_key().display().to_string(),
        &other.display().to_string(),
    );
    let msg = assert_fatal(env.open_with(&cfg, Position::default()));
    assert!(
        msg.contains(&format!("refused the key {}", other.display()))
            && msg.contains(&format!("user `{}`", env.sshd.user())),
        "{msg}"
    );

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
    let msg = assert_fatal(env.open_with(&cfg, Position::default()));
    assert!(
        msg.contains("mode 0644") && msg.contains("chmod 600"),
        "{msg}"
    );
    assert!(env.remote_listing().is_empty());
}

#[test]
fn a_key_with_a_passphrase_from_a_file_and_keys_of_a_running_agent_authenticate() {
    let env = Env::new();
    let dir = env.tmp.path();
    // A passphrase-protected key, authorized on the server.
    let key = dir.join("id_locked");
    let st = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "correct horse",
            "-C",
            "locked",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let authorized = env.sshd.dir().join("authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).unwrap();
    keys += &std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::write(&authorized, keys).unwrap();
    std::fs::write(dir.join("passphrase"), "correct horse\n").unwrap();
    let with_key = |extra: &str| {
        env.config(extra).replace(
            &env.sshd.client_key().display().to_string(),
            &key.display().to_string(),
        )
    };

    let b = Batch::p4("p4", 1, 0, &[b"@pv@ 0 @db.x@ 1 \n", b"@ex@ 1 1\n"]);
    let mut l = env
        .open_with(
            &with_key("passphrase_file = \"passphrase\"\n"),
            Position::default(),
        )
        .unwrap();
    l.listen(b.entries()).unwrap();
    assert_eq!(l.flush().unwrap(), Ack::All);
    drop(l);
    std::fs::write(dir.join("passphrase"), "wrong\n").unwrap();
    let msg = assert_fatal(env.open_with(
        &with_key("passphrase_file = \"passphrase\"\n"),
        Position::default(),
    ));
    assert!(msg.contains(&key.display().to_string()), "{msg}");

    // The same key through a real ssh-agent (the only test that reads SSH_AUTH_SOCK).
    let sock = dir.join("agent.sock");
    let agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Kill(agent);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "ssh-agent did not create its socket"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let st = std::process::Command::new("ssh-add")
        .arg(env.sshd.client_key())
        .env("SSH_AUTH_SOCK", &sock)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    std::env::set_var("SSH_AUTH_SOCK", &sock);
    let cfg = env.config("agent = true\n").replace(
        &format!("identity_file = \"{}\"\n", env.sshd.client_key().display()),
        "",
    );
    let mut l = env
        .open_with(
            &cfg,
            Position {
                sequence: 1,
                offset: 26,
                line: 3,
            },
        )
        .unwrap();
    let b2 = Batch::p4("p4", 1, 26, &[b"@pv@ 0 @db.x@ 2 \n", b"@ex@ 1 2\n"]);
    l.listen(b2.entries()).unwrap();
    assert_eq!(l.flush().unwrap(), Ack::All);
    assert_eq!(
        env.remote_file("journal"),
        b"@pv@ 0 @db.x@ 1 \n@ex@ 1 1\n@pv@ 0 @db.x@ 2 \n@ex@ 1 2\n"
    );
}

/// The restricted key of the documentation: `restrict`, `from=` and a
/// forced command that admits only the listener's session.
#[test]
fn the_documented_forced_command_admits_the_listener_and_refuses_other_commands() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let wrapper = env.tmp.path().join("logdaemon-standby-only");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\ncase \"$SSH_ORIGINAL_COMMAND\" in\n  \"exec sh -c 'while IFS=\"*) exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\" ;;\n  *) echo \"this key only feeds the logdaemon standby\" >&2; exit 1 ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let authorized = env.sshd.dir().join("authorized_keys");
    let key = std::fs::read_to_string(&authorized).unwrap();
    std::fs::write(
        &authorized,
        format!(
            "restrict,from=\"127.0.0.1\",command=\"{}\" {key}",
            wrapper.display()
        ),
    )
    .unwrap();

    let mut l = env.open("");
    let b = Batch::p4("p4", 1, 0, &[b"@pv@ 0 @db.x@ 1 \n", b"@ex@ 1 1\n"]);
    l.listen(b.entries()).unwrap();
    assert_eq!(l.flush().unwrap(), Ack::All);
    assert_eq!(env.remote_file("journal"), b"@pv@ 0 @db.x@ 1 \n@ex@ 1 1\n");

    let other = std::process::Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-p",
            &env.sshd.port().to_string(),
            "-i",
        ])
        .arg(env.sshd.client_key())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            env.sshd.known_hosts().display()
        ))
        .args([
            "-l",
            env.sshd.user(),
            "127.0.0.1",
            "touch /tmp/should-not-exist",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&other.stderr).contains("only feeds the logdaemon standby"));
}
