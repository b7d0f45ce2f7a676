//! `[http]`: where the status endpoint listens and when `/healthz` fails.
//!
//! The endpoint is off unless the table is there. It shows file names,
//! listener names and error messages, so it listens on a loopback address
//! unless the config says `allow_remote = true` in so many words: an
//! address that reaches other machines is a config error otherwise.

use std::net::SocketAddr;
use std::time::Duration;

use toml::Spanned;

use super::raw::RawHttp;
use super::{ConfigError, Ctx};

/// Where the endpoint listens when `listen` is not given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9750";

/// The validated `[http]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// `/healthz` fails when a listener's oldest unacknowledged entry is older.
    pub healthz_max_lag: Option<Duration>,
    /// `/healthz` fails when a listener has more bytes than this to read.
    pub healthz_max_lag_bytes: Option<u64>,
}

pub(super) fn validate(ctx: &Ctx<'_>, h: &Spanned<RawHttp>) -> Result<HttpConfig, ConfigError> {
    let r = h.get_ref();
    let listen = match &r.listen {
        None => DEFAULT_LISTEN.parse().expect("a valid default"),
        Some(s) => match s.get_ref().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                return ctx.at(
                    s.span(),
                    format!(
                        "http.listen: {:?} is not an address and port; write e.g. \"{DEFAULT_LISTEN}\" or \"[::1]:9750\"",
                        s.get_ref()
                    ),
                )
            }
        },
    };
    let allow_remote = r.allow_remote.as_ref().is_some_and(|b| *b.get_ref());
    if !listen.ip().is_loopback() && !allow_remote {
        let span = r.listen.as_ref().map_or(h.span(), |s| s.span());
        return ctx.at(
            span,
            format!(
                "http.listen: {listen} is reachable from other machines, and the endpoint shows file names and listener errors; listen on 127.0.0.1 or [::1], or add allow_remote = true to [http] to mean it"
            ),
        );
    }
    let healthz_max_lag = match &r.healthz_max_lag {
        None => None,
        Some(s) => match humantime::parse_duration(s.get_ref()) {
            Ok(d) if d > Duration::ZERO => Some(d),
            _ => {
                return ctx.at(
                    s.span(),
                    format!(
                        "http.healthz_max_lag: {:?} is not a duration longer than zero; write e.g. \"5m\" or \"90s\"",
                        s.get_ref()
                    ),
                )
            }
        },
    };
    let healthz_max_lag_bytes = match &r.healthz_max_lag_bytes {
        None => None,
        Some(b) if *b.get_ref() >= 0 => Some(*b.get_ref() as u64),
        Some(b) => {
            return ctx.at(
                b.span(),
                format!(
                    "http.healthz_max_lag_bytes: {} is negative; write a number of bytes, e.g. 104857600",
                    b.get_ref()
                ),
            )
        }
    };
    Ok(HttpConfig {
        listen,
        healthz_max_lag,
        healthz_max_lag_bytes,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    fn parse(http: &str) -> Result<Config, ConfigError> {
        let text = format!("state_dir = \"state\"\n{http}\n[[journal]]\nname = \"p4\"\npath = \"journal\"\n[[journal.listener]]\nname = \"copy\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"out\"\n");
        Config::parse(&text, Path::new("/tmp/cfg.toml"))
    }

    #[test]
    fn off_by_default_and_loopback_by_default_when_on() {
        assert!(parse("").unwrap().http.is_none());
        let h = parse("[http]\n").unwrap().http.unwrap();
        assert_eq!(h.listen.to_string(), "127.0.0.1:9750");
        let h = parse("[http]\nlisten = \"[::1]:9000\"\nhealthz_max_lag = \"5m\"\nhealthz_max_lag_bytes = 1000\n")
            .unwrap()
            .http
            .unwrap();
        assert_eq!(h.listen.port(), 9000);
        assert_eq!(h.healthz_max_lag, Some(std::time::Duration::from_secs(300)));
        assert_eq!(h.healthz_max_lag_bytes, Some(1000));
    }

    #[test]
    fn a_remote_address_needs_allow_remote_and_the_error_names_file_line_key() {
        let e = parse("[http]\nlisten = \"0.0.0.0:9750\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("config /tmp/cfg.toml, line 3: http.listen: 0.0.0.0:9750 is reachable from other machines"), "{e}");
        assert!(e.contains("allow_remote = true"), "{e}");
        let h = parse("[http]\nlisten = \"0.0.0.0:9750\"\nallow_remote = true\n")
            .unwrap()
            .http
            .unwrap();
        assert_eq!(h.listen.to_string(), "0.0.0.0:9750");
    }

    #[test]
    fn bad_values_name_their_line_and_key() {
        for (table, line, key) in [
            ("[http]\nlisten = \"localhost\"\n", 3, "http.listen"),
            (
                "[http]\n\nhealthz_max_lag = \"soon\"\n",
                4,
                "http.healthz_max_lag",
            ),
            (
                "[http]\nhealthz_max_lag_bytes = -1\n",
                3,
                "http.healthz_max_lag_bytes",
            ),
        ] {
            let e = parse(table).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("config /tmp/cfg.toml, line {line}: {key}:")),
                "{e}"
            );
        }
        let e = parse("[http]\nport = 1\n").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("port"), "{e}");
    }
}
