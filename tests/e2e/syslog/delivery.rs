//! What reaches rsyslogd: the RFC 5424 fields, every line once and in
//! order over TCP, UDP and RELP, the include and exclude filters, an entry
//! over `max_message` split into marked parts, and the local sockets.

use std::time::Duration;

use logdaemon_tests::rsyslog::{Input, Rsyslogd};

use super::{config, numbered_lines, numbered_text, parse, run_once, text, Msg};
use crate::fixture::Fixture;

#[test]
fn syslog_relp_messages_carry_rfc5424_fields_severity_position_and_bytes() {
    let rs = Rsyslogd::start(&[Input::Relp]).unwrap();
    let f = Fixture::new();
    let big = "x".repeat(64 << 10);
    let records: Vec<Vec<u8>> = vec![
        b"2026-12-07 05:00:01,000 INFO started\n".to_vec(),
        b"2026-12-07 05:00:02,250 WARNING disk at 91%\n".to_vec(),
        b"2026-12-07 05:00:03,000 ERROR failed:\n  Traceback (most recent call last):\n    boom\n"
            .to_vec(),
        b"2026-12-07 05:00:04,000 CRITICAL bytes \xff\xfe\x80 end\n".to_vec(),
        format!("2026-12-07 05:00:05,000 DEBUG {big}\n").into_bytes(),
        b"2026-12-07 05:00:06,000 AUDIT user x logged in\n".to_vec(),
        b"no timestamp, no level\n".to_vec(),
    ];
    // A line log's last record may still grow until the next one starts.
    f.write(
        "journal",
        [
            records.concat(),
            b"2026-12-07 05:00:07,000 INFO next\n".to_vec(),
        ]
        .concat(),
    );
    f.write(
        "cfg.toml",
        config(
            &format!("relp://127.0.0.1:{}", rs.port(Input::Relp)),
            "facility = \"local0\"\napp_name = \"shop\"\nmsgid = \"web\"\nhostname = \"app01.example.com\"\n\
             level = '^\\S+ \\S+ (?P<level>[A-Z]+) '\nlevels = { AUDIT = \"notice\" }\n\
             timestamp = '^(?P<timestamp>\\d{4}-\\d\\d-\\d\\d \\S+)'\nmax_message = 131072",
            "record_start = '^(\\d{4}-\\d\\d-\\d\\d|no )'",
        ),
    );
    run_once(&f);
    let msgs: Vec<Msg> = rs
        .wait_for(records.len(), Duration::from_secs(10))
        .iter()
        .map(|l| parse(l))
        .collect();
    let shown: Vec<String> = msgs
        .iter()
        .map(|m| text(m).chars().take(60).collect())
        .collect();
    assert_eq!(msgs.len(), records.len(), "{shown:#?}\n{}", rs.log());
    let mut offset = 0;
    for (m, r) in msgs.iter().zip(&records) {
        assert_eq!(m.sd_id, "logdaemon@32473");
        assert_eq!(
            (m.param("journal"), m.param("sequence")),
            ("app", "1"),
            "{m:?}"
        );
        assert_eq!(m.offset(), offset);
        offset += r.len() as u64;
        assert_eq!(
            (&*m.hostname, &*m.app_name, &*m.msgid),
            ("app01.example.com", "shop", "web")
        );
        assert!(m.procid.parse::<u32>().is_ok(), "{m:?}");
    }
    let pris: Vec<u8> = msgs.iter().map(|m| m.pri).collect();
    // local0 (16 * 8) + INFO 6, WARNING 4, ERROR 3, CRITICAL 2, DEBUG 7, AUDIT→notice 5, default info 6.
    assert_eq!(pris, [134, 132, 131, 130, 135, 133, 134]);
    assert_eq!(msgs[0].timestamp, "2026-12-07T05:00:01.000Z");
    assert_eq!(msgs[1].timestamp, "2026-12-07T05:00:02.250Z");
    assert!(
        msgs[6].timestamp.ends_with('Z') && !msgs[6].timestamp.starts_with("2026-12-07T05:00"),
        "time read: {}",
        msgs[6].timestamp
    );
    assert_eq!(text(&msgs[0]), "2026-12-07 05:00:01,000 INFO started");
    // One message for the multi-line record; rsyslog escapes the line feeds.
    assert_eq!(
        text(&msgs[2]),
        "2026-12-07 05:00:03,000 ERROR failed:#012  Traceback (most recent call last):#012    boom"
    );
    assert_eq!(
        msgs[3].text,
        b"2026-12-07 05:00:04,000 CRITICAL bytes \xff\xfe\x80 end"
    );
    assert_eq!(
        text(&msgs[4]),
        format!("2026-12-07 05:00:05,000 DEBUG {big}")
    );
    assert_eq!(text(&msgs[6]), "no timestamp, no level");
}

#[test]
fn syslog_tcp_udp_and_relp_deliver_every_line_once_in_order() {
    for (input, scheme, n) in [
        (Input::Tcp, "tcp", 3000),
        (Input::Relp, "relp", 3000),
        // Loopback UDP is lossless while the receiver's buffer holds the burst.
        (Input::Udp, "udp", 300),
    ] {
        let rs = Rsyslogd::start(&[input]).unwrap();
        let f = Fixture::new();
        let (data, offs) = numbered_lines(n, 0);
        f.write("journal", &data);
        let target = format!("{scheme}://127.0.0.1:{}", rs.port(input));
        f.write("cfg.toml", config(&target, "", ""));
        let log = run_once(&f);
        let msgs: Vec<Msg> = rs
            .wait_for(n, Duration::from_secs(20))
            .iter()
            .map(|l| parse(l))
            .collect();
        assert_eq!(msgs.len(), n, "{scheme}: {log}\n{}", rs.log());
        let got: Vec<u64> = msgs.iter().map(Msg::offset).collect();
        assert_eq!(got, offs, "{scheme}: every line once, in order");
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(text(m), numbered_text(i), "{scheme}");
            assert_eq!(m.pri, 14, "user.info");
        }
        if input == Input::Udp {
            assert!(
                log.contains(&format!("{n} entries sent as {n} messages")),
                "the counter of what was sent: {log}"
            );
        }
    }
}

#[test]
fn syslog_include_and_exclude_pick_the_lines() {
    let rs = Rsyslogd::start(&[Input::Tcp]).unwrap();
    let f = Fixture::new();
    let (data, offs) = numbered_lines(200, 0);
    f.write("journal", &data);
    let target = format!("tcp://127.0.0.1:{}", rs.port(Input::Tcp));
    f.write(
        "cfg.toml",
        config(
            &target,
            "include = '^line \\d{5}[05] '\nexclude = 'abcdefghij'",
            "",
        ),
    );
    run_once(&f);
    let want: Vec<u64> = (0..200)
        .filter(|i| i % 5 == 0 && i % 7 == 0)
        .map(|i| offs[i])
        .collect();
    assert!(want.len() > 3);
    let msgs = rs.wait_for(want.len(), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let got: Vec<u64> = rs.messages().iter().map(|l| parse(l).offset()).collect();
    assert_eq!(got, want, "{} messages", msgs.len());
}

#[test]
fn syslog_an_entry_over_max_message_is_split_into_marked_parts() {
    let rs = Rsyslogd::start(&[Input::Tcp]).unwrap();
    let f = Fixture::new();
    let long: String = (0..5000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    f.write("journal", format!("short\n{long}\nafter\n"));
    let target = format!("tcp://127.0.0.1:{}", rs.port(Input::Tcp));
    f.write("cfg.toml", config(&target, "max_message = 1024", ""));
    let log = run_once(&f);
    let msgs: Vec<Msg> = rs
        .wait_for(7, Duration::from_secs(10))
        .iter()
        .map(|l| parse(l))
        .collect();
    let parts: Vec<&Msg> = msgs.iter().filter(|m| m.offset() == 6).collect();
    assert!(parts.len() >= 5, "{msgs:?}");
    let mut joined = String::new();
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p.param("part"), format!("{}/{}", i + 1, parts.len()));
        joined.push_str(&text(p));
    }
    assert_eq!(joined, long);
    assert_eq!(text(msgs.last().unwrap()), "after");
    assert!(
        log.contains("is longer than max_message (1024 bytes): split into"),
        "{log}"
    );
}

#[test]
fn syslog_unix_datagram_socket_of_a_local_rsyslogd_rfc3164() {
    let rs = Rsyslogd::start(&[Input::Unix]).unwrap();
    let f = Fixture::new();
    let (data, _) = numbered_lines(2000, 0);
    f.write("journal", &data);
    let target = format!("unix://{}", rs.socket().display());
    f.write(
        "cfg.toml",
        config(&target, "format = \"rfc3164\"\napp_name = \"shop\"", ""),
    );
    run_once(&f);
    let msgs = rs.wait_for(2000, Duration::from_secs(20));
    assert_eq!(msgs.len(), 2000, "{}", rs.log());
    for (i, m) in msgs.iter().enumerate() {
        let m = String::from_utf8_lossy(m);
        // <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG, without a host name (local).
        assert!(m.starts_with("<14>"), "{m}");
        let after_time = &m[4 + 16..];
        let (tag, msg) = after_time.split_once(": ").unwrap();
        assert!(tag.starts_with("shop[") && tag.ends_with(']'), "{m}");
        assert_eq!(msg, numbered_text(i));
    }
}

#[test]
fn syslog_unix_stream_socket_gets_nul_terminated_messages() {
    let f = Fixture::new();
    let sock = f.join("log.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let (mut s, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    let (data, _) = numbered_lines(500, 0);
    f.write("journal", &data);
    f.write(
        "cfg.toml",
        config(&format!("unix://{}", sock.display()), "", ""),
    );
    run_once(&f);
    let all = reader.join().unwrap();
    assert_eq!(all.last(), Some(&0), "the last message ends with NUL");
    let msgs: Vec<Msg> = all[..all.len() - 1].split(|&b| b == 0).map(parse).collect();
    assert_eq!(msgs.len(), 500);
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(text(m), numbered_text(i));
    }
}
