//! Scenario 7: inode reuse. The live file replaced, while the daemon is
//! stopped, by a new one that gets the old inode back: shorter or longer
//! than the old offset, or starting with the same banner as the old file,
//! whose unread records are in its compressed copy or in no file any more.

use std::fs::{self, OpenOptions};

use super::{clock_past_checkpoint, inode, output, setup, Banner, KIND};
use crate::fixture::{stderr, Fixture};
use crate::rotation::harness::{listing, live, logrotate, wait_output, Daemon, OUT};
use crate::torture::tally::{records_in, Tally};
use crate::writer::Writer;

/// Creates the live file again right after the old one's inode was freed,
/// until it gets that inode back (ext4 hands it out again at once unless
/// another file created meanwhile took it). If it never does, sets the
/// checkpoint's inode to the new file's instead: what the daemon then sees
/// is the same. Returns whether the inode was really reused.
fn reuse_inode(f: &Fixture, w: &mut Writer, old: u64) -> bool {
    for _ in 0..20 {
        w.reopen();
        if inode(w.path()) == old {
            return true;
        }
        fs::remove_file(w.path()).unwrap();
    }
    w.reopen();
    let new = inode(w.path());
    let ckpt = f.join("state/checkpoint.toml");
    let text = fs::read_to_string(&ckpt).unwrap();
    let saved = fs::metadata(&ckpt).unwrap().modified().unwrap();
    let from = format!("inode = {old}\n");
    assert!(
        text.contains(&from),
        "the checkpoint records inode {old}:\n{text}"
    );
    fs::write(&ckpt, text.replace(&from, &format!("inode = {new}\n"))).unwrap();
    // Saved when it was: the daemon tells a file created since by that time.
    OpenOptions::new()
        .append(true)
        .open(&ckpt)
        .unwrap()
        .set_modified(saved)
        .unwrap();
    eprintln!(
        "inode {old} was not handed out again; the checkpoint now names the new file's inode {new}"
    );
    false
}

/// The gaps the `file` listener recorded: (from sequence, from offset, to
/// sequence, to offset, cause).
fn gaps(f: &Fixture) -> Vec<(u64, u64, u64, u64, String)> {
    let text = fs::read_to_string(f.join(format!("{OUT}.gaps"))).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let g = &v["gap"];
            let n = |p: &str, k: &str| {
                g[p][k]
                    .as_u64()
                    .unwrap_or_else(|| panic!("gap without {p}.{k}: {l}"))
            };
            (
                n("from", "sequence"),
                n("from", "offset"),
                n("to", "sequence"),
                n("to", "offset"),
                g["cause"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn reuse_note(real: bool) -> &'static str {
    if real {
        "inode really reused"
    } else {
        "inode set in the checkpoint"
    }
}

// ------------------------------------------------------------ 7: inode reuse

/// The live file (with the banner first, if any) read to `delivered`
/// records by the daemon, which is then stopped.
fn read_then_stop(
    journal_extra: &str,
    banner: Option<&mut Banner>,
    delivered: u64,
) -> (Fixture, Writer) {
    let f = setup(journal_extra);
    let path = f.join(live(KIND));
    let mut w = Writer::new(&path, KIND);
    let expected = match banner {
        Some(b) => {
            b.put(&w);
            w.write(delivered);
            b.expected(&w)
        }
        None => {
            w.write(delivered);
            w.expected()
        }
    };
    let mut d = Daemon::start(&f);
    wait_output(&f, &mut d, &expected, "before the stop");
    d.term();
    (f, w)
}

/// 7a, 7b: the old file deleted with unread records, a new one with the
/// old inode, shorter (`new_records` few) or longer than the old offset.
fn deleted_and_reused(id: &str, new_records: u64, on_gap: &str) {
    let (f, mut w) = read_then_stop(&format!("on_gap = \"{on_gap}\""), None, 40);
    let offset = w.ledger().len();
    let lost = w.write_lost(10);
    let old = inode(w.path());
    fs::remove_file(w.path()).unwrap();
    let real = reuse_inode(&f, &mut w, old);
    w.write(new_records);
    let new_len = fs::metadata(w.path()).unwrap().len() as usize;
    assert_eq!(
        new_records > 20,
        new_len > offset,
        "the new file is {new_len} bytes, the old offset {offset}"
    );
    if on_gap == "stop" {
        // The daemon stops naming the lost records and the way out.
        let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "the daemon went on over lost records:\n{err}"
        );
        let msg = format!("journal \"app\": the entries from sequence 1 offset {offset} (line 41) are in no file any more (the file holding them was deleted or rotated away)");
        assert!(
            err.contains(&msg),
            "the stop message does not say {msg:?}:\n{err}"
        );
        assert_eq!(
            output(&f),
            w.ledger()[..offset],
            "nothing may be delivered past the loss"
        );
        // The second way out the message prints, as an operator would run it.
        let cmd = err
            .lines()
            .find_map(|l| l.split_once("logdaemon checkpoint set "))
            .map(|(_, a)| a.to_string())
            .expect("a checkpoint set command");
        let mut args = vec!["checkpoint", "set"];
        args.extend(cmd.split_whitespace());
        assert!(cmd.contains("--sequence 2 --offset 0"), "{cmd}");
        let set = f.run(&args);
        assert!(set.status.success(), "{args:?}: {}", stderr(&set));
    }
    let mut d = Daemon::start(&f);
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "after the restart over a new file with the old inode",
    );
    d.term();
    if on_gap == "report" {
        assert_eq!(
            gaps(&f),
            [(1, offset as u64, 2, 0, "deleted".to_string())],
            "one gap, from the checkpoint to the new file"
        );
    }
    let t = Tally::count(&w, &output(&f), records_in(&w, lost));
    t.assert_exact(id);
    let how = if on_gap == "stop" {
        "stop naming them, then checkpoint set"
    } else {
        "a gap"
    };
    let size = if new_records > 20 {
        "longer"
    } else {
        "shorter"
    };
    t.report(
        id,
        &format!("inode reuse: old file deleted, new one {size} than the old offset"),
        &format!(
            "{} unread records reported by {how}; {}",
            t.reported_lost,
            reuse_note(real)
        ),
    );
}

#[test]
fn s07a_inode_reuse_shorter_new_file() {
    deleted_and_reused("7a", 5, "report");
}

#[test]
fn s07b_inode_reuse_longer_new_file() {
    deleted_and_reused("7b", 80, "stop");
}

/// 7c, 7d, 7e: every file starts with the same banner; the old file, with
/// records unread, is rotated and compressed by logrotate (`nocreate`) or
/// deleted (`kept` false), and the new live file gets its inode back.
/// `delivered` records after the banner were read before the stop: with
/// none, the checkpoint's proofs (head and tail) cover only the banner,
/// which the new file starts with too.
fn banner_reused(id: &str, delivered: u64, kept: bool) {
    let mut b = Banner::new(3);
    let (f, mut w) = read_then_stop("on_gap = \"report\"", Some(&mut b), delivered);
    let offset = w.ledger().len() + b.text.len();
    clock_past_checkpoint(&f);
    let lost = if kept {
        w.write(10);
        logrotate(&f, "    nocreate\n    compress");
        assert!(
            f.join("logs/app.log.1.gz").exists() && !w.path().exists(),
            "{:?}",
            listing(&f, KIND)
        );
        0..0
    } else {
        let lost = w.write_lost(10);
        fs::remove_file(w.path()).unwrap();
        lost
    };
    let old = checkpoint_inode(&f);
    let real = reuse_inode(&f, &mut w, old);
    b.put(&w);
    w.write(20);
    let mut d = Daemon::start(&f);
    wait_output(
        &f,
        &mut d,
        &b.expected(&w),
        "after the restart over a new file with the old inode and the same banner",
    );
    d.term();
    let want = if kept {
        vec![]
    } else {
        vec![(1, offset as u64, 2, 0, "deleted".to_string())]
    };
    assert_eq!(gaps(&f), want, "the gaps reported");
    let t = Tally::count(&w, &b.strip(&w, &output(&f)), records_in(&w, lost));
    t.assert_exact(id);
    let proof = if delivered == 0 {
        "checkpoint at the end of the banner"
    } else {
        "checkpoint after records"
    };
    let (old_file, how) = if kept {
        ("compressed", "rest of the old file read from app.log.1.gz")
    } else {
        (
            "deleted",
            "the old file's unread records reported as one gap",
        )
    };
    t.report(
        id,
        &format!("inode reuse: same banner, old file {old_file}, {proof}"),
        &format!(
            "{how}, then the new file with its banner; {}",
            reuse_note(real)
        ),
    );
}

/// The inode the checkpoint's listener position records.
fn checkpoint_inode(f: &Fixture) -> u64 {
    let text = fs::read_to_string(f.join("state/checkpoint.toml")).unwrap();
    let at = text
        .find("[journal.app.listener.copy.identity]")
        .expect("a listener identity in the checkpoint");
    let line = text[at..]
        .lines()
        .find(|l| l.starts_with("inode = "))
        .expect("an inode in the listener identity");
    line["inode = ".len()..].trim().parse().unwrap()
}

#[test]
fn s07c_inode_reuse_same_banner_checkpoint_after_records() {
    banner_reused("7c", 30, true);
}

#[test]
fn s07d_inode_reuse_same_banner_checkpoint_at_the_banner() {
    banner_reused("7d", 0, true);
}

#[test]
fn s07e_inode_reuse_same_banner_old_file_deleted() {
    banner_reused("7e", 0, false);
}
