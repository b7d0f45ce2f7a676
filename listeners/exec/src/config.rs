//! The `exec` listener's configuration table, parsed strictly: an unknown
//! key or a bad value stops the daemon at start-up with the key's name.

use std::time::Duration;

use logdaemon_sdk::json::RawForm;
use serde::Deserialize;

/// What the command gets on its standard input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdin {
    /// Nothing (`/dev/null`).
    None,
    /// The batch's entries, bytes exactly as in the journal.
    Raw,
    /// One JSON object per entry (the `file` listener's `jsonl` format).
    Jsonl,
}

/// `[journal.listener.config]` of an `exec` listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Program and arguments; never passed through a shell.
    pub command: Vec<String>,
    /// Run the command for batches of entries.
    pub on_entries: bool,
    /// Run the command when the journal has been quiet (`no_data`).
    pub on_no_data: bool,
    pub filter: FilterConfig,
    pub stdin: Stdin,
    /// `stdin = "jsonl"` only: how the entries' bytes are written.
    pub encoding: RawForm,
    pub timeout: Duration,
    /// Variables passed through from the daemon's environment, in addition
    /// to [`BASE_ENV`]. Nothing else of it reaches the command, so secrets
    /// the daemon holds in its environment stay there.
    pub pass_env: Vec<String>,
    /// Variables set to fixed values for the command.
    pub env: Vec<(String, String)>,
}

/// Variables of the daemon's environment every command gets (when set).
pub const BASE_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
];

/// `filter = { regex = "...", table = "db.change", op = "pv" }`: all given
/// conditions must hold. `table` and `op` may also be lists (any of).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    pub regex: Option<String>,
    pub table: Option<OneOrMany>,
    pub op: Option<OneOrMany>,
}

/// A string or a list of strings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    command: Option<Vec<String>>,
    on: Option<Vec<String>>,
    #[serde(default)]
    filter: FilterConfig,
    stdin: Option<String>,
    encoding: Option<String>,
    timeout: Option<String>,
    #[serde(default)]
    pass_env: Vec<String>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
}

/// A configuration problem; the message names the key and what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid config table: {0}")]
    Toml(String),
    #[error("config key \"command\" is missing or empty: set it to the program and its arguments, e.g. command = [\"/usr/local/bin/hook\", \"--flag\"]")]
    NoCommand,
    #[error("config key \"on\": expected a list of \"entries\" and \"no_data\", got {0:?}")]
    On(String),
    #[error("config key \"on\" is empty: the command would never run")]
    NoEvents,
    #[error("config key \"stdin\": expected \"none\", \"raw\" or \"jsonl\", got {0:?}")]
    Stdin(String),
    #[error("config key \"encoding\": expected \"text\" (UTF-8, bytes that are not UTF-8 become U+FFFD) or \"base64\" (raw_b64 and fields_b64, the exact bytes), got {0:?}")]
    Encoding(String),
    #[error("config key \"encoding\" applies to stdin = \"jsonl\" only: remove it or set stdin = \"jsonl\"")]
    EncodingWithoutJsonl,
    #[error("config key \"timeout\": {0:?} is not a duration like \"30s\" or \"2m\" ({1})")]
    Timeout(String, String),
    #[error("config key \"timeout\" must be more than zero")]
    ZeroTimeout,
    #[error("config key \"{0}\": {1:?} is not a valid variable name (letters, digits and '_', not starting with a digit)")]
    EnvName(&'static str, String),
    #[error("config key \"env\": {0:?} starts with LOGDAEMON_, which the listener sets itself")]
    Reserved(String),
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with(|c: char| c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The default time a command may run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Config {
    pub fn parse(toml_text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(toml_text).map_err(|e| ConfigError::Toml(e.message().to_string()))?;
        let command = raw
            .command
            .filter(|c| !c.is_empty() && !c[0].is_empty())
            .ok_or(ConfigError::NoCommand)?;
        let (mut on_entries, mut on_no_data) = (false, false);
        for ev in raw.on.unwrap_or_else(|| vec!["entries".into()]) {
            match ev.as_str() {
                "entries" => on_entries = true,
                "no_data" => on_no_data = true,
                _ => return Err(ConfigError::On(ev)),
            }
        }
        if !on_entries && !on_no_data {
            return Err(ConfigError::NoEvents);
        }
        let stdin = match raw.stdin.as_deref() {
            None | Some("none") => Stdin::None,
            Some("raw") => Stdin::Raw,
            Some("jsonl") => Stdin::Jsonl,
            Some(other) => return Err(ConfigError::Stdin(other.into())),
        };
        let encoding = match (raw.encoding.as_deref(), stdin) {
            (None, _) => RawForm::Text,
            (Some(e), Stdin::Jsonl) => {
                RawForm::from_name(e).ok_or_else(|| ConfigError::Encoding(e.to_string()))?
            }
            (Some(_), _) => return Err(ConfigError::EncodingWithoutJsonl),
        };
        let timeout = match raw.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => humantime::parse_duration(&t)
                .map_err(|e| ConfigError::Timeout(t.clone(), e.to_string()))?,
        };
        if timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        if let Some(bad) = raw.pass_env.iter().find(|n| !valid_name(n)) {
            return Err(ConfigError::EnvName("pass_env", bad.clone()));
        }
        if let Some(bad) = raw.env.keys().find(|n| !valid_name(n)) {
            return Err(ConfigError::EnvName("env", bad.clone()));
        }
        if let Some(bad) = raw.env.keys().find(|n| n.starts_with("LOGDAEMON_")) {
            return Err(ConfigError::Reserved(bad.clone()));
        }
        Ok(Config {
            command,
            on_entries,
            on_no_data,
            filter: raw.filter,
            stdin,
            encoding,
            timeout,
            pass_env: raw.pass_env,
            env: raw.env.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::parse("command = [\"/bin/true\"]").unwrap();
        assert_eq!(
            c,
            Config {
                command: vec!["/bin/true".into()],
                on_entries: true,
                on_no_data: false,
                filter: FilterConfig::default(),
                stdin: Stdin::None,
                encoding: RawForm::Text,
                timeout: DEFAULT_TIMEOUT,
                pass_env: vec![],
                env: vec![],
            }
        );
    }

    #[test]
    fn all_keys() {
        let c = Config::parse(
            "command = [\"hook\", \"a b\"]\non = [\"no_data\"]\nstdin = \"jsonl\"\ntimeout = \"200ms\"\n\
             filter = { regex = \"^@pv@\", table = [\"db.change\", \"db.desc\"], op = \"pv\" }",
        )
        .unwrap();
        assert_eq!(c.command, ["hook", "a b"]);
        assert!(!c.on_entries && c.on_no_data);
        assert_eq!(c.stdin, Stdin::Jsonl);
        assert_eq!(c.timeout, Duration::from_millis(200));
        assert_eq!(c.filter.table.unwrap().into_vec(), ["db.change", "db.desc"]);
        assert_eq!(c.filter.op.unwrap().into_vec(), ["pv"]);
        let c = Config::parse(
            "command = [\"x\"]\npass_env = [\"P4PORT\"]\nenv = { QUEUE = \"ci\", A_1 = \"\" }",
        )
        .unwrap();
        assert_eq!(c.pass_env, ["P4PORT"]);
        assert_eq!(
            c.env,
            [
                ("A_1".to_string(), String::new()),
                ("QUEUE".to_string(), "ci".to_string())
            ]
        );
    }

    #[test]
    fn errors_name_the_key() {
        let p = |s: &str| Config::parse(s).unwrap_err().to_string();
        assert!(p("on = [\"entries\"]").contains("\"command\" is missing"));
        assert!(p("command = []").contains("\"command\" is missing"));
        assert_eq!(
            p("command = [\"x\"]\non = [\"always\"]"),
            "config key \"on\": expected a list of \"entries\" and \"no_data\", got \"always\""
        );
        assert!(p("command = [\"x\"]\non = []").contains("never run"));
        assert!(p("command = [\"x\"]\nstdin = \"json\"").contains("config key \"stdin\""));
        assert!(p("command = [\"x\"]\nencoding = \"base64\"").contains("stdin = \"jsonl\" only"));
        assert!(
            p("command = [\"x\"]\nstdin = \"jsonl\"\nencoding = \"b64\"")
                .starts_with("config key \"encoding\": expected")
        );
        let c =
            Config::parse("command = [\"x\"]\nstdin = \"jsonl\"\nencoding = \"base64\"").unwrap();
        assert_eq!(c.encoding, RawForm::Base64);
        assert!(
            p("command = [\"x\"]\ntimeout = \"soon\"").contains("config key \"timeout\": \"soon\"")
        );
        assert!(p("command = [\"x\"]\ntimeout = \"0s\"").contains("more than zero"));
        assert!(p("command = [\"x\"]\nshell = true").contains("shell"));
        assert!(p("command = [\"x\"]\nfilter = { tabel = \"db.x\" }").contains("tabel"));
        assert!(p("command = [\"x\"]\npass_env = [\"A=B\"]")
            .starts_with("config key \"pass_env\": \"A=B\""));
        assert!(p("command = [\"x\"]\nenv = { LOGDAEMON_EVENT = \"x\" }").contains("sets itself"));
    }
}
