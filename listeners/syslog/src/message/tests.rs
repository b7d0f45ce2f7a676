use logdaemon_sdk::testing::Batch;

use super::*;
use crate::config::{parse, Context};

fn settings(extra: &str) -> Settings {
    let resolve = |p: &std::path::Path| p.to_path_buf();
    let cx = Context {
        listener: "t",
        resolve: &resolve,
        hostname: "box",
        pid: 7,
    };
    parse(&format!("target = \"relp://h:1\"\n{extra}"), &cx).unwrap()
}

fn render(extra: &str, records: &[&[u8]]) -> Vec<String> {
    let mut f = Formatter::new(&settings(extra), "app\"log]", false);
    let now = Stamp::parse(b"2026-12-07T05:00:00.000001Z", Zone::UTC).unwrap();
    let b = Batch::lines("app", 3, 100, records);
    let mut out = Messages::default();
    for (i, e) in b.entries().iter().enumerate() {
        f.render(e, i, &now, &mut out);
    }
    (0..out.spans.len())
        .map(|i| String::from_utf8_lossy(out.get(i)).into_owned())
        .collect()
}

#[test]
fn rfc5424_with_position_escaped_journal_and_time_read() {
    assert_eq!(
        render("", &[b"hello world\n", b"\n"]),
        [
            "<14>1 2026-12-07T05:00:00.000001Z box logdaemon 7 - [logdaemon@32473 journal=\"app\\\"log\\]\" sequence=\"3\" offset=\"100\"] hello world",
            "<14>1 2026-12-07T05:00:00.000001Z box logdaemon 7 - [logdaemon@32473 journal=\"app\\\"log\\]\" sequence=\"3\" offset=\"112\"]",
        ]
    );
}

#[test]
fn severity_and_timestamp_from_the_entry() {
    let cfg = "facility = \"local3\"\nlevel = '\\s(?P<level>[A-Z]+)\\s'\nlevels = { AUDIT = \"notice\" }\n\
               timestamp = '^(?P<timestamp>\\S+ \\S+)'\ntimestamp_zone = \"+01:00\"";
    let m = render(
        cfg,
        &[
            b"2026-01-02 03:04:05,678 ERROR boom\n",
            b"2026-01-02 03:04:06,000 WARNING hm\n",
            b"2026-01-02 03:04:07,000 AUDIT who\n",
            b"not a time LOUD x\n",
        ],
    );
    let heads: Vec<&str> = m.iter().map(|s| s.split(" box").next().unwrap()).collect();
    assert_eq!(
        heads,
        [
            "<155>1 2026-01-02T03:04:05.678+01:00",
            "<156>1 2026-01-02T03:04:06.000+01:00",
            "<157>1 2026-01-02T03:04:07.000+01:00",
            "<158>1 2026-12-07T05:00:00.000001Z",
        ]
    );
}

#[test]
fn a_multi_line_record_is_one_message_and_bytes_pass_as_they_are() {
    let m = render("", &[b"first\r\n  second \xff\xfe\r\n"]);
    assert_eq!(m.len(), 1);
    assert!(
        m[0].ends_with("] first\r\n  second \u{fffd}\u{fffd}"),
        "{}",
        m[0]
    );
}

#[test]
fn oversize_entries_are_split_or_truncated_and_say_so() {
    let body: Vec<u8> = (0..2000).map(|i| b'a' + (i % 26) as u8).collect();
    let mut rec = body.clone();
    rec.push(b'\n');
    let parts = render("max_message = 600", &[&rec]);
    assert!(parts.len() > 3, "{}", parts.len());
    let mut joined = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        assert!(p.len() <= 600, "{} bytes", p.len());
        assert!(
            p.contains(&format!(" part=\"{}/{}\"] ", i + 1, parts.len())),
            "{p}"
        );
        joined.extend_from_slice(p.split_once("\"] ").unwrap().1.as_bytes());
    }
    assert_eq!(joined, body);
    let t = render("max_message = 600\noversize = \"truncate\"", &[&rec]);
    assert_eq!(t.len(), 1);
    assert!(t[0].len() <= 600 && t[0].len() > 560, "{}", t[0].len());
    assert!(t[0].contains(" truncated=\"2000\"] abc"), "{}", t[0]);
}

#[test]
fn split_parts_do_not_cut_a_utf8_character() {
    let body = "é".repeat(1000);
    let rec = format!("{body}\n");
    let parts = render("max_message = 601", &[rec.as_bytes()]);
    let text: String = parts
        .iter()
        .map(|p| p.split_once("\"] ").unwrap().1)
        .collect();
    assert_eq!(text, body);
}

#[test]
fn rfc3164_local_and_remote() {
    let mut s = settings("format = \"rfc3164\"\napp_name = \"myapp\"");
    s.timestamp = Some(Regex::new("^(?P<timestamp>\\S+ \\S+)").unwrap());
    let b = Batch::lines("app", 1, 0, &[b"2026-02-07 05:02:03 hi\n"]);
    let now = Stamp::now();
    for (local, want) in [
        (true, "<14>Feb  7 05:02:03 myapp[7]: 2026-02-07 05:02:03 hi"),
        (
            false,
            "<14>Feb  7 05:02:03 box myapp[7]: 2026-02-07 05:02:03 hi",
        ),
    ] {
        let mut out = Messages::default();
        Formatter::new(&s, "app", local).render(&b.entries()[0], 0, &now, &mut out);
        assert_eq!(String::from_utf8_lossy(out.get(0)), want);
    }
}
