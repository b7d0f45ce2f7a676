//! RELP under stress: the daemon SIGKILLed and rsyslogd restarted while
//! the journal grows, and a connection rsyslogd closed while idle.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use logdaemon_tests::rsyslog::{Input, Rsyslogd};

use super::{config, numbered_lines, numbered_text, parse, spawn_following, text, wait_exit, Msg};
use crate::fixture::Fixture;

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
