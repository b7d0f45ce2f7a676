//! The listener's `[journal.listener.config]` table, parsed and checked at
//! open so that every mistake is reported once, by key, before anything
//! touches the network.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{fatal, Result};

/// Which journal positions are safe places to stop shipping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transactions {
    /// p4: only after an `@ex@` that closes a transaction while no `@mx@`
    /// is open, so the standby never holds half a transaction.
    Ex,
    /// Every whole record.
    Records,
}

/// How the listener authenticates. `Debug` shows a passphrase as `***`,
/// so no `{:?}` of the config can print it.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// A private key file, with an optional passphrase (read from a file or
    /// the environment, never from the config).
    Key {
        identity_file: PathBuf,
        passphrase: Option<String>,
    },
    /// The identities of a running ssh-agent (`SSH_AUTH_SOCK`).
    Agent,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Key {
                identity_file,
                passphrase,
            } => f
                .debug_struct("Key")
                .field("identity_file", identity_file)
                .field("passphrase", &passphrase.as_ref().map(|_| "***"))
                .finish(),
            Auth::Agent => f.write_str("Agent"),
        }
    }
}

/// The checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: Auth,
    pub known_hosts: PathBuf,
    /// Directory on the remote host mirroring the journal; nothing outside it is written.
    pub remote_dir: String,
    /// Remote command fed each shipped batch on stdin (argv, quoted for the remote shell).
    pub apply: Option<Vec<String>>,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    /// How long a remote batch (append, fsync, apply) may run before the
    /// connection is given up as dead.
    pub command_timeout: Duration,
    pub keepalive: Duration,
    pub transactions: Transactions,
    /// fsync the remote file (and directory on rotation) before acknowledging.
    pub fsync: bool,
    /// Check the standby's whole file (`cksum`) on connect and its actual
    /// size before every append, instead of trusting what is cached.
    pub verify: bool,
    /// Bytes of an unfinished transaction held in memory before shipping
    /// whole records anyway (with a warning).
    pub max_hold: u64,
    /// How long an unfinished transaction may hold the standby back
    /// before a warning names it.
    pub max_hold_time: Duration,
    /// Shippable bytes gathered before a batch is sent (fewer round trips
    /// and fsyncs while catching up).
    pub batch_bytes: u64,
    /// How long shippable entries may wait for more to join their batch; a
    /// quiet journal (`no_data`) and `flush` ship at once.
    pub max_delay: Duration,
    /// Cipher preference (comma-separated, like `ssh -c`); `None` is
    /// OpenSSH's default order (see [`crate::ssh::DEFAULT_CIPHERS`]).
    pub ciphers: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity_file: Option<PathBuf>,
    passphrase_file: Option<PathBuf>,
    passphrase_env: Option<String>,
    #[serde(default)]
    agent: bool,
    known_hosts: Option<PathBuf>,
    remote_dir: Option<String>,
    apply: Option<Vec<String>>,
    connect_timeout: Option<String>,
    io_timeout: Option<String>,
    command_timeout: Option<String>,
    keepalive: Option<String>,
    transactions: Option<String>,
    fsync: Option<bool>,
    verify: Option<bool>,
    max_hold: Option<u64>,
    max_hold_time: Option<String>,
    batch_bytes: Option<u64>,
    max_delay: Option<String>,
    ciphers: Option<String>,
}

/// Parses the TOML table. `resolve` turns a configured path into an
/// absolute one (relative paths are relative to the config file); `env`
/// reads an environment variable.
pub fn parse(
    toml_text: &str,
    format: &str,
    resolve: &dyn Fn(&std::path::Path) -> PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config> {
    let raw: Raw = toml::from_str(toml_text).map_err(|e| fatal(format!("invalid config: {e}")))?;
    let need = |v: Option<String>, key: &str, example: &str| {
        v.filter(|s| !s.is_empty()).ok_or_else(|| {
            fatal(format!(
                "config key `{key}` is required (e.g. {key} = {example})"
            ))
        })
    };
    let host = need(raw.host, "host", "\"standby.example.com\"")?;
    let user = need(raw.user, "user", "\"backup\"")?;
    let remote_dir = need(raw.remote_dir, "remote_dir", "\"/srv/standby\"")?;
    if remote_dir.contains('\n') || remote_dir.contains('\0') {
        return Err(fatal(
            "config key `remote_dir` must not contain a newline or NUL",
        ));
    }
    let known_hosts = raw
        .known_hosts
        .map(|p| resolve(&p))
        .ok_or_else(|| fatal("config key `known_hosts` is required: the host key is always verified (e.g. known_hosts = \"keys/known_hosts\")"))?;

    let passphrase = match (&raw.passphrase_file, &raw.passphrase_env) {
        (Some(_), Some(_)) => return Err(fatal("config keys `passphrase_file` and `passphrase_env` exclude each other; keep one")),
        (Some(f), None) => {
            let p = resolve(f);
            let text = std::fs::read_to_string(&p)
                .map_err(|e| fatal(format!("config key `passphrase_file`: cannot read {}: {e}", p.display())))?;
            Some(text.trim_end_matches(['\n', '\r']).to_string())
        }
        (None, Some(var)) => Some(env(var).ok_or_else(|| {
            fatal(format!("config key `passphrase_env`: environment variable {var} is not set in the daemon's environment"))
        })?),
        (None, None) => None,
    };
    let auth = match (raw.identity_file, raw.agent) {
        (Some(_), true) => {
            return Err(fatal(
                "config keys `identity_file` and `agent = true` exclude each other; keep one",
            ))
        }
        (Some(f), false) => Auth::Key {
            identity_file: resolve(&f),
            passphrase,
        },
        (None, true) => {
            if passphrase.is_some() {
                return Err(fatal(
                    "a passphrase is only used with `identity_file`, not with `agent = true`",
                ));
            }
            Auth::Agent
        }
        (None, false) => {
            return Err(fatal(
                "set `identity_file = \"keys/id_ed25519\"` or `agent = true`",
            ))
        }
    };

    let dur = |v: Option<String>, key: &str, default: Duration| -> Result<Duration> {
        match v {
            None => Ok(default),
            Some(s) => humantime::parse_duration(&s).map_err(|e| {
                fatal(format!(
                    "config key `{key}`: `{s}` is not a duration like \"10s\" ({e})"
                ))
            }),
        }
    };
    let connect_timeout = dur(
        raw.connect_timeout,
        "connect_timeout",
        Duration::from_secs(10),
    )?;
    let io_timeout = dur(raw.io_timeout, "io_timeout", Duration::from_secs(30))?;
    let command_timeout = dur(
        raw.command_timeout,
        "command_timeout",
        Duration::from_secs(600),
    )?;
    let keepalive = dur(raw.keepalive, "keepalive", Duration::from_secs(15))?;
    let max_delay = dur(raw.max_delay, "max_delay", Duration::from_millis(200))?;
    let max_hold_time = dur(raw.max_hold_time, "max_hold_time", Duration::from_secs(300))?;
    for (key, d) in [
        ("connect_timeout", connect_timeout),
        ("io_timeout", io_timeout),
        ("command_timeout", command_timeout),
    ] {
        if d.is_zero() || d.as_millis() > u128::from(u32::MAX) {
            return Err(fatal(format!(
                "config key `{key}` must be between 1ms and 49 days"
            )));
        }
    }

    let transactions = match (raw.transactions.as_deref(), format) {
        (None, "p4") | (Some("ex"), "p4") => Transactions::Ex,
        (None, _) | (Some("records"), _) => Transactions::Records,
        (Some("ex"), f) => {
            return Err(fatal(format!("config key `transactions = \"ex\"` needs a p4 journal; this journal's format is `{f}`: use \"records\"")))
        }
        (Some(other), _) => return Err(fatal(format!("config key `transactions`: `{other}` is neither \"ex\" nor \"records\""))),
    };
    if let Some(argv) = &raw.apply {
        if argv.is_empty() || argv[0].is_empty() {
            return Err(fatal("config key `apply` must name a command, e.g. apply = [\"p4d\", \"-r\", \"/p4/standby\", \"-jr\", \"-\"]"));
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return Err(fatal("config key `apply` must not contain NUL bytes"));
        }
    }
    Ok(Config {
        host,
        port: raw.port.unwrap_or(22),
        user,
        auth,
        known_hosts,
        remote_dir,
        apply: raw.apply,
        connect_timeout,
        io_timeout,
        command_timeout,
        keepalive,
        transactions,
        fsync: raw.fsync.unwrap_or(true),
        verify: raw.verify.unwrap_or(true),
        max_hold: raw.max_hold.unwrap_or(64 << 20),
        max_hold_time,
        batch_bytes: raw.batch_bytes.unwrap_or(8 << 20).max(1),
        max_delay,
        ciphers: raw.ciphers.filter(|c| !c.trim().is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn resolve(p: &Path) -> PathBuf {
        Path::new("/etc/logdaemon").join(p)
    }
    fn no_env(_: &str) -> Option<String> {
        None
    }

    const DOC: &str = r#"
host = "127.0.0.1"
port = 2222
user = "backup"
identity_file = "keys/id_ed25519"
known_hosts = "keys/known_hosts"
remote_dir = "/srv/standby"
"#;

    #[test]
    fn the_documented_example_parses_with_defaults() {
        let c = parse(DOC, "p4", &resolve, &no_env).unwrap();
        assert_eq!(c.port, 2222);
        assert_eq!(
            c.auth,
            Auth::Key {
                identity_file: "/etc/logdaemon/keys/id_ed25519".into(),
                passphrase: None
            }
        );
        assert_eq!(c.known_hosts, Path::new("/etc/logdaemon/keys/known_hosts"));
        assert_eq!(c.transactions, Transactions::Ex);
        assert_eq!(c.io_timeout, Duration::from_secs(30));
        assert!(c.fsync);
        let c = parse(DOC, "lines", &resolve, &no_env).unwrap();
        assert_eq!(c.transactions, Transactions::Records);
    }

    #[test]
    fn unknown_keys_and_missing_trust_are_refused_by_name() {
        let e = parse(
            &format!("{DOC}\nstrict_host_key_checking = false\n"),
            "p4",
            &resolve,
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("strict_host_key_checking"), "{e}");
        let e = parse(
            &DOC.replace("known_hosts = \"keys/known_hosts\"", ""),
            "p4",
            &resolve,
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`known_hosts` is required"), "{e}");
        let e = parse(
            &format!("{DOC}\ntransactions = \"ex\"\n"),
            "lines",
            &resolve,
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs a p4 journal"), "{e}");
        let e = parse(
            &format!("{DOC}\nio_timeout = \"soon\"\n"),
            "p4",
            &resolve,
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`io_timeout`"), "{e}");
    }

    #[test]
    fn passphrase_comes_from_the_environment_or_a_file_only() {
        let doc = format!("{DOC}\npassphrase_env = \"HB_PASS\"\n");
        let e = parse(&doc, "p4", &resolve, &no_env).unwrap_err();
        assert!(e.to_string().contains("HB_PASS is not set"), "{e}");
        let c = parse(&doc, "p4", &resolve, &|v| {
            (v == "HB_PASS").then(|| "s3cret".to_string())
        })
        .unwrap();
        assert!(matches!(c.auth, Auth::Key { passphrase: Some(ref p), .. } if p == "s3cret"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("passphrase: Some(\"***\")"),
            "the passphrase is in the Debug output: {shown}"
        );
        let e = parse(
            &format!("{DOC}\npassphrase = \"x\"\n"),
            "p4",
            &resolve,
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("passphrase"), "{e}");
    }
}
