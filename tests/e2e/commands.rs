//! The operator's commands through the real binary: `check` and `run`
//! refusing plugin files of another ABI, without the entry symbol, missing,
//! or that others could replace (the file, its directory or one above); `checkpoint show`; `checkpoint set` (accepted on a
//! record boundary, refused in the middle of a record, for a file not at hand
//! without `--force`, and while the daemon runs); `init` from the
//! environment and from flags; a corrupt checkpoint left as it was; and the
//! README's bundled example.

mod checkpoint;
mod init;
mod plugins;
mod run;

use crate::fixture::{stderr, Fixture};
use crate::host::recs;

fn run_once(f: &Fixture) {
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(
        out.status.success(),
        "logdaemon run --once failed:\n{}",
        stderr(&out)
    );
}

/// Byte offset of record `i` of `recs(0, n)`.
fn boundary(i: usize) -> u64 {
    recs(0, i).len() as u64
}
