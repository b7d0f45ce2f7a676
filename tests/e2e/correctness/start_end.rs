//! `start = "end"` begins after the last complete record by the format's
//! own rules: not inside a p4 string that holds newlines, not inside a
//! stack trace of a `record_start` log.

use crate::fixture::Fixture;
use crate::host::{append, entries, entry_text, kit_listener, wait_until, Daemon};

fn config(format: &str, path: &str, extra: &str) -> String {
    format!(
        "state_dir = \"state\"\n\n[[journal]]\nname = \"j\"\npath = \"{path}\"\nformat = \"{format}\"\nstart = \"end\"\n{extra}\n{}",
        kit_listener("kit", "", "")
    )
}

/// Starts the daemon on `before`, appends `after`, and expects exactly
/// `want` (each record once, whole) once it is all there.
fn starts_at(f: &Fixture, path: &str, before: &str, after: &str, want: &str) {
    f.write(path, before);
    let d = Daemon::start(f);
    append(&f.join(path), after);
    let kit = f.join("out/kit.jsonl");
    wait_until(
        15,
        "the entries after the start",
        || entry_text(&kit).len() >= want.len(),
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert_eq!(
        entry_text(&kit),
        want,
        "started elsewhere than at a record boundary"
    );
    assert!(entries(&kit).iter().all(|e| e["incomplete"] == false));
}

#[test]
fn p4_start_end_does_not_begin_inside_a_string() {
    let f = Fixture::new();
    f.write("cfg.toml", config("p4", "p4root/journal", ""));
    let done = "@pv@ 0 @db.desc@ 1 @a@ \n@ex@ 1 2\n";
    // Being written: a description whose lines look like records.
    let open = "@pv@ 0 @db.desc@ 2 @first line\n@@pv@@ 0 @@db.x@@ \n";
    let rest = "last line@ \n";
    let next = "@pv@ 0 @db.desc@ 3 @b@ \n@ex@ 3 4\n";
    starts_at(
        &f,
        "p4root/journal",
        &format!("{done}{open}"),
        &format!("{rest}{next}"),
        &format!("{open}{rest}{next}"),
    );
}

#[test]
fn record_start_end_does_not_begin_inside_a_stack_trace() {
    let f = Fixture::new();
    f.write(
        "cfg.toml",
        config(
            "lines",
            "logs/app.log",
            "record_start = '^\\d{4}-\\d\\d-\\d\\d'",
        ),
    );
    let done = "2024-01-01 10:00:00 ok\n";
    let open = "2024-01-01 10:00:01 ERROR boom\n  at a.b(c.java:1)\n";
    let rest = "  at d.e(f.java:2)\n";
    let next = "2024-01-01 10:00:02 ok\n2024-01-01 10:00:03 ok\n";
    // The last record is complete once the next one's first line is.
    starts_at(
        &f,
        "logs/app.log",
        &format!("{done}{open}"),
        &format!("{rest}{next}"),
        &format!("{open}{rest}2024-01-01 10:00:02 ok\n"),
    );
}
