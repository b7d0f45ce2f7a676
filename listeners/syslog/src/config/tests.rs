use super::*;

fn p(t: &str) -> Result<Settings, ConfigError> {
    let resolve = |p: &std::path::Path| std::path::Path::new("/etc/ld").join(p);
    parse(
        t,
        &Context {
            listener: "fwd",
            resolve: &resolve,
            hostname: "box",
            pid: 42,
        },
    )
}

#[test]
fn defaults() {
    let s = p("target = \"relp://127.0.0.1:2514\"").unwrap();
    assert_eq!(
        s.target,
        Target::Relp(HostPort {
            host: "127.0.0.1".into(),
            port: 2514
        })
    );
    assert_eq!(
        (s.format, s.facility, s.severity),
        (Format::Rfc5424, 1, Severity::INFO)
    );
    assert_eq!(
        (&*s.hostname, &*s.app_name, &*s.procid, &*s.msgid),
        ("box", "logdaemon", "42", "-")
    );
    assert_eq!(
        (s.max_message, s.oversize, s.window),
        (8192, Oversize::Split, 1024)
    );
    assert!(s.tls.is_none());
}

#[test]
fn every_target() {
    for (u, t) in [
        ("unix:///dev/log", Target::Unix("/dev/log".into())),
        (
            "udp://h:1",
            Target::Udp(HostPort {
                host: "h".into(),
                port: 1,
            }),
        ),
        (
            "tcp://[::1]:601",
            Target::Tcp(HostPort {
                host: "::1".into(),
                port: 601,
            }),
        ),
        (
            "tls://h:6514/",
            Target::Tls(HostPort {
                host: "h".into(),
                port: 6514,
            }),
        ),
        (
            "relp+tls://h:2",
            Target::RelpTls(HostPort {
                host: "h".into(),
                port: 2,
            }),
        ),
    ] {
        assert_eq!(parse_target(u).unwrap(), t, "{u}");
    }
    for bad in [
        "relp://h",
        "unix://dev/log",
        "http://h:1",
        "tcp://h:0",
        "tcp://:5",
        "/dev/log",
    ] {
        assert!(parse_target(bad).is_err(), "{bad}");
    }
}

#[test]
fn tls_needs_a_ca_and_resolves_paths() {
    let e = p("target = \"tls://logs.example.com:6514\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("syslog listener `fwd`: config key `ca_file`: is missing"),
        "{e}"
    );
    let s = p("target = \"relp+tls://logs.example.com:1\"\nca_file = \"ca.pem\"").unwrap();
    let t = s.tls.unwrap();
    assert_eq!(
        (t.ca_file.to_str().unwrap(), &*t.server_name),
        ("/etc/ld/ca.pem", "logs.example.com")
    );
    let e = p("target = \"tls://h:1\"\nca_file = \"c\"\ncert_file = \"x\"").unwrap_err();
    assert_eq!(e.key, "key_file");
    let e = p("target = \"tcp://h:1\"\nca_file = \"c\"").unwrap_err();
    assert_eq!(e.key, "ca_file");
}

#[test]
fn errors_name_the_key() {
    for (t, key) in [
        ("", "target"),
        ("target = \"relp://h:1\"\nformat = \"json\"", "format"),
        ("target = \"relp://h:1\"\nfacility = \"local9\"", "facility"),
        ("target = \"relp://h:1\"\nlevel = \"(ERROR)\"", "level"),
        ("target = \"relp://h:1\"\nlevel = \"(\"", "level"),
        (
            "target = \"relp://h:1\"\nlevels = { AUDIT = \"loud\" }",
            "levels",
        ),
        (
            "target = \"relp://h:1\"\ntimestamp = \"^\\\\S+\"",
            "timestamp",
        ),
        (
            "target = \"relp://h:1\"\napp_name = \"has space\"",
            "app_name",
        ),
        (
            "target = \"relp://h:1\"\nmsgid = \"0123456789012345678901234567890123\"",
            "msgid",
        ),
        ("target = \"udp://h:1\"\nmax_message = 70000", "max_message"),
        ("target = \"relp://h:1\"\nmax_message = 100", "max_message"),
        ("target = \"relp://h:1\"\nwindow = 0", "window"),
        ("target = \"relp://h:1\"\ntimeout = \"soon\"", "timeout"),
        ("target = \"relp://h:1\"\nprocid = \"\"", "procid"),
        ("target = \"relp://h:1\"\nport = 5", "(table)"),
    ] {
        let e = p(t).unwrap_err();
        assert_eq!(e.key, key, "{t}: {e}");
        assert!(
            e.to_string()
                .starts_with("syslog listener `fwd`: config key"),
            "{e}"
        );
    }
}
