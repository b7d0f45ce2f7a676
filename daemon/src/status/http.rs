//! The HTTP endpoint: `/metrics`, `/healthz`, `/status` and the status
//! page at `/`, served by `tiny_http` on a thread of its own.
//!
//! Requests are answered one at a time on that thread; each builds a fresh
//! [`Snapshot`](super::Snapshot) (a directory listing per journal and a
//! copy of each worker's state under its lock), so a scrape never waits on
//! a listener and the workers never wait on a scrape. The endpoint only
//! reads: there is nothing to change through it. It listens where
//! `[http] listen` says (loopback unless `allow_remote = true`).

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Header, Method, Response};

use super::live::Live;
use super::{metrics, Snapshot, State};
use crate::config::http::HttpConfig;

/// The page, embedded in the binary: one file, no outside assets.
const PAGE: &str = include_str!("page.html");
/// Where the page takes its first data from (replaced by the snapshot).
const PAGE_DATA: &str = "/*SNAPSHOT*/null";

/// The running server; stopped and joined when dropped.
pub(super) struct Server {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(super) fn serve(h: &HttpConfig, file: &Path, live: Arc<Live>) -> Result<Server, String> {
    let server = tiny_http::Server::http(h.listen).map_err(|e| {
        format!(
            "config {}: [http] listen = \"{}\": cannot listen there: {e}; choose another address or port",
            file.display(),
            h.listen
        )
    })?;
    let server = Arc::new(server);
    let s = server.clone();
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            for req in s.incoming_requests() {
                let (status, ctype, body) = answer(req.method(), req.url(), &live);
                let mut resp = Response::from_data(body).with_status_code(status);
                if let Ok(hd) = Header::from_bytes("Content-Type", ctype) {
                    resp.add_header(hd);
                }
                if let Ok(hd) = Header::from_bytes("Cache-Control", "no-store") {
                    resp.add_header(hd);
                }
                let _ = req.respond(resp);
            }
        })
        .map_err(|e| format!("cannot start the HTTP thread: {e}"))?;
    tracing::info!(listen = %h.listen, "status endpoint listening (/metrics, /healthz, /status, /)");
    Ok(Server {
        server,
        thread: Some(thread),
    })
}

/// Status code, content type and body for one request.
fn answer(method: &Method, url: &str, live: &Live) -> (u16, &'static str, Vec<u8>) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if *method != Method::Get && *method != Method::Head {
        return (405, TEXT, b"only GET\n".to_vec());
    }
    let path = url.split('?').next().unwrap_or("");
    match path {
        "/metrics" => (
            200,
            metrics::CONTENT_TYPE,
            metrics::encode_snapshot(&live.snapshot()).into_bytes(),
        ),
        "/healthz" => {
            let snap = live.snapshot();
            match unhealthy(&snap, live.http()) {
                None => (200, TEXT, b"ok\n".to_vec()),
                Some(why) => (503, TEXT, format!("unhealthy: {why}\n").into_bytes()),
            }
        }
        "/status" => {
            let mut body = serde_json::to_vec_pretty(&live.snapshot()).unwrap_or_default();
            body.push(b'\n');
            (200, "application/json", body)
        }
        "/" | "/index.html" => (
            200,
            "text/html; charset=utf-8",
            page(&live.snapshot()).into_bytes(),
        ),
        _ => (
            404,
            TEXT,
            b"not found; try /, /status, /metrics or /healthz\n".to_vec(),
        ),
    }
}

/// The page with `snap` in it, so it shows everything before its first
/// refresh (`</` escaped: the JSON sits in a script element).
fn page(snap: &Snapshot) -> String {
    let json = serde_json::to_string(snap)
        .unwrap_or_else(|_| "null".into())
        .replace("</", "<\\/");
    PAGE.replacen(PAGE_DATA, &json, 1)
}

/// Why `/healthz` fails, or `None`: a listener disabled, stopped or whose
/// state cannot be told, or a lag over `healthz_max_lag(_bytes)`.
pub(super) fn unhealthy(snap: &Snapshot, h: Option<&HttpConfig>) -> Option<String> {
    let mut why = Vec::new();
    let max_secs = h.and_then(|h| h.healthz_max_lag);
    let max_bytes = h.and_then(|h| h.healthz_max_lag_bytes);
    for (j, l) in snap.listeners() {
        let who = format!("{}/{}", j.name, l.name);
        match l.state {
            State::Disabled | State::Stopped | State::Unknown => why.push(format!(
                "{who} is {}{}",
                l.state.name(),
                l.last_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )),
            _ => {}
        }
        if let (Some(max), Some(s)) = (max_secs, l.lag_seconds) {
            if s > max.as_secs_f64() {
                why.push(format!(
                    "{who} is {s:.0} s behind (healthz_max_lag {})",
                    humantime::format_duration(max)
                ));
            }
        }
        if let (Some(max), Some(b)) = (max_bytes, l.lag_bytes) {
            if b > max {
                why.push(format!(
                    "{who} is {b} bytes behind (healthz_max_lag_bytes {max})"
                ));
            }
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::sample;
    use std::time::Duration;

    fn http(secs: Option<u64>, bytes: Option<u64>) -> HttpConfig {
        HttpConfig {
            listen: "127.0.0.1:9750".parse().unwrap(),
            healthz_max_lag: secs.map(Duration::from_secs),
            healthz_max_lag_bytes: bytes,
        }
    }

    #[test]
    fn healthy_unless_given_up_unknown_or_over_a_threshold() {
        let ok = sample(&[(State::Retrying, Some(500)), (State::Behind, Some(10))]);
        assert_eq!(unhealthy(&ok, None), None, "retrying is not down");
        assert_eq!(unhealthy(&ok, Some(&http(Some(60), Some(1000)))), None);
        let why = unhealthy(&ok, Some(&http(None, Some(100)))).unwrap();
        assert_eq!(
            why,
            "p4/standby is 500 bytes behind (healthz_max_lag_bytes 100)"
        );
        let why = unhealthy(&ok, Some(&http(Some(2), None))).unwrap();
        assert!(
            why.contains("p4/standby is 2 s behind (healthz_max_lag 2s)") && why.contains("p4/l1"),
            "{why}"
        );
        let mut down = sample(&[(State::Disabled, Some(0))]);
        down.journals[0].listeners[0].last_error = Some("bad password".into());
        assert_eq!(
            unhealthy(&down, None).unwrap(),
            "p4/standby is disabled (bad password)"
        );
    }

    #[test]
    fn the_page_carries_the_snapshot_and_no_outside_asset() {
        let mut s = sample(&[(State::Behind, Some(5))]);
        s.journals[0].listeners[0].last_error = Some("</script><b>x".into());
        let p = page(&s);
        assert!(!p.contains(PAGE_DATA));
        assert!(
            p.contains("<\\/script><b>x"),
            "escaped inside the script element"
        );
        for outside in ["src=\"http", "href=\"http", "@import", "url("] {
            assert!(!p.contains(outside), "{outside}");
        }
    }
}
