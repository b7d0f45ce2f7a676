//! `logdaemon init` and `logdaemon check`: a starter config for a p4
//! server, and a dry run that loads every plugin.

use std::path::PathBuf;

use logdaemon_sdk::Position;

use crate::config::{Config, JournalConfig, ListenerConfig};
use crate::host;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "no p4 journal to follow: set P4ROOT (or P4JOURNAL), or pass --p4root DIR / --journal FILE"
    )]
    NoJournal,
    #[error(transparent)]
    Host(#[from] host::HostError),
    /// Listeners whose own check refused their config, one line each.
    #[error("{}", .0.join("\n"))]
    Refused(Vec<String>),
}

/// A commented starter config from `P4ROOT` / `P4JOURNAL` or the flags.
pub fn starter_config(
    p4root: Option<PathBuf>,
    journal: Option<PathBuf>,
) -> Result<String, InitError> {
    let root = p4root.or_else(|| std::env::var_os("P4ROOT").map(PathBuf::from));
    let journal = journal
        .or_else(|| std::env::var_os("P4JOURNAL").map(PathBuf::from))
        .map(|j| match (&root, j.is_absolute()) {
            (Some(r), false) => r.join(j),
            _ => j,
        });
    let journal = journal
        .or_else(|| root.as_ref().map(|r| r.join("journal")))
        .ok_or(InitError::NoJournal)?;
    // Paths in the config are taken from the config file's directory, which
    // need not be this one: write the journal's path absolute.
    let journal = match (journal.is_absolute(), std::env::current_dir()) {
        (false, Ok(cwd)) => cwd.join(journal),
        _ => journal,
    };
    // Quoted and escaped as TOML, whatever characters the path holds.
    let journal = toml::Value::String(journal.to_string_lossy().into_owned()).to_string();
    Ok(format!(
        r#"# logdaemon config — written by `logdaemon init`. Paths are relative to this file.
# Check it with `logdaemon check --config THIS_FILE`, run it with `logdaemon run --config THIS_FILE`.

# Where the checkpoint (where-was-I) file lives. Created with mode 0700.
state_dir = "logdaemon-state"

[[journal]]
name = "p4"
path = {journal}
format = "p4"               # or "lines" for line logs (add record_start = "^\\d{{4}}-" for multi-line records)
quiet_after = "2s"          # listeners hear no_data after this much silence
# start = "beginning"       # with no checkpoint yet: "beginning", "end", or a journal number (start = 12)
# on_gap = "stop"           # when bytes are gone for good: "stop" (default) or "report" a gap to listeners
# rotated = ["{{name}}.{{N}}{{ext}}"]  # override the rotated-file names (see docs/configuration.md)

# Every entry, byte for byte, into a file.
[[journal.listener]]
name = "copy"
plugin = "file"
on_failure = "stop"         # or "disable": keep the other listeners running
[journal.listener.config]
path = "journal.copy"
format = "raw"              # or "jsonl"

# A standby copy over SSH (see docs/hot-backup.md).
# [[journal.listener]]
# name = "standby"
# plugin = "hot-backup"
# [journal.listener.config]
# host = "standby.example.com"
# port = 22
# user = "backup"
# identity_file = "keys/id_ed25519"
# known_hosts = "keys/known_hosts"
# remote_dir = "/p4/standby"

# Review mail for submitted changes (see docs/email.md).
# [[journal.listener]]
# name = "reviews"
# plugin = "email"
# [journal.listener.config]
# smtp_host = "127.0.0.1"
# smtp_port = 25
# tls = "none"
# from = "logdaemon@example.com"
# to = ["dev@example.com"]
# preset = "p4-changes"
"#
    ))
}

/// Loads every plugin of a validated config; one line per listener.
pub fn check(cfg: &Config) -> Result<Vec<String>, InitError> {
    let mut out = vec![format!(
        "config {}: valid; state in {}",
        cfg.file.display(),
        cfg.state_dir.display()
    )];
    let mut refused = Vec::new();
    match crate::check_state::check(cfg) {
        Ok(line) => out.push(line),
        Err(e) => refused.push(e),
    }
    for j in &cfg.journals {
        out.push(format!(
            "journal {} ({}): {}",
            j.name,
            j.format.name(),
            j.path.display()
        ));
        let stream = crate::streams::files_now(cfg, &j.name).map(|files| {
            out.push(format!(
                "  a glob: {} files match now, each a stream of its own: {}",
                files.len(),
                files.join(", ")
            ));
            // Listeners are checked as a stream opens them ({file} filled in).
            crate::streams::config_of(
                cfg,
                &format!(
                    "{}/{}",
                    j.name,
                    files.first().map_or("FILE", |f| f.as_str())
                ),
            )
        });
        let stream = stream.flatten();
        let j = stream.as_ref().unwrap_or(j);
        for l in &j.listeners {
            let path = host::resolve(&l.plugin, cfg.plugin_dir.as_deref())?;
            let p = host::load(&path)?;
            let checked = match check_listener(cfg, j, l, p) {
                Ok(c) => c,
                Err(e) => {
                    refused.push(e);
                    continue;
                }
            };
            out.push(format!(
                "  listener {}: plugin {} {} ({}) from {}{}",
                l.name,
                p.api.name,
                p.api.version,
                p.api.build,
                p.path.display(),
                match checked {
                    host::Checked::Accepted => "; config checked",
                    host::Checked::NoCheck => "; the plugin has no config check",
                }
            ));
        }
    }
    if refused.is_empty() {
        Ok(out)
    } else {
        Err(InitError::Refused(refused))
    }
}

/// Runs the plugin's own check of one listener's table, without side
/// effects; a refusal names the file, the line (of the key the message
/// names, else of the listener's table), the listener and its message.
fn check_listener(
    cfg: &Config,
    j: &JournalConfig,
    l: &ListenerConfig,
    plugin: &'static host::Plugin,
) -> Result<host::Checked, String> {
    // Where `run` would put the listener's state; not created here.
    let state_dir = crate::engine::state_dirs::path(&cfg.state_dir, &j.name, &l.name);
    let params = host::OpenParams {
        listener: &l.name,
        journal: &j.name,
        format: j.format.name(),
        journal_path: &j.path,
        config_toml: &l.config_toml,
        config_dir: &cfg.dir,
        state_dir: &state_dir,
        cursor: Position::default(),
    };
    host::check(plugin, &params).map_err(|e| {
        let key = named_key(&e.message, l);
        let line = key.map_or(l.line, |(_, line)| line);
        let at = match key {
            Some((k, _)) => format!("key {k}, listener table at line {}", l.line),
            None => "listener table".to_string(),
        };
        format!(
            "config {}, line {line} ({at}): journal {:?}, listener {:?} (plugin {}) refuses its config: {}",
            cfg.file.display(),
            j.name,
            l.name,
            plugin.api.name,
            e.message
        )
    })
}

/// The key of the listener's config table that `message` names first,
/// with its line: quoted (`` `key` ``) if any is, else as a whole word.
fn named_key<'a>(message: &str, l: &'a ListenerConfig) -> Option<(&'a str, usize)> {
    let m = message.as_bytes();
    let word = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let bare = |i: usize, k: &str| {
        !word(i.checked_sub(1).map(|p| m[p])) && !word(m.get(i + k.len()).copied())
    };
    let quoted = |i: usize, k: &str| i > 0 && m[i - 1] == b'`' && m.get(i + k.len()) == Some(&b'`');
    let first = |accept: &dyn Fn(usize, &str) -> bool| {
        l.key_lines
            .iter()
            .filter_map(|&(ref k, line)| {
                message
                    .match_indices(k.as_str())
                    .find(|&(i, _)| accept(i, k))
                    .map(|(i, _)| (i, k.as_str(), line))
            })
            .min()
            .map(|(_, k, line)| (k, line))
    };
    first(&quoted).or_else(|| first(&bare))
}

#[cfg(test)]
mod tests {
    use super::named_key;
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn the_key_a_message_names_is_found_quoted_first_then_as_a_word() {
        let text = "state_dir = \"s\"\n[[journal]]\nname = \"p4\"\npath = \"/j\"\nformat = \"p4\"\n\n[[journal.listener]]\nname = \"m\"\nplugin = \"email\"\n[journal.listener.config]\nto = [\"a@b\"]\nfrom = \"x\"\nidentity = 1\n";
        let cfg = Config::parse(text, Path::new("/c/ld.toml")).unwrap();
        let l = &cfg.journals[0].listeners[0];
        assert_eq!(l.line, 7);
        let named = |m: &str| named_key(m, l);
        assert_eq!(
            named("set it to a list; config key `from`: bad"),
            Some(("from", 12))
        );
        assert_eq!(named("to is empty"), Some(("to", 11)));
        assert_eq!(named("identity_file is wrong"), None);
        assert_eq!(named("unknown field `identity`"), Some(("identity", 13)));
    }
}
