//! The listener ABI through the real daemon: the host refuses an
//! acknowledgement in the middle of a record.

use crate::fixture::stderr;
use crate::host::{acked, append, config, kit_listener, rec, recs};

#[test]
fn an_acknowledgement_in_the_middle_of_a_record_is_refused_logged_and_never_recorded() {
    let first = recs(0, 3);
    let kit = kit_listener(
        "buggy",
        "retry_max = \"200ms\"",
        "ack_mid_record_on = \"MIDDLE\"",
    );
    let f = crate::host::fixture(&first, &config("", &kit));
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let good = (1, first.len() as u64);
    assert_eq!(acked(&f, "buggy"), Some(good));
    // One good record, then one whose middle the listener acknowledges.
    append(
        &f.join("p4root/journal"),
        &format!("{}{}", rec(3, "v"), rec(4, "MIDDLE")),
    );
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let log = stderr(&out);
    assert!(
        log.contains("which is not on a record boundary: refused, the cursor stays at"),
        "{log}"
    );
    assert!(log.contains("listener=buggy"), "{log}");
    assert_eq!(acked(&f, "buggy"), Some(good), "{log}");
}
