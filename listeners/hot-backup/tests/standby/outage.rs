//! The standby away or full: sshd killed mid-stream, an unreachable host,
//! a full disk: retried, nothing lost, cut back to whole transactions.

use super::common::*;
use logdaemon_sdk::testing::Batch;
use logdaemon_sdk::{Ack, Listener, Position};

#[test]
fn sshd_killed_mid_stream_is_retried_then_caught_up_with_nothing_lost() {
    let mut env = Env::new();
    let (a, b) = (journal(7, 40), journal(8, 40));
    std::fs::write(env.journal_path(), &b).unwrap();
    let recs = stream(&[(3, &a), (4, &b)]);
    let mut l = env.open("");
    let mut host = Host::new(&recs, 8);
    let mut retries = 0;
    let mut calls = 0;
    while !host.done() {
        calls += 1;
        if calls == 5 || calls == 14 {
            env.sshd.stop();
            let f = assert_retry(host.step(&mut l).and_then(|_| host.flush(&mut l)));
            assert!(f.message.contains("127.0.0.1"), "{}", f.message);
            retries += 1;
            // Still down: the host backs off and tries again.
            assert_retry(host.step(&mut l).and_then(|_| host.flush(&mut l)));
            env.sshd.restart().unwrap();
            continue;
        }
        host.step(&mut l)
            .unwrap_or_else(|f| panic!("call {calls}: {f}"));
    }
    host.flush(&mut l).unwrap();
    assert_eq!(retries, 2);
    assert_eq!(env.remote_file("journal.3"), a);
    assert_eq!(env.remote_file("journal"), b);
}

#[test]
fn an_unreachable_standby_is_retried_not_fatal() {
    let mut env = Env::new();
    env.sshd.stop();
    let mut l = env.open("");
    let b = Batch::p4("p4", 1, 0, &[b"@pv@ 0 @db.x@ 1 \n", b"@ex@ 1 1\n"]);
    let f = assert_retry(l.listen(b.entries()).and_then(|_| l.flush()));
    assert!(
        f.message.contains("cannot connect to 127.0.0.1"),
        "{}",
        f.message
    );
    env.sshd.restart().unwrap();
    l.listen(b.entries()).unwrap();
    assert_eq!(l.flush().unwrap(), Ack::All);
    assert_eq!(env.remote_file("journal"), b"@pv@ 0 @db.x@ 1 \n@ex@ 1 1\n");
}

/// A tmpfs mounted for one test (needs root, as the tests run on CI).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let st = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "mounting a {size} tmpfs at {} needs root (CAP_SYS_ADMIN)",
            at.display()
        );
        SmallDisk(at.to_path_buf())
    }
    fn grow(&self, size: &str) {
        let st = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_on_the_standby_is_retried_and_cut_back_to_whole_transactions() {
    let env = Env::new();
    let disk = SmallDisk::mount(&env.tmp.path().join("small"), "128k");
    let data = journal(11, 1000);
    assert!(
        data.len() > 200 << 10,
        "the journal must not fit: {} bytes",
        data.len()
    );
    std::fs::write(env.journal_path(), &data).unwrap();
    let recs = stream(&[(1, &data)]);
    let cfg = env.config("").replace(
        &env.remote().display().to_string(),
        &disk.0.display().to_string(),
    );
    let mut l = env.open_with(&cfg, Position::default()).unwrap();
    let mut host = Host::new(&recs, 100);
    let failure = loop {
        assert!(!host.done(), "the disk never filled up");
        if let Err(f) = host.step(&mut l).and_then(|_| host.flush(&mut l)) {
            break f;
        }
    };
    assert_eq!(failure.kind, logdaemon_sdk::FailureKind::Retry, "{failure}");
    assert!(failure.message.contains("disk full"), "{failure}");
    let standby = std::fs::read(disk.0.join("journal")).unwrap();
    assert!(
        data.starts_with(&standby) && ex_ends(&data).contains(&(standby.len() as u64)),
        "cut back to a transaction: {}",
        standby.len()
    );
    // Still full: retried again, nothing lost, nothing half-written.
    assert_retry(host.step(&mut l).and_then(|_| host.flush(&mut l)));
    disk.grow("4m");
    host.run(&mut l);
    assert_eq!(std::fs::read(disk.0.join("journal")).unwrap(), data);
}
