//! Files another user creates in the glob's directory: read, and nothing
//! else overwritten.

use std::fs::{self};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{config, outputs, set, wait_copy, Log};
use crate::fixture::Fixture;
use crate::rotation::harness::Daemon;

#[test]
fn files_another_user_creates_in_the_globs_directory_read_and_overwrite_nothing_else() {
    use crate::safety::{as_nobody, chmod};
    let f = Fixture::new();
    let mut a = Log::new(&f.join("logs/a.log"));
    a.write(5);
    // The application's log directory belongs to its (unprivileged) user.
    let st = Command::new("chown")
        .args(["nobody", f.join("logs").to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    chmod(f.path(), 0o755);
    let secret = f.write("secret", "TOP SECRET\n");
    chmod(&secret, 0o600);
    let victim = f.write("out/victim.log.raw", "precious\n");
    f.write("cfg.toml", config(""));
    let mut d = Daemon::start(&f);
    wait_copy(&f, &mut d, &a);
    as_nobody(
        &f.join("logs"),
        "ln -s ../secret evil.log && echo 'new line' > victim.log",
    );
    a.write(5);
    wait_copy(&f, &mut d, &a);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(f.join("daemon.log"))
        .unwrap_or_default()
        .contains("stream=app/victim.log")
    {
        d.assert_running();
        assert!(
            Instant::now() < deadline,
            "victim.log not seen:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    a.write(5);
    wait_copy(&f, &mut d, &a);
    d.term();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        outputs(&f),
        set(&["a.log.raw", "victim.log.raw"]),
        "no stream through the link"
    );
    for name in outputs(&f) {
        let text = fs::read_to_string(f.join("out").join(name)).unwrap();
        assert!(!text.contains("TOP SECRET"));
    }
}
