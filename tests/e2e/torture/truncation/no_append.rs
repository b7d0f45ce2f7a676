//! Scenario 14: a writer without `O_APPEND` goes on at its own offset
//! after a copy and truncation; the hole of NULs it leaves is skipped and
//! logged, never delivered.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::{daemon_log, gaps};
use crate::fixture::Fixture;
use crate::rotation::harness::{config, live, wait_output, Daemon, OUT};
use crate::torture::tally::{scale, Tally};
use crate::writer::{Kind, Writer};

// ---------------------------------------------------------------------------
// 14: a writer without O_APPEND after a copy and truncation.

/// A writer without `O_APPEND`: it keeps its own offset and writes each
/// record there (`pwrite`), so after a truncation it goes on at its old
/// offset and the file starts with a hole of NULs. The records and their
/// ledger are those of a [`Writer`] appending to a shadow file beside.
struct OffsetWriter {
    file: fs::File,
    path: PathBuf,
    at: u64,
    shadow: Writer,
}

impl OffsetWriter {
    fn new(f: &Fixture, kind: Kind) -> OffsetWriter {
        let path = f.join(live(kind));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        OffsetWriter {
            file,
            path,
            at: 0,
            shadow: Writer::new(&f.join("shadow/ledger"), kind),
        }
    }

    fn write(&mut self, n: u64) {
        for _ in 0..n {
            let from = self.shadow.ledger().len();
            self.shadow.write_one();
            let rec = &self.shadow.ledger()[from..];
            self.file
                .write_all_at(rec, self.at)
                .unwrap_or_else(|e| panic!("writing {} at {}: {e}", self.path.display(), self.at));
            self.at += rec.len() as u64;
        }
    }

    /// Copies the file to the rotated name the daemon looks in for
    /// `sequence` (p4: `journal.N`; lines: `app.log.1`, older copies
    /// shifted up one number as logrotate does).
    fn copy(&self, sequence: u64) {
        let dir = self.path.parent().unwrap();
        let name = self
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let to = match self.shadow.kind() {
            Kind::P4 => dir.join(format!("{name}.{sequence}")),
            Kind::Lines => {
                for n in (1..sequence).rev() {
                    fs::rename(
                        dir.join(format!("{name}.{n}")),
                        dir.join(format!("{name}.{}", n + 1)),
                    )
                    .unwrap();
                }
                dir.join(format!("{name}.1"))
            }
        };
        fs::copy(&self.path, to).unwrap();
    }

    fn truncate(&self) {
        self.file.set_len(0).unwrap();
    }
}

#[test]
fn s14a_writer_without_o_append_after_copytruncate_lines() {
    no_append_after_copytruncate("14a", Kind::Lines);
}

#[test]
fn s14b_writer_without_o_append_after_copytruncate_p4() {
    no_append_after_copytruncate("14b", Kind::P4);
}

/// Total NUL bytes the daemon logged as skipped, and in how many lines.
fn nuls_logged(f: &Fixture) -> (u64, u64) {
    let log = daemon_log(f);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("skipped NUL bytes"))
        .collect();
    let bytes = lines
        .iter()
        .map(|l| {
            let v = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("bytes="))
                .unwrap_or_else(|| panic!("no bytes= in {l}"));
            v.parse::<u64>()
                .unwrap_or_else(|e| panic!("bytes={v} in {l}: {e}"))
        })
        .sum();
    (bytes, lines.len() as u64)
}

fn no_append_after_copytruncate(id: &str, kind: Kind) {
    let f = Fixture::new();
    let mut w = OffsetWriter::new(&f, kind);
    f.write("cfg.toml", config(kind, "", "fsync = false"));
    let mut d = Daemon::start(&f);
    let rounds = scale(4, 40);
    let (mut holes, mut unseen) = (0, 0);
    for r in 1..=rounds {
        w.write(120 + 13 * r);
        wait_output(
            &f,
            &mut d,
            &w.shadow.expected(),
            &format!("{id}: before copy {r}"),
        );
        // Odd rounds: the daemon is frozen before the copy, so the lines
        // written between the copy and the truncation are seen by nobody.
        // Even rounds: it has delivered them before the truncation, and
        // runs on: it may look at the file when it is empty, before the
        // writer makes the hole, or after.
        let frozen = r % 2 == 1;
        if frozen {
            d.freeze();
            w.copy(r);
            let before = w.shadow.ledger().len();
            w.write(5);
            w.shadow.mark_lost(before..w.shadow.ledger().len());
            unseen += 5;
        } else {
            w.copy(r);
            w.write(5);
            wait_output(
                &f,
                &mut d,
                &w.shadow.expected(),
                &format!("{id}: window {r} read live"),
            );
        }
        w.truncate();
        holes += w.at;
        w.write(40);
        if frozen {
            d.thaw();
        }
    }
    w.write(60);
    wait_output(
        &f,
        &mut d,
        &w.shadow.expected(),
        &format!("{id}: after {rounds} copies and truncations"),
    );
    d.term();
    let (nuls, warnings) = nuls_logged(&f);
    assert_eq!(
        nuls,
        holes,
        "{id}: every NUL of the holes logged as skipped ({warnings} warnings); log:\n{}",
        d.log_tail()
    );
    // The holes reach the listeners as gaps of cause "nul-fill", each at the
    // start of the file's new content; nothing else is a gap.
    let g = gaps(&f);
    assert!(
        g.iter().all(|g| g.cause == "nul-fill" && g.from == 0),
        "{id}: the windows were never seen, yet other gaps were reported: {g:?}"
    );
    assert_eq!(
        g.iter().map(|g| g.to - g.from).sum::<u64>(),
        holes,
        "{id}: the holes reported as gaps: {g:?}"
    );
    let t = Tally::count(&w.shadow, &fs::read(f.join(OUT)).unwrap(), unseen);
    t.assert_exact(id);
    t.report(
        id,
        &format!("writer without O_APPEND after copytruncate ({kind:?})"),
        &format!(
            "{rounds} truncations, {nuls} NUL bytes of holes skipped, logged ({warnings} warnings) and reported as {} nul-fill gaps, none delivered; \
             {unseen} records written between copy and truncation while the daemon was frozen: in no file, seen by no reader",
            g.len()
        ),
    );
}
