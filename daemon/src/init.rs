//! `logdaemon init` and `logdaemon check`: a starter config for a p4
//! server, and a dry run that loads every plugin.

use std::path::PathBuf;

use crate::config::Config;
use crate::host;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "no p4 journal to follow: set P4ROOT (or P4JOURNAL), or pass --p4root DIR / --journal FILE"
    )]
    NoJournal,
    #[error(transparent)]
    Host(#[from] host::HostError),
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
    for j in &cfg.journals {
        out.push(format!(
            "journal {} ({}): {}",
            j.name,
            j.format.name(),
            j.path.display()
        ));
        for l in &j.listeners {
            let path = host::resolve(&l.plugin, cfg.plugin_dir.as_deref())?;
            let p = host::load(&path)?;
            out.push(format!(
                "  listener {}: plugin {} {} ({}) from {}",
                l.name,
                p.api.name,
                p.api.version,
                p.api.build,
                p.path.display()
            ));
        }
    }
    Ok(out)
}
