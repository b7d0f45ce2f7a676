//! The scripts themselves, run by a local `sh`: quoting, `apply` across
//! rotations, a batch's rotate, append, size checks and apply.

use super::tests::{sh, sh_owned, sh_text};
use super::*;

#[test]
fn quoting_survives_the_shell() {
    for w in [
        "plain",
        "it's",
        "a b",
        "$(rm -rf /)",
        "'",
        "\"x\"",
        "back\\slash",
        "new\nline",
    ] {
        let (_, out) = sh_text(&format!("printf '%s' {}", quote(w)));
        assert_eq!(out, w);
    }
}

#[test]
fn apply_pieces_cross_rotations_and_mark_each_step() {
    let l = Layout {
        dir: "/d".into(),
        live: "journal".into(),
    };
    assert!(apply_pieces(&l, (3, 10), (3, 10), 3).is_empty());
    assert_eq!(
        apply_pieces(&l, (3, 10), (3, 25), 3),
        vec![ApplyPiece {
            file: "journal".into(),
            from: 10,
            len: Some(15),
            must_exist: true,
            marker: (3, 25)
        }]
    );
    let p = apply_pieces(&l, (3, 10), (5, 7), 5);
    assert_eq!(p.len(), 3);
    assert_eq!(
        (p[0].file.as_str(), p[0].from, p[0].len, p[0].marker),
        ("journal.3", 10, None, (4, 0))
    );
    assert_eq!(
        (p[1].file.as_str(), p[1].from, p[1].must_exist),
        ("journal.4", 0, false)
    );
    assert_eq!(
        (p[2].file.as_str(), p[2].len, p[2].marker),
        ("journal", Some(7), (5, 7))
    );
}

/// The scripts run by a real local `sh` in a temp dir: the same
/// commands the standby runs, without the network.
#[test]
fn batch_script_rotates_resumably_appends_checks_sizes_and_applies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let l = Layout {
        dir: d.to_str().unwrap().into(),
        live: "journal".into(),
    };
    let sink = d.join("applied-out");
    let apply = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("cat >> {}", quote(sink.to_str().unwrap())),
    ];

    let b = Batch {
        rotate: Some((None, 7)),
        append: Some((0, 6)),
        fsync: true,
        apply: apply_pieces(&l, (7, 0), (7, 6), 7),
        apply_timeout_s: 30,
        trust_cached_size: false,
    };
    let (st, out) = sh_owned(&l, &b.script(&l, Some(&apply)), b"hello\n");
    assert_eq!(st, 0, "{out}");
    assert_eq!(std::fs::read(d.join("journal")).unwrap(), b"hello\n");
    assert_eq!(std::fs::read_to_string(d.join(MARKER)).unwrap(), "7\n");
    assert_eq!(std::fs::read_to_string(d.join(APPLIED)).unwrap(), "7 6\n");
    assert!(
        !d.join(APPLY_PID).exists(),
        "the apply guard is gone after it"
    );

    // A stale expectation is refused without touching the file.
    let b = Batch {
        append: Some((3, 2)),
        fsync: false,
        ..Default::default()
    };
    let (st, out) = sh_owned(&l, &b.script(&l, None), b"xx");
    assert_eq!(st, status::SIZE_BEFORE, "{out}");
    assert!(out.contains("journal is 6 bytes, expected 3"), "{out}");

    // Rotation, run twice (a crash after the rename): the second run
    // finds the live file gone and only finishes the marker.
    let b = Batch {
        rotate: Some((Some(7), 8)),
        ..Default::default()
    };
    assert_eq!(sh_owned(&l, &b.script(&l, None), b"").0, 0);
    std::fs::remove_file(d.join("journal")).unwrap();
    std::fs::write(d.join(MARKER), "7\n").unwrap();
    assert_eq!(sh_owned(&l, &b.script(&l, None), b"").0, 0);
    assert_eq!(std::fs::read(d.join("journal.7")).unwrap(), b"hello\n");
    assert_eq!(std::fs::read(d.join("journal")).unwrap(), b"");
    assert_eq!(std::fs::read_to_string(d.join(MARKER)).unwrap(), "8\n");

    // A rotated name that already exists is never overwritten.
    std::fs::write(d.join("journal"), b"new").unwrap();
    std::fs::write(d.join(MARKER), "7\n").unwrap();
    let (st, out) = sh_owned(&l, &b.script(&l, None), b"");
    assert_eq!(st, status::ROTATE_CONFLICT, "{out}");
    assert_eq!(std::fs::read(d.join("journal.7")).unwrap(), b"hello\n");

    // The query reports marker, applied and sizes.
    let (st, out) = sh(&l.query(&[7]), b"");
    assert_eq!(st, 0);
    assert!(
        out.contains("marker 7\n") && out.contains("applied 7 6\n"),
        "{out}"
    );
    assert!(
        out.contains("size 3 ./journal\n") && out.contains("size 6 ./journal.7\n"),
        "{out}"
    );
    let (st, out) = sh(&l.read("journal.7", 1, 3), b"");
    assert_eq!((st, out.as_str()), (0, "ell"));
    let gone = Layout {
        dir: d.join("missing").to_str().unwrap().into(),
        live: "journal".into(),
    };
    assert_eq!(sh(&gone.query(&[]), b"").1, "nodir\n");

    // A loop whose connection was superseded touches nothing.
    let b = Batch {
        append: Some((3, 2)),
        fsync: false,
        ..Default::default()
    };
    let (st, out) = sh(&b.script(&l, None), b"xx");
    assert_eq!(st, status::SUPERSEDED, "{out}");
    assert_eq!(std::fs::read(d.join("journal")).unwrap(), b"new");
}
