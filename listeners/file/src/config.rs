//! The `file` listener's configuration table, parsed strictly so that a typo
//! in a key stops the daemon at start-up instead of being ignored.

use std::path::PathBuf;

use logdaemon_sdk::json::RawForm;
use serde::Deserialize;

/// How each entry is written to the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The entry's bytes exactly as in the journal.
    Raw,
    /// One JSON object per entry (see [`crate::jsonl`]).
    Jsonl,
}

/// `[journal.listener.config]` of a `file` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The output file, as written in the config (resolve it with
    /// `OpenContext::resolve`).
    pub path: PathBuf,
    pub format: Format,
    /// Sync the output (and the listener's record) before acknowledging.
    pub fsync: bool,
    /// jsonl only: how the entries' bytes are written (`encoding`).
    pub encoding: RawForm,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    path: Option<PathBuf>,
    format: Option<String>,
    fsync: Option<bool>,
    encoding: Option<String>,
}

/// A configuration problem; the message names the key and what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid config table: {0}")]
    Toml(String),
    #[error("config key \"path\" is missing: set it to the output file, e.g. path = \"out/journal.raw\"")]
    MissingPath,
    #[error("config key \"path\" is empty: set it to the output file")]
    EmptyPath,
    #[error("config key \"format\": expected \"raw\" or \"jsonl\", got {0:?}")]
    Format(String),
    #[error("config key \"encoding\": expected \"text\" (UTF-8, bytes that are not UTF-8 become U+FFFD) or \"base64\" (raw_b64 and fields_b64, the exact bytes), got {0:?}")]
    Encoding(String),
    #[error("config key \"encoding\" applies to format = \"jsonl\" only (raw output is the bytes themselves): remove it or set format = \"jsonl\"")]
    EncodingWithoutJsonl,
}

impl Config {
    /// Parses the listener's TOML table.
    pub fn parse(toml_text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(toml_text).map_err(|e| ConfigError::Toml(e.message().to_string()))?;
        let path = raw.path.ok_or(ConfigError::MissingPath)?;
        if path.as_os_str().is_empty() {
            return Err(ConfigError::EmptyPath);
        }
        let format = match raw.format.as_deref() {
            None | Some("raw") => Format::Raw,
            Some("jsonl") => Format::Jsonl,
            Some(other) => return Err(ConfigError::Format(other.to_string())),
        };
        let encoding = match (raw.encoding.as_deref(), format) {
            (None, _) => RawForm::Text,
            (Some(_), Format::Raw) => return Err(ConfigError::EncodingWithoutJsonl),
            (Some(e), Format::Jsonl) => {
                RawForm::from_name(e).ok_or_else(|| ConfigError::Encoding(e.to_string()))?
            }
        };
        Ok(Config {
            path,
            format,
            fsync: raw.fsync.unwrap_or(true),
            encoding,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_raw_and_fsync() {
        let c = Config::parse("path = \"out/j\"").unwrap();
        assert_eq!(
            c,
            Config {
                path: "out/j".into(),
                format: Format::Raw,
                fsync: true,
                encoding: RawForm::Text,
            }
        );
    }

    #[test]
    fn all_keys() {
        let c = Config::parse("path = \"/o\"\nformat = \"jsonl\"\nfsync = false").unwrap();
        assert_eq!(
            c,
            Config {
                path: "/o".into(),
                format: Format::Jsonl,
                fsync: false,
                encoding: RawForm::Text,
            }
        );
        let c = Config::parse("path = \"/o\"\nformat = \"jsonl\"\nencoding = \"base64\"").unwrap();
        assert_eq!(c.encoding, RawForm::Base64);
        assert_eq!(
            Config::parse("path = \"/o\"\nencoding = \"base64\"").unwrap_err(),
            ConfigError::EncodingWithoutJsonl
        );
        assert_eq!(
            Config::parse("path = \"/o\"\nformat = \"jsonl\"\nencoding = \"hex\"").unwrap_err(),
            ConfigError::Encoding("hex".into())
        );
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse("path = \"o\"\nformat = \"xml\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config key \"format\": expected \"raw\" or \"jsonl\", got \"xml\""
        );
        assert_eq!(Config::parse("").unwrap_err(), ConfigError::MissingPath);
        let e = Config::parse("path = \"o\"\nfsinc = true")
            .unwrap_err()
            .to_string();
        assert!(e.contains("fsinc"), "{e}");
        let e = Config::parse("path = \"o\"\nfsync = \"yes\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid config table"), "{e}");
    }
}
