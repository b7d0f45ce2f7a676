//! SMTP smuggling: entries carrying a bare CR, a fake end of data and SMTP
//! commands must reach the relay as one message, whatever the relay
//! accepts as the end of DATA.
//!
//! The relay here is a stand-in written for this test: a deliberately
//! lenient SMTP server that, like some real relays, also takes
//! `<CR>.<CR><LF>` as the end of the message data. No packaged server
//! behaves this way on purpose, so it is written out below (a few lines
//! of SMTP over a loopback socket, storing every message it accepts).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Host, World, JOURNAL};
use logdaemon_sdk::testing::Batch;

/// One message the lenient relay stored: envelope and data.
#[derive(Clone, Debug)]
struct Stored {
    rcpt: Vec<String>,
    data: Vec<u8>,
}

/// The lenient relay: accepts everything, ends DATA at the standard
/// `\r\n.\r\n` and also at `\r.\r\n`.
struct LenientRelay {
    port: u16,
    stored: Arc<Mutex<Vec<Stored>>>,
    /// Sessions still open.
    open: Arc<AtomicUsize>,
}

impl LenientRelay {
    fn start() -> LenientRelay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stored = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicUsize::new(0));
        let (s, o) = (stored.clone(), open.clone());
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let (s, o) = (s.clone(), o.clone());
                o.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    session(c, &s);
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        LenientRelay { port, stored, open }
    }

    /// What was stored, once every session has ended (the relay reads
    /// whatever the client wrote before it closed the connection).
    fn stored(&self) -> Vec<Stored> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.open.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "an SMTP session did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stored.lock().unwrap().clone()
    }
}

fn session(c: TcpStream, stored: &Mutex<Vec<Stored>>) {
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    let _ = w.write_all(b"220 lenient ESMTP\r\n");
    let mut rcpt = Vec::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        let cmd = String::from_utf8_lossy(&line).trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-lenient\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM") {
            rcpt.clear();
            b"250 ok\r\n"
        } else if let Some(to) = upper.strip_prefix("RCPT TO:") {
            rcpt.push(to.trim().to_ascii_lowercase());
            b"250 ok\r\n"
        } else if upper == "DATA" {
            let _ = w.write_all(b"354 go ahead\r\n");
            // The lenient part: the data ends at CR "." CR LF, even when
            // the CR before the dot is not part of a CR LF.
            let mut data = Vec::new();
            let mut b = [0u8; 1];
            while !(data.ends_with(b"\r.\r\n") || data.ends_with(b"\n.\r\n")) {
                if std::io::Read::read(&mut r, &mut b).unwrap_or(0) == 0 {
                    return;
                }
                data.push(b[0]);
            }
            data.truncate(data.len() - 3);
            stored.lock().unwrap().push(Stored {
                rcpt: std::mem::take(&mut rcpt),
                data,
            });
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n");
            return;
        } else {
            b"250 ok\r\n"
        };
        if w.write_all(reply).is_err() {
            return;
        }
    }
}

#[test]
fn entries_cannot_smuggle_a_second_message_past_a_lenient_relay() {
    let relay = LenientRelay::start();
    let mut w = World::new("lines", "");
    w.config = format!(
        "smtp_host = \"127.0.0.1\"\nsmtp_port = {}\ntls = \"none\"\ntimeout = \"10s\"\nfrom = \"logdaemon@example.com\"\nto = [\"dev@example.com\"]\nmax_delay = \"1h\"\n",
        relay.port
    );
    // A hostile writer's records: a bare CR before a dot, then SMTP
    // commands and a forged message; a NUL byte in the last one.
    let recs: Vec<&[u8]> = vec![
        b"ERROR x\r.\n",
        b"MAIL FROM:<attacker@evil.example>\n",
        b"RCPT TO:<victim@example.com>\n",
        b"DATA\n",
        b"From: ceo@example.com\n",
        b"Subject: forged\n",
        b"\n",
        b"forged body\n",
        b"after\x00the nul\n",
    ];
    let mut h = Host::new(Batch::lines(JOURNAL, 1, 0, &recs));
    let mut l = w.open(h.acked).unwrap();
    h.run(&mut l, 100).unwrap();
    h.no_data(&mut l, true).unwrap();
    let got = relay.stored();
    assert_eq!(
        got.len(),
        1,
        "the relay stored more than one message: {:#?}",
        got.iter()
            .map(|m| (
                m.rcpt.clone(),
                String::from_utf8_lossy(&m.data).into_owned()
            ))
            .collect::<Vec<_>>()
    );
    let m = &got[0];
    assert_eq!(m.rcpt, ["<dev@example.com>"]);
    let text = String::from_utf8_lossy(&m.data);
    assert!(
        text.contains("forged body") && text.contains("the nul"),
        "the whole digest is in the one message: {text}"
    );
    for (i, w) in m.data.windows(2).enumerate() {
        assert!(
            w[0] != b'\r' || w[1] == b'\n',
            "bare CR at byte {i}: {text:?}"
        );
    }
    assert!(!m.data.contains(&0), "a NUL byte went out: {text:?}");
    assert!(
        m.data.split(|&b| b == b'\n').all(|l| l.len() <= 1000),
        "a line longer than RFC 5321 allows: {text:?}"
    );
}
