//! A p4 record with an odd number of unescaped `@` never closes. It is cut
//! at the next line that starts a record, reported with its position and
//! delivered as incomplete; the records after it are delivered as usual,
//! at once and live, instead of piling up as one record until a rotation.

use crate::fixture::stderr;
use crate::host::{
    append, config, entries, entry_text, file_listener, fixture, kit_listener, recs, wait_until,
    Daemon,
};

const BROKEN: &str = "@pv@ 1 @db.x@ @broken \n";

#[test]
fn a_record_that_never_closes_is_reported_and_delivery_goes_on() {
    let good = recs(0, 1);
    let after = recs(1, 2001);
    let f = fixture(
        &format!("{good}{BROKEN}{after}"),
        &config(
            "",
            &format!("{}{}", kit_listener("kit", "", ""), file_listener("copy")),
        ),
    );
    let out = f.run(&["run", "--once", "--config", "cfg.toml"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    let kit = f.join("out/kit.jsonl");
    let all = format!("{good}{BROKEN}{after}");
    assert_eq!(entry_text(&kit), all, "not every record delivered");
    let es = entries(&kit);
    assert_eq!(es.len(), 2002);
    assert_eq!(es[1]["raw"], BROKEN);
    assert_eq!(es[1]["incomplete"], true, "{}", es[1]);
    assert!(es.iter().filter(|e| e["incomplete"] == true).count() == 1);
    let at = good.len();
    for w in [
        "a record that can never complete".to_string(),
        format!("offset={at}"),
        "line=2".to_string(),
    ] {
        assert!(log.contains(&w), "the warning does not say {w:?}:\n{log}");
    }
    assert_eq!(
        std::fs::read_to_string(f.join("out/copy.raw")).unwrap(),
        all
    );
    // Live: another broken record, then records: delivered without waiting.
    let d = Daemon::start(&f);
    let more = recs(3000, 3100);
    append(&f.join("p4root/journal"), &format!("{BROKEN}{more}"));
    let want = format!("{all}{BROKEN}{more}");
    wait_until(
        15,
        "the records after a second broken one",
        || entry_text(&kit) == want,
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}
