//! SIGHUP saves the checkpoint and keeps the daemon running (and reloads
//! the config: see `reload`), instead of killing it without a save.

use crate::host::{
    acked, append, assert_no_repeats, config, entry_text, file_listener, fixture, kit_listener,
    recs, wait_until, Daemon,
};

#[test]
fn sighup_saves_the_checkpoint_and_the_daemon_goes_on() {
    let first = recs(0, 50);
    let f = fixture(
        &first,
        &config(
            "",
            &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
        ),
    );
    let kit = f.join("out/kit.jsonl");
    let mut d = Daemon::start(&f);
    wait_until(
        15,
        "the first entries",
        || entry_text(&kit) == first,
        || d.log(),
    );
    d.signal("HUP");
    wait_until(
        15,
        "the SIGHUP save",
        || d.log().contains("SIGHUP: checkpoint saved"),
        || d.log(),
    );
    assert!(!d.exited(), "SIGHUP stopped the daemon:\n{}", d.log());
    // The save is on disk while the daemon still runs.
    assert_eq!(acked(&f, "kit"), Some((1, first.len() as u64)));
    let more = recs(50, 60);
    append(&f.join("p4root/journal"), &more);
    let all = format!("{first}{more}");
    wait_until(
        15,
        "entries after SIGHUP",
        || entry_text(&kit) == all,
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "exit {st}: {log}");
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success());
    assert_eq!(entry_text(&kit), all, "entries delivered twice");
    assert_no_repeats(&kit);
    assert_eq!(
        std::fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        all
    );
}
