//! The `syslog` listener through the real daemon into a real `rsyslogd`
//! (`logdaemon_tests::rsyslog`), which writes each message as received;
//! the tests parse those RFC 5424 messages back. Every target type, TLS
//! with a CA made by the test, and RELP with the daemon SIGKILLed and
//! rsyslogd restarted while the journal grows.

mod delivery;
mod relp;
mod security;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
