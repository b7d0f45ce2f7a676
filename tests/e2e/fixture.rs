//! A temp-dir fixture and helpers to run the daemon binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Directory holding the `logdaemon` binary and the built-in plugin libraries.
///
/// The binary and the plugins are other packages of the workspace, which
/// cargo does not build for this test (`CARGO_BIN_EXE_…` only names the
/// test's own package's binaries). So that a plain `cargo test` can never
/// run a stale build, the first call builds them: `cargo build --workspace`
/// into the target directory and profile this test binary was built with
/// (a no-op when they are up to date, which cargo decides as for any
/// build). `LOGDAEMON_TARGET_DIR` points at prebuilt binaries instead, and
/// is then taken as it is.
pub fn target_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(d) = std::env::var_os("LOGDAEMON_TARGET_DIR") {
                return PathBuf::from(d);
            }
            // The test binary lives in <target>/<profile>/deps/.
            let exe = std::env::current_exe().expect("current_exe");
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target dir")
                .to_path_buf();
            build_workspace(&dir);
            dir
        })
        .clone()
}

/// The `tests` package's directory: as cargo says when it runs this test,
/// else as it was when the test was built. A test binary that was not
/// rebuilt in another checkout (a target directory copied from it) would
/// otherwise build and test the checkout it was first built in.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// `cargo build --workspace` into `profile_dir` (`<target>/<profile>`).
fn build_workspace(profile_dir: &Path) {
    let target = profile_dir.parent().expect("target dir");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(p) => p,
        None => panic!("{}: not a profile directory", profile_dir.display()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = manifest_dir().join("../Cargo.toml");
    let st = Command::new(&cargo)
        .args(["build", "--quiet", "--workspace", "--profile", profile])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target)
        .status()
        .expect("run cargo to build the daemon and the plugins");
    assert!(
        st.success(),
        "building the daemon and the plugins (cargo build --workspace --profile {profile}) failed: {st}"
    );
}

/// Path of the `logdaemon` binary under test.
pub fn bin() -> PathBuf {
    let p = target_dir().join("logdaemon");
    assert!(
        p.exists(),
        "{} is missing after `cargo build --workspace`",
        p.display()
    );
    p
}

/// The repository's `tests/data` folder.
pub fn data_dir() -> PathBuf {
    manifest_dir().join("data")
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

    /// Runs `logdaemon checkpoint set --config cfg.toml --journal JOURNAL
    /// --sequence SEQUENCE --offset OFFSET`, then `extra`.
    pub fn checkpoint_set(
        &self,
        journal: &str,
        sequence: u64,
        offset: u64,
        extra: &[&str],
    ) -> Output {
        let (sequence, offset) = (sequence.to_string(), offset.to_string());
        let mut args = vec![
            "checkpoint",
            "set",
            "--config",
            "cfg.toml",
            "--journal",
            journal,
            "--sequence",
            &sequence,
            "--offset",
            &offset,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Runs the `logdaemon checkpoint set …` command a stop message in
    /// `log` prints as the way out, and asserts that it succeeds (`what`
    /// names the scenario in the failure).
    pub fn run_printed_checkpoint_set(&self, log: &str, what: &str) {
        let cmd = log
            .lines()
            .find_map(|l| l.split("logdaemon checkpoint set").nth(1))
            .expect("the stop message gives a checkpoint set command");
        let args: Vec<&str> = ["checkpoint", "set"]
            .into_iter()
            .chain(cmd.split_whitespace())
            .collect();
        let o = self.run(&args);
        assert!(o.status.success(), "{what}: {args:?}: {}", stderr(&o));
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

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> std::time::SystemTime {
    let mut t = std::time::SystemTime::UNIX_EPOCH;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        let m = if md.is_dir() {
            newest(&e.path())
        } else {
            md.modified().unwrap()
        };
        t = t.max(m);
    }
    t
}

#[test]
fn the_binaries_under_test_are_newer_than_their_sources() {
    let root = manifest_dir().join("..");
    let checks = [
        (bin(), root.join("daemon/src")),
        (bin(), root.join("listeners/sdk/src")),
        (
            target_dir().join("liblogdaemon_listener_file.so"),
            root.join("listeners/file/src"),
        ),
        (
            target_dir().join("liblogdaemon_test_plugin_testkit.so"),
            root.join("tests/plugins/testkit/src"),
        ),
    ];
    for (built, src) in checks {
        let b = std::fs::metadata(&built).unwrap().modified().unwrap();
        assert!(
            b >= newest(&src),
            "{} is older than a file under {}: a stale build",
            built.display(),
            src.display()
        );
    }
}
