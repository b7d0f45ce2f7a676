//! SIGHUP reloads the config: added listeners start, removed ones stop
//! after the batch in hand with their cursors kept, changed ones (their
//! own table or their journal's) are reopened, and a config that does not
//! validate is refused with the running one kept. Ten reloads while the
//! journal grows: every output ends exact, nothing lost or twice.

use crate::host::{
    append, assert_no_repeats, config, entry_text, file_listener, fixture, kit_listener, recs,
    wait_until, Daemon,
};

/// The config with the listeners `names` (`copy`, `extra`: file; `kit`:
/// testkit), `journal_extra` in the journal's table and `copy_extra` in
/// `copy`'s config table.
fn cfg(names: &[&str], journal_extra: &str, copy_extra: &str) -> String {
    let mut ls = String::new();
    for n in names {
        match *n {
            "kit" => ls.push_str(&kit_listener("kit", "", "")),
            "copy" => {
                ls.push_str(&file_listener("copy"));
                ls.push_str(copy_extra);
                ls.push('\n');
            }
            other => ls.push_str(&file_listener(other)),
        }
    }
    config(journal_extra, &ls)
}

fn raw(f: &crate::fixture::Fixture, name: &str) -> String {
    std::fs::read_to_string(f.join(format!("out/{name}.raw"))).unwrap_or_default()
}

#[test]
fn ten_reloads_under_load_add_remove_change_and_refuse_and_every_output_is_exact() {
    let mut all = recs(0, 40);
    let f = fixture(&all, &cfg(&["copy", "kit"], "", ""));
    let mut d = Daemon::start(&f);
    let steps: [(&str, String); 10] = [
        ("add extra", cfg(&["copy", "kit", "extra"], "", "")),
        (
            "change copy",
            cfg(&["copy", "kit", "extra"], "", "fsync = false"),
        ),
        ("remove kit", cfg(&["copy", "extra"], "", "fsync = false")),
        ("invalid TOML", "[[journal]\nname = ".to_string()),
        (
            "add kit again",
            cfg(&["copy", "extra", "kit"], "", "fsync = false"),
        ),
        (
            "change the journal",
            cfg(
                &["copy", "extra", "kit"],
                "reconcile_every = \"2s\"",
                "fsync = false",
            ),
        ),
        (
            "remove extra",
            cfg(
                &["copy", "kit"],
                "reconcile_every = \"2s\"",
                "fsync = false",
            ),
        ),
        (
            "unknown key",
            cfg(
                &["copy", "kit"],
                "reconcile_every = \"2s\"\nno_such_key = 1",
                "fsync = false",
            ),
        ),
        (
            "add extra again",
            cfg(
                &["copy", "kit", "extra"],
                "reconcile_every = \"2s\"",
                "fsync = false",
            ),
        ),
        (
            "nothing changed",
            cfg(
                &["copy", "kit", "extra"],
                "reconcile_every = \"2s\"",
                "fsync = false",
            ),
        ),
    ];
    let mut next = 40;
    for (i, (what, text)) in steps.iter().enumerate() {
        f.write("cfg.toml", text);
        d.signal("HUP");
        // Entries keep coming while the reload is applied.
        for _ in 0..4 {
            let more = recs(next, next + 10);
            append(&f.join("p4root/journal"), &more);
            all.push_str(&more);
            next += 10;
        }
        let reloads = i + 1;
        wait_until(
            30,
            &format!("reload {reloads} ({what}) is handled"),
            || {
                let log = d.log();
                log.matches("SIGHUP: config reloaded").count()
                    + log.matches("SIGHUP: the config is not reloaded").count()
                    >= reloads
            },
            || d.log(),
        );
        assert!(
            !d.exited(),
            "reload {reloads} ({what}) stopped the daemon:\n{}",
            d.log()
        );
        wait_until(
            30,
            &format!("copy after reload {reloads} ({what})"),
            || raw(&f, "copy") == all,
            || d.log(),
        );
    }
    let log = d.log();
    assert_eq!(
        log.matches("SIGHUP: the config is not reloaded, the running one is kept")
            .count(),
        2,
        "the two invalid configs are refused:\n{log}"
    );
    assert!(
        log.contains("cfg.toml"),
        "the refusal names the file:\n{log}"
    );
    wait_until(
        30,
        "extra and kit catch up",
        || raw(&f, "extra") == all && entry_text(&f.join("out/kit.jsonl")) == all,
        || d.log(),
    );
    // The status follows the reloads: the listeners that run now.
    let listed = || -> Vec<String> {
        let text = std::fs::read_to_string(f.join("state/status.json")).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let mut names: Vec<String> = v["journals"][0]["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["name"].as_str().map(String::from))
            .collect();
        names.sort();
        names
    };
    wait_until(
        30,
        "the status of the reloaded listeners",
        || listed() == ["copy", "extra", "kit"],
        || format!("{:?}\n{}", listed(), d.log()),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "exit {st}: {log}");
    assert_eq!(raw(&f, "copy"), all, "copy is exact");
    assert_eq!(
        raw(&f, "extra"),
        all,
        "extra (removed and added back) is exact"
    );
    assert_eq!(
        entry_text(&f.join("out/kit.jsonl")),
        all,
        "kit (removed and added back) got everything once"
    );
    assert_no_repeats(&f.join("out/kit.jsonl"));
}
