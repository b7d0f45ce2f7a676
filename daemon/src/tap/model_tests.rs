//! A model-based test of several listeners on one journal: random writes,
//! rotations (renamed, renamed and compressed) and reads by three
//! listeners at their own speeds, one of them failing calls at random
//! (re-reading from its acknowledged position, from the window or from
//! disk). Whatever the order, every listener gets exactly the records
//! written, once each and in order, at their sequence and offset, whether
//! it took the shared batches, fell out of the window, read on its own or
//! joined again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use super::tests::{Got, Listener};
use super::Tap;
use crate::config::JournalConfig;
use crate::format::Format;

#[derive(Debug, Clone)]
enum Op {
    /// Records with these bodies.
    Write(Vec<String>),
    /// Rename the live journal to `journal.N` (and gzip it) and start a new one.
    Rotate { gzip: bool },
    /// Listener `i` reads (and hands over) this many batches.
    Read(usize, usize),
    /// The failing listener's call fails on its next batch.
    Fail,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => proptest::collection::vec("[a-z ]{0,30}", 1..6).prop_map(Op::Write),
        1 => any::<bool>().prop_map(|gzip| Op::Rotate { gzip }),
        6 => (0usize..3, 1usize..6).prop_map(|(i, n)| Op::Read(i, n)),
        2 => Just(Op::Fail),
    ]
}

struct Model {
    dir: PathBuf,
    live_seq: u64,
    live_len: u64,
    /// Every record written: sequence, offset, bytes.
    recs: Vec<Got>,
    serial: usize,
}

impl Model {
    fn live(&self) -> PathBuf {
        self.dir.join("journal")
    }

    fn write(&mut self, bodies: &[String]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.live())
            .unwrap();
        for b in bodies {
            let rec = format!("@pv@ 0 @db.t@ {} @{b}@ \n", self.serial).into_bytes();
            self.serial += 1;
            f.write_all(&rec).unwrap();
            self.recs.push((self.live_seq, self.live_len, rec.clone()));
            self.live_len += rec.len() as u64;
        }
    }

    fn rotate(&mut self, gzip: bool) {
        // An empty journal is not rotated: which empty file was ours cannot
        // be proven (a limit of any follower, see the follower's model test).
        if self.live_len == 0 {
            return;
        }
        let to = self.dir.join(format!("journal.{}", self.live_seq));
        std::fs::rename(self.live(), &to).unwrap();
        std::fs::write(self.live(), b"").unwrap();
        if gzip {
            let data = std::fs::read(&to).unwrap();
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&data).unwrap();
            let z = PathBuf::from(format!("{}.gz", to.display()));
            std::fs::write(&z, e.finish().unwrap()).unwrap();
            std::fs::remove_file(&to).unwrap();
        }
        self.live_seq += 1;
        self.live_len = 0;
    }
}

fn config(path: &Path, batch_bytes: usize) -> Arc<JournalConfig> {
    let mut c = JournalConfig::for_test("model", path, Format::P4);
    c.batch_bytes = batch_bytes;
    Arc::new(c)
}

fn run(batch_bytes: usize, ops: &[Op]) -> Result<(), String> {
    let d = tempfile::tempdir().unwrap();
    let mut m = Model {
        dir: d.path().to_path_buf(),
        live_seq: 1,
        live_len: 0,
        recs: Vec::new(),
        serial: 0,
    };
    std::fs::write(m.live(), b"").unwrap();
    let cfg = config(&m.live(), batch_bytes);
    let tap = Tap::new(cfg.clone());
    let mut ls: Vec<Listener> = (0..3).map(|_| Listener::new(&tap, &cfg)).collect();
    let mut fail_next = false;
    for op in ops {
        match op {
            Op::Write(b) => m.write(b),
            Op::Rotate { gzip } => m.rotate(*gzip),
            Op::Fail => fail_next = true,
            Op::Read(i, n) => {
                for _ in 0..*n {
                    // Listener 2 is the one whose calls fail.
                    let fail = *i == 2 && std::mem::take(&mut fail_next);
                    ls[*i].step(fail)?;
                }
            }
        }
    }
    // The writer moves on (one more record); everyone reads to the end.
    m.write(&["end".into()]);
    for _ in 0..2 {
        for l in &mut ls {
            l.drain()?;
        }
    }
    for (i, l) in ls.iter().enumerate() {
        if l.got != m.recs {
            let at = l.got.iter().zip(&m.recs).position(|(a, b)| a != b);
            return Err(format!(
                "listener {i} got {} records of {} (first difference at {at:?}: {:?} vs {:?}); joined {} times, fell out {}, reopened {}",
                l.got.len(),
                m.recs.len(),
                at.map(|k| &l.got[k]),
                at.map(|k| &m.recs[k]),
                l.joins,
                l.fell_out,
                l.reopened,
            ));
        }
    }
    Ok(())
}

proptest! {
    // A fixed seed: the same cases on every run (see the follower's model test).
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7461_7073_6861_7265),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_listener_gets_every_record_once_in_order(
        batch_bytes in prop_oneof![Just(64usize), Just(300), Just(1 << 20)],
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        if let Err(msg) = run(batch_bytes, &ops) {
            return Err(TestCaseError::fail(msg));
        }
    }
}
