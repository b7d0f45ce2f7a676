//! Whom the listener trusts: TLS and RELP over TLS verified against the
//! CA, a server certificate the CA did not sign or of another name
//! refused, and a socket another user put in place of `/dev/log` refused.

use std::process::Command;
use std::time::{Duration, Instant};

use logdaemon_tests::rsyslog::{Cert, Input, Rsyslogd};

use super::{config, numbered_lines, parse, run_once, spawn, spawn_following, wait_exit};
use crate::fixture::{stderr, Fixture};

#[test]
fn syslog_tls_and_relp_tls_deliver_with_the_server_verified_against_the_ca() {
    let rs = Rsyslogd::start(&[Input::TcpTls, Input::RelpTls]).unwrap();
    for (input, scheme) in [(Input::TcpTls, "tls"), (Input::RelpTls, "relp+tls")] {
        let f = Fixture::new();
        let (data, offs) = numbered_lines(500, 0);
        f.write("journal", &data);
        let before = rs.messages().len();
        let target = format!("{scheme}://localhost:{}", rs.port(input));
        let (cert, key) = rs.client_cert();
        let ca = format!(
            "ca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"",
            rs.ca().display(),
            cert.display(),
            key.display()
        );
        f.write("cfg.toml", config(&target, &ca, ""));
        let log = run_once(&f);
        let all = rs.wait_for(before + 500, Duration::from_secs(20));
        let got: Vec<u64> = all[before..].iter().map(|l| parse(l).offset()).collect();
        assert_eq!(got, offs, "{scheme}: {log}\n{}", rs.log());
    }
}

#[test]
fn syslog_tls_refuses_a_server_certificate_the_ca_did_not_sign_or_of_another_name() {
    let wrong_ca = Rsyslogd::start_with(&[Input::TcpTls, Input::RelpTls], Cert::OtherCa).unwrap();
    let good = Rsyslogd::start(&[Input::RelpTls]).unwrap();
    let cases = [
        (&wrong_ca, Input::TcpTls, "tls", "", "UnknownIssuer"),
        (&wrong_ca, Input::RelpTls, "relp+tls", "", "UnknownIssuer"),
        (
            &good,
            Input::RelpTls,
            "relp+tls",
            "server_name = \"logs.example.com\"",
            "not valid for name \"logs.example.com\"",
        ),
    ];
    for (rs, input, scheme, extra, why) in cases {
        let f = Fixture::new();
        f.write("journal", "secret line\n");
        let target = format!("{scheme}://127.0.0.1:{}", rs.port(input));
        // Trust only the good server's CA.
        let (cert, key) = good.client_cert();
        let ca = format!(
            "ca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n{extra}",
            good.ca().display(),
            cert.display(),
            key.display()
        );
        f.write("cfg.toml", config(&target, &ca, ""));
        let out = wait_exit(spawn(&f), Duration::from_secs(60));
        let log = stderr(&out);
        assert!(
            log.contains("the server's TLS certificate was refused: invalid peer certificate")
                && log.contains(why)
                && log.contains("nothing was sent"),
            "{scheme}: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            rs.messages().is_empty(),
            "{scheme}: nothing reaches a server that was not verified"
        );
    }
}

#[test]
fn syslog_a_socket_another_user_put_in_place_of_dev_log_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let set_mode = |p: &std::path::Path, m| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    // A run directory anyone may write to, where syslog's socket is expected.
    set_mode(f.path(), 0o711);
    let run = f.join("run");
    std::fs::create_dir(&run).unwrap();
    set_mode(&run, 0o777);
    let sock = run.join("log");
    // The attacker, an unprivileged user, binds a socket there first.
    let bind = format!(
        "import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind({:?})",
        sock.display().to_string()
    );
    let st = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            // Not a shim under /root, which the user may not enter.
            "/usr/bin/python3",
            "-c",
            &bind,
        ])
        .status()
        .expect("run setpriv (util-linux)");
    assert!(
        st.success() && sock.exists(),
        "the unprivileged user could not bind {}",
        sock.display()
    );
    f.write("journal", "a secret line\n");
    f.write(
        "cfg.toml",
        config(&format!("unix://{}", sock.display()), "", ""),
    );
    let out = wait_exit(spawn(&f), Duration::from_secs(60));
    let log = stderr(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(&format!("config key `target`: target {} is owned by uid 65534, neither root nor this daemon's user", sock.display())),
        "{log}"
    );
    // The run directory itself is the problem even for a socket of ours.
    std::fs::remove_file(&sock).unwrap();
    let _ours = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    let out = wait_exit(spawn(&f), Duration::from_secs(60));
    let log = stderr(&out);
    assert!(
        log.contains(
            "is writable by group or others (mode 0777), so another user could replace the file"
        ),
        "{log}"
    );
    // A socket that appears only after the daemon started is checked when
    // the listener connects to it.
    std::fs::remove_file(&sock).unwrap();
    f.write("journal", "");
    let d = spawn_following(&f, "late.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(f.join("late.log"))
        .unwrap()
        .contains("running")
    {
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            &bind,
        ])
        .status()
        .unwrap();
    assert!(st.success());
    f.write("journal", "a secret line\n");
    let out = wait_exit(d, Duration::from_secs(60));
    let log = std::fs::read_to_string(f.join("late.log")).unwrap();
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("is owned by uid 65534, neither root nor this daemon's user"),
        "{log}"
    );
}
