//! The RELP client against a scripted RELP server in this test. A mock,
//! because rsyslog cannot be made to refuse one chosen transaction: it
//! answers `200` to every message up to a given one, then `500` (or closes
//! the connection without answering), and the listener must acknowledge
//! exactly the entries before that message and send the rest again, in
//! order, on a new session.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;

use logdaemon_listener_syslog::SyslogListener;
use logdaemon_sdk::testing::Batch;
use logdaemon_sdk::{Ack, FailureKind, Listener, Logger, OpenContext, Position};

/// How the scripted server ends a session.
#[derive(Clone, Copy)]
enum End {
    /// Answers `500 …` to the given 1-based syslog transaction.
    Refuse(usize),
    /// Closes the connection after reading the given one, unanswered.
    Drop(usize),
    /// Answers everything.
    Never,
}

/// Reads one RELP frame: (txnr, command, data).
fn frame(r: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut head = Vec::new();
    for _ in 0..3 {
        let mut tok = Vec::new();
        loop {
            let mut b = [0u8];
            if r.read(&mut b).ok()? == 0 {
                return None;
            }
            if b[0] == b' ' || b[0] == b'\n' {
                break;
            }
            tok.push(b[0]);
        }
        head.push(String::from_utf8(tok).unwrap());
    }
    let len: usize = head[2].parse().unwrap();
    let mut data = vec![0; len];
    r.read_exact(&mut data).unwrap();
    if len > 0 {
        let mut lf = Vec::new();
        r.read_until(b'\n', &mut lf).unwrap();
    }
    Some((head[0].clone(), head[1].clone(), data))
}

/// Serves one session per entry of `ends`; sends every syslog message it
/// read (answered or not) to `got`.
fn serve(l: TcpListener, ends: Vec<End>, got: mpsc::Sender<Vec<u8>>) {
    for end in ends {
        let (s, _) = l.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut n = 0;
        while let Some((txnr, cmd, data)) = frame(&mut r) {
            let answer = match cmd.as_str() {
                "open" => "200 OK\nrelp_version=0\nrelp_software=test\ncommands=syslog".to_string(),
                "close" => "200 OK".to_string(),
                _ => {
                    n += 1;
                    got.send(data).unwrap();
                    match end {
                        End::Drop(k) if n == k => break,
                        End::Refuse(k) if n == k => "500 queue full".to_string(),
                        _ => "200 OK".to_string(),
                    }
                }
            };
            // The client may have gone after a refusal: then the session is over.
            if writeln!(w, "{txnr} rsp {} {answer}", answer.len()).is_err() {
                break;
            }
        }
    }
}

fn open(port: u16, state: &Path) -> SyslogListener {
    let cfg = format!("target = \"relp://127.0.0.1:{port}\"\ntimeout = \"5s\"");
    let ctx = OpenContext {
        listener: "fwd",
        journal: "app",
        format: "lines",
        journal_path: Path::new("/nonexistent/app.log"),
        config_toml: &cfg,
        config_dir: Path::new("/"),
        state_dir: state,
        cursor: Position::default(),
        logger: Logger::discard(),
    };
    SyslogListener::open(&ctx).unwrap_or_else(|f| panic!("{f}"))
}

fn offset_of(msg: &[u8]) -> u64 {
    let s = String::from_utf8_lossy(msg);
    let at = s.find("offset=\"").unwrap() + 8;
    s[at..].split('"').next().unwrap().parse().unwrap()
}

fn check(end: End, want_kind: FailureKind) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    let server = std::thread::spawn(move || serve(l, vec![end, End::Never], tx));
    let state = tempfile::tempdir().unwrap();
    let lines: Vec<Vec<u8>> = (0..10)
        .map(|i| format!("entry {i}\n").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let b = Batch::lines("app", 1, 0, &refs);
    let mut fwd = open(port, state.path());

    let f = fwd.listen(b.entries()).unwrap_err();
    assert_eq!(f.kind, want_kind, "{f}");
    // Messages 1..=3 were answered 200: exactly entries 0..3 are acknowledged.
    assert_eq!(f.ack, Some(b.entries()[2].end()), "{f}");
    // The host redelivers from the acknowledgement; a new session takes them.
    assert_eq!(fwd.listen(&b.entries()[3..]).unwrap(), Ack::All);
    drop(fwd);
    server.join().unwrap();
    let offsets: Vec<u64> = rx.try_iter().map(|m| offset_of(&m)).collect();
    let o: Vec<u64> = b.entries().iter().map(|e| e.offset()).collect();
    // The first session saw (at least) entries 0..=3; the second 3..10, in order.
    let second = offsets.iter().rposition(|&x| x == o[3]).unwrap();
    assert_eq!(offsets[second..], o[3..]);
    assert_eq!(offsets[..4], o[..4]);
}

#[test]
fn a_refused_transaction_acknowledges_only_what_was_answered_200() {
    check(End::Refuse(4), FailureKind::Error);
}

#[test]
fn a_session_that_breaks_unanswered_acknowledges_only_what_was_answered() {
    check(End::Drop(4), FailureKind::Retry);
}
