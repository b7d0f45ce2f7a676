//! The `syslog` listener through the real daemon into a real `rsyslogd`
//! (`logdaemon_tests::rsyslog`), which writes each message as received;
//! the tests parse those RFC 5424 messages back. Every target type, TLS
//! with a CA made by the test, and RELP with the daemon SIGKILLed and
//! rsyslogd restarted while the journal grows.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logdaemon_tests::rsyslog::{Cert, Input, Rsyslogd};

use crate::fixture::{bin, stderr, Fixture};

/// A daemon config following `journal` (a line log) into one syslog listener.
fn config(target: &str, listener: &str, journal: &str) -> String {
    format!(
        r#"state_dir = "state"

[[journal]]
name = "app"
path = "journal"
format = "lines"
start = "beginning"
quiet_after = "200ms"
{journal}

[[journal.listener]]
name = "fwd"
plugin = "syslog"
retry_max = "1s"
[journal.listener.config]
target = "{target}"
timeout = "10s"
{listener}
"#
    )
}

/// Runs `logdaemon run --once`, failing the test if it fails or hangs.
fn run_once(f: &Fixture) -> String {
    let child = spawn(f);
    let out = wait_exit(child, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "logdaemon run --once failed: {}",
        stderr(&out)
    );
    stderr(&out)
}

fn spawn(f: &Fixture) -> Child {
    spawn_args(f, &["run", "--config", "cfg.toml", "--once"])
}

fn spawn_args(f: &Fixture, args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .current_dir(f.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start logdaemon")
}

fn wait_exit(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "logdaemon did not finish within {limit:?}: {}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// One RFC 5424 message as rsyslog wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pri: u8,
    timestamp: String,
    hostname: String,
    app_name: String,
    procid: String,
    msgid: String,
    sd_id: String,
    params: HashMap<String, String>,
    text: Vec<u8>,
}

impl Msg {
    fn param(&self, k: &str) -> &str {
        self.params
            .get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {k} in {self:?}"))
    }
    /// The entry's byte offset, from the structured data.
    fn offset(&self) -> u64 {
        self.param("offset").parse().unwrap()
    }
}

/// Parses `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`.
pub fn parse(line: &[u8]) -> Msg {
    let shown = String::from_utf8_lossy(line).into_owned();
    let close = line.iter().position(|&c| c == b'>').expect(&shown);
    let pri: u8 = std::str::from_utf8(&line[1..close])
        .unwrap()
        .parse()
        .unwrap();
    let rest = &line[close + 1..];
    let mut fields = rest.splitn(7, |&c| c == b' ');
    let mut next = || String::from_utf8(fields.next().expect(&shown).to_vec()).unwrap();
    let (version, timestamp, hostname, app_name, procid, msgid) =
        (next(), next(), next(), next(), next(), next());
    assert_eq!(version, "1", "{:?}", String::from_utf8_lossy(line));
    let sd = fields.next().expect(&shown);
    assert_eq!(sd[0], b'[', "{:?}", String::from_utf8_lossy(line));
    // SD-ID, then PARAM="VALUE" with \" \\ \] escapes, up to the unescaped ].
    let mut i = 1;
    let id_end = i + sd[i..]
        .iter()
        .position(|&c| c == b' ' || c == b']')
        .unwrap();
    let sd_id = String::from_utf8(sd[i..id_end].to_vec()).unwrap();
    i = id_end;
    let mut params = HashMap::new();
    while sd[i] == b' ' {
        let eq = i + sd[i..].iter().position(|&c| c == b'=').unwrap();
        let name = String::from_utf8(sd[i + 1..eq].to_vec()).unwrap();
        assert_eq!(sd[eq + 1], b'"');
        let mut j = eq + 2;
        let mut value = Vec::new();
        while sd[j] != b'"' {
            if sd[j] == b'\\' {
                j += 1;
            }
            value.push(sd[j]);
            j += 1;
        }
        params.insert(name, String::from_utf8(value).unwrap());
        i = j + 1;
    }
    assert_eq!(sd[i], b']');
    let text = sd.get(i + 2..).unwrap_or_default().to_vec();
    Msg {
        pri,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        sd_id,
        params,
        text,
    }
}

fn text(m: &Msg) -> String {
    String::from_utf8_lossy(&m.text).into_owned()
}

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

/// `n` single-line records `line NNNNNN …` and their offsets.
fn numbered_lines(n: usize, from: usize) -> (Vec<u8>, Vec<u64>) {
    let (mut data, mut offs) = (Vec::new(), Vec::new());
    for i in from..from + n {
        offs.push(data.len() as u64);
        data.extend_from_slice(format!("line {i:06} {}\n", "abcdefghij".repeat(i % 7)).as_bytes());
    }
    (data, offs)
}

/// The text of record `i` of [`numbered_lines`].
fn numbered_text(i: usize) -> String {
    format!("line {i:06} {}", "abcdefghij".repeat(i % 7))
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

/// A small deterministic generator for the chaos schedule (xorshift64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Starts `logdaemon run` (following) with its log in `log_name`.
fn spawn_following(f: &Fixture, log_name: &str) -> Child {
    let log = std::fs::File::create(f.join(log_name)).unwrap();
    Command::new(bin())
        .args(["run", "--config", "cfg.toml"])
        .current_dir(f.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start logdaemon")
}

#[test]
fn syslog_relp_chaos_daemon_killed_and_rsyslogd_restarted_while_the_journal_grows() {
    const LINES: usize = 20_000;
    let seed = std::env::var("LOGDAEMON_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("chaos seed {seed} (set LOGDAEMON_CHAOS_SEED to repeat)");
    let mut rng = Rng(seed);
    let mut rs = Rsyslogd::start(&[Input::Relp]).unwrap();
    let f = Fixture::new();
    let (data, offs) = numbered_lines(LINES, 0);
    f.write("journal", b"");
    let target = format!("relp://127.0.0.1:{}", rs.port(Input::Relp));
    f.write(
        "cfg.toml",
        config(&target, "window = 256", "batch_bytes = 16384"),
    );

    // The writer appends whole lines in bursts for about six seconds.
    let path = f.join("journal");
    let chunks: Vec<Vec<u8>> = data
        .chunks(data.len() / 100 + 1)
        .map(<[u8]>::to_vec)
        .collect();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut pending = Vec::new();
        for c in chunks {
            pending.extend_from_slice(&c);
            let cut = pending
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            out.write_all(&pending[..cut]).unwrap();
            pending.drain(..cut);
            std::thread::sleep(Duration::from_millis(60));
        }
        out.write_all(&pending).unwrap();
    });

    let (mut kills, mut restarts, mut round) = (0, 0, 0);
    while !writer.is_finished() {
        round += 1;
        let mut d = spawn_following(&f, &format!("daemon-{round}.log"));
        std::thread::sleep(Duration::from_millis(150 + rng.below(700)));
        if restarts < 2 && (round == 2 || round == 4) {
            rs.restart().unwrap();
            restarts += 1;
            std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        }
        d.kill().unwrap(); // SIGKILL
        d.wait().unwrap();
        kills += 1;
    }
    writer.join().unwrap();
    assert_eq!(
        restarts, 2,
        "the journal grew for too short a time for two restarts"
    );

    // A last run catches up; then it is stopped cleanly.
    let d = spawn_following(&f, "daemon-last.log");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut msgs: Vec<Msg>;
    loop {
        msgs = rs.messages().iter().map(|l| parse(l)).collect();
        let distinct: std::collections::HashSet<u64> = msgs.iter().map(Msg::offset).collect();
        if distinct.len() >= LINES || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-TERM", &d.id().to_string()])
        .status()
        .unwrap();
    let out = wait_exit(d, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        std::fs::read_to_string(f.join("daemon-last.log")).unwrap()
    );

    // Every line arrived, in order: each message either continues the run
    // before it or starts a replay at or before the first line not yet
    // seen; a replayed message is the original's duplicate, same position.
    let index: HashMap<u64, usize> = offs.iter().enumerate().map(|(i, &o)| (o, i)).collect();
    let (mut next, mut last, mut replays, mut dups, mut longest) = (0usize, None::<usize>, 0, 0, 0);
    let mut run = 0u64;
    for m in &msgs {
        let i = index[&m.offset()];
        assert_eq!(
            text(m),
            numbered_text(i),
            "the message at offset {} is that line's",
            m.offset()
        );
        assert!(
            i <= next,
            "line {i} arrived before line {next}: out of order or lost"
        );
        if last.is_some_and(|l| i != l + 1) {
            replays += 1;
            run = 0;
        }
        if i < next {
            dups += 1;
            run += (numbered_text(i).len() + 1) as u64;
            longest = longest.max(run);
        } else {
            next += 1;
        }
        last = Some(i);
    }
    let dmsg = format!("{kills} kills, 2 rsyslogd restarts, {replays} replays, {dups} duplicates (longest replay {longest} bytes)");
    eprintln!("{dmsg}");
    assert_eq!(next, LINES, "every line arrived: {dmsg}");
    assert!(
        replays <= kills + restarts,
        "a replay only after a break: {dmsg}"
    );
    // A replay repeats at most the batch that was in flight, not everything
    // after the daemon's checkpoint (up to a second behind). A batch ends at
    // the first record boundary at or past batch_bytes, so it may hold one
    // record more than batch_bytes.
    let longest_line = (0..LINES)
        .map(|i| numbered_text(i).len() + 1)
        .max()
        .unwrap() as u64;
    assert!(longest <= 16384 + longest_line, "{dmsg}");
}

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

#[test]
fn syslog_relp_a_connection_rsyslogd_closed_while_idle_is_replaced_at_once() {
    let mut rs = Rsyslogd::start(&[Input::Relp]).unwrap();
    let f = Fixture::new();
    let (data, offs) = numbered_lines(20, 0);
    let half = offs[10] as usize;
    f.write("journal", &data[..half]);
    let target = format!("relp://127.0.0.1:{}", rs.port(Input::Relp));
    f.write("cfg.toml", config(&target, "", ""));
    let d = spawn_following(&f, "daemon.log");
    assert_eq!(rs.wait_for(10, Duration::from_secs(20)).len(), 10);
    // rsyslogd goes away and comes back while the daemon has nothing to send.
    rs.restart().unwrap();
    {
        use std::io::Write;
        let mut j = std::fs::OpenOptions::new()
            .append(true)
            .open(f.join("journal"))
            .unwrap();
        j.write_all(&data[half..]).unwrap();
    }
    let got = rs.wait_for(20, Duration::from_secs(20));
    Command::new("kill")
        .args(["-TERM", &d.id().to_string()])
        .status()
        .unwrap();
    wait_exit(d, Duration::from_secs(30));
    let log = std::fs::read_to_string(f.join("daemon.log")).unwrap();
    let offsets: Vec<u64> = got.iter().map(|l| parse(l).offset()).collect();
    assert_eq!(offsets, offs, "{log}");
    assert!(
        !log.contains("asks to retry"),
        "no failed call, no back-off: {log}"
    );
}
