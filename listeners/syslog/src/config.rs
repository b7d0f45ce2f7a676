//! The `syslog` listener's `[journal.listener.config]` table, read strictly
//! (unknown keys are refused) in two stages: serde's [`RawConfig`], then
//! checked [`Settings`]. Every error names the listener, the key and what
//! to do.

use std::path::PathBuf;
use std::time::Duration;

use regex::bytes::Regex;
use serde::Deserialize;

use crate::level::Severity;
use crate::stamp::Zone;

/// A configuration problem, fatal for the listener.
#[derive(Debug, thiserror::Error)]
#[error("syslog listener `{listener}`: config key `{key}`: {why}")]
pub struct ConfigError {
    pub listener: String,
    pub key: String,
    pub why: String,
}

/// Where messages go: one target per listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A local syslog socket (datagram or stream, whichever it is).
    Unix(PathBuf),
    /// RFC 5426: one datagram per message.
    Udp(HostPort),
    /// RFC 6587 octet counting.
    Tcp(HostPort),
    /// RFC 5425: octet counting inside TLS.
    Tls(HostPort),
    /// RELP, rsyslog's acknowledged protocol.
    Relp(HostPort),
    /// RELP inside TLS.
    RelpTls(HostPort),
}

impl Target {
    /// Whether the target speaks TLS (and so needs `ca_file`).
    pub fn tls(&self) -> bool {
        matches!(self, Target::Tls(_) | Target::RelpTls(_))
    }
    pub fn host_port(&self) -> Option<&HostPort> {
        match self {
            Target::Unix(_) => None,
            Target::Udp(h)
            | Target::Tcp(h)
            | Target::Tls(h)
            | Target::Relp(h)
            | Target::RelpTls(h) => Some(h),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Message format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Rfc5424,
    Rfc3164,
}

/// What happens to an entry longer than `max_message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oversize {
    /// Several messages, each marked `part="i/n"`.
    Split,
    /// One message cut at the limit, marked `truncated="LEN"`.
    Truncate,
}

/// TLS files, already resolved against the config directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_file: PathBuf,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name the server certificate must carry.
    pub server_name: String,
}

/// The checked settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub url: String,
    pub target: Target,
    pub format: Format,
    pub facility: u8,
    pub severity: Severity,
    pub level: Option<Regex>,
    pub levels: Vec<(String, Severity)>,
    pub timestamp: Option<Regex>,
    pub timestamp_zone: Zone,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    pub include: Option<Regex>,
    pub exclude: Option<Regex>,
    pub max_message: usize,
    pub oversize: Oversize,
    pub window: usize,
    pub timeout: Duration,
    pub tls: Option<TlsFiles>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    target: Option<String>,
    format: Option<String>,
    facility: Option<String>,
    severity: Option<String>,
    level: Option<String>,
    levels: Option<std::collections::BTreeMap<String, String>>,
    timestamp: Option<String>,
    timestamp_zone: Option<String>,
    hostname: Option<String>,
    app_name: Option<String>,
    procid: Option<String>,
    msgid: Option<String>,
    include: Option<String>,
    exclude: Option<String>,
    max_message: Option<i64>,
    oversize: Option<String>,
    window: Option<i64>,
    timeout: Option<String>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
}

/// What the listener knows besides its table.
pub struct Context<'a> {
    pub listener: &'a str,
    /// Resolves a path of the config against the config file's directory.
    pub resolve: &'a dyn Fn(&std::path::Path) -> PathBuf,
    /// This machine's host name (the default of `hostname`).
    pub hostname: &'a str,
    /// This process's id (the default of `procid`).
    pub pid: u32,
}

const FACILITIES: &[&str] = &[
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// The smallest `max_message` accepted: RFC 5426's minimum every receiver takes.
pub const MIN_MESSAGE: usize = 480;
/// The largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;

/// Parses the listener's TOML table.
pub fn parse(toml_text: &str, cx: &Context<'_>) -> Result<Settings, ConfigError> {
    let err = |key: &str, why: String| ConfigError {
        listener: cx.listener.to_string(),
        key: key.to_string(),
        why,
    };
    let raw: RawConfig = toml::from_str(toml_text).map_err(|e| {
        err(
            "(table)",
            format!("{}; see docs/syslog.md for the keys", e.message()),
        )
    })?;
    let url = raw.target.clone().ok_or_else(|| {
        err("target", "is missing: set it to where messages go, e.g. target = \"relp://127.0.0.1:2514\" or \"unix:///dev/log\"".into())
    })?;
    let target = parse_target(&url).map_err(|why| err("target", why))?;
    let format = match raw.format.as_deref() {
        None | Some("rfc5424") => Format::Rfc5424,
        Some("rfc3164") => Format::Rfc3164,
        Some(o) => {
            return Err(err(
                "format",
                format!("{o:?}: use \"rfc5424\" or \"rfc3164\""),
            ))
        }
    };
    let facility = match raw.facility.as_deref() {
        None => 1,
        Some(f) => FACILITIES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(f))
            .ok_or_else(|| {
                err(
                    "facility",
                    format!("{f:?}: use one of {}", FACILITIES.join(", ")),
                )
            })? as u8,
    };
    let lv = levels_and_time(&raw, &err)?;
    let [hostname, app_name, procid, msgid] = header_fields(&raw, cx, &err)?;
    let (max_message, oversize, window, timeout) = limits(&raw, &target, &err)?;
    let tls = tls_files(
        &target,
        &raw.ca_file,
        &raw.cert_file,
        &raw.key_file,
        raw.server_name.clone(),
        cx,
        &err,
    )?;
    Ok(Settings {
        url,
        target,
        format,
        facility,
        severity: lv.severity,
        level: lv.level,
        levels: lv.levels,
        timestamp: lv.timestamp,
        timestamp_zone: lv.zone,
        hostname,
        app_name,
        procid,
        msgid,
        include: regex_key(&raw.include, "include", &err)?,
        exclude: regex_key(&raw.exclude, "exclude", &err)?,
        max_message,
        oversize,
        window,
        timeout,
        tls,
    })
}

type ErrFn<'a> = &'a dyn Fn(&str, String) -> ConfigError;

/// Severity and timestamp settings.
struct LevelsAndTime {
    severity: Severity,
    level: Option<Regex>,
    levels: Vec<(String, Severity)>,
    timestamp: Option<Regex>,
    zone: Zone,
}

fn levels_and_time(raw: &RawConfig, err: ErrFn<'_>) -> Result<LevelsAndTime, ConfigError> {
    let severity = match raw.severity.as_deref() {
        None => Severity::INFO,
        Some(s) => Severity::from_name(s.as_bytes()).ok_or_else(|| {
            err(
                "severity",
                format!("{s:?}: use a syslog severity (emerg … debug) or a Python/Java level name"),
            )
        })?,
    };
    let level = regex_key(&raw.level, "level", err)?;
    if level
        .as_ref()
        .is_some_and(|r| !r.capture_names().any(|n| n == Some("level")))
    {
        return Err(err("level", "needs a named group `level`, e.g. level = '\\b(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)\\b'".into()));
    }
    let mut levels = Vec::new();
    for (name, sev) in raw.levels.clone().unwrap_or_default() {
        let s = Severity::from_name(sev.as_bytes()).ok_or_else(|| {
            err("levels", format!("{name} = {sev:?}: the value must be a syslog severity (emerg, alert, crit, err, warning, notice, info, debug)"))
        })?;
        levels.push((name, s));
    }
    let timestamp = regex_key(&raw.timestamp, "timestamp", err)?;
    if timestamp
        .as_ref()
        .is_some_and(|r| !r.capture_names().any(|n| n == Some("timestamp")))
    {
        return Err(err("timestamp", "needs a named group `timestamp`, e.g. timestamp = '^(?P<timestamp>\\d{4}-\\d\\d-\\d\\d[ T][\\d:.,]+)'".into()));
    }
    let zone = match raw.timestamp_zone.as_deref() {
        None => Zone::UTC,
        Some(z) => Zone::parse(z.as_bytes()).ok_or_else(|| {
            err(
                "timestamp_zone",
                format!("{z:?}: use \"Z\" or an offset like \"+02:00\""),
            )
        })?,
    };
    Ok(LevelsAndTime {
        severity,
        level,
        levels,
        timestamp,
        zone,
    })
}

/// `hostname`, `app_name`, `procid` and `msgid`, within RFC 5424's limits.
fn header_fields(
    raw: &RawConfig,
    cx: &Context<'_>,
    err: ErrFn<'_>,
) -> Result<[String; 4], ConfigError> {
    let field = |key: &str,
                 v: &Option<String>,
                 default: String,
                 max: usize|
     -> Result<String, ConfigError> {
        let v = v.clone().unwrap_or(default);
        if v.is_empty() || v.len() > max || !v.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(err(key, format!("{v:?}: use 1 to {max} printable ASCII characters without spaces (\"-\" for none)")));
        }
        Ok(v)
    };
    let mut host: String = cx
        .hostname
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if host.is_empty() {
        host = "-".into();
    }
    Ok([
        field("hostname", &raw.hostname, host, 255)?,
        field("app_name", &raw.app_name, "logdaemon".into(), 48)?,
        field("procid", &raw.procid, cx.pid.to_string(), 128)?,
        field("msgid", &raw.msgid, "-".into(), 32)?,
    ])
}

/// `max_message`, `oversize`, `window` and `timeout`.
fn limits(
    raw: &RawConfig,
    target: &Target,
    err: ErrFn<'_>,
) -> Result<(usize, Oversize, usize, Duration), ConfigError> {
    let limit = if matches!(target, Target::Udp(_)) {
        MAX_DATAGRAM
    } else {
        1 << 30
    };
    let max_message = match raw.max_message {
        None => 8192,
        Some(n) if n >= MIN_MESSAGE as i64 && n <= limit as i64 => n as usize,
        Some(n) => {
            return Err(err(
                "max_message",
                format!("{n}: use {MIN_MESSAGE} to {limit} bytes"),
            ))
        }
    };
    let oversize = match raw.oversize.as_deref() {
        None | Some("split") => Oversize::Split,
        Some("truncate") => Oversize::Truncate,
        Some(o) => {
            return Err(err(
                "oversize",
                format!("{o:?}: use \"split\" or \"truncate\""),
            ))
        }
    };
    let window = match raw.window {
        None => 1024,
        Some(n) if (1..=65_536).contains(&n) => n as usize,
        Some(n) => return Err(err("window", format!("{n}: use 1 to 65536 transactions"))),
    };
    let timeout = match raw.timeout.as_deref() {
        None => Duration::from_secs(30),
        Some(t) => humantime::parse_duration(t)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| err("timeout", format!("{t:?}: use a duration like \"30s\"")))?,
    };
    Ok((max_message, oversize, window, timeout))
}

fn regex_key(
    v: &Option<String>,
    key: &str,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<Regex>, ConfigError> {
    v.as_deref()
        .map(|s| Regex::new(s).map_err(|e| err(key, format!("not a valid regex: {e}"))))
        .transpose()
}

fn tls_files(
    target: &Target,
    ca: &Option<PathBuf>,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    server_name: Option<String>,
    cx: &Context<'_>,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<TlsFiles>, ConfigError> {
    if !target.tls() {
        for (k, set) in [
            ("ca_file", ca.is_some()),
            ("cert_file", cert.is_some()),
            ("key_file", key.is_some()),
            ("server_name", server_name.is_some()),
        ] {
            if set {
                return Err(err(k, "is only for tls:// and relp+tls:// targets".into()));
            }
        }
        return Ok(None);
    }
    let ca = ca.as_ref().ok_or_else(|| {
        err("ca_file", "is missing: a TLS target needs the PEM file of the CA that signed the server's certificate".into())
    })?;
    if cert.is_some() != key.is_some() {
        let k = if cert.is_some() {
            "key_file"
        } else {
            "cert_file"
        };
        return Err(err(
            k,
            "a client certificate needs both cert_file and key_file".into(),
        ));
    }
    let host = &target.host_port().expect("network target").host;
    Ok(Some(TlsFiles {
        ca_file: (cx.resolve)(ca),
        cert_file: cert.as_deref().map(cx.resolve),
        key_file: key.as_deref().map(cx.resolve),
        server_name: server_name.unwrap_or_else(|| host.clone()),
    }))
}

/// Parses a target URL.
pub fn parse_target(url: &str) -> Result<Target, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url:?} is not a URL: use unix:///dev/log, udp://HOST:PORT, tcp://HOST:PORT, tls://HOST:PORT, relp://HOST:PORT or relp+tls://HOST:PORT"));
    };
    if scheme == "unix" {
        if !rest.starts_with('/') {
            return Err(format!(
                "{url:?}: a unix socket path must be absolute, e.g. unix:///dev/log"
            ));
        }
        return Ok(Target::Unix(PathBuf::from(rest)));
    }
    let hp = host_port(rest).map_err(|why| format!("{url:?}: {why}"))?;
    Ok(match scheme {
        "udp" => Target::Udp(hp),
        "tcp" => Target::Tcp(hp),
        "tls" => Target::Tls(hp),
        "relp" => Target::Relp(hp),
        "relp+tls" => Target::RelpTls(hp),
        other => {
            return Err(format!(
                "{url:?}: unknown scheme {other:?}: use unix, udp, tcp, tls, relp or relp+tls"
            ))
        }
    })
}

fn host_port(s: &str) -> Result<HostPort, String> {
    let s = s.strip_suffix('/').unwrap_or(s);
    let (host, port) = if let Some(r) = s.strip_prefix('[') {
        let (h, p) = r
            .split_once("]:")
            .ok_or("an IPv6 address needs a port: [::1]:514")?;
        (h, p)
    } else {
        s.rsplit_once(':')
            .ok_or("needs a port, e.g. 127.0.0.1:514")?
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("{host:?} is not a host name or address"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("{port:?} is not a port (1 to 65535)"))?;
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests;
