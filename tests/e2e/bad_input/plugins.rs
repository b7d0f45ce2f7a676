//! Bad plugins: a built-in library missing, a plugin file owned by another
//! user, and a disabled listener's library, which is never unloaded.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::{delivered, read, refused, run_once};
use crate::fixture::{bin, stderr};
use crate::host::{
    acked, append, config, file_listener, fixture, kit_listener, rec, recs, test_plugin,
    wait_until, Daemon,
};

// ---------------------------------------------------------------- plugins

#[test]
fn a_missing_builtin_plugin_names_the_library_and_the_fix() {
    let (f, journal) = delivered();
    let before = read(&f.join("state/checkpoint.toml"));
    append(&f.join("p4root/journal"), &recs(10, 12));
    let empty = f.join("no-plugins");
    fs::create_dir(&empty).unwrap();
    let out = Command::new(bin())
        .args(["run", "--once", "--config", "cfg.toml"])
        .current_dir(f.path())
        .env("LOGDAEMON_PLUGIN_DIR", &empty)
        .output()
        .unwrap();
    let lib = empty.join("liblogdaemon_listener_file.so");
    refused(
        &out,
        &[
            &format!(
                "plugin \"file\": built-in listener library {} not found",
                lib.display()
            ),
            "build the workspace",
            "or set plugin_dir in the config",
        ],
    );
    assert_eq!(read(&f.join("state/checkpoint.toml")), before);
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), journal);
}

#[test]
fn a_plugin_owned_by_another_user_is_refused() {
    let f = fixture(&recs(0, 3), "");
    let dir = f.join("plugins");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let so = dir.join("libkit.so");
    fs::copy(test_plugin("testkit"), &so).unwrap();
    fs::set_permissions(&so, fs::Permissions::from_mode(0o755)).unwrap();
    f.write("cfg.toml", config("", "\n[[journal.listener]]\nname = \"kit\"\nplugin = \"plugins/libkit.so\"\n[journal.listener.config]\npath = \"out/kit.jsonl\"\n"));
    // Owned by a user that is neither root nor the daemon's.
    std::os::unix::fs::chown(&so, Some(54321), Some(54321)).expect("chown needs root");
    let me = euid();
    let canon = fs::canonicalize(&so).unwrap();
    for args in [
        &["check", "--config", "cfg.toml"][..],
        &["run", "--once", "--config", "cfg.toml"][..],
    ] {
        let out = f.run(args);
        refused(
            &out,
            &[&format!("plugin {}: file {} is owned by uid 54321, neither root nor this daemon's user (uid {me})", canon.display(), canon.display()), &format!("fix: chown it to root or to uid {me}")],
        );
    }
    assert!(
        !f.join("out/kit.jsonl").exists(),
        "the refused plugin was run"
    );
    assert!(
        !f.join("state/checkpoint.toml").exists(),
        "a checkpoint was written without a listener"
    );
    // The same file, given back to root, loads.
    std::os::unix::fs::chown(&so, Some(0), Some(0)).unwrap();
    let out = run_once(&f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(acked(&f, "kit"), Some((1, recs(0, 3).len() as u64)));
}

#[test]
fn a_disabled_listener_s_library_stays_loaded() {
    // A listener that fails for good is disabled, its library is never
    // unloaded (its threads or TLS destructors may still run): it stays
    // mapped in the running daemon while the other listener goes on.
    let good = recs(0, 5);
    let cfg = config(
        "",
        &format!(
            "{}{}",
            kit_listener("kit", "on_failure = \"disable\"", "fatal_on = \"BOOM\""),
            file_listener("copy")
        ),
    );
    let f = fixture(&good, &cfg);
    let d = Daemon::start(&f);
    let lib = fs::canonicalize(test_plugin("testkit")).unwrap();
    let maps = |pid: u32| fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    assert!(
        maps(d.pid()).contains(&lib.display().to_string()),
        "the plugin is not mapped after loading"
    );
    // The good records acknowledged (and saved) first: the failing batch
    // then holds only what comes after them.
    wait_until(
        15,
        "the good records to be acknowledged",
        || acked(&f, "kit") == Some((1, good.len() as u64)),
        || d.log(),
    );
    append(
        &f.join("p4root/journal"),
        &format!("{}{}", rec(5, "BOOM"), recs(6, 8)),
    );
    wait_until(
        15,
        "the listener to be disabled",
        || d.log().contains("listener disabled"),
        || d.log(),
    );
    let all = format!("{good}{}{}", rec(5, "BOOM"), recs(6, 8));
    wait_until(
        15,
        "the other listener to go on",
        || fs::read_to_string(f.join("out/copy.raw")).unwrap_or_default() == all,
        || d.log(),
    );
    assert!(
        maps(d.pid()).contains(&lib.display().to_string()),
        "the disabled listener's library was unloaded:\n{}",
        d.log()
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert_eq!(
        acked(&f, "kit"),
        Some((1, good.len() as u64)),
        "the disabled listener's cursor moved\n{log}"
    );
}

fn euid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
