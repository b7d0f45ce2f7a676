//! A temp-dir fixture and helpers to run the daemon binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Directory holding the `logdaemon` binary and the built-in plugin libraries.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LOGDAEMON_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // The test binary lives in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// Path of the `logdaemon` binary under test.
pub fn bin() -> PathBuf {
    let p = target_dir().join("logdaemon");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before the end-to-end tests",
        p.display()
    );
    p
}

/// The repository's `tests/data` folder.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// A scratch directory removed at the end of the test (kept when
/// `LOGDAEMON_KEEP_TMP` is set, for debugging).
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("logdaemon-e2e-")
            .tempdir()
            .expect("tempdir");
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn write(&self, rel: impl AsRef<Path>, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p
    }

    /// Runs `logdaemon ARGS` in the fixture directory.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("run logdaemon")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if std::env::var_os("LOGDAEMON_KEEP_TMP").is_some() {
            let p = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
            eprintln!("kept {}", p.display());
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
