//! `logdaemon checkpoint set` moving listeners past entries they never
//! received records the range in the checkpoint, and the daemon reports it
//! to EVERY listener through the ABI's gap call before the first entry
//! after it: once, even when the daemon is killed before it could.

use std::fs;

use serde_json::Value;

use crate::fixture::stderr;
use crate::host::{
    append, config, entry_text, events, file_listener, fixture, kit_listener, recs, wait_until,
    Daemon,
};

fn gap_events(kit: &std::path::Path) -> Vec<Value> {
    events(kit)
        .into_iter()
        .filter(|e| e["event"] == "gap")
        .collect()
}

fn span(g: &Value) -> (u64, u64, u64, u64) {
    let n = |a: &str, b: &str| g[a][b].as_u64().unwrap_or(u64::MAX);
    (
        n("from", "sequence"),
        n("from", "offset"),
        n("to", "sequence"),
        n("to", "offset"),
    )
}

#[test]
fn a_checkpoint_set_past_entries_is_a_gap_every_listener_receives_once() {
    let cfg = config(
        "",
        &format!(
            "{}{}",
            kit_listener("kit", "", "open_waits_for_file = \"flag\""),
            file_listener("copy")
        ),
    )
    .replace("start = \"beginning\"", "start = 5");
    let f = fixture(&recs(0, 10), &cfg);
    f.write("flag", "");
    let run = || f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(run().status.success());
    let live = f.join("p4root/journal");
    let acked = recs(0, 10).len() as u64;
    let past = recs(0, 20).len() as u64;
    append(&live, &recs(10, 20));
    // The operator moves every listener past records 10..20.
    let out = f.checkpoint_set("p4", 5, past, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cp = f.join("state/checkpoint.toml");
    let text = fs::read_to_string(&cp).unwrap();
    for l in ["kit", "copy"] {
        assert!(
            text.contains(&format!("[journal.p4.listener.{l}.pending_gap]")),
            "no gap owed to {l}:\n{text}"
        );
    }
    append(&live, &recs(20, 30));
    // Killed while a listener is still opening: nothing reported yet.
    fs::remove_file(f.join("flag")).unwrap();
    let kit = f.join("out/kit.jsonl");
    let d = Daemon::spawn(&f);
    let opening = || {
        events(&kit)
            .iter()
            .filter(|e| e["event"] == "opening")
            .count()
            == 2
    };
    wait_until(15, "the listener to be opening again", opening, || d.log());
    d.signal("KILL");
    let _ = d.wait(20);
    assert!(gap_events(&kit).is_empty());
    let owed = || {
        fs::read_to_string(&cp)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("[journal.p4.listener.") && l.ends_with(".pending_gap]"))
            .count()
    };
    assert_eq!(owed(), 2, "the gaps are still owed after the kill");
    // The next run reports it to both, before the entries after it.
    f.write("flag", "");
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    let want = format!("{}{}", recs(0, 10), recs(20, 30));
    assert_eq!(entry_text(&kit), want);
    assert_eq!(fs::read_to_string(f.join("out/copy.raw")).unwrap(), want);
    let check = |what: &str, gaps: &[Value]| {
        assert_eq!(gaps.len(), 1, "{what}: {gaps:?}");
        assert_eq!(gaps[0]["cause"], "operator", "{what}: {gaps:?}");
        assert_eq!(span(&gaps[0]), (5, acked, 5, past), "{what}: {gaps:?}");
    };
    let kit_order: Vec<String> = events(&kit)
        .iter()
        .filter(|e| e["event"] == "gap" || e["event"] == "entry")
        .map(|e| format!("{}@{}", e["event"].as_str().unwrap(), e["offset"]))
        .collect();
    assert_eq!(
        kit_order[10..12],
        ["gap@null".to_string(), format!("entry@{past}")],
        "the gap comes before the first entry after it: {kit_order:?}"
    );
    let copy_gaps = || -> Vec<Value> {
        fs::read_to_string(f.join("out/copy.raw.gaps"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["gap"].clone())
            .collect()
    };
    check("kit", &gap_events(&kit));
    check("copy", &copy_gaps());
    // Reported once: the checkpoint owes nothing any more.
    assert_eq!(
        owed(),
        0,
        "the gaps are still owed after they were reported"
    );
    assert!(run().status.success());
    check("kit after another run", &gap_events(&kit));
    check("copy after another run", &copy_gaps());
}
