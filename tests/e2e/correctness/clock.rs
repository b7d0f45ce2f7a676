//! A clock set back since the checkpoint was saved takes away the proof
//! that tells a new live file (same banner, the old file's inode handed
//! out again) from the old file, rotated and compressed: the daemon stops
//! naming both files and the command for each, instead of resuming in the
//! new file and skipping the old one's rest silently; the printed command
//! for the old file, run as printed, delivers everything once.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::fixture::{stderr, Fixture};
use crate::host::{append, file_listener};

const BANNER: &str = "BANNER\n";

fn lines(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("line {i}\n")).collect()
}

#[test]
fn a_clock_set_back_cannot_make_a_reused_inode_resume_in_the_new_file() {
    let f = Fixture::new();
    f.write(
        "cfg.toml",
        format!(
            "state_dir = \"state\"\n\n[[journal]]\nname = \"app\"\npath = \"logs/app.log\"\nformat = \"lines\"\n{}",
            file_listener("copy")
        ),
    );
    let live = f.join("logs/app.log");
    f.write("logs/app.log", BANNER);
    let run = || f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(run().status.success());
    let old_inode = fs::metadata(&live).unwrap().ino();
    append(&live, &lines(0, 100));
    fs::rename(&live, f.join("logs/app.log.1")).unwrap();
    assert!(Command::new("gzip")
        .arg(f.join("logs/app.log.1"))
        .status()
        .unwrap()
        .success());
    f.write("logs/app.log", BANNER);
    // The new file gets the old inode: where the file system did not hand
    // it out again, the checkpoint is made to name the new file's inode,
    // which is what the daemon then sees.
    let ckpt = f.join("state/checkpoint.toml");
    let new_inode = fs::metadata(&live).unwrap().ino();
    let text = fs::read_to_string(&ckpt).unwrap();
    assert!(text.contains(&format!("inode = {old_inode}\n")), "{text}");
    fs::write(
        &ckpt,
        text.replace(
            &format!("inode = {old_inode}\n"),
            &format!("inode = {new_inode}\n"),
        ),
    )
    .unwrap();
    // The clock was set back an hour since the save.
    fs::OpenOptions::new()
        .append(true)
        .open(&ckpt)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(3600))
        .unwrap();
    let out = run();
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "resumed although the file cannot be told:\n{err}"
    );
    let gz = f.join("logs/app.log.1.gz");
    for w in [
        "the clock was set back".to_string(),
        live.display().to_string(),
        gz.display().to_string(),
        format!(
            "--sequence 1 --offset {} --file {}",
            BANNER.len(),
            gz.display()
        ),
    ] {
        assert!(err.contains(&w), "the stop does not say {w:?}:\n{err}");
    }
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), BANNER);
    // The way out for the old file, as printed.
    let cmd = err
        .lines()
        .find(|l| l.contains(&format!("if it is {}:", gz.display())))
        .and_then(|l| l.split_once("logdaemon checkpoint set "))
        .map(|(_, rest)| rest.trim().to_string())
        .unwrap_or_else(|| panic!("no command for {}:\n{err}", gz.display()));
    let args: Vec<&str> = ["checkpoint", "set"]
        .into_iter()
        .chain(cmd.split_whitespace())
        .collect();
    let out = f.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        format!("{BANNER}{}{BANNER}", lines(0, 100))
    );
}
