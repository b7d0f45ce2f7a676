use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/logdaemon/ld.toml"))
}

const EXAMPLE: &str = r#"
state_dir = "state"
[[journal]]
name = "p4"
path = "p4root/journal"
format = "p4"                 # or "lines"
quiet_after = "2s"            # no_data after this much silence
[[journal.listener]]
name = "copy"
plugin = "file"               # a built-in listener by name, or a path to a .so
[journal.listener.config]
path = "out/journal.raw"
format = "raw"                # raw bytes exactly as in the journal, or "jsonl"
"#;

#[test]
fn the_documented_example_works_as_written() {
    let c = parse(EXAMPLE).unwrap();
    assert_eq!(c.state_dir, Path::new("/etc/logdaemon/state"));
    let j = &c.journals[0];
    assert_eq!(j.path, Path::new("/etc/logdaemon/p4root/journal"));
    assert!(matches!(j.format, Format::P4));
    assert_eq!(j.quiet_after, Duration::from_secs(2));
    assert_eq!(j.start, Start::Beginning);
    assert_eq!(j.on_gap, OnGap::Stop);
    let l = &j.listeners[0];
    assert_eq!(l.plugin, PluginRef::Builtin("file".into()));
    let t: toml::Table = toml::from_str(&l.config_toml).unwrap();
    assert_eq!(t["path"].as_str(), Some("out/journal.raw"));
    assert_eq!(t["format"].as_str(), Some("raw"));
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn errors_name_file_line_key_and_why() {
    let e = err(&EXAMPLE.replace("quiet_after = \"2s\"", "quiet_after = \"2 parsecs\""));
    assert!(
        e.starts_with("config /etc/logdaemon/ld.toml, line 7: quiet_after:"),
        "{e}"
    );
    let e = err(&EXAMPLE.replace("format = \"p4\"", "format = \"xml\""));
    assert!(
        e.contains("line 6") && e.contains("\"xml\" is unknown"),
        "{e}"
    );
    let e = err(&EXAMPLE.replace("plugin = \"file\"", "plugin = \"flie\""));
    assert!(
        e.contains("line 10") && e.contains("neither a built-in"),
        "{e}"
    );
    let e = err(&EXAMPLE.replace("quiet_after", "quiet_aftr"));
    assert!(e.contains("line 7") && e.contains("quiet_aftr"), "{e}");
    let e = err(&EXAMPLE.replace(
        "format = \"p4\" ",
        "format = \"lines\"\nrecord_start = \"([\"\n",
    ));
    assert!(e.contains("record_start is not a valid regex"), "{e}");
    let e = err("state_dir = \"s\"\n");
    assert!(e.contains("no [[journal]]"), "{e}");
    let e = err(&format!("{EXAMPLE}\n[[journal]]\nname = \"p4\"\npath = \"other\"\n[[journal.listener]]\nname = \"x\"\nplugin = \"file\"\n"));
    assert!(e.contains("used twice"), "{e}");
    let e = err(&EXAMPLE.replace(
        "path = \"p4root/journal\"",
        "path = \"p4root/journal\"\nstart = \"middle\"",
    ));
    assert!(
        e.contains("start") && e.contains("\"beginning\", \"end\""),
        "{e}"
    );
    let e = err(&EXAMPLE.replace(
        "path = \"p4root/journal\"",
        "path = \"p4root/journal\"\nrotated = [\"{name}.{X}\"]",
    ));
    assert!(e.contains("unknown placeholder"), "{e}");
}

#[test]
fn start_on_gap_and_plugin_paths() {
    let c = parse(
        &EXAMPLE
            .replace(
                "path = \"p4root/journal\"",
                "path = \"p4root/journal\"\nstart = 12\non_gap = \"report\"",
            )
            .replace(
                "plugin = \"file\"",
                "plugin = \"plugins/libmine.so\"\non_failure = \"disable\"",
            ),
    )
    .unwrap();
    let j = &c.journals[0];
    assert_eq!(j.start, Start::Journal(12));
    assert_eq!(j.on_gap, OnGap::Report);
    assert_eq!(
        j.listeners[0].plugin,
        PluginRef::Path(PathBuf::from("/etc/logdaemon/plugins/libmine.so"))
    );
    assert_eq!(j.listeners[0].on_failure, OnFailure::Disable);
}

#[test]
fn watch_is_events_by_default_poll_on_request_and_nothing_else() {
    assert_eq!(parse(EXAMPLE).unwrap().watch, Watch::Events);
    let c = parse(&EXAMPLE.replace(
        "state_dir = \"state\"",
        "state_dir = \"state\"\nwatch = \"poll\"",
    ))
    .unwrap();
    assert_eq!(c.watch, Watch::Poll);
    let c = parse(&EXAMPLE.replace(
        "state_dir = \"state\"",
        "state_dir = \"state\"\nwatch = \"events\"",
    ))
    .unwrap();
    assert_eq!(c.watch, Watch::Events);
    let e = err(&EXAMPLE.replace(
        "state_dir = \"state\"",
        "state_dir = \"state\"\nwatch = \"inotify\"",
    ));
    assert_eq!(
        e,
        "config /etc/logdaemon/ld.toml, line 3: watch \"inotify\": use \"events\" (file events plus the periodic check) or \"poll\" (the periodic check every reconcile_every alone)"
    );
    // A watch key inside a journal table is a typo caught as unknown.
    let e = err(&EXAMPLE.replace("format = \"p4\" ", "watch = \"poll\"\nformat = \"p4\" "));
    assert!(
        e.contains("line 6") && e.contains("unknown field `watch`"),
        "{e}"
    );
}

#[test]
fn compressed_wait_defaults_to_a_minute_and_takes_zero() {
    assert_eq!(
        parse(EXAMPLE).unwrap().compressed_wait,
        Duration::from_secs(60)
    );
    let c = parse(&EXAMPLE.replace(
        "state_dir = \"state\"",
        "state_dir = \"state\"\ncompressed_wait = \"0s\"",
    ))
    .unwrap();
    assert_eq!(c.compressed_wait, Duration::ZERO);
    let c = parse(&EXAMPLE.replace(
        "state_dir = \"state\"",
        "state_dir = \"state\"\ncompressed_wait = \"5m\"",
    ))
    .unwrap();
    assert_eq!(c.compressed_wait, Duration::from_secs(300));
    let e = err(&EXAMPLE.replace(
        "state_dir = \"state\"",
        "state_dir = \"state\"\ncompressed_wait = \"soon\"",
    ));
    assert!(
        e.starts_with(
            "config /etc/logdaemon/ld.toml, line 3: compressed_wait: \"soon\" is not a duration"
        ),
        "{e}"
    );
}

#[test]
fn dot_names_and_outputs_in_the_state_directory_are_refused() {
    // A listener named ".." would keep its records in its journal's
    // directory, above the other listeners' own.
    let e = err(&EXAMPLE.replace("name = \"copy\"", "name = \"..\""));
    assert!(
        e.contains("line 9") && e.contains("listener name \"..\""),
        "{e}"
    );
    let e = err(&EXAMPLE.replace("name = \"p4\"", "name = \".\""));
    assert!(
        e.contains("line 4") && e.contains("journal name \".\""),
        "{e}"
    );
    let e = err(&EXAMPLE.replace(
        "path = \"out/journal.raw\"",
        "path = \"state/listeners/p4@other/file.pos\"",
    ));
    assert!(
        e.contains("line 12") && e.contains("inside the state directory /etc/logdaemon/state"),
        "{e}"
    );
}

#[test]
fn late_writes_defaults_to_two_seconds_and_takes_zero() {
    assert_eq!(
        parse(EXAMPLE).unwrap().journals[0].late_writes,
        Duration::from_secs(2)
    );
    let with = |v: &str| EXAMPLE.replace("quiet_after = \"2s\"", &format!("late_writes = \"{v}\""));
    assert_eq!(
        parse(&with("0s")).unwrap().journals[0].late_writes,
        Duration::ZERO
    );
    assert_eq!(
        parse(&with("30s")).unwrap().journals[0].late_writes,
        Duration::from_secs(30)
    );
    let e = err(&with("a while"));
    assert!(
        e.starts_with("config /etc/logdaemon/ld.toml, line 7: journal \"p4\": late_writes: \"a while\" is not a duration"),
        "{e}"
    );
}

#[test]
fn lines_and_table_headers_are_found_by_offset() {
    let text = "a = 1\n[[journal]]\nx = 1\n\n  [[journal.listener]]\ny = 2";
    let ctx = Ctx::new(Path::new("c.toml"), text);
    assert_eq!(ctx.line(0), 1);
    assert_eq!(ctx.line(5), 1, "the newline ends line 1");
    assert_eq!(ctx.line(6), 2);
    assert_eq!(ctx.line(text.len()), 6);
    assert_eq!(ctx.line(10_000), 6);
    assert_eq!(ctx.line_text(1), "a = 1");
    assert_eq!(ctx.line_text(4), "");
    assert_eq!(ctx.line_text(6), "y = 2");
    assert_eq!(ctx.line_text(7), "");
    assert_eq!(table_line(&ctx, 1), 1, "no header above");
    assert_eq!(table_line(&ctx, 3), 2);
    assert_eq!(table_line(&ctx, 6), 5);
}

#[test]
fn shared_tables_hold_no_room_beyond_them() {
    let mut v = Vec::with_capacity(4);
    v.push([0u64; 16]);
    let s = super::shared(v);
    assert_eq!((s.len(), s.capacity()), (1, 1));
    assert_eq!(s[0][0], 0);
}
