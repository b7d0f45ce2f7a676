//! `no_data(had_data)` follows the quiet timer.

use std::path::Path;

use crate::host::{append, config, events, fixture, kind, kit_listener, recs, wait_until, Daemon};

// ---------------------------------------------------------------- no_data

#[test]
fn no_data_says_had_data_once_after_entries_then_false_while_quiet() {
    let f = fixture(
        &recs(0, 10),
        &config("quiet_after = \"300ms\"", &kit_listener("kit", "", "")),
    );
    let kit = f.join("out/kit.jsonl");
    let d = Daemon::start(&f);
    let calls = |k: &Path| -> Vec<(String, Option<bool>, u64)> {
        events(k)
            .iter()
            .filter(|e| matches!(kind(e), "entry" | "no_data"))
            .map(|e| {
                (
                    kind(e).to_string(),
                    e["had_data"].as_bool(),
                    e["t_ns"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let quiet_calls = |k: &Path, had: bool| calls(k).iter().filter(|c| c.1 == Some(had)).count();
    wait_until(
        15,
        "no_data(true) then two no_data(false)",
        || quiet_calls(&kit, true) == 1 && quiet_calls(&kit, false) >= 2,
        || d.log(),
    );
    append(&f.join("p4root/journal"), &recs(10, 15));
    wait_until(
        15,
        "a second no_data(true) after more entries",
        || quiet_calls(&kit, true) == 2,
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    let c = calls(&kit);
    let first_true = c.iter().position(|x| x.1 == Some(true)).unwrap();
    assert!(
        c[..first_true].iter().all(|x| x.0 == "entry"),
        "no_data before the first entries were handled: {c:?}"
    );
    assert_eq!(first_true, 10, "{c:?}");
    let last_entry_t = c[first_true - 1].2;
    assert!(
        c[first_true].2 - last_entry_t >= 290_000_000,
        "no_data(true) came {} ms after the last entry, quiet_after = 300ms",
        (c[first_true].2 - last_entry_t) / 1_000_000
    );
    let (t1, f1) = (c[first_true].2, &c[first_true + 1]);
    assert_eq!(f1.1, Some(false), "{c:?}");
    assert!(
        f1.2 - t1 >= 290_000_000,
        "no_data(false) {} ms after no_data(true)",
        (f1.2 - t1) / 1_000_000
    );
    // After the second batch: entries, then exactly one no_data(true) before any false.
    let second_true = c.iter().rposition(|x| x.1 == Some(true)).unwrap();
    let second_entries: Vec<_> = c[..second_true]
        .iter()
        .rev()
        .take_while(|x| x.0 == "entry")
        .collect();
    assert_eq!(second_entries.len(), 5, "{c:?}");
}
