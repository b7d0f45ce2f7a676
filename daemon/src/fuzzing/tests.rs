//! Replays the committed regression inputs and checks the checks.

use super::*;

/// The inputs kept under `fuzz/regressions/<target>/` (those that once
/// broke an invariant, and a few seeds).
fn regressions(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; the regression inputs live in the repository",
                dir.display()
            )
        })
        .map(|e| e.expect("directory entry").path())
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, data)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{}: no regression inputs", dir.display());
    out
}

fn replay<T>(target: &str, f: fn(&[u8]) -> T) {
    for (path, data) in regressions(target) {
        // A panic names the input through the test's output.
        eprintln!("replaying {}", path.display());
        f(&data);
    }
}

#[test]
fn regressions_p4_framer() {
    replay("p4_framer", p4_framer);
}

#[test]
fn regressions_lines_framer() {
    replay("lines_framer", lines_framer);
}

#[test]
fn regressions_checkpoint_load() {
    replay("checkpoint_load", checkpoint_load);
}

#[test]
fn regressions_config_load() {
    replay("config_load", config_load);
}

#[test]
fn regressions_plugin_descriptor() {
    replay("plugin_descriptor", plugin_descriptor);
}

/// A framing input: live or not, chunk sizes, body.
fn scenario(flags: u8, sizes: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, sizes.len() as u8];
    v.extend_from_slice(sizes);
    v.extend_from_slice(body);
    v
}

#[test]
fn framing_scenarios_count_records_read_live_and_whole() {
    let j = b"@pv@ 0 @db.desc@ 1 @a\n@@b@ \n@ex@ 1 2\n@pv@ 0 @cut";
    assert_eq!(p4_framer(&scenario(0, &[3, 1], j)), 3);
    assert_eq!(p4_framer(&scenario(1, &[0, 2, 0, 5], j)), 3);
    // Repeated 4 times, read in chunks of 7 * 64 bytes.
    let whole = b"@pv@ 0 @db.desc@ 1 @a\n@@b@ \n@ex@ 1 2\n";
    assert_eq!(p4_framer(&scenario(3 << 3 | 2 << 1, &[7], whole)), 8);
    let log = b"boot\n2024-01-01 a\n  at x\n2024-01-02 b\n2024-01";
    assert_eq!(
        lines_framer(&[&[0u8][..], &scenario(0, &[4], log)].concat()),
        5
    );
    assert_eq!(
        lines_framer(&[&[1u8][..], &scenario(1, &[0, 9], log)].concat()),
        4
    );
}

#[test]
fn multi_line_reference_groups_and_cuts_like_the_documented_framer() {
    let re = Regex::new("^S").unwrap();
    assert_eq!(
        reference::lines(b"x\nS a\n c\nS b", Some(&re)),
        vec![(0, 2, false), (2, 7, false), (9, 3, true)]
    );
    assert_eq!(
        reference::lines(b"S a\n cont", Some(&re)),
        vec![(0, 9, true)]
    );
    assert_eq!(
        reference::lines(b"S a\r\nS b\r\n", Some(&re)),
        vec![(0, 5, false), (5, 5, false)]
    );
}

#[test]
#[should_panic(expected = "the reference parser agrees")]
fn a_wrong_framing_result_is_a_failure() {
    // A reference that disagrees stands for a framer that is wrong.
    frame_scenario(
        &Format::P4,
        &scenario(0, &[], b"@ex@ 1 2\n@ex@ 3 4\n"),
        lines_reference_one_record,
    );
}

fn lines_reference_one_record(buf: &[u8]) -> Vec<Span> {
    vec![(0, buf.len(), false)]
}

#[test]
fn example_checkpoint_and_config_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/p4");
    // The checkpoint the README shows (the example's own state/ is not in the tree).
    let checkpoint = br#"version = 1
[journal.p4]
sequence = 3
offset = 607
line = 11
[journal.p4.identity]
path = "/p4/root/journal"
dev = 65024
inode = 5488657
head_len = 607
head_hash = "xxh3:0f63c2b3f5d9a6e1"
tail_len = 607
tail_hash = "xxh3:0f63c2b3f5d9a6e1"
[journal.p4.listener.copy]
sequence = 3
offset = 607
line = 11
"#;
    assert!(checkpoint_load(checkpoint));
    let config = std::fs::read(root.join("logdaemon.toml")).unwrap();
    assert!(config_load(&config));
    assert!(!checkpoint_load(
        b"version = 1\n[journal.p4]\nsequence = 1\noffset = 0\nline = 0\n"
    ));
    assert!(!config_load(
        b"[[journal]]\nname = \"a\"\npath = \"j\"\nformat = \"xml\"\n"
    ));
}

/// A descriptor input: flags, missing-function bits, descriptor flags, three
/// pool-slice labels, the pool.
fn descriptor_input(
    flags: u8,
    extra: &[u8],
    missing: u8,
    labels: [(u16, u16); 3],
    pool: &[u8],
) -> Vec<u8> {
    let mut v = vec![flags];
    v.extend_from_slice(extra);
    v.push(missing);
    v.extend_from_slice(&1u32.to_le_bytes());
    for (off, len) in labels {
        v.push(0);
        v.extend_from_slice(&off.to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
    }
    v.extend_from_slice(pool);
    v
}

#[test]
fn descriptor_verdicts() {
    let labels = [(0, 4), (4, 3), (7, 0)];
    let pool = b"name1.0";
    assert!(plugin_descriptor(&descriptor_input(
        0,
        &[],
        0,
        labels,
        pool
    )));
    assert!(
        !plugin_descriptor(&descriptor_input(0, &[], 1 << 3, labels, pool)),
        "listen missing"
    );
    assert!(
        !plugin_descriptor(&descriptor_input(1, &1u32.to_le_bytes(), 0, labels, pool)),
        "version 1 under the version-2 symbol"
    );
    assert!(
        !plugin_descriptor(&descriptor_input(2, &12u32.to_le_bytes(), 0, labels, pool)),
        "too small"
    );
    assert!(
        !plugin_descriptor(&descriptor_input(0, &[], 0, [(0, 0), (4, 3), (7, 0)], pool)),
        "empty name"
    );
    assert!(
        !plugin_descriptor(&descriptor_input(0, &[], 0, labels, b"n\xffme1.0")),
        "not UTF-8"
    );
    // A larger struct_size (a newer, compatible layout) is accepted.
    assert!(plugin_descriptor(&descriptor_input(
        2,
        &4096u32.to_le_bytes(),
        0,
        labels,
        pool
    )));
    // The first layout, without `flags`.
    let first = std::mem::offset_of!(logdaemon_sdk::abi::Descriptor, flags) as u32;
    assert!(plugin_descriptor(&descriptor_input(
        2,
        &first.to_le_bytes(),
        0,
        labels,
        pool
    )));
    assert!(!plugin_descriptor(&descriptor_input(
        2,
        &(first - 1).to_le_bytes(),
        0,
        labels,
        pool
    )));
}
