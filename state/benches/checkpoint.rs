//! What a checkpoint costs: rendering, parsing and a durable save, for a
//! typical checkpoint (one journal, a few listeners) and a large one
//! (about 100 KB: 400 listeners). The engine saves after every batch of
//! acknowledgements, so `save` bounds how often it can afford to.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use logdaemon_state::{Checkpoint, Cursor, Hash, Identity, JournalState};
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

criterion_group!(benches, bench);
criterion_main!(benches);
