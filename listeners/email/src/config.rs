//! The listener's `[journal.listener.config]` table, read strictly
//! (unknown keys are refused) and turned into checked [`Settings`].
//! Every error names the listener, the key and what to do.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use regex::bytes::Regex;
use serde::Deserialize;

use crate::rules::{FieldTest, Rule, Rules};
use crate::template::Template;

/// A password. `Debug` shows `Secret(***)`, so no `{:?}` of the settings
/// (in a log line, a panic, an error) can print it; [`Secret::expose`] is
/// the one way to the text, for the SMTP login.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The password itself; pass it to the login only, never to a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A configuration problem, fatal for the listener.
#[derive(Debug, thiserror::Error)]
#[error("email listener `{listener}`: config key `{key}`: {why}")]
pub struct ConfigError {
    pub listener: String,
    pub key: String,
    pub why: String,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text; only sensible for a relay on the loopback interface.
    None,
    /// Plain connection upgraded with STARTTLS, which is required.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnReject {
    /// A permanent (5xx) refusal stops the listener.
    Fatal,
    /// A permanent refusal is logged and the digest counts as handled.
    Skip,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Submitted changes from `db.change`, described from `db.desc`.
    #[serde(rename = "p4-changes")]
    P4Changes,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawRule {
    table: Option<String>,
    op: Option<OneOrMany>,
    field: Option<usize>,
    equals: Option<String>,
    matches: Option<String>,
    regex: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    smtp_host: String,
    smtp_port: Option<u16>,
    tls: Option<TlsMode>,
    from: String,
    to: Vec<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    ca_file: Option<PathBuf>,
    timeout: Option<String>,
    data_timeout: Option<String>,
    preset: Option<Preset>,
    rules: Option<Vec<RawRule>>,
    max_entries: Option<usize>,
    max_delay: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    on_reject: Option<OnReject>,
    max_messages_per_hour: Option<u32>,
}

/// Checked settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: TlsMode,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// Domain of `from`, used in Message-IDs.
    pub from_domain: String,
    /// Username and password (never logged).
    pub credentials: Option<(String, Secret)>,
    /// Extra trusted CA certificate (PEM) for the relay's certificate.
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Wait for the server's answer after the message data.
    pub data_timeout: Duration,
    pub preset: Option<Preset>,
    pub rules: Rules,
    /// Entries per digest; 1 with the `p4-changes` preset (one mail per change).
    pub max_entries: usize,
    pub max_delay: Duration,
    pub subject: Template,
    pub body: Template,
    pub on_reject: OnReject,
    pub max_messages_per_hour: Option<u32>,
    /// Whether `tls = "none"` is used for a host that is not loopback.
    pub plaintext_to_remote: bool,
}

pub const DEFAULT_MAX_ENTRIES: usize = 100;
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(300);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// RFC 5321 section 4.5.3.2.6: ten minutes for the answer to the data.
pub const DEFAULT_DATA_TIMEOUT: Duration = Duration::from_secs(600);
const SUBJECT_LINES: &str = "[logdaemon] {journal}: {count} entries: {first_line}";
const BODY_LINES: &str = "{count} entries from journal {journal}, {first} to {last}:\n\n{entries}";
const SUBJECT_CHANGES: &str = "[logdaemon] {journal}: change {change} by {user}: {first_line}";
const BODY_CHANGES: &str = "{entries}";

/// Reads the config. `format` is the journal's (`p4` or `lines`); `env`
/// looks up environment variables; relative paths resolve with `resolve`.
pub fn parse(
    listener: &str,
    format: &str,
    toml_text: &str,
    resolve: impl Fn(&std::path::Path) -> PathBuf,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let err = |key: &str, why: String| ConfigError {
        listener: listener.to_string(),
        key: key.to_string(),
        why,
    };
    let raw: RawConfig = toml::from_str(toml_text).map_err(|e| {
        err(
            "(table)",
            format!("{}; see docs/email.md for the keys", e.message().trim_end()),
        )
    })?;

    let tls = raw.tls.unwrap_or(TlsMode::Starttls);
    let smtp_port = raw.smtp_port.unwrap_or(match tls {
        TlsMode::Tls => 465,
        TlsMode::Starttls => 587,
        TlsMode::None => 25,
    });
    if raw.smtp_host.trim().is_empty() {
        return Err(err(
            "smtp_host",
            "is empty; set the SMTP relay's host name or address".into(),
        ));
    }
    let loopback = raw.smtp_host == "localhost"
        || raw
            .smtp_host
            .parse::<IpAddr>()
            .is_ok_and(|a| a.is_loopback());

    let from: Mailbox = raw
        .from
        .parse()
        .map_err(|e| err("from", format!("`{}` is not an address: {e}", raw.from)))?;
    let from_domain = from.email.domain().to_string();
    if raw.to.is_empty() {
        return Err(err("to", "is empty; list at least one recipient".into()));
    }
    let to = raw
        .to
        .iter()
        .map(|t| {
            t.parse::<Mailbox>()
                .map_err(|e| err("to", format!("`{t}` is not an address: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let password = match (&raw.password_file, &raw.password_env) {
        (Some(_), Some(_)) => {
            return Err(err(
                "password_file",
                "and `password_env` are both set; keep one".into(),
            ))
        }
        (Some(f), None) => {
            let p = resolve(f);
            let text = std::fs::read_to_string(&p).map_err(|e| {
                err(
                    "password_file",
                    format!(
                        "cannot read {}: {e}; create it (mode 0600) or fix the path",
                        p.display()
                    ),
                )
            })?;
            let pw = text.trim_end_matches(['\n', '\r']).to_string();
            if pw.is_empty() {
                return Err(err("password_file", format!("{} is empty", p.display())));
            }
            Some(pw)
        }
        (None, Some(var)) => match env(var) {
            Some(v) if !v.is_empty() => Some(v),
            _ => {
                return Err(err(
                    "password_env",
                    format!("environment variable `{var}` is not set or empty"),
                ))
            }
        },
        (None, None) => None,
    };
    let credentials = match (raw.username, password) {
        (Some(u), Some(p)) => Some((u, Secret::from(p))),
        (None, None) => None,
        (Some(_), None) => {
            return Err(err(
                "username",
                "is set without `password_file` or `password_env`".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(err(
                "username",
                "is missing while a password is configured".into(),
            ))
        }
    };
    if credentials.is_some() && tls == TlsMode::None && !loopback {
        return Err(err("tls", "is \"none\" with credentials to a remote host; the password would cross the network in clear. Use \"starttls\" or \"tls\"".into()));
    }

    let ca_pem = match &raw.ca_file {
        None => None,
        Some(_) if tls == TlsMode::None => {
            return Err(err(
                "ca_file",
                "is set with tls = \"none\"; it only applies to \"starttls\" or \"tls\"".into(),
            ))
        }
        Some(f) => {
            let p = resolve(f);
            Some(std::fs::read(&p).map_err(|e| err("ca_file", format!("cannot read {}: {e}; give the PEM file of the CA that signed the relay's certificate", p.display())))?)
        }
    };

    let duration =
        |key: &str, v: &Option<String>, default: Duration| -> Result<Duration, ConfigError> {
            match v {
                None => Ok(default),
                Some(s) => humantime::parse_duration(s).map_err(|e| {
                    err(
                        key,
                        format!("`{s}` is not a duration ({e}); write e.g. \"30s\" or \"5m\""),
                    )
                }),
            }
        };
    let timeout = duration("timeout", &raw.timeout, DEFAULT_TIMEOUT)?;
    let data_timeout = duration("data_timeout", &raw.data_timeout, DEFAULT_DATA_TIMEOUT)?;
    for (key, d) in [("timeout", timeout), ("data_timeout", data_timeout)] {
        if d.is_zero() {
            return Err(err(key, "must be more than 0s".into()));
        }
    }
    let max_delay = duration("max_delay", &raw.max_delay, DEFAULT_MAX_DELAY)?;

    if raw.preset.is_some() && raw.rules.is_some() {
        return Err(err("preset", "and `rules` are both set; keep one".into()));
    }
    if raw.preset == Some(Preset::P4Changes) && format != "p4" {
        return Err(err(
            "preset",
            format!("\"p4-changes\" needs a p4 journal, this journal's format is `{format}`"),
        ));
    }
    let mut rules = Vec::new();
    for (i, r) in raw.rules.unwrap_or_default().into_iter().enumerate() {
        rules.push(rule(r, format).map_err(|why| err(&format!("rules[{i}]"), why))?);
    }

    let max_entries = raw.max_entries.unwrap_or(DEFAULT_MAX_ENTRIES);
    if max_entries == 0 {
        return Err(err("max_entries", "must be at least 1".into()));
    }
    let changes = raw.preset == Some(Preset::P4Changes);
    let subject = Template::parse(raw.subject.as_deref().unwrap_or(if changes {
        SUBJECT_CHANGES
    } else {
        SUBJECT_LINES
    }))
    .map_err(|why| err("subject", why))?;
    let body = Template::parse(raw.body.as_deref().unwrap_or(if changes {
        BODY_CHANGES
    } else {
        BODY_LINES
    }))
    .map_err(|why| err("body", why))?;
    if raw.max_messages_per_hour == Some(0) {
        return Err(err(
            "max_messages_per_hour",
            "must be at least 1 (leave it out for no limit)".into(),
        ));
    }

    Ok(Settings {
        smtp_host: raw.smtp_host,
        smtp_port,
        tls,
        from,
        to,
        from_domain,
        credentials,
        ca_pem,
        timeout,
        data_timeout,
        preset: raw.preset,
        rules: Rules(rules),
        max_entries: if changes { 1 } else { max_entries },
        max_delay,
        subject,
        body,
        on_reject: raw.on_reject.unwrap_or(OnReject::Fatal),
        max_messages_per_hour: raw.max_messages_per_hour,
        plaintext_to_remote: tls == TlsMode::None && !loopback,
    })
}

fn rule(r: RawRule, format: &str) -> Result<Rule, String> {
    let p4_only = r.table.is_some() || r.op.is_some() || r.field.is_some();
    if p4_only && format != "p4" {
        return Err(format!("`table`, `op` and `field` apply to p4 journals; this journal's format is `{format}`, use `regex`"));
    }
    let field = match (r.field, r.equals, r.matches) {
        (None, None, None) => None,
        (Some(i), Some(v), None) => Some((i, FieldTest::Equals(v.into_bytes()))),
        (Some(i), None, Some(m)) => Some((
            i,
            FieldTest::Matches(Regex::new(&m).map_err(|e| format!("`matches`: {e}"))?),
        )),
        (Some(_), None, None) => return Err("`field` needs `equals` or `matches`".into()),
        (Some(_), Some(_), Some(_)) => {
            return Err("`equals` and `matches` are both set; keep one".into())
        }
        (None, _, _) => return Err("`equals` / `matches` need `field` (the field's index)".into()),
    };
    let rule = Rule {
        table: r.table.map(String::into_bytes),
        ops: match r.op {
            None => Vec::new(),
            Some(OneOrMany::One(o)) => vec![o.into_bytes()],
            Some(OneOrMany::Many(v)) => v.into_iter().map(String::into_bytes).collect(),
        },
        field,
        regex: r
            .regex
            .map(|s| Regex::new(&s).map_err(|e| format!("`regex`: {e}")))
            .transpose()?,
    };
    if rule.table.is_none() && rule.ops.is_empty() && rule.field.is_none() && rule.regex.is_none() {
        return Err("is empty; give `regex`, or for p4 `table`, `op`, `field`".into());
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
smtp_host = "127.0.0.1"
smtp_port = 2525
tls = "none"
from = "logdaemon@example.com"
to = ["dev@example.com"]
preset = "p4-changes"
max_entries = 100
max_delay = "30s"
"#;

    fn p(format: &str, s: &str) -> Result<Settings, ConfigError> {
        parse(
            "reviews",
            format,
            s,
            |p| PathBuf::from("/etc/logdaemon").join(p),
            |v| (v == "SMTP_PW").then(|| "s3cret".to_string()),
        )
    }

    #[test]
    fn the_documented_example_works() {
        let s = p("p4", EXAMPLE).unwrap();
        assert_eq!(s.smtp_port, 2525);
        assert_eq!(s.tls, TlsMode::None);
        assert_eq!(s.preset, Some(Preset::P4Changes));
        assert_eq!(s.max_entries, 1, "the preset mails one change per message");
        assert_eq!(s.max_delay, Duration::from_secs(30));
        assert_eq!(s.from_domain, "example.com");
        assert!(!s.plaintext_to_remote);
        assert_eq!(s.on_reject, OnReject::Fatal);
    }

    #[test]
    fn errors_name_listener_key_and_fix() {
        let e = p("p4", &format!("{EXAMPLE}\nbogus = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`reviews`") && e.contains("bogus"), "{e}");
        let e = p("lines", EXAMPLE).unwrap_err().to_string();
        assert!(e.contains("`preset`") && e.contains("lines"), "{e}");
        let e = p("p4", &EXAMPLE.replace("30s", "soon"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`max_delay`") && e.contains("soon"), "{e}");
        let e = p(
            "p4",
            &format!("{EXAMPLE}\nusername = \"u\"\npassword_env = \"NOPE\"\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`password_env`") && e.contains("NOPE"), "{e}");
        let e = p("p4", &format!("{EXAMPLE}\nsubject = \"{{whatever}}\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`subject`") && e.contains("whatever"), "{e}");
    }

    #[test]
    fn password_from_env_or_file_never_inline() {
        let s = p(
            "p4",
            &format!("{EXAMPLE}\nusername = \"u\"\npassword_env = \"SMTP_PW\"\n"),
        )
        .unwrap();
        assert_eq!(s.credentials, Some(("u".into(), "s3cret".into())));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "filepw\n").unwrap();
        let cfg = format!(
            "{EXAMPLE}\nusername = \"u\"\npassword_file = \"{}\"\n",
            f.display()
        );
        assert_eq!(
            p("p4", &cfg).unwrap().credentials,
            Some(("u".into(), "filepw".into()))
        );
        assert!(p("p4", &format!("{EXAMPLE}\npassword = \"x\"\n")).is_err());
    }

    #[test]
    fn debug_of_the_settings_never_shows_the_password() {
        let s = p(
            "p4",
            &format!("{EXAMPLE}\nusername = \"u\"\npassword_env = \"SMTP_PW\"\n"),
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(
            shown.contains("Secret(***)") && shown.contains("\"u\""),
            "{shown}"
        );
        assert!(
            !shown.contains("s3cret"),
            "the password is in the Debug output: {shown}"
        );
        assert_eq!(s.credentials.unwrap().1.expose(), "s3cret");
    }

    #[test]
    fn plaintext_to_a_remote_host_is_flagged() {
        let s = p("p4", &EXAMPLE.replace("127.0.0.1", "mail.example.com")).unwrap();
        assert!(s.plaintext_to_remote);
        let with_pw = format!(
            "{}\nusername = \"u\"\npassword_env = \"SMTP_PW\"\n",
            EXAMPLE.replace("127.0.0.1", "mail.example.com")
        );
        assert!(p("p4", &with_pw)
            .unwrap_err()
            .to_string()
            .contains("in clear"));
    }

    #[test]
    fn rules_are_checked_against_the_format() {
        let base =
            "smtp_host = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n";
        let s = p(
            "lines",
            &format!("{base}rules = [{{ regex = \"ERROR\" }}]\n"),
        )
        .unwrap();
        assert_eq!(s.rules.0.len(), 1);
        assert_eq!(s.max_entries, DEFAULT_MAX_ENTRIES);
        let e = p(
            "lines",
            &format!("{base}rules = [{{ table = \"db.change\" }}]\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("rules[0]") && e.contains("regex"), "{e}");
        let e = p("p4", &format!("{base}rules = [{{ field = 7 }}]\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("equals"), "{e}");
        let ok = p("p4", &format!("{base}rules = [{{ table = \"db.change\", op = [\"pv\", \"rv\"], field = 7, equals = \"1\" }}]\n")).unwrap();
        assert_eq!(ok.rules.0[0].ops.len(), 2);
    }
}
