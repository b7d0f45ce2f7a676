//! The listener against a real SMTP server (`logdaemon_tests::smtp`, an
//! aiosmtpd process on a loopback port): digest contents and MIME, the
//! p4-changes preset over real journals, server outages, crashes around
//! the send, rate limiting and timing with an injected clock.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{lines, p4_records, Host, World, JOURNAL, LISTENER};
use logdaemon_listener_email::state::StateFile;
use logdaemon_sdk::testing::Batch;
use logdaemon_sdk::{Ack, FailureKind, Listener, Position};
use logdaemon_tests::smtp::{Control, Mode, Received};

struct Span {
    start: Position,
    end: Position,
}

impl Span {
    fn start(&self) -> Position {
        self.start
    }
    fn end(&self) -> Position {
        self.end
    }
}

fn id(from: Position, to: Position) -> String {
    format!(
        "<logdaemon.{JOURNAL}.{LISTENER}.{}-{}.{}-{}@example.com>",
        from.sequence, from.offset, to.sequence, to.offset
    )
}

/// The entry lines of a default-template digest body.
fn body_lines(m: &Received) -> Vec<String> {
    let b = m.body();
    let (_, list) = b
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no entry list in {b:?}"));
    list.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every line mailed, with how often; panics on a line mailed twice.
fn mailed_once(msgs: &[Received]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut all = Vec::new();
    for m in msgs {
        for l in body_lines(m) {
            *seen.entry(l.clone()).or_default() += 1;
            all.push(l);
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "mailed more than once: {twice:?}");
    all
}

#[test]
fn digests_carry_the_right_entries_as_well_formed_mime() {
    let w = World::new(
        "lines",
        "rules = [{ regex = \"ERROR\" }]\nmax_entries = 3\nmax_delay = \"1h\"",
    );
    let recs: Vec<&[u8]> = vec![
        b"INFO start\n",
        b"ERROR one\n",
        b"ERROR two \xff\xfe bytes\n",
        b"INFO x\n",
        b"ERROR three \xc3\xa9t\xc3\xa9\n",
        b"ERROR four\n",
        b"ERROR five\n",
        b"WARN y\n",
    ];
    let mut h = Host::new(Batch::lines(JOURNAL, 9, 0, &recs));
    let mut l = w.open(h.acked).unwrap();
    h.run(&mut l, 3).unwrap();
    let e: Vec<Span> = h
        .journal
        .entries()
        .iter()
        .map(|e| Span {
            start: e.start(),
            end: e.end(),
        })
        .collect();
    let msgs = w.srv.messages();
    assert_eq!(msgs.len(), 1, "one full digest of 3, the rest held");
    assert_eq!(
        h.acked,
        e[5].start(),
        "the held entries are not acknowledged"
    );
    h.no_data(&mut l, true).unwrap();
    assert_eq!(h.acked, e[7].end());
    let msgs = w.srv.messages();
    assert_eq!(msgs.len(), 2);

    assert_eq!(
        body_lines(&msgs[0]),
        [
            "ERROR one",
            "ERROR two \u{fffd}\u{fffd} bytes",
            "ERROR three été"
        ]
    );
    assert_eq!(body_lines(&msgs[1]), ["ERROR four", "ERROR five"]);
    assert_eq!(msgs[0].message_id(), id(e[1].start(), e[4].end()));
    assert_eq!(msgs[1].message_id(), id(e[5].start(), e[6].end()));
    for m in &msgs {
        assert!(m.defects.is_empty(), "MIME defects: {:?}", m.defects);
        assert_eq!(m.content_type, "text/plain");
        assert_eq!(m.charset.as_deref(), Some("utf-8"));
        assert_eq!(m.header("MIME-Version"), Some("1.0"));
        assert!(m.header("Content-Transfer-Encoding").is_some());
        assert!(m.header("Date").is_some());
        assert_eq!(m.mail_from, "logdaemon@example.com");
        assert_eq!(m.rcpt_tos, ["dev@example.com"]);
    }
    assert_eq!(msgs[0].subject(), "[logdaemon] jnl: 3 entries: ERROR one");
    assert!(
        msgs[0]
            .body()
            .starts_with("3 entries from journal jnl, 9:11 to 9:"),
        "{}",
        msgs[0].body()
    );
    let rec = StateFile::new(w.state_dir()).load().unwrap();
    assert_eq!(rec.sent_upto.map(Position::from), Some(e[6].end()));
    assert_eq!(rec.pending, None);
}

#[test]
fn p4_changes_one_mail_per_submitted_change_with_full_description() {
    let data = std::fs::read(logdaemon_tests_data(
        "p4/integration__dumps__branch_multi__jnl.0",
    ))
    .unwrap();
    let recs = p4_records(&data);
    // The expected changes, read independently: db.desc text by key, then
    // every submitted db.change.
    let mut descs = HashMap::new();
    let mut want = Vec::new();
    for r in &recs {
        let (op, f) = logdaemon_sdk::p4::split(r);
        let f: Vec<String> = f
            .iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect();
        if &*op == b"pv" && f.get(1).map(String::as_str) == Some("db.desc") {
            descs.insert(f[2].clone(), f[3].clone());
        }
        if &*op == b"pv" && f.get(1).map(String::as_str) == Some("db.change") && f[7] == "1" {
            want.push((f[2].clone(), f[5].clone(), descs[&f[3]].clone()));
        }
    }
    assert!(want.len() >= 5, "the journal has submitted changes");
    assert!(
        want.iter().any(|w| w.2.trim_end().contains('\n')),
        "some description spans lines"
    );

    let w = World::new(
        "p4",
        "preset = \"p4-changes\"\nmax_entries = 100\nmax_delay = \"30s\"",
    );
    let mut h = Host::new(Batch::p4(JOURNAL, 4, 0, &recs));
    let mut l = w.open(h.acked).unwrap();
    h.run(&mut l, 7).unwrap();
    h.no_data(&mut l, true).unwrap();
    assert_eq!(h.acked, h.journal.entries().last().unwrap().end());
    let msgs = w.srv.messages();
    assert_eq!(msgs.len(), want.len(), "one mail per submitted change");
    for (m, (num, user, desc)) in msgs.iter().zip(&want) {
        assert!(m.defects.is_empty(), "{:?}", m.defects);
        assert!(
            m.subject().contains(&format!("change {num} by {user}")),
            "{}",
            m.subject()
        );
        let body = m.body();
        assert!(
            body.starts_with(&format!("Change {num} by {user}@svn-client on 20")),
            "{body}"
        );
        for line in desc.trim_end().lines() {
            assert!(
                body.contains(&format!("\t{line}\n")),
                "description line {line:?} missing from {body:?}"
            );
        }
    }
    assert!(msgs[1].body().contains(
        "\tRemove extraneous versions of JDBC drivers, xxxx, and xxxx connection\n\tpools.\n"
    ));
}

fn logdaemon_tests_data(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(rel)
}

#[test]
fn server_down_or_tempfailing_loses_and_repeats_nothing() {
    let mut w = World::new("lines", "max_entries = 2\nmax_delay = \"1h\"");
    let texts: Vec<String> = (0..12).map(|i| format!("line {i}")).collect();
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    h.step(&mut l, 4).unwrap();
    assert_eq!(w.srv.messages().len(), 2);

    w.srv.stop();
    for _ in 0..3 {
        let f = h.step(&mut l, 3).unwrap_err();
        assert_eq!(f.kind, FailureKind::Retry, "{f}");
        assert!(f.message.contains("did not take"), "{}", f.message);
    }
    w.srv.restart();
    w.srv.set(&Control {
        mode: Mode::Tempfail,
        ..Control::default()
    });
    let f = h.step(&mut l, 5).unwrap_err();
    assert_eq!(f.kind, FailureKind::Retry);
    assert!(f.message.contains("451"), "{}", f.message);

    w.srv.set(&Control::default());
    h.run(&mut l, 5).unwrap();
    h.no_data(&mut l, true).unwrap();
    let msgs = w.srv.messages();
    assert_eq!(mailed_once(&msgs), texts, "every line once, in order");
    assert_eq!(msgs.len(), 6);
}

#[test]
fn crash_after_the_sent_record_sends_nothing_twice() {
    let w = World::new("lines", "max_entries = 3\nmax_delay = \"1h\"");
    let texts: Vec<String> = (0..9).map(|i| format!("entry {i}")).collect();
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    let checkpoint = h.acked;
    h.step(&mut l, 7).unwrap();
    assert_eq!(w.srv.messages().len(), 2);
    // The daemon dies before writing its checkpoint: it restarts from the
    // old one and delivers everything again.
    drop(l);
    h.acked = checkpoint;
    h.crash();
    let mut l = w.open(checkpoint).unwrap();
    h.run(&mut l, 4).unwrap();
    h.no_data(&mut l, true).unwrap();
    let msgs = w.srv.messages();
    assert_eq!(mailed_once(&msgs), texts);
    assert_eq!(msgs.len(), 3);
}

#[test]
fn crash_between_acceptance_and_record_resends_once_with_the_same_id() {
    let w = World::new("lines", "max_entries = 100\nmax_delay = \"30s\"");
    let texts: Vec<String> = (0..10).map(|i| format!("row {i}")).collect();
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    h.step(&mut l, 3).unwrap();
    w.clock.advance(Duration::from_secs(31));
    w.crash.store(true, Ordering::SeqCst);
    // max_delay passed: the 3 held rows go out; the server accepts and the
    // process "dies" before recording it.
    let f = h.no_data(&mut l, false).unwrap_err();
    assert_eq!(f.kind, FailureKind::Fatal);
    assert_eq!(w.srv.messages().len(), 1);
    drop(l);
    h.crash();
    assert_eq!(h.acked, h.journal.entries()[0].start());

    // Reopened, the rows come back in one batch together with later ones;
    // the recorded digest is rebuilt with its own 3 rows, not 10.
    let mut l = w.open(h.acked).unwrap();
    h.run(&mut l, 10).unwrap();
    h.no_data(&mut l, true).unwrap();
    let msgs = w.srv.messages();
    assert_eq!(
        msgs.len(),
        3,
        "{:?}",
        msgs.iter().map(|m| m.message_id()).collect::<Vec<_>>()
    );
    assert_eq!(
        msgs[0].message_id(),
        msgs[1].message_id(),
        "the duplicate is recognisable"
    );
    assert_eq!(msgs[0].body(), msgs[1].body());
    assert_eq!(body_lines(&msgs[1]), texts[..3]);
    assert_eq!(body_lines(&msgs[2]), texts[3..]);
    assert_ne!(msgs[2].message_id(), msgs[0].message_id());
    assert_eq!(h.acked, h.journal.entries().last().unwrap().end());
}

#[test]
fn burst_under_a_rate_limit_puts_every_line_in_exactly_one_digest() {
    let w = World::new("lines", "rules = [{ regex = \"^burst\" }]\nmax_entries = 100\nmax_delay = \"1m\"\nmax_messages_per_hour = 5");
    let texts: Vec<String> = (0..10_000).map(|i| format!("burst {i:05}")).collect();
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    h.run(&mut l, 500).unwrap();
    assert_eq!(w.srv.messages().len(), 5, "the hourly budget");
    assert_eq!(
        h.acked,
        h.journal.entries()[500].start(),
        "folded entries are held, not acknowledged"
    );
    h.no_data(&mut l, true).unwrap();
    w.clock.advance(Duration::from_secs(1800));
    h.no_data(&mut l, false).unwrap();
    assert_eq!(w.srv.messages().len(), 5, "still within the hour");
    w.clock.advance(Duration::from_secs(1800));
    let ack = h.no_data(&mut l, false).unwrap();
    assert_eq!(ack, Ack::All);
    let msgs = w.srv.messages();
    assert_eq!(msgs.len(), 6);
    assert_eq!(body_lines(&msgs[5]).len(), 9_500, "the rest in one digest");
    assert_eq!(mailed_once(&msgs), texts);
}

#[test]
fn max_delay_and_no_data_follow_the_injected_clock() {
    let w = World::new("lines", "max_entries = 100\nmax_delay = \"30s\"");
    let texts: Vec<String> = (0..5).map(|i| format!("t {i}")).collect();
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    assert_eq!(
        h.no_data(&mut l, false).unwrap(),
        Ack::All,
        "nothing pending, nothing sent"
    );
    h.step(&mut l, 2).unwrap();
    w.clock.advance(Duration::from_secs(29));
    h.step(&mut l, 1).unwrap();
    assert_eq!(
        h.no_data(&mut l, false).unwrap(),
        Ack::Upto(h.journal.entries()[0].start())
    );
    assert_eq!(w.srv.messages().len(), 0, "29 s after the first entry");
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(h.no_data(&mut l, false).unwrap(), Ack::All);
    assert_eq!(body_lines(&w.srv.messages()[0]), texts[..3]);

    h.step(&mut l, 1).unwrap();
    assert_eq!(w.srv.messages().len(), 1);
    h.no_data(&mut l, true).unwrap();
    assert_eq!(
        body_lines(&w.srv.messages()[1]),
        texts[3..4],
        "no_data(true) sends at once"
    );
    h.step(&mut l, 1).unwrap();
    l.flush().unwrap();
    assert_eq!(w.srv.messages().len(), 3, "flush sends what is held");
    assert_eq!(h.no_data(&mut l, false).unwrap(), Ack::All);
    assert_eq!(w.srv.messages().len(), 3);
}

#[test]
fn a_rejected_recipient_is_fatal_or_skipped_and_reported() {
    let w = World::new("lines", "max_entries = 2\nmax_delay = \"1h\"");
    w.srv.set(&Control {
        reject: vec!["dev@example.com".into()],
        ..Control::default()
    });
    let texts: Vec<String> = (0..4).map(|i| format!("r {i}")).collect();
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    let f = h.step(&mut l, 2).unwrap_err();
    assert_eq!(f.kind, FailureKind::Fatal);
    assert!(
        f.message.contains("550") && f.message.contains("on_reject"),
        "{}",
        f.message
    );
    assert_eq!(h.acked, h.journal.entries()[0].start());

    let mut skip = World::new(
        "lines",
        "max_entries = 2\nmax_delay = \"1h\"\non_reject = \"skip\"",
    );
    skip.srv.set(&Control {
        reject: vec!["dev@example.com".into()],
        ..Control::default()
    });
    let mut h = Host::new(lines(&texts));
    let mut l = skip.open(h.acked).unwrap();
    h.step(&mut l, 2).unwrap();
    assert_eq!(
        h.acked,
        h.journal.entries()[1].end(),
        "skipped entries count as handled"
    );
    skip.srv.set(&Control::default());
    skip.srv.restart();
    h.run(&mut l, 2).unwrap();
    let msgs = skip.srv.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(body_lines(&msgs[0]), texts[2..]);
}

#[test]
fn starttls_is_required_and_never_falls_back_to_plain_text() {
    // The test server offers no STARTTLS: the message must not go out in clear.
    let mut w = World::new("lines", "max_entries = 1");
    w.config = w.config.replace("tls = \"none\"", "tls = \"starttls\"");
    let texts: Vec<String> = vec!["secret".into()];
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    let f = h.step(&mut l, 1).unwrap_err();
    assert_eq!(f.kind, FailureKind::Retry, "{f}");
    assert!(
        f.message.to_ascii_lowercase().contains("starttls"),
        "{}",
        f.message
    );
    assert!(w.srv.messages().is_empty());
    assert_eq!(h.acked, h.journal.entries()[0].start());
}

#[test]
fn p4_crash_in_the_window_resends_the_change_with_its_full_description() {
    let recs: Vec<&[u8]> = vec![
        b"@pv@ 0 @db.desc@ 10 @Line one\nline two@ \n",
        b"@pv@ 0 @db.change@ 10 10 @ws@ @ann@ 1363872228 1 @Line one@ \n",
        b"@pv@ 0 @db.desc@ 11 @orphan@ \n",
    ];
    let w = World::new("p4", "preset = \"p4-changes\"");
    let mut h = Host::new(Batch::p4(JOURNAL, 2, 0, &recs));
    let mut l = w.open(h.acked).unwrap();
    // The description alone is held until its change arrives.
    assert_eq!(
        h.step(&mut l, 1).unwrap(),
        Ack::Upto(h.journal.entries()[0].start())
    );
    w.crash.store(true, Ordering::SeqCst);
    assert_eq!(h.step(&mut l, 1).unwrap_err().kind, FailureKind::Fatal);
    drop(l);
    h.crash();
    assert_eq!(
        h.acked,
        h.journal.entries()[0].start(),
        "the description comes again"
    );
    let mut l = w.open(h.acked).unwrap();
    h.run(&mut l, 3).unwrap();
    assert_eq!(
        h.acked,
        h.journal.entries()[2].start(),
        "a description without its change yet is held"
    );
    assert_eq!(
        h.no_data(&mut l, false).unwrap(),
        Ack::All,
        "a quiet journal releases it"
    );
    let msgs = w.srv.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].message_id(), msgs[1].message_id());
    for m in &msgs {
        assert!(
            m.body().contains("\tLine one\n\tline two\n"),
            "{}",
            m.body()
        );
    }
}

#[test]
fn a_relay_that_stores_but_never_answers_gets_each_message_at_most_twice() {
    let w = World::new(
        "lines",
        "max_entries = 1\nmax_delay = \"1h\"\ndata_timeout = \"1s\"",
    );
    // The relay stores every message, then keeps its 250 back longer than
    // the listener waits: acceptance is in doubt every time.
    w.srv.set(&Control {
        delay_after_store_ms: 2_500,
        ..Control::default()
    });
    let texts: Vec<String> = (0..2).map(|i| format!("change {i}")).collect();
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    let mut retries = 0;
    for _ in 0..10 {
        if h.done() {
            break;
        }
        if let Err(f) = h.step(&mut l, 2) {
            assert_eq!(f.kind, FailureKind::Retry, "{f}");
            assert!(
                f.message.contains("did not answer after the data")
                    && f.message.contains("timed out after 1s"),
                "{}",
                f.message
            );
            retries += 1;
        }
    }
    assert!(h.done(), "the listener moved past the doubtful messages");
    let msgs = w.srv.messages();
    let ids: Vec<&str> = msgs.iter().map(|m| m.message_id()).collect();
    assert_eq!(ids.len(), 4, "each message sent and re-sent once: {ids:?}");
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[2], ids[3]);
    assert_ne!(ids[0], ids[2], "the next message went out too");
    assert_eq!(body_lines(&msgs[0]), texts[..1]);
    assert_eq!(body_lines(&msgs[2]), texts[1..]);
    assert_eq!(retries, 2);
    let rec = StateFile::new(w.state_dir()).load().unwrap();
    assert_eq!(rec.pending, None);
    assert_eq!(
        rec.sent_upto.map(Position::from),
        Some(h.journal.entries()[1].end())
    );
}
