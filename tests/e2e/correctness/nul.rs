//! NUL bytes are data unless they are the hole a writer without O_APPEND
//! left after a truncation: a record that starts with NULs in a file
//! nobody truncated is delivered as it is, byte for byte.

use std::fs;

use crate::fixture::{stderr, Fixture};
use crate::host::{entries, file_listener, kit_listener};

fn config(format: &str, path: &str) -> String {
    format!(
        "state_dir = \"state\"\n\n[[journal]]\nname = \"j\"\npath = \"{path}\"\nformat = \"{format}\"\n{}{}",
        kit_listener("kit", "", ""),
        file_listener("copy")
    )
}

fn run_and_compare(f: &Fixture, data: &[u8]) {
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = fs::read(f.join("out/copy.raw")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&copy),
        String::from_utf8_lossy(data),
        "the NUL bytes were not delivered as written"
    );
    assert!(
        !f.join("out/copy.raw.gaps").exists(),
        "a gap was reported where nothing was truncated"
    );
    let log = stderr(&out);
    assert!(!log.contains("NUL"), "{log}");
}

#[test]
fn nul_bytes_at_the_start_of_a_line_are_delivered_when_nothing_was_truncated() {
    let data = b"one\n\0\0abc\ntwo\n\0\nthree\n";
    let f = Fixture::new();
    f.write("logs/app.log", data);
    f.write("cfg.toml", config("lines", "logs/app.log"));
    run_and_compare(&f, data);
    let offsets: Vec<u64> = entries(&f.join("out/kit.jsonl"))
        .iter()
        .map(|e| e["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [0, 4, 10, 14, 16]);
}

#[test]
fn a_p4_record_starting_with_nul_bytes_keeps_them() {
    let data = b"@pv@ 0 @db.counters@ @a@ @1@ \n\0\0@pv@ 0 @db.counters@ @b@ @2@ \n@ex@ 1 2\n";
    let f = Fixture::new();
    f.write("p4root/journal", data);
    f.write("cfg.toml", config("p4", "p4root/journal"));
    run_and_compare(&f, data);
}
