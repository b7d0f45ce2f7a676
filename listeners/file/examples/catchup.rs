//! Measures a catch-up through the `file` listener: reads a line journal in
//! batches the size the daemon uses (4 MiB by default), frames its lines
//! and hands them to `listen`, as the host would, then prints the
//! throughput. Compare with `cat INPUT > OUT` on the same disk.
//!
//! `cargo run --release -p logdaemon-listener-file --example catchup -- INPUT OUTDIR [fsync=true|false] [batch_bytes]`

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use logdaemon_listener_file::FileListener;
use logdaemon_sdk::abi::{Bytes, RawEntry};
use logdaemon_sdk::{Entry, Listener, Logger, OpenContext, Position};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: catchup INPUT OUTDIR [fsync=true|false] [batch_bytes]");
        std::process::exit(2);
    }
    let input = Path::new(&args[1]);
    let dir = Path::new(&args[2]);
    let fsync = args
        .get(3)
        .map_or("true", |s| s.trim_start_matches("fsync="));
    let batch: usize = args
        .get(4)
        .map_or(4 << 20, |s| s.parse().expect("batch_bytes"));
    let state = dir.join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let config = format!("path = \"out.raw\"\nformat = \"raw\"\nfsync = {fsync}");
    let ctx = OpenContext {
        listener: "copy",
        journal: "bench",
        format: "lines",
        journal_path: input,
        config_toml: &config,
        config_dir: dir,
        state_dir: &state,
        cursor: Position::default(),
        logger: Logger::discard(),
    };
    let mut l = FileListener::open(&ctx).unwrap_or_else(|f| panic!("{f}"));
    let mut f = std::fs::File::open(input).expect("input");
    let (mut buf, mut carry) = (vec![0u8; batch], 0usize);
    let (mut offset, mut line, mut entries, mut in_listen) =
        (0u64, 1u64, Vec::<RawEntry>::new(), 0f64);
    let t = Instant::now();
    loop {
        let n = f.read(&mut buf[carry..]).expect("read");
        let filled = carry + n;
        if filled == 0 {
            break;
        }
        let whole = if n == 0 {
            filled
        } else {
            buf[..filled]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
        };
        entries.clear();
        let mut start = 0;
        while start < whole {
            let end = buf[start..whole]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(whole, |p| start + p + 1);
            let raw = Bytes::new(&buf[start..end]);
            entries.push(RawEntry {
                struct_size: RawEntry::SIZE,
                journal: Bytes::from_static(b"bench"),
                sequence: 1,
                offset,
                len: (end - start) as u64,
                line,
                lines: 1,
                flags: 0,
                raw,
                op: Bytes::EMPTY,
                fields: std::ptr::null(),
                n_fields: 0,
                chunk: Bytes::new(&buf[..whole]),
            });
            offset += (end - start) as u64;
            line += 1;
            start = end;
        }
        let lt = Instant::now();
        // SAFETY: the entries point into `buf`, unchanged until the call returns.
        l.listen(unsafe { Entry::from_raw_slice(&entries) })
            .unwrap_or_else(|f| panic!("{f}"));
        in_listen += lt.elapsed().as_secs_f64();
        buf.copy_within(whole..filled, 0);
        carry = filled - whole;
        if n == 0 {
            break;
        }
    }
    l.flush().unwrap_or_else(|f| panic!("{f}"));
    let secs = t.elapsed().as_secs_f64();
    let mib = offset as f64 / (1 << 20) as f64;
    println!(
        "{mib:.0} MiB, {line} entries, batch {batch} bytes, fsync {fsync}: {secs:.2}s total ({:.0} MiB/s), {in_listen:.2}s in listen ({:.0} MiB/s)",
        mib / secs,
        mib / in_listen
    );
}
