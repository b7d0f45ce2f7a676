//! The `nats` listener's `[journal.listener.config]` table, read strictly
//! (unknown keys are refused) and turned into checked [`Settings`] before
//! anything touches the network. Every error names the listener, the key
//! and what to do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::secret::{self, Secret};

/// A configuration problem, fatal for the listener.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("nats listener `{listener}`: config key `{key}`: {why}")]
pub struct ConfigError {
    pub listener: String,
    pub key: String,
    pub why: String,
}

/// What each message carries as its payload.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// The entry's bytes exactly as in the journal.
    Raw,
    /// The entry as one JSON object (the SDK's shared jsonl shape).
    Jsonl,
}

/// Where a stream created by the listener keeps its messages.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    File,
    Memory,
}

/// How the listener authenticates to the servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    UserPassword {
        user: String,
        password: Secret,
    },
    Token(Secret),
    /// An NKey seed (the file's first line).
    NKey(Secret),
    /// A `.creds` file (JWT and seed), read by the client.
    Creds(PathBuf),
}

/// TLS settings: the server certificate is always verified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    pub required: bool,
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM).
    pub client: Option<(PathBuf, PathBuf)>,
}

/// The stream to create when it does not exist (`create_stream = true`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateStream {
    pub subjects: Vec<String>,
    pub replicas: usize,
    pub storage: Storage,
    pub duplicate_window: Duration,
}

/// The checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub servers: Vec<String>,
    /// The subject template as configured (see [`crate::message::subject`]).
    pub subject: String,
    pub stream: String,
    pub create: Option<CreateStream>,
    pub payload: Payload,
    /// Host name used in the subject and the message ids.
    pub host: Option<String>,
    /// Publishes in flight at once.
    pub max_in_flight: usize,
    /// Connect, request and acknowledgement timeout.
    pub timeout: Duration,
    /// Publish with the expected last subject sequence (exactly once);
    /// `false` publishes at least once, de-duplicated only by `Nats-Msg-Id`
    /// within the stream's duplicate window.
    pub exactly_once: bool,
    pub auth: Auth,
    pub tls: Tls,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    servers: Option<OneOrMany>,
    subject: Option<String>,
    stream: Option<String>,
    create_stream: Option<bool>,
    stream_subjects: Option<Vec<String>>,
    replicas: Option<usize>,
    storage: Option<Storage>,
    duplicate_window: Option<String>,
    payload: Option<Payload>,
    host: Option<String>,
    max_in_flight: Option<usize>,
    timeout: Option<String>,
    exactly_once: Option<bool>,
    user: Option<String>,
    password_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
    nkey_seed_file: Option<PathBuf>,
    creds_file: Option<PathBuf>,
    tls: Option<bool>,
    tls_ca_file: Option<PathBuf>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
}

/// Most publishes in flight that `max_in_flight` accepts.
pub const MAX_IN_FLIGHT: usize = 10_000;

impl Settings {
    /// Parses and checks the table; relative paths are taken from
    /// `config_dir`. Secret files are read here, after their permissions
    /// are checked.
    pub fn parse(
        listener: &str,
        toml_text: &str,
        config_dir: &Path,
    ) -> Result<Settings, ConfigError> {
        let err = |key: &str, why: String| ConfigError {
            listener: listener.to_string(),
            key: key.to_string(),
            why,
        };
        let raw: RawConfig = toml::from_str(toml_text).map_err(|e| {
            err(
                "(table)",
                format!("{}; see docs/nats.md for the keys", e.message()),
            )
        })?;
        let resolve = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                config_dir.join(p)
            }
        };
        let servers =
            match raw.servers {
                None => return Err(err(
                    "servers",
                    "is missing: list the NATS servers, e.g. servers = [\"nats://127.0.0.1:4222\"]"
                        .into(),
                )),
                Some(OneOrMany::One(s)) => vec![s],
                Some(OneOrMany::Many(v)) => v,
            };
        if servers.is_empty() {
            return Err(err(
                "servers",
                "is empty: list at least one server URL".into(),
            ));
        }
        for s in &servers {
            check_url(s).map_err(|why| err("servers", why))?;
        }
        let subject = raw.subject.ok_or_else(|| {
            err(
                "subject",
                "is missing: e.g. subject = \"journal.{host}.{journal}\"".into(),
            )
        })?;
        crate::message::check_template(&subject).map_err(|why| err("subject", why))?;
        let stream = raw.stream.ok_or_else(|| {
            err(
                "stream",
                "is missing: name the JetStream stream that holds the subject".into(),
            )
        })?;
        if stream.is_empty() || stream.contains(['.', '*', '>', ' ', '/', '\\']) {
            return Err(err(
                "stream",
                format!("{stream:?} is not a stream name (no dots, wildcards, spaces or slashes)"),
            ));
        }
        let create = if raw.create_stream.unwrap_or(false) {
            let replicas = raw.replicas.unwrap_or(1);
            if !(1..=5).contains(&replicas) {
                return Err(err(
                    "replicas",
                    format!("{replicas} is out of range: 1 to 5"),
                ));
            }
            let duplicate_window = duration(raw.duplicate_window.as_deref(), "2m")
                .map_err(|why| err("duplicate_window", why))?;
            Some(CreateStream {
                subjects: raw.stream_subjects.unwrap_or_default(),
                replicas,
                storage: raw.storage.unwrap_or(Storage::File),
                duplicate_window,
            })
        } else {
            for (key, set) in [
                ("stream_subjects", raw.stream_subjects.is_some()),
                ("replicas", raw.replicas.is_some()),
                ("storage", raw.storage.is_some()),
                ("duplicate_window", raw.duplicate_window.is_some()),
            ] {
                if set {
                    return Err(err(key, "only applies with create_stream = true".into()));
                }
            }
            None
        };
        let max_in_flight = raw.max_in_flight.unwrap_or(256);
        if !(1..=MAX_IN_FLIGHT).contains(&max_in_flight) {
            return Err(err(
                "max_in_flight",
                format!("{max_in_flight} is out of range: 1 to {MAX_IN_FLIGHT}"),
            ));
        }
        let timeout = duration(raw.timeout.as_deref(), "10s").map_err(|why| err("timeout", why))?;
        if let Some(h) = &raw.host {
            if h.is_empty() {
                return Err(err(
                    "host",
                    "is empty; leave it out to use this machine's host name".into(),
                ));
            }
        }

        let read = |key: &str, p: &PathBuf| -> Result<Secret, ConfigError> {
            secret::read(&resolve(p)).map_err(|why| err(key, why))
        };
        let mut auths = Vec::new();
        if let Some(user) = raw.user {
            let Some(pf) = &raw.password_file else {
                return Err(err("user", "is set without `password_file`".into()));
            };
            auths.push((
                "user",
                Auth::UserPassword {
                    user,
                    password: read("password_file", pf)?,
                },
            ));
        } else if raw.password_file.is_some() {
            return Err(err("password_file", "is set without `user`".into()));
        }
        if let Some(p) = &raw.token_file {
            auths.push(("token_file", Auth::Token(read("token_file", p)?)));
        }
        if let Some(p) = &raw.nkey_seed_file {
            auths.push(("nkey_seed_file", Auth::NKey(read("nkey_seed_file", p)?)));
        }
        if let Some(p) = &raw.creds_file {
            let p = resolve(p);
            secret::check(&p).map_err(|why| err("creds_file", why))?;
            auths.push(("creds_file", Auth::Creds(p)));
        }
        if auths.len() > 1 {
            let keys: Vec<&str> = auths.iter().map(|(k, _)| *k).collect();
            return Err(err(
                keys[1],
                format!(
                    "and `{}` are both set; keep one way to authenticate",
                    keys[0]
                ),
            ));
        }
        let auth = auths.pop().map(|(_, a)| a).unwrap_or(Auth::None);

        let client = match (&raw.tls_cert_file, &raw.tls_key_file) {
            (Some(c), Some(k)) => {
                let k = resolve(k);
                secret::check(&k).map_err(|why| err("tls_key_file", why))?;
                Some((resolve(c), k))
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(err("tls_cert_file", "is set without `tls_key_file`".into()))
            }
            (None, Some(_)) => {
                return Err(err("tls_key_file", "is set without `tls_cert_file`".into()))
            }
        };
        let ca_file = raw.tls_ca_file.as_ref().map(resolve);
        if let Some(ca) = &ca_file {
            std::fs::metadata(ca)
                .map_err(|e| err("tls_ca_file", format!("cannot read {}: {e}", ca.display())))?;
        }
        let required = raw.tls.unwrap_or(false)
            || ca_file.is_some()
            || client.is_some()
            || servers.iter().all(|s| s.starts_with("tls://"));
        let tls = Tls {
            required,
            ca_file,
            client,
        };
        if auth != Auth::None && !tls.required {
            if let Some(s) = servers.iter().find(|s| !is_loopback(s)) {
                return Err(err(
                    "tls",
                    format!("credentials would cross the network in clear text to {s}: set tls = true (and tls_ca_file), or use a loopback server"),
                ));
            }
        }
        Ok(Settings {
            servers,
            subject,
            stream,
            create,
            payload: raw.payload.unwrap_or(Payload::Raw),
            host: raw.host,
            max_in_flight,
            timeout,
            exactly_once: raw.exactly_once.unwrap_or(true),
            auth,
            tls,
        })
    }
}

fn duration(v: Option<&str>, default: &str) -> Result<Duration, String> {
    let text = v.unwrap_or(default);
    let d = humantime::parse_duration(text).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write e.g. \"10s\", \"500ms\", \"2m\"")
    })?;
    if d.is_zero() {
        return Err(format!("{text:?} is zero; give a positive duration"));
    }
    Ok(d)
}

/// The host part of a server URL (`nats://h:4222`, `tls://h`, `h:4222`).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    rest.split([':', '/']).next().unwrap_or("")
}

fn is_loopback(url: &str) -> bool {
    let h = host_of(url);
    h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

fn check_url(url: &str) -> Result<(), String> {
    if let Some((scheme, _)) = url.split_once("://") {
        if !matches!(scheme, "nats" | "tls") {
            return Err(format!(
                "{url:?}: scheme {scheme:?} is not \"nats\" or \"tls\""
            ));
        }
    }
    if url.split_once("://").map_or(url, |(_, r)| r).contains('@') {
        return Err(format!(
            "{url:?} holds credentials; put them in `user`/`password_file`, `token_file`, `nkey_seed_file` or `creds_file`"
        ));
    }
    if host_of(url).is_empty() {
        return Err(format!(
            "{url:?} names no host; write e.g. \"nats://127.0.0.1:4222\""
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Settings, ConfigError> {
        Settings::parse("pub", t, Path::new("/etc/ld"))
    }

    const MIN: &str = "servers = [\"nats://127.0.0.1:4222\"]\nsubject = \"j.{host}.{journal}\"\nstream = \"JOURNALS\"\n";

    #[test]
    fn defaults() {
        let s = parse(MIN).unwrap();
        assert_eq!(s.servers, ["nats://127.0.0.1:4222"]);
        assert_eq!(s.payload, Payload::Raw);
        assert!(s.exactly_once);
        assert_eq!(s.max_in_flight, 256);
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.create, None);
        assert_eq!(s.auth, Auth::None);
        assert!(!s.tls.required);
    }

    #[test]
    fn create_stream_keys() {
        let s = parse(&format!(
            "{MIN}create_stream = true\nreplicas = 3\nstorage = \"memory\"\nduplicate_window = \"1s\"\nstream_subjects = [\"j.>\"]"
        ))
        .unwrap();
        assert_eq!(
            s.create,
            Some(CreateStream {
                subjects: vec!["j.>".into()],
                replicas: 3,
                storage: Storage::Memory,
                duplicate_window: Duration::from_secs(1)
            })
        );
    }

    #[test]
    fn errors_name_the_key() {
        let key = |t: &str| parse(t).unwrap_err().key;
        assert_eq!(key("subject = \"a\"\nstream = \"S\""), "servers");
        assert_eq!(
            key("servers = []\nsubject = \"a\"\nstream = \"S\""),
            "servers"
        );
        assert_eq!(
            key("servers = \"http://x\"\nsubject = \"a\"\nstream = \"S\""),
            "servers"
        );
        assert_eq!(
            key("servers = \"nats://u:p@x\"\nsubject = \"a\"\nstream = \"S\""),
            "servers"
        );
        assert_eq!(key("servers = \"x:1\"\nstream = \"S\""), "subject");
        assert_eq!(
            key("servers = \"x:1\"\nsubject = \"a.*\"\nstream = \"S\""),
            "subject"
        );
        assert_eq!(
            key("servers = \"x:1\"\nsubject = \"a.{nope}\"\nstream = \"S\""),
            "subject"
        );
        assert_eq!(
            key("servers = \"x:1\"\nsubject = \"a\"\nstream = \"S.x\""),
            "stream"
        );
        assert_eq!(key(&format!("{MIN}replicas = 3")), "replicas");
        assert_eq!(
            key(&format!("{MIN}create_stream = true\nreplicas = 7")),
            "replicas"
        );
        assert_eq!(
            key(&format!(
                "{MIN}create_stream = true\nduplicate_window = \"soon\""
            )),
            "duplicate_window"
        );
        assert_eq!(key(&format!("{MIN}max_in_flight = 0")), "max_in_flight");
        assert_eq!(key(&format!("{MIN}timeout = \"0s\"")), "timeout");
        assert_eq!(key(&format!("{MIN}user = \"u\"")), "user");
        assert_eq!(key(&format!("{MIN}tls_cert_file = \"c\"")), "tls_cert_file");
        let e = parse(&format!("{MIN}pasword = \"x\"")).unwrap_err();
        assert_eq!(e.key, "(table)");
        assert!(e.why.contains("pasword"), "{e}");
        assert!(
            e.to_string()
                .starts_with("nats listener `pub`: config key `(table)`: "),
            "{e}"
        );
    }

    #[test]
    fn credentials_in_clear_to_a_remote_server_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tok = dir.path().join("token");
        std::fs::write(&tok, "s3cret\n").unwrap();
        std::fs::set_permissions(&tok, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let t = |servers: &str, extra: &str| {
            Settings::parse(
                "pub",
                &format!("servers = {servers}\nsubject = \"a\"\nstream = \"S\"\ntoken_file = \"token\"\n{extra}"),
                dir.path(),
            )
        };
        let e = t("\"nats://10.0.0.2:4222\"", "").unwrap_err();
        assert_eq!(e.key, "tls");
        assert!(e.why.contains("10.0.0.2"), "{e}");
        let s = t("\"nats://127.0.0.1:4222\"", "").unwrap();
        assert_eq!(s.auth, Auth::Token(Secret::from("s3cret")));
        assert!(t("\"nats://10.0.0.2:4222\"", "tls = true").is_ok());
        assert_eq!(
            t("\"x:1\"", "nkey_seed_file = \"token\"").unwrap_err().key,
            "nkey_seed_file"
        );
    }

    #[test]
    fn urls() {
        assert_eq!(host_of("nats://h:4222"), "h");
        assert_eq!(host_of("h:4222"), "h");
        assert_eq!(host_of("tls://[::1]:4222"), "::1");
        assert!(is_loopback("nats://127.0.0.1:4222"));
        assert!(is_loopback("[::1]:4222"));
        assert!(!is_loopback("nats://nats.example.com"));
    }
}
