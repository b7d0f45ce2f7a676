use std::path::Path;

use super::super::Config;

/// A glob journal `logs/*.log` with one `file` listener writing `out`,
/// `extra` lines after its `path`; the config lives in `/srv/ld`.
fn text(extra: &str, out: &str) -> String {
    format!(
        "[[journal]]\nname = \"app\"\nformat = \"lines\"\npath = \"logs/*.log\"\n{extra}\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"{out}\"\n"
    )
}

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, Path::new("/srv/ld/ld.toml")).map_err(|e| e.to_string())
}

#[test]
fn a_glob_path_with_exclude_is_a_glob_journal() {
    let c = parse(&text("exclude = [\"debug-*\"]", "out/{file}.copy")).unwrap();
    let g = &c.globs["app"];
    assert_eq!(g.dir, Path::new("/srv/ld/logs"));
    assert!(g.matches("a.log") && !g.matches("debug-1.log") && !g.matches("a.txt"));
    assert!(!g.matches(".hidden.log"), "a leading dot must be written");
}

#[test]
fn a_wildcard_in_a_directory_is_refused_at_its_line() {
    let t = text("", "out/{file}").replace("logs/*.log", "logs/*/app.log");
    let e = parse(&t).unwrap_err();
    assert!(e.starts_with("config /srv/ld/ld.toml, line 4: journal \"app\": path \"logs/*/app.log\": a wildcard may only be in the file name"), "{e}");
}

#[test]
fn an_invalid_glob_is_refused_at_its_line() {
    let e = parse(&text("", "out/{file}").replace("logs/*.log", "logs/[*.log")).unwrap_err();
    assert!(
        e.contains("line 4") && e.contains("is not a valid glob"),
        "{e}"
    );
}

#[test]
fn exclude_without_a_wildcard_is_refused_at_its_line() {
    let t = text("exclude = [\"x\"]", "out/copy").replace("logs/*.log", "logs/a.log");
    let e = parse(&t).unwrap_err();
    assert!(
        e.contains("line 5") && e.contains("exclude applies only to a path with a wildcard"),
        "{e}"
    );
}

#[test]
fn a_bad_exclude_pattern_is_refused_at_its_line() {
    let e = parse(&text("exclude = [\"[x\"]", "out/{file}")).unwrap_err();
    assert!(
        e.contains("line 5") && e.contains("exclude \"[x\" is not a valid glob"),
        "{e}"
    );
    let e = parse(&text("exclude = [\"a/b\"]", "out/{file}")).unwrap_err();
    assert!(e.contains("line 5") && e.contains("without '/'"), "{e}");
}

#[test]
fn a_journal_number_start_is_refused_for_a_glob() {
    let e = parse(&text("start = 3", "out/{file}")).unwrap_err();
    assert!(
        e.contains("line 5") && e.contains("does not apply to a glob path"),
        "{e}"
    );
}

#[test]
fn a_listener_path_without_file_is_refused_at_its_key() {
    let e = parse(&text("", "out/all.copy")).unwrap_err();
    assert!(
        e.contains("line 10") && e.contains("config key \"path\" has no {file}"),
        "{e}"
    );
}

#[test]
fn file_in_a_plain_journals_listener_path_is_refused_at_its_key() {
    let t = text("", "out/{file}").replace("logs/*.log", "logs/a.log");
    let e = parse(&t).unwrap_err();
    assert!(
        e.contains("line 10") && e.contains("applies only to a journal whose path is a glob"),
        "{e}"
    );
}

#[test]
fn an_output_in_the_globs_directory_is_refused() {
    let e = parse(&text("", "logs/{file}.copy")).unwrap_err();
    assert!(
        e.contains("line 10") && e.contains("an output may never be an input"),
        "{e}"
    );
}

#[test]
fn a_plain_journal_the_glob_also_matches_is_refused() {
    let t = format!("{}[[journal]]\nname = \"one\"\nformat = \"lines\"\npath = \"logs/a.log\"\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n", text("", "out/{file}"));
    let e = parse(&t).unwrap_err();
    assert!(e.contains("line 14") && e.contains("followed twice"), "{e}");
    assert!(parse(&t.replace(
        "path = \"logs/*.log\"",
        "path = \"logs/*.log\"\nexclude = [\"a.log\"]"
    ))
    .is_ok());
}

#[test]
fn with_file_replaces_the_placeholder_in_path_only() {
    let t = super::with_file(
        "path = \"out/{file}.x\"\nsubject = \"{file}\"\n",
        "a\"b.log",
    );
    let t: toml::Table = toml::from_str(&t).unwrap();
    assert_eq!(t["path"].as_str(), Some("out/a\"b.log.x"));
    assert_eq!(t["subject"].as_str(), Some("{file}"));
}

#[test]
fn two_globs_matching_one_name_in_one_directory_are_refused_at_the_second_path() {
    let second = |path: &str, extra: &str| {
        format!("{}[[journal]]\nname = \"apps\"\nformat = \"lines\"\npath = \"{path}\"\n{extra}\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"out/apps-{{file}}\"\n", text("", "out/{file}"))
    };
    let e = parse(&second("logs/app*", "")).unwrap_err();
    assert!(
        e.starts_with("config /srv/ld/ld.toml, line 14: journal \"apps\": path \"logs/app*\" matches file names that journal \"app\""),
        "{e}"
    );
    assert!(
        e.contains("\"app.log\"") && e.contains("followed twice"),
        "{e}"
    );
    // Kept apart by an exclude list, or in another directory: accepted.
    assert!(parse(&second("logs/app*", "exclude = [\"*.log\"]")).is_ok());
    assert!(parse(&second("other/app*", "")).is_ok());
    // An overlap the check cannot show is left to the run time guard.
    let undecided =
        second("logs/*-?.log", "").replace("path = \"logs/*.log\"", "path = \"logs/?????.log\"");
    assert!(parse(&undecided).is_ok());
}
