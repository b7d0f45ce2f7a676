//! `logdaemon status` and the HTTP endpoint against the real daemon: the
//! exit status in each state (daemon running or not), `/metrics` scraped
//! while a journal grows and a listener is down, `/healthz` turning 503 and
//! back, and the status page rendered by a real headless Chromium (Debian's
//! `chromium`, installed by `scripts/deps.sh`), whose screenshot is kept.
//!
//! Listeners are the testkit (tests/plugins/testkit): it asks to retry
//! while a flag file is missing and fails for good on a marked entry.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::fixture::{stderr, stdout, Fixture};
use crate::host::{
    append, config, file_listener, fixture, kit_listener, rec, recs, wait_until, Daemon,
};

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cfg` (from `config`) with an `[http]` table of `lines` before its journals.
fn with_http(cfg: &str, lines: &str) -> String {
    cfg.replacen(
        "\n[[journal]]",
        &format!("[http]\n{lines}\n\n[[journal]]"),
        1,
    )
}

/// `GET path` on the endpoint: the status code and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    request(port, "GET", path)
}

/// `METHOD path` on the endpoint (no body): the status code and the body.
fn request(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the endpoint");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// The value of the sample `name{journal="p4",listener=L}` in a scrape.
fn sample(metrics: &str, name: &str, listener: &str) -> Option<f64> {
    let key = format!("{name}{{journal=\"p4\",listener=\"{listener}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

/// `logdaemon status --json`: its exit code and the JSON.
fn status(f: &Fixture) -> (i32, Value) {
    let out = f.run(&["status", "--config", "cfg.toml", "--json"]);
    let code = out.status.code().expect("an exit code");
    let json = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "status --json printed no JSON ({e}):\n{}\n{}",
            stdout(&out),
            stderr(&out)
        )
    });
    (code, json)
}

/// The status of listener `name` in a `status --json` answer.
fn listener<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["journals"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| j["listeners"].as_array().unwrap())
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no listener {name} in {json}"))
}

/// Waits until `status` exits `code` with `name` in `state`; returns the JSON.
fn wait_status(f: &Fixture, d: Option<&Daemon>, code: i32, name: &str, state: &str) -> Value {
    let mut last = (0, Value::Null);
    wait_until(
        30,
        &format!("status to exit {code} with {name} {state}"),
        || {
            last = status(f);
            last.0 == code && listener(&last.1, name)["state"] == state
        },
        || {
            let (c, j) = status(f);
            format!(
                "exit {c}: {j:#}\n{}",
                d.map(|d| d.log()).unwrap_or_default()
            )
        },
    );
    last.1
}

#[test]
fn status_exit_codes_in_each_state_with_the_daemon_running_or_not() {
    let first = recs(0, 50);
    let kit = |extra: &str| config("", &kit_listener("a", "retry_max = \"300ms\"", extra));
    let f = fixture(&first, &kit(""));

    // Never run: no position to tell anything from.
    let (code, json) = status(&f);
    assert_eq!(code, 5, "{json:#}");
    assert_eq!(listener(&json, "a")["state"], "unknown");
    assert_eq!(json["daemon"]["running"], false);

    // Running and caught up.
    let d = Daemon::start(&f);
    let json = wait_status(&f, Some(&d), 0, "a", "caught_up");
    assert_eq!(json["daemon"]["running"], true);
    assert_eq!(json["daemon"]["pid"], d.pid());
    let a = listener(&json, "a");
    assert_eq!(a["lag_bytes"], 0);
    assert_eq!(a["delivered_entries"], 50);
    assert_eq!(a["offset"], first.len());
    // Written for `status` only: not readable by other users.
    let mode = fs::metadata(f.join("state/status.json"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let text = stdout(&f.run(&["status", "--config", "cfg.toml"]));
    assert!(
        text.contains("listener a: caught up, at sequence 1 offset"),
        "{text}"
    );
    // A daemon that runs but no longer writes its status (hung: stopped
    // here with SIGSTOP): cannot tell, 5, saying why.
    d.signal("STOP");
    let json = wait_status(&f, Some(&d), 5, "a", "unknown");
    let why = listener(&json, "a")["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        why.contains(&format!(
            "the daemon (pid {}) runs but has not written",
            d.pid()
        )),
        "{why}"
    );
    d.signal("CONT");
    wait_status(&f, Some(&d), 0, "a", "caught_up");
    let (st, _) = d.stop();
    assert!(st.success());

    // Stopped, with entries written since: behind by exactly those bytes.
    let more = recs(50, 60);
    append(&f.join("p4root/journal"), &more);
    let (code, json) = status(&f);
    assert_eq!(code, 0, "behind is no failure: {json:#}");
    assert_eq!(json["daemon"]["running"], false);
    assert_eq!(listener(&json, "a")["state"], "behind");
    assert_eq!(listener(&json, "a")["lag_bytes"], more.len());

    // Running, the listener asking to retry: 3, with since and the error.
    f.write("cfg.toml", kit("retry_until_file = \"flag\""));
    let d = Daemon::start(&f);
    let json = wait_status(&f, Some(&d), 3, "a", "retrying");
    let a = listener(&json, "a");
    assert!(a["since"].as_u64().is_some(), "{a}");
    assert!(
        a["last_error"]
            .as_str()
            .unwrap()
            .contains("does not exist yet"),
        "{a}"
    );
    assert_eq!(a["lag_bytes"], more.len());
    f.write("flag", "");
    wait_status(&f, Some(&d), 0, "a", "caught_up");
    d.stop();

    // Disabled (another listener keeps the daemon running): 4.
    append(&f.join("p4root/journal"), &rec(60, "POISON"));
    let two = |on_failure: &str| {
        config(
            "",
            &format!(
                "{}{}",
                kit_listener(
                    "a",
                    &format!("on_failure = \"{on_failure}\""),
                    "fatal_on = \"POISON\""
                ),
                file_listener("b")
            ),
        )
    };
    f.write("cfg.toml", two("disable"));
    let d = Daemon::start(&f);
    let json = wait_status(&f, Some(&d), 4, "a", "disabled");
    assert!(
        listener(&json, "a")["last_error"]
            .as_str()
            .unwrap()
            .contains("fatal_on"),
        "{json:#}"
    );
    d.stop();
    // The daemon is stopped: the last run ended with it disabled.
    wait_status(&f, None, 4, "a", "disabled");

    // Stopped (on_failure = "stop" ends the daemon): 4 once it has exited.
    f.write("cfg.toml", two("stop"));
    let (st, log) = Daemon::spawn(&f).wait(30);
    assert!(!st.success(), "{log}");
    let json = wait_status(&f, None, 4, "a", "stopped");
    assert_eq!(json["daemon"]["running"], false);

    // Cannot tell: a config that does not load.
    f.write("cfg.toml", "[[journal]]\nname = 1\n");
    let out = f.run(&["status", "--config", "cfg.toml"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out).contains("cfg.toml, line 2") && stderr(&out).contains("cannot be told"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn metrics_show_lag_rising_while_a_listener_is_down_and_healthz_turns_503_and_back() {
    let port = free_port();
    let cfg = with_http(
        &config(
            "",
            &format!(
                "{}{}",
                kit_listener(
                    "down",
                    "retry_max = \"300ms\"",
                    "retry_until_file = \"flag\""
                ),
                file_listener("copy")
            ),
        ),
        &format!("listen = \"127.0.0.1:{port}\"\nhealthz_max_lag_bytes = 100"),
    );
    let journal = recs(0, 1);
    let f = fixture(&journal, &cfg);
    let d = Daemon::start(&f);
    let scrape = || get(port, "/metrics").1;
    // One small entry behind: retrying, under the threshold, healthy.
    wait_until(
        20,
        "a retry counted",
        || sample(&scrape(), "logdaemon_listener_retries_total", "down").unwrap_or(0.0) >= 1.0,
        || format!("{}\n{}", scrape(), d.log()),
    );
    let m = scrape();
    assert_eq!(
        sample(&m, "logdaemon_listener_up", "down"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(get(port, "/healthz"), (200, "ok\n".into()));

    let mut total = journal.len();
    let mut lags = Vec::new();
    for round in 0..3 {
        let more = recs(10 + round * 10, 20 + round * 10);
        append(&f.join("p4root/journal"), &more);
        total += more.len();
        wait_until(
            20,
            "the lag to take the new entries in",
            || {
                let m = scrape();
                sample(&m, "logdaemon_listener_lag_bytes", "down") == Some(total as f64)
                    && sample(&m, "logdaemon_listener_lag_bytes", "copy") == Some(0.0)
            },
            || format!("{}\n{}", scrape(), d.log()),
        );
        let m = scrape();
        assert_eq!(
            sample(&m, "logdaemon_listener_up", "down"),
            Some(1.0),
            "retrying is up: {m}"
        );
        assert!(
            sample(&m, "logdaemon_listener_lag_seconds", "down").is_some(),
            "{m}"
        );
        lags.push(total);
        let (code, body) = get(port, "/healthz");
        assert_eq!(code, 503, "{body}");
        assert!(
            body.contains(&format!(
                "p4/down is {total} bytes behind (healthz_max_lag_bytes 100)"
            )),
            "{body}"
        );
    }
    assert!(lags.windows(2).all(|w| w[0] < w[1]), "{lags:?}");
    let m = scrape();
    assert!(
        m.contains(&format!(
            "logdaemon_journal_size_bytes{{journal=\"p4\"}} {total}"
        )),
        "{m}"
    );
    assert!(m.contains("logdaemon_build_info{version=\""), "{m}");
    assert!(m.ends_with("# EOF\n"), "{m}");

    // The listener comes back: its lag returns to 0 and health with it.
    f.write("flag", "");
    wait_until(
        30,
        "the lag back to 0",
        || sample(&scrape(), "logdaemon_listener_lag_bytes", "down") == Some(0.0),
        || format!("{}\n{}", scrape(), d.log()),
    );
    assert_eq!(get(port, "/healthz"), (200, "ok\n".into()));
    let m = scrape();
    assert_eq!(sample(&m, "logdaemon_listener_up", "down"), Some(1.0));
    assert_eq!(
        sample(&m, "logdaemon_listener_delivered_entries_total", "down"),
        Some(31.0),
        "{m}"
    );
    // /status is `status --json`, and unknown paths say what there is.
    let (code, body) = get(port, "/status");
    assert_eq!(code, 200);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listener(&json, "down")["state"], "caught_up");
    let (code, body) = get(port, "/nothing");
    assert_eq!(code, 404);
    assert!(body.contains("/metrics"), "{body}");
    // It only reads.
    assert_eq!(request(port, "POST", "/status").0, 405);
    assert_eq!(request(port, "DELETE", "/").0, 405);
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}

#[test]
fn the_status_page_in_headless_chromium_shows_every_journal_and_listener() {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "Debian's chromium is missing: run scripts/deps.sh"
    );
    let port = free_port();
    let cfg = format!(
        "state_dir = \"state\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [[journal]]\nname = \"p4\"\npath = \"p4root/journal\"\n{}{}\n\
         [[journal]]\nname = \"app\"\npath = \"logs/app.log\"\nformat = \"lines\"\n{}",
        file_listener("copy"),
        kit_listener(
            "standby",
            "retry_max = \"300ms\"",
            "retry_until_file = \"flag\""
        ),
        kit_listener("audit", "on_failure = \"disable\"", "fatal_on = \"POISON\""),
    );
    let f = fixture(&recs(0, 20), &cfg);
    f.write("logs/app.log", "one\nPOISON two\n");
    let d = Daemon::start(&f);
    let want = [
        ("p4", "copy", "caught_up"),
        ("p4", "standby", "retrying"),
        ("app", "audit", "disabled"),
    ];
    wait_until(
        30,
        "every listener in its state, and a lag history",
        || {
            let (_, body) = get(port, "/status");
            let json: Value = serde_json::from_str(&body).unwrap();
            let history = listener(&json, "standby")["history"]
                .as_array()
                .unwrap()
                .len();
            want.iter()
                .all(|(_, l, s)| listener(&json, l)["state"] == *s)
                && history >= 2
        },
        || format!("{}\n{}", get(port, "/status").1, d.log()),
    );
    let url = format!("http://127.0.0.1:{port}/");
    let shot = f.join("status-page.png");
    // As root Chromium refuses to start with its sandbox (it needs an
    // unprivileged user for its namespaces); the page is our own, served on
    // loopback, so the test runs it without.
    let chrome = |args: &[&str]| {
        let out = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args(args)
            .arg(&url)
            .output()
            .expect("start chromium");
        assert!(out.status.success(), "chromium failed: {}", stderr(&out));
        out
    };
    chrome(&[
        "--window-size=1280,560",
        &format!("--screenshot={}", shot.display()),
    ]);
    let png = fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let (w, h) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (1280, 560));
    // Kept beside the test build for the documentation (docs/status-page.png).
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    fs::copy(&shot, &keep).unwrap();

    let dom = stdout(&chrome(&["--dump-dom"]));
    for j in ["p4", "app"] {
        assert!(
            dom.contains(&format!("<section class=\"journal\" data-journal=\"{j}\">")),
            "journal {j} missing from the rendered page:\n{dom}"
        );
    }
    for (j, l, s) in want {
        let row = format!(
            "<tr class=\"listener\" data-journal=\"{j}\" data-listener=\"{l}\" data-state=\"{s}\">"
        );
        assert!(
            dom.contains(&row),
            "{row} missing from the rendered page:\n{dom}"
        );
    }
    assert!(
        dom.contains("contains the fatal_on text"),
        "the disabled listener's error:\n{dom}"
    );
    assert!(
        dom.contains("does not exist yet"),
        "the retrying listener's error:\n{dom}"
    );
    assert!(
        dom.contains("class=\"history\"") && dom.contains("<polyline points="),
        "a lag history drawn per listener:\n{dom}"
    );
    assert!(dom.contains("running, pid"), "{dom}");
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}

#[test]
fn an_endpoint_that_cannot_listen_stops_the_start_and_says_where() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let cfg = with_http(
        &config("", &file_listener("copy")),
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let f = fixture(&recs(0, 3), &cfg);
    let (st, log) = Daemon::spawn(&f).wait(30);
    assert!(!st.success(), "{log}");
    assert!(
        log.contains(&format!(
            "cfg.toml: [http] listen = \"127.0.0.1:{port}\": cannot listen there"
        )),
        "{log}"
    );
    let copied = fs::read(f.join("out/copy.raw")).unwrap_or_default();
    assert!(copied.is_empty(), "nothing delivered before the refusal");
}

#[test]
fn a_remote_listen_address_is_refused_unless_allowed() {
    let cfg = with_http(
        &config("", &file_listener("copy")),
        "listen = \"0.0.0.0:9750\"",
    );
    let f = fixture(&recs(0, 3), &cfg);
    let out = f.run(&["check", "--config", "cfg.toml"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "cfg.toml, line 3: http.listen: 0.0.0.0:9750 is reachable from other machines"
        ) && err.contains("allow_remote = true"),
        "{err}"
    );
    let allowed = with_http(
        &config("", &file_listener("copy")),
        "listen = \"0.0.0.0:9750\"\nallow_remote = true",
    );
    f.write("cfg.toml", allowed);
    let out = f.run(&["check", "--config", "cfg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
