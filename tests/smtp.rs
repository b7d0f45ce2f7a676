//! A real SMTP server on a loopback port, writing to a mailbox.
//!
//! The server is `data/smtp/server.py` (Python's `aiosmtpd`, installed with
//! `pip install aiosmtpd`), started by the test on a free port of
//! 127.0.0.1. Every accepted message is stored, and parsed by Python's
//! `email` package, *before* the server answers 250, so a client that saw
//! its message accepted can read it back at once with
//! [`SmtpServer::messages`]. Behaviour (accept, temporary failure, rejected
//! recipients, a delay before the 250) can be changed while it runs, and
//! the server can be stopped and started again on the same port. With
//! [`Options`] it speaks STARTTLS or implicit TLS with a certificate made
//! for 127.0.0.1 by `openssl` (trust it through [`SmtpServer::ca_cert`]),
//! and can require AUTH.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How the server answers.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 250 to everything (except rejected recipients).
    #[default]
    Accept,
    /// 451 to MAIL FROM: a temporary failure.
    Tempfail,
}

/// The server's run-time control file.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Control {
    pub mode: Mode,
    /// Recipients answered with 550 at RCPT TO.
    pub reject: Vec<String>,
    /// Milliseconds to wait after storing a message, before the 250.
    pub delay_after_store_ms: u64,
}

/// One message the server accepted, as Python's `email` package parsed it.
#[derive(Deserialize, Clone, Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// Headers in order, values decoded.
    pub headers: Vec<(String, String)>,
    /// e.g. `text/plain`.
    pub content_type: String,
    pub charset: Option<String>,
    /// The decoded body (text parts), `None` for multipart.
    pub body: Option<String>,
    /// Parser defects of the message and its headers; empty when well-formed.
    pub defects: Vec<String>,
    /// The stored message bytes.
    pub eml: PathBuf,
    /// The session was encrypted (STARTTLS or implicit TLS).
    #[serde(default)]
    pub tls: bool,
    /// The client authenticated.
    #[serde(default)]
    pub authenticated: bool,
}

impl Received {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn message_id(&self) -> &str {
        self.header("Message-ID").unwrap_or("")
    }

    pub fn subject(&self) -> &str {
        self.header("Subject").unwrap_or("")
    }

    pub fn body(&self) -> &str {
        self.body.as_deref().unwrap_or("")
    }

    /// The stored bytes of the message.
    pub fn raw(&self) -> Vec<u8> {
        std::fs::read(&self.eml)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.eml.display()))
    }
}

/// Transport security of the test server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServerTls {
    #[default]
    None,
    /// Offers STARTTLS and refuses mail without it.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

/// How the test server is started.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub tls: ServerTls,
    /// Require AUTH with this user and password (only over TLS).
    pub auth: Option<(String, String)>,
}

/// A running (or stopped) test SMTP server. Killed on drop.
pub struct SmtpServer {
    dir: tempfile::TempDir,
    port: u16,
    opts: Options,
    child: Option<(Child, ChildStdin)>,
}

/// The server script in the repository.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/smtp/server.py")
}

impl SmtpServer {
    /// Starts a server on a free loopback port, accepting everything.
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(Options::default())
    }

    /// Starts a server with TLS and/or AUTH.
    pub fn start_with(opts: Options) -> SmtpServer {
        let dir = tempfile::Builder::new()
            .prefix("logdaemon-smtp-")
            .tempdir()
            .expect("tempdir for the SMTP server");
        if opts.tls != ServerTls::None {
            make_certificate(dir.path());
        }
        if let Some((user, password)) = &opts.auth {
            std::fs::write(dir.path().join("auth"), format!("{user}\n{password}\n"))
                .expect("write auth file");
        }
        let mut s = SmtpServer {
            dir,
            port: 0,
            opts,
            child: None,
        };
        s.set(&Control::default());
        s.spawn(0);
        s
    }

    /// The server's self-signed certificate (PEM), to trust as a CA.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        (self.opts.tls != ServerTls::None).then(|| self.dir.path().join("cert.pem"))
    }

    fn spawn(&mut self, port: u16) {
        let mut cmd = Command::new("python3");
        cmd.arg(script())
            .arg(self.dir.path())
            .arg("--port")
            .arg(port.to_string());
        match self.opts.tls {
            ServerTls::None => {}
            ServerTls::Starttls | ServerTls::Implicit => {
                let mode = if self.opts.tls == ServerTls::Starttls {
                    "starttls"
                } else {
                    "implicit"
                };
                cmd.args(["--tls", mode, "--cert"])
                    .arg(self.dir.path().join("cert.pem"))
                    .arg("--key")
                    .arg(self.dir.path().join("key.pem"));
            }
        }
        if self.opts.auth.is_some() {
            cmd.arg("--auth-file").arg(self.dir.path().join("auth"));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start python3 for the test SMTP server; install Python 3 and `pip install aiosmtpd`");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read the server's port");
        let got = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok());
        let Some(got) = got else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the test SMTP server ({}) did not start (said {line:?}); is aiosmtpd installed (`pip install aiosmtpd`)? Is port {port} free?",
                script().display()
            );
        };
        self.port = got;
        self.child = Some((child, stdin));
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's directory (`mailbox/`, `control.json`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Changes the server's behaviour; effective from the next SMTP command.
    pub fn set(&self, c: &Control) {
        let path = self.dir.path().join("control.json");
        let tmp = self.dir.path().join("control.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(c).unwrap()).expect("write control file");
        std::fs::rename(&tmp, &path).expect("install control file");
    }

    /// Kills the server: connections are refused until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            drop(stdin);
        }
    }

    /// Starts the server again on the same port, with the same mailbox.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(self.port);
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Every message accepted so far, in order of arrival.
    pub fn messages(&self) -> Vec<Received> {
        let mailbox = self.dir.path().join("mailbox");
        let mut names: Vec<PathBuf> = match std::fs::read_dir(&mailbox) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
            .iter()
            .map(|p| {
                let b =
                    std::fs::read(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
                serde_json::from_slice(&b)
                    .unwrap_or_else(|e| panic!("{} is not a message description: {e}", p.display()))
            })
            .collect()
    }

    /// Waits until at least `n` messages arrived (for a sender in another
    /// process) and returns them all; panics after `timeout` naming what came.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            if Instant::now() >= deadline {
                let ids: Vec<&str> = m.iter().map(|r| r.message_id()).collect();
                panic!(
                    "expected {n} messages on port {} within {timeout:?}, got {}: {ids:?}",
                    self.port,
                    m.len()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, valid for a day.
fn make_certificate(dir: &Path) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
        ])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("run openssl to make the test server's certificate; install the openssl command");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// Speaks raw SMTP: sends `lines` one at a time, returns every reply.
    fn converse(port: u16, lines: &[&str]) -> Vec<String> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut replies = vec![read_reply(&mut s)];
        for l in lines {
            s.write_all(l.as_bytes()).unwrap();
            s.write_all(b"\r\n").unwrap();
            replies.push(read_reply(&mut s));
        }
        replies
    }

    fn read_reply(s: &mut TcpStream) -> String {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        loop {
            s.read_exact(&mut b).expect("reply");
            out.push(b[0]);
            // A reply ends with a line whose 4th byte is a space.
            if out.ends_with(b"\r\n") {
                let text = String::from_utf8_lossy(&out).into_owned();
                let last = text
                    .trim_end()
                    .rsplit("\r\n")
                    .next()
                    .unwrap_or("")
                    .to_string();
                if last.len() >= 4 && last.as_bytes()[3] == b' ' {
                    return text;
                }
            }
        }
    }

    #[test]
    fn stores_parses_fails_and_restarts_on_the_same_port() {
        let mut srv = SmtpServer::start();
        let port = srv.port();
        let msg = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\nMessage-ID: <1@x>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n.";
        let r = converse(
            port,
            &[
                "EHLO t",
                "MAIL FROM:<a@example.com>",
                "RCPT TO:<b@example.com>",
                "DATA",
                msg,
                "QUIT",
            ],
        );
        assert!(r[5].starts_with("250"), "{r:?}");
        let m = srv.messages();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].message_id(), "<1@x>");
        assert_eq!(m[0].rcpt_tos, ["b@example.com"]);
        assert_eq!(m[0].body(), "hello\n");
        assert_eq!(m[0].charset.as_deref(), Some("utf-8"));
        assert!(m[0].defects.is_empty(), "{:?}", m[0].defects);

        srv.set(&Control {
            reject: vec!["no@example.com".into()],
            ..Control::default()
        });
        let r = converse(
            port,
            &[
                "EHLO t",
                "MAIL FROM:<a@example.com>",
                "RCPT TO:<no@example.com>",
            ],
        );
        assert!(r[3].starts_with("550"), "{r:?}");
        srv.set(&Control {
            mode: Mode::Tempfail,
            ..Control::default()
        });
        let r = converse(port, &["EHLO t", "MAIL FROM:<a@example.com>"]);
        assert!(r[2].starts_with("451"), "{r:?}");

        srv.stop();
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "a stopped server refuses connections"
        );
        srv.restart();
        assert_eq!(srv.port(), port);
        srv.set(&Control::default());
        let r = converse(
            port,
            &[
                "EHLO t",
                "MAIL FROM:<a@example.com>",
                "RCPT TO:<b@example.com>",
                "DATA",
                msg,
                "QUIT",
            ],
        );
        assert!(r[5].starts_with("250"), "{r:?}");
        assert_eq!(srv.messages().len(), 2, "the mailbox survives a restart");
    }
}
