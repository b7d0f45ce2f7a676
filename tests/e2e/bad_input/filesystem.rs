//! The file systems under the state directory and the outputs: a state
//! directory open to others, an output on a read-only file system, and a
//! full disk under the outputs or the state directory (a real tmpfs).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{delivered, read, refused, run_once};
use crate::fixture::stderr;
use crate::host::{acked, append, config, file_listener, fixture, recs, wait_until, Daemon};

// ---------------------------------------------------------------- helpers

/// A tmpfs mounted at a path for the length of a test.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "1m") with `opts` (e.g. "ro") at `path`.
    fn mount(path: &Path, size: &str, opts: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap();
        let o = if opts.is_empty() {
            format!("size={size}")
        } else {
            format!("size={size},{opts}")
        };
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &o, "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(out) if out.status.success() => Tmpfs { path: path.to_path_buf() },
            Ok(out) => panic!(
                "cannot mount a tmpfs at {} ({}): {}; this test needs root (or CAP_SYS_ADMIN) to simulate a full or read-only disk",
                path.display(),
                out.status,
                stderr(&out)
            ),
            Err(e) => panic!("cannot run mount for {}: {e}; this test needs the mount command and root", path.display()),
        }
    }

    /// Changes the mount's size (`mount -o remount,size=...`).
    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "cannot resize the tmpfs at {}",
            self.path.display()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes zeros into `path` until the file system is full.
fn fill(path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

// ---------------------------------------------------------------- permissions

#[test]
fn a_state_dir_writable_by_others_is_refused_and_left_alone() {
    let (f, journal) = delivered();
    let state = f.join("state");
    let cp = read(&state.join("checkpoint.toml"));
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    append(&f.join("p4root/journal"), &recs(10, 12));
    let sd = fs::canonicalize(&state).unwrap();
    refused(
        &run_once(&f),
        &[&format!(
            "state directory {}: writable by group or others (mode 0777); run `chmod 700 {}`",
            sd.display(),
            sd.display()
        )],
    );
    assert_eq!(
        fs::metadata(&state).unwrap().permissions().mode() & 0o7777,
        0o777,
        "the mode was changed behind the operator's back"
    );
    assert_eq!(read(&state.join("checkpoint.toml")), cp);
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), journal);
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(run_once(&f).status.success());
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 12)
    );
}

#[test]
fn a_fresh_state_dir_is_created_private() {
    let (f, _) = delivered();
    let mode = fs::metadata(f.join("state")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "state directory created with mode {mode:04o}");
    let mode = fs::metadata(f.join("state/checkpoint.toml"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode & 0o077, 0, "checkpoint readable by others: {mode:04o}");
}

#[test]
fn an_output_on_a_read_only_filesystem_stops_run_naming_it() {
    let journal = recs(0, 10);
    let f = fixture(&journal, &config("", &file_listener("copy")));
    let _ro = Tmpfs::mount(&f.join("out"), "1m", "ro");
    let out_path = f.join("out/copy.raw");
    refused(
        &run_once(&f),
        &[&format!("listener \"copy\" of journal \"p4\" could not start: listener \"copy\": cannot create output {}: Read-only file system", out_path.display())],
    );
    assert_eq!(
        acked(&f, "copy"),
        None,
        "a position was acknowledged for a listener that never started"
    );
    drop(_ro);
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&out_path).unwrap(), journal);
}

// ---------------------------------------------------------------- disk full

#[test]
fn a_full_output_disk_is_retried_and_the_output_completes_once_there_is_room() {
    // More than the 1 MiB the output may take.
    let journal = recs(0, 30_000);
    assert!(journal.len() > 1 << 20);
    let f = fixture(&journal, &config("", &file_listener("copy")));
    let disk = Tmpfs::mount(&f.join("out"), "1m", "");
    let out_path = f.join("out/copy.raw");
    let d = Daemon::start(&f);
    // Batches grow from small ones: the write that fails may be a later one.
    let expect = format!(" bytes to {} at byte ", out_path.display());
    wait_until(
        30,
        "the disk-full retry",
        || {
            let log = d.log();
            log.contains("listener asks to retry: cannot write ")
                && log.contains(&expect)
                && log.contains(": No space left on device (os error 28); retrying")
        },
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    let got = acked(&f, "copy").map_or(0, |(_, o)| o);
    assert!(
        got < journal.len() as u64,
        "acknowledged {got} bytes although the output cannot hold them:\n{log}"
    );
    // Room again: the next run writes everything, nothing twice.
    disk.resize("8m");
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        read(&out_path) == journal.as_bytes(),
        "the output differs from the journal after the disk-full retry"
    );
    assert_eq!(acked(&f, "copy"), Some((1, journal.len() as u64)));
}

#[test]
fn a_full_state_disk_at_start_stops_before_anything_is_delivered() {
    let journal = recs(0, 10);
    let f = fixture(&journal, &config("", &file_listener("copy")));
    let state = f.join("state");
    let disk = Tmpfs::mount(&state, "1m", "mode=0700");
    fill(&state.join("filler"));
    refused(
        &run_once(&f),
        &[
            &format!(
                "checkpoint {}: cannot write the lock file: No space left on device",
                state.join("logdaemon.lock").display()
            ),
            "check that the path exists",
        ],
    );
    assert!(
        !f.join("out/copy.raw").exists(),
        "entries were delivered without a lock"
    );
    fs::remove_file(state.join("filler")).unwrap();
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), journal);
    drop(disk);
}

#[test]
fn a_full_state_disk_when_saving_keeps_the_previous_checkpoint() {
    let journal = recs(0, 10);
    let f = fixture(&journal, &config("", &file_listener("copy")));
    let state = f.join("state");
    let disk = Tmpfs::mount(&state, "1m", "mode=0700");
    assert!(run_once(&f).status.success());
    let cp = state.join("checkpoint.toml");
    let before = read(&cp);
    fill(&state.join("filler"));
    append(&f.join("p4root/journal"), &recs(10, 30));
    let err = refused(
        &run_once(&f),
        &[
            "cannot write the temporary checkpoint: No space left on device",
            &state.join("checkpoint.toml.tmp").display().to_string(),
        ],
    );
    assert_eq!(
        read(&cp),
        before,
        "the checkpoint changed on a full disk:\n{err}"
    );
    // The listener got the entries; its own record keeps them from being written twice.
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 30)
    );
    fs::remove_file(state.join("filler")).unwrap();
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        recs(0, 30),
        "written twice after the disk had room again"
    );
    assert_eq!(acked(&f, "copy"), Some((1, recs(0, 30).len() as u64)));
    drop(disk);
}
