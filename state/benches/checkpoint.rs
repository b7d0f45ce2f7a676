//! What a checkpoint costs: rendering, parsing and a durable save, for a
//! typical checkpoint (one journal, a few listeners) and a large one
//! (about 100 KB: 400 listeners). The engine saves after every batch of
//! acknowledgements, so `save` bounds how often it can afford to.
//!
//! `one_of_many` is the daemon's case at scale: N journals (one listener
//! each), one of which moved since the last save. `whole` is a save of the
//! whole file (what every save cost before `checkpoint.log`); `changed`
//! is [`Store::save_changed`], which appends that journal to the log, and
//! folds the log into a whole save once it is as large as the checkpoint
//! (included in the figure: amortised).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use logdaemon_state::{Checkpoint, Cursor, Hash, Identity, JournalState, Store};
use std::path::Path;

fn checkpoint(listeners: u64) -> Checkpoint {
    let identity = |salt: u64| Identity {
        path: format!("/p4/root/journal.{salt}"),
        dev: 2049,
        inode: 131_075 + salt,
        head_len: 4096,
        head_hash: Hash::of(&salt.to_le_bytes()),
        tail_len: 4096,
        tail_hash: Hash::of(&(!salt).to_le_bytes()),
    };
    let reader = Cursor {
        sequence: 12,
        offset: 1 << 30,
        line: 1 << 22,
        identity: Some(identity(0)),
    };
    let mut j = JournalState {
        reader: reader.clone(),
        ..Default::default()
    };
    for i in 0..listeners {
        j.listeners.insert(
            format!("listener-{i:04}"),
            Cursor {
                offset: reader.offset - i * 100,
                identity: Some(identity(i + 1)),
                ..reader.clone()
            },
        );
    }
    Checkpoint {
        journals: [("p4".to_string(), j)].into(),
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut g = c.benchmark_group("checkpoint");
    for listeners in [3u64, 400] {
        let cp = checkpoint(listeners);
        let text = cp.to_toml();
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::new("to_toml", listeners), &cp, |b, cp| {
            b.iter(|| cp.to_toml())
        });
        g.bench_with_input(BenchmarkId::new("parse", listeners), &text, |b, text| {
            b.iter(|| Checkpoint::parse(text, Path::new("checkpoint.toml")).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("save", listeners), &cp, |b, cp| {
            b.iter(|| cp.save(dir.path()).unwrap())
        });
    }
    g.finish();
}

/// `n` journals, each with one listener, both with their proof.
fn journals(n: u64) -> Checkpoint {
    let mut cp = Checkpoint::default();
    for i in 0..n {
        let cursor = Cursor {
            sequence: 3,
            offset: 1 << 20,
            line: 1 << 12,
            identity: Some(Identity {
                path: format!("/var/log/app/service-{i:05}.log"),
                dev: 2049,
                inode: 131_075 + i,
                head_len: 4096,
                head_hash: Hash::of(&i.to_le_bytes()),
                tail_len: 4096,
                tail_hash: Hash::of(&(!i).to_le_bytes()),
            }),
        };
        let mut j = JournalState {
            reader: cursor.clone(),
            ..Default::default()
        };
        j.listeners.insert("copy".into(), cursor);
        cp.journals.insert(format!("service-{i:05}"), j);
    }
    cp
}

/// Moves the `k`-th journal (round robin) on by one line; returns its name.
fn move_one(cp: &mut Checkpoint, k: &mut u64) -> String {
    *k += 1;
    let name = format!("service-{:05}", *k % cp.journals.len() as u64);
    let j = cp.journals.get_mut(&name).unwrap();
    for c in std::iter::once(&mut j.reader).chain(j.listeners.values_mut()) {
        c.offset += 100;
        c.line += 1;
    }
    name
}

fn one_of_many(c: &mut Criterion) {
    let n: u64 = std::env::var("CHECKPOINT_BENCH_JOURNALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut g = c.benchmark_group("one_of_many");
    g.sample_size(10);
    let mut cp = journals(n);
    let whole_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut k = 0;
    g.bench_function(BenchmarkId::new("whole", n), |b| {
        b.iter(|| {
            move_one(&mut cp, &mut k);
            cp.save(whole_dir.path()).unwrap()
        })
    });
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    cp.save(dir.path()).unwrap();
    let (mut store, _) = Store::open(dir.path()).unwrap();
    g.bench_function(BenchmarkId::new("changed", n), |b| {
        b.iter(|| {
            let name = move_one(&mut cp, &mut k);
            store.save_changed(&cp, [name]).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench, one_of_many);
criterion_main!(benches);
