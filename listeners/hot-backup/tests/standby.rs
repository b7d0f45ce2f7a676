//! The listener against a real sshd on loopback: byte-identical mirroring
//! across rotations, exactly-once reconnects, transaction consistency,
//! server restarts, apply, and refusal of untrusted hosts and keys.

mod common;

#[path = "standby/apply.rs"]
mod apply;
#[path = "standby/auth.rs"]
mod auth;
#[path = "standby/outage.rs"]
mod outage;

use common::*;
use logdaemon_sdk::testing::Batch;
use logdaemon_sdk::{Ack, Listener, Position};

#[test]
fn mirrors_the_journal_and_its_rotated_predecessors_byte_for_byte() {
    let env = Env::new();
    let (a, b, c) = (journal(0, 40), journal(1, 25), journal(2, 30));
    std::fs::write(env.journal_path(), &c).unwrap();
    let recs = stream(&[(5, &a), (6, &b), (7, &c)]);
    let mut l = env.open("");
    let mut host = Host::new(&recs, 9);
    host.run(&mut l);
    assert_eq!(
        host.acked,
        recs.len(),
        "everything acknowledged once the last transaction closed"
    );
    assert_eq!(env.remote_file("journal.5"), a);
    assert_eq!(env.remote_file("journal.6"), b);
    assert_eq!(env.remote_file("journal"), c);
    assert_eq!(env.remote_file(".logdaemon-standby"), b"7\n");
    let names: Vec<String> = env.remote_listing().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            ".logdaemon-loop",
            ".logdaemon-standby",
            "journal",
            "journal.5",
            "journal.6"
        ]
    );
}

#[test]
fn ships_only_whole_transactions_and_acknowledges_up_to_the_last_one() {
    let env = Env::new();
    let recs: Vec<&[u8]> = vec![
        b"@pv@ 0 @db.counters@ @change@ 1 \n",
        b"@pv@ 0 @db.desc@ 1 @first\nchange@ \n",
        b"@ex@ 12 1700000000\n",
        b"@pv@ 0 @db.counters@ @change@ 2 \n",
    ];
    let tx1: Vec<u8> = recs[..3].concat();
    let mut l = env.open("");
    let b = Batch::p4("p4", 1, 0, &recs);
    l.listen(b.entries()).unwrap();
    assert_eq!(l.flush().unwrap(), Ack::Upto(b.entries()[3].start()));
    assert_eq!(
        env.remote_file("journal"),
        tx1,
        "the standby ends on the transaction boundary"
    );

    // The rest of the open transaction, still without its @ex@: nothing new is shipped.
    let b2 = Batch::p4(
        "p4",
        1,
        b.entries()[3].end().offset,
        &[b"@pv@ 0 @db.desc@ 2 @second@ \n"],
    );
    assert_eq!(
        l.listen(b2.entries()).unwrap(),
        Ack::Upto(b.entries()[3].start())
    );
    assert_eq!(l.flush().unwrap(), Ack::Upto(b.entries()[3].start()));
    assert_eq!(env.remote_file("journal"), tx1);

    let b3 = Batch::p4(
        "p4",
        1,
        b2.entries()[0].end().offset,
        &[b"@ex@ 12 1700000001\n"],
    );
    l.listen(b3.entries()).unwrap();
    assert_eq!(l.flush().unwrap(), Ack::All);
    let mut all = tx1.clone();
    all.extend_from_slice(recs[3]);
    all.extend_from_slice(b"@pv@ 0 @db.desc@ 2 @second@ \n@ex@ 12 1700000001\n");
    assert_eq!(env.remote_file("journal"), all);
}

#[test]
fn after_a_crash_the_standby_ahead_of_the_host_gets_no_duplicate_bytes() {
    let env = Env::new();
    let data = journal(3, 60);
    std::fs::write(env.journal_path(), &data).unwrap();
    let recs = stream(&[(1, &data)]);
    {
        let mut l = env.open("");
        let mut host = Host::new(&recs, 11);
        for _ in 0..4 {
            host.step(&mut l).unwrap();
        }
        // The listener (and the host) die here; the host's checkpoint is far behind.
    }
    let shipped = env.remote_file("journal").len();
    assert!(shipped > 0);
    let cursor = Position {
        sequence: 1,
        offset: recs[5].off,
        line: 0,
    };
    let mut l = env.open_with(&env.config(""), cursor).unwrap();
    let mut host = Host::at(&recs, 7, cursor);
    host.run(&mut l);
    assert_eq!(env.remote_file("journal"), data);
}

#[test]
fn a_standby_that_differs_from_the_journal_is_fatal_naming_file_and_offset() {
    let env = Env::new();
    let data = journal(4, 50);
    let recs = stream(&[(1, &data)]);
    {
        let mut l = env.open("verify = false");
        let mut host = Host::new(&recs, 200);
        host.run(&mut l);
    }
    // Without `verify`, only the last 4 KiB are checked on connect: damage
    // one byte early in the standby's file, and only the comparison of
    // redelivered bytes notices.
    let mut remote = env.remote_file("journal");
    let at = 100;
    remote[at] ^= 0x20;
    std::fs::write(env.remote().join("journal"), &remote).unwrap();
    let mut l = env.open("verify = false");
    let mut host = Host::new(&recs, 200);
    host.step(&mut l).unwrap();
    let msg = assert_fatal(host.flush(&mut l));
    assert!(
        msg.contains("/journal differs from the journal at offset 100 "),
        "{msg}"
    );
    assert!(msg.contains("logdaemon checkpoint set"), "{msg}");
    assert_eq!(
        env.remote_file("journal"),
        remote,
        "a differing standby is never overwritten"
    );
}

#[test]
fn an_edit_anywhere_in_the_standby_is_fatal_on_connect_naming_its_offset() {
    let env = Env::new();
    let data = journal(6, 400);
    assert!(data.len() > 20_000, "{}", data.len());
    let recs = stream(&[(1, &data)]);
    let half = recs.len() / 2;
    std::fs::write(env.journal_path(), &data).unwrap();
    {
        let mut l = env.open("");
        let mut host = Host::new(&recs[..half], 50);
        host.run(&mut l);
    }
    let shipped = env.remote_file("journal");
    // One byte flipped far before the last 4 KiB, while the daemon is down.
    let mut remote = shipped.clone();
    remote[1000] ^= 0x01;
    std::fs::write(env.remote().join("journal"), &remote).unwrap();
    let cursor = Position {
        sequence: 1,
        offset: shipped.len() as u64,
        line: 0,
    };
    let msg = assert_fatal(env.open_with(&env.config(""), cursor));
    assert!(
        msg.contains("/journal differs from what was sent")
            && msg.contains("first at offset 1000."),
        "{msg}"
    );
    assert_eq!(env.remote_file("journal"), remote, "nothing was appended");
}

#[test]
fn a_standby_cut_or_grown_while_connected_is_never_appended_to_at_the_wrong_place() {
    let env = Env::new();
    let data = journal(5, 300);
    std::fs::write(env.journal_path(), &data).unwrap();
    let recs = stream(&[(1, &data)]);
    let sink = env.tmp.path().join("applied.out");
    let extra = format!(
        "apply = [\"sh\", \"-c\", \"cat >> '{}'\"]\n",
        sink.display()
    );
    let mut l = env.open(&extra);
    let mut host = Host::new(&recs, 20);
    let mut failures = 0;
    let mut go =
        |host: &mut Host, l: &mut logdaemon_listener_hot_backup::HotBackup, upto: usize| {
            for _ in 0..500 {
                if host.next >= upto {
                    break;
                }
                match host.step(l).and_then(|_| host.flush(l)) {
                    Ok(_) => {}
                    Err(f) => {
                        assert_eq!(f.kind, logdaemon_sdk::FailureKind::Retry, "{f}");
                        failures += 1;
                    }
                }
            }
            assert!(host.next >= upto, "stuck at record {}", host.next);
        };
    go(&mut host, &mut l, recs.len() / 3);
    // The standby's journal loses its last 500 bytes while connected.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(env.remote().join("journal"))
        .unwrap();
    let size = f.metadata().unwrap().len();
    f.set_len(size - 500).unwrap();
    drop(f);
    go(&mut host, &mut l, recs.len());
    host.flush(&mut l).unwrap();
    assert!(failures >= 1, "the cut was noticed");
    assert!(
        env.remote_file("journal") == data,
        "the standby is the journal, byte for byte, with no hole"
    );
    assert!(
        std::fs::read(&sink).unwrap() == data,
        "apply got every byte exactly once, from whole transactions"
    );

    // Foreign bytes appended while connected: found before the next append.
    let more = journal(7, 20);
    let mut all = data.clone();
    all.extend_from_slice(&more);
    std::fs::write(env.journal_path(), &all).unwrap();
    let recs2 = stream(&[(1, &all)]);
    let mut host = Host::at(&recs2, 20, host.cursor());
    let mut standby = std::fs::OpenOptions::new()
        .append(true)
        .open(env.remote().join("journal"))
        .unwrap();
    std::io::Write::write_all(&mut standby, b"foreign bytes\n").unwrap();
    drop(standby);
    let mut last = None;
    for _ in 0..5 {
        match host.step(&mut l).and_then(|_| host.flush(&mut l)) {
            Err(f) if f.kind == logdaemon_sdk::FailureKind::Fatal => {
                last = Some(f.message);
                break;
            }
            _ => {}
        }
    }
    let msg = last.expect("foreign bytes on the standby are fatal");
    assert!(
        msg.contains(&format!(
            "differs from the journal at offset {}",
            data.len()
        )),
        "{msg}"
    );
}

#[test]
fn a_standby_restored_to_an_older_state_is_filled_from_the_live_journal() {
    let env = Env::new();
    let data = journal(5, 60);
    std::fs::write(env.journal_path(), &data).unwrap();
    let recs = stream(&[(1, &data)]);
    let ends = ex_ends(&data);
    let half = index_of(
        &recs,
        Position {
            sequence: 1,
            offset: ends[40],
            line: 0,
        },
    );
    {
        let mut l = env.open("");
        let mut host = Host::new(&recs[..half], 10);
        host.run(&mut l);
    }
    assert_eq!(env.remote_file("journal"), &data[..ends[40] as usize]);
    // The standby is restored from a backup that ends at transaction 20.
    std::fs::write(env.remote().join("journal"), &data[..ends[20] as usize]).unwrap();
    let cursor = Position {
        sequence: 1,
        offset: ends[40],
        line: 0,
    };
    let mut l = env.open_with(&env.config(""), cursor).unwrap();
    let mut host = Host::at(&recs, 10, cursor);
    host.run(&mut l);
    assert_eq!(env.remote_file("journal"), data);

    // When the live journal is no longer that file, it is fatal with instructions.
    std::fs::write(env.remote().join("journal"), &data[..ends[20] as usize]).unwrap();
    std::fs::write(env.journal_path(), journal(6, 60)).unwrap();
    let more = b"@pv@ 0 @db.counters@ @x@ 9 \n@ex@ 1 2\n".to_vec();
    let mut l = env
        .open_with(
            &env.config(""),
            Position {
                sequence: 1,
                offset: data.len() as u64,
                line: 0,
            },
        )
        .unwrap();
    let b = Batch::p4(
        "p4",
        1,
        data.len() as u64,
        &split_p4(&more)
            .iter()
            .map(Vec::as_slice)
            .collect::<Vec<_>>(),
    );
    l.listen(b.entries()).unwrap();
    let msg = assert_fatal(l.flush());
    assert!(
        msg.contains(&format!(
            "ends at offset {} but the journal (sequence 1) continues at offset {}",
            ends[20],
            data.len()
        )),
        "{msg}"
    );
    assert!(msg.contains("copy the journal's bytes"), "{msg}");
    assert_eq!(env.remote_file("journal"), &data[..ends[20] as usize]);
}

#[test]
fn batches_wait_for_size_or_age_and_a_quiet_journal_ships_at_once() {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let env = Env::new();
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock = {
        let now = now.clone();
        Box::new(move || *now.lock().unwrap())
    };
    let cfg = env.config("batch_bytes = 80\nmax_delay = \"1s\"\n");
    let mut l = env
        .open_clocked(&cfg, Position::default(), Some(clock))
        .unwrap();
    let tx = |i: u64| format!("@pv@ 0 @db.counters@ @change@ {i} \n@ex@ 7 {i}\n").into_bytes();
    let mut journal = Vec::new();
    let mut send = |l: &mut logdaemon_listener_hot_backup::HotBackup, i: u64| {
        let t = tx(i);
        let recs = split_p4(&t);
        let b = Batch::p4(
            "p4",
            1,
            journal.len() as u64,
            &recs.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        );
        journal.extend_from_slice(&t);
        let first = b.entries()[0].start();
        (l.listen(b.entries()).unwrap(), first, journal.clone())
    };
    let standby = || std::fs::read(env.remote().join("journal")).unwrap_or_default();

    let (ack, first, _) = send(&mut l, 1);
    assert_eq!(ack, Ack::Upto(first), "a small, young batch waits");
    assert!(standby().is_empty());
    *now.lock().unwrap() += Duration::from_millis(500);
    let (_, _, all) = send(&mut l, 2);
    assert_eq!(
        l.wait_queued().unwrap(),
        Ack::All,
        "80 bytes gathered: shipped"
    );
    assert_eq!(standby(), all);

    let (ack, first, _) = send(&mut l, 3);
    assert_eq!(ack, Ack::Upto(first));
    *now.lock().unwrap() += Duration::from_millis(1100);
    let (_, _, all) = send(&mut l, 4);
    assert_eq!(
        l.wait_queued().unwrap(),
        Ack::All,
        "the oldest entry waited max_delay: shipped"
    );
    assert_eq!(standby(), all);

    let (_, first, all) = send(&mut l, 5);
    assert_eq!(l.flush().unwrap(), Ack::All);
    assert_ne!(first.offset, 0);
    assert_eq!(standby(), all, "flush ships at once");
    let (_, _, all) = send(&mut l, 6);
    assert_eq!(l.no_data(true).unwrap(), Ack::All);
    assert_eq!(standby(), all, "a quiet journal ships at once");
}

#[test]
fn a_rotation_interrupted_at_any_step_is_finished_by_the_next_connection() {
    let env = Env::new();
    let (a, b) = (journal(12, 20), journal(13, 20));
    std::fs::write(env.journal_path(), &b).unwrap();
    let recs = stream(&[(5, &a), (6, &b)]);
    let first_of_b = index_of(
        &recs,
        Position {
            sequence: 6,
            offset: 0,
            line: 0,
        },
    );
    {
        let mut l = env.open("");
        Host::new(&recs[..first_of_b], 7).run(&mut l);
    }
    assert_eq!(env.remote_file("journal"), a);
    let cursor = Position {
        sequence: 6,
        offset: 0,
        line: 0,
    };

    // Crash after the rename, before the marker: journal.5 exists, no journal.
    std::fs::rename(env.remote().join("journal"), env.remote().join("journal.5")).unwrap();
    {
        let mut l = env.open_with(&env.config(""), cursor).unwrap();
        Host::at(&recs, 7, cursor).run(&mut l);
    }
    assert_eq!(env.remote_file("journal.5"), a);
    assert_eq!(env.remote_file("journal"), b);
    assert_eq!(env.remote_file(".logdaemon-standby"), b"6\n");

    // Crash after the marker, before the new file: marker 6, no journal.
    std::fs::remove_file(env.remote().join("journal")).unwrap();
    std::fs::remove_file(env.tmp.path().join("state/standby.state")).unwrap();
    {
        let mut l = env.open_with(&env.config(""), cursor).unwrap();
        Host::at(&recs, 7, cursor).run(&mut l);
    }
    assert_eq!(env.remote_file("journal.5"), a);
    assert_eq!(env.remote_file("journal"), b);
}

#[test]
fn a_host_cursor_behind_a_rotation_the_standby_already_made_is_compared_and_skipped() {
    let env = Env::new();
    let (a, b) = (journal(14, 30), journal(15, 30));
    std::fs::write(env.journal_path(), &b).unwrap();
    let recs = stream(&[(8, &a), (9, &b)]);
    {
        let mut l = env.open("");
        Host::new(&recs, 9).run(&mut l);
    }
    // The loop-owner file changes with every connection; the rest must not.
    let journals = || {
        env.remote_listing()
            .into_iter()
            .filter(|(n, _)| n != ".logdaemon-loop")
            .collect::<Vec<_>>()
    };
    let before = journals();
    // The host's checkpoint lags far behind: in the middle of sequence 8.
    let cursor = Position {
        sequence: 8,
        offset: ex_ends(&a)[10],
        line: 0,
    };
    let mut l = env.open_with(&env.config(""), cursor).unwrap();
    Host::at(&recs, 5, cursor).run(&mut l);
    assert_eq!(journals(), before, "nothing rewritten, nothing duplicated");
    assert_eq!(env.remote_file("journal.8"), a);
    assert_eq!(env.remote_file("journal"), b);
}

#[test]
fn line_logs_ship_every_whole_record_and_rotate_like_journals() {
    let env = Env::new();
    let mut l = env
        .open_format("lines", &env.config(""), Position::default(), None)
        .unwrap();
    let a = Batch::lines("log", 1, 0, &[b"2026-11-21 one\n", b"2026-11-21 two\n"]);
    l.listen(a.entries()).unwrap();
    assert_eq!(
        l.flush().unwrap(),
        Ack::All,
        "no transactions in a line log: every record ships"
    );
    assert_eq!(
        env.remote_file("journal"),
        b"2026-11-21 one\n2026-11-21 two\n"
    );
    let mut b = Batch::lines("log", 2, 0, &[b"2026-11-22 three\n"]);
    b.set_did_rotate(0);
    l.listen(b.entries()).unwrap();
    assert_eq!(l.flush().unwrap(), Ack::All);
    assert_eq!(
        env.remote_file("journal.1"),
        b"2026-11-21 one\n2026-11-21 two\n"
    );
    assert_eq!(env.remote_file("journal"), b"2026-11-22 three\n");
}

/// Every cipher the listener offers by default ships megabytes byte for
/// byte and reads them back intact: sshd checks every packet's tag or MAC
/// on the way out, the comparison of a restarted listener decrypts them on
/// the way back. (The vendored libssh2 encrypts ChaCha20 and AES through
/// OpenSSL in whole packets; this is what proves those paths.)
#[test]
fn every_default_cipher_ships_and_reads_back_megabytes_byte_for_byte() {
    let data = journal(2, 9000);
    assert!(
        data.len() > 1 << 20,
        "{} bytes is not enough packets",
        data.len()
    );
    let recs = stream(&[(1, &data)]);
    for cipher in [
        "chacha20-poly1305@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-ctr",
        "aes256-ctr",
    ] {
        let env = Env::new();
        std::fs::write(env.journal_path(), &data).unwrap();
        let extra = format!("ciphers = \"{cipher}\"\n");
        let mut l = env.open(&extra);
        Host::new(&recs, 4000).run(&mut l);
        drop(l);
        assert!(
            env.remote_file("journal") == data,
            "{cipher}: the standby differs from the journal"
        );
        // A host cursor at the start: every byte is read back and compared.
        let mut l = env
            .open_with(&env.config(&extra), Position::default())
            .unwrap();
        Host::new(&recs, 4000).run(&mut l);
        assert!(
            env.remote_file("journal") == data,
            "{cipher}: the standby changed after the comparison"
        );
    }
}

/// The first data of a connection waits for the standby to say it is
/// ready. When its check fails there (the live file changed after the
/// connection looked at it), the answer comes instead: the failure is
/// reported at once (a retry), the data is not appended, and the next
/// connection sees the change and refuses to go on.
#[test]
fn a_check_that_fails_before_the_data_is_sent_is_reported_without_appending() {
    let env = Env::new();
    let data = journal(14, 10);
    std::fs::write(env.journal_path(), &data).unwrap();
    let recs = stream(&[(1, &data)]);
    // (A loop that waited for the data would time out instead.)
    let mut l = env.open("command_timeout = \"5s\"");
    // Connected and looked: no standby yet. Now someone writes the live file.
    std::fs::write(env.remote().join("journal"), b"stray").unwrap();
    let mut host = Host::new(&recs, 100);
    let failure = assert_retry(host.step(&mut l).and_then(|_| host.flush(&mut l)));
    assert!(
        failure.message.contains("journal is 5 bytes, expected 0"),
        "{failure}"
    );
    assert_eq!(env.remote_file("journal"), b"stray", "nothing appended");
    let fatal = assert_fatal(host.step(&mut l).and_then(|_| host.flush(&mut l)));
    assert!(
        fatal.contains("differs from the journal at offset 0"),
        "{fatal}"
    );
    assert_eq!(env.remote_file("journal"), b"stray");
}
