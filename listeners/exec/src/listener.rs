//! [`ExecListener`]: configuration checks at open (the program must exist,
//! be executable, and pass the plugin libraries' ownership and permission
//! rule), the filter, and one run per batch and sequence.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use logdaemon_sdk::trust;
use logdaemon_sdk::{Ack, Entry, Failure, Listener, Logger, OpenContext, Position};

use crate::config::{Config, Stdin};
use crate::filter::Filter;
use crate::run::{self, Invocation, RunError};
use logdaemon_sdk::json::{self as jsonl, RawForm};

/// The `exec` listener. See the crate documentation.
pub struct ExecListener {
    listener: String,
    journal: String,
    program: PathBuf,
    args: Vec<String>,
    cwd: PathBuf,
    on_entries: bool,
    on_no_data: bool,
    filter: Filter,
    stdin: Stdin,
    encoding: RawForm,
    timeout: Duration,
    p4: bool,
    /// The environment every run starts from: passed-through and fixed variables.
    base_env: Vec<(String, OsString)>,
    /// End of the last entry delivered, for the `no_data` environment.
    last_end: Option<Position>,
    logger: Logger,
}

/// Finds the program the way the config means it: a name with a `/` is a
/// path (relative to the config file's directory), a bare name is looked
/// up in `PATH` once, at open. Checks that it is an executable file.
pub fn resolve_program(
    name: &str,
    config_dir: &Path,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, String> {
    let candidate = if name.contains('/') {
        let p = Path::new(name);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            config_dir.join(p)
        }
    } else {
        let dirs = path_var
            .map(|v| std::env::split_paths(v).collect::<Vec<_>>())
            .unwrap_or_default();
        let executable = |p: &PathBuf| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        match dirs.iter().map(|d| d.join(name)).find(executable) {
            Some(p) => p,
            None => return Err(format!("command {name:?} is not an executable in PATH; give its full path in config key \"command\"")),
        }
    };
    let meta = std::fs::metadata(&candidate).map_err(|e| {
        format!(
            "command {} cannot be used: {e}; fix config key \"command\"",
            candidate.display()
        )
    })?;
    if !meta.is_file() {
        return Err(format!(
            "command {} is not a file; fix config key \"command\"",
            candidate.display()
        ));
    }
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 {
        return Err(format!(
            "command {} is not executable (mode {:o}); make it executable or fix config key \"command\"",
            candidate.display(),
            mode & 0o7777
        ));
    }
    vet_program(&candidate)?;
    Ok(candidate)
}

/// The plugin libraries' rule for the command the daemon runs: the file
/// that really runs (symbolic links resolved) and every directory above
/// it, and the directories above the path as configured, must be writable
/// only by their owner and owned by root or the daemon's user.
fn vet_program(path: &Path) -> Result<(), String> {
    let refuse = |u: trust::Untrusted| {
        let fix = u.fix();
        let fix = if fix.is_empty() {
            String::new()
        } else {
            format!("; fix: {fix}")
        };
        format!(
            "command {}: {u}; anyone who can write it can run code as this daemon{fix}",
            path.display()
        )
    };
    let real = std::fs::canonicalize(path).map_err(|e| {
        format!(
            "command {} cannot be used: {e}; fix config key \"command\"",
            path.display()
        )
    })?;
    trust::check_file(&real).map_err(refuse)?;
    if real != path {
        trust::check_directories(path).map_err(refuse)?;
    }
    Ok(())
}

impl ExecListener {
    fn env(
        &self,
        event: &str,
        first: Option<Position>,
        end: Option<Position>,
        count: usize,
        had_data: bool,
    ) -> Vec<(String, OsString)> {
        let num = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
        let own = [
            ("LOGDAEMON_EVENT", event.to_string()),
            ("LOGDAEMON_JOURNAL", self.journal.clone()),
            ("LOGDAEMON_LISTENER", self.listener.clone()),
            ("LOGDAEMON_SEQUENCE", num(first.or(end).map(|p| p.sequence))),
            (
                "LOGDAEMON_FIRST_OFFSET",
                num(first.or(end).map(|p| p.offset)),
            ),
            ("LOGDAEMON_END_OFFSET", num(end.map(|p| p.offset))),
            ("LOGDAEMON_COUNT", count.to_string()),
            (
                "LOGDAEMON_HAD_DATA",
                if had_data { "1" } else { "0" }.to_string(),
            ),
        ];
        let mut env = self.base_env.clone();
        env.extend(
            own.into_iter()
                .map(|(k, v)| (k.to_string(), OsString::from(v))),
        );
        env
    }

    fn run(&self, env: &[(String, OsString)], stdin: Option<Vec<u8>>) -> Result<(), Failure> {
        let inv = Invocation {
            program: &self.program,
            args: &self.args,
            cwd: &self.cwd,
            env,
            stdin,
            timeout: self.timeout,
        };
        run::run(inv, self.logger).map_err(|e| {
            if e.is_permanent() {
                Failure::fatal(format!(
                    "listener {:?}: {e}; fix config key \"command\"",
                    self.listener
                ))
            } else {
                if let RunError::TimedOut { .. } = e {
                    self.logger.warn(&e.to_string());
                }
                Failure::retry(e.to_string())
            }
        })
    }

    /// Runs the command for entries of one sequence.
    fn run_entries(&self, entries: &[Entry<'_>]) -> Result<(), Failure> {
        let stdin = match self.stdin {
            Stdin::None => None,
            Stdin::Raw => {
                let mut buf = Vec::with_capacity(entries.iter().map(|e| e.raw().len()).sum());
                for e in entries {
                    buf.extend_from_slice(e.raw());
                }
                Some(buf)
            }
            Stdin::Jsonl => {
                let mut buf = Vec::new();
                for e in entries {
                    jsonl::write_entry_as(&mut buf, e, self.p4, self.encoding);
                }
                Some(buf)
            }
        };
        let first = entries.first().map(|e| e.start());
        let end = entries.last().map(|e| e.end());
        self.run(&self.env("entries", first, end, entries.len(), true), stdin)
    }
}

impl Listener for ExecListener {
    /// The config, the filter and the program (found and safe to run), as
    /// `open` checks them; nothing is run.
    fn check(ctx: &OpenContext<'_>) -> Result<(), Failure> {
        let fatal = |msg: String| Failure::fatal(format!("listener {:?}: {msg}", ctx.listener));
        let cfg = Config::parse(ctx.config_toml).map_err(|e| fatal(e.to_string()))?;
        Filter::new(&cfg.filter, ctx.journal, ctx.format).map_err(|e| fatal(e.to_string()))?;
        let path_var = std::env::var_os("PATH");
        resolve_program(&cfg.command[0], ctx.config_dir, path_var.as_deref()).map_err(fatal)?;
        Ok(())
    }

    fn open(ctx: &OpenContext<'_>) -> Result<Self, Failure> {
        let fatal = |msg: String| Failure::fatal(format!("listener {:?}: {msg}", ctx.listener));
        let cfg = Config::parse(ctx.config_toml).map_err(|e| fatal(e.to_string()))?;
        let filter =
            Filter::new(&cfg.filter, ctx.journal, ctx.format).map_err(|e| fatal(e.to_string()))?;
        let path_var = std::env::var_os("PATH");
        let program =
            resolve_program(&cfg.command[0], ctx.config_dir, path_var.as_deref()).map_err(fatal)?;
        let mut base_env: Vec<(String, OsString)> = Vec::new();
        for name in crate::config::BASE_ENV
            .iter()
            .copied()
            .chain(cfg.pass_env.iter().map(String::as_str))
        {
            if let Some(v) = std::env::var_os(name) {
                base_env.push((name.to_string(), v));
            }
        }
        base_env.extend(cfg.env.iter().map(|(k, v)| (k.clone(), OsString::from(v))));
        Ok(ExecListener {
            listener: ctx.listener.to_string(),
            journal: ctx.journal.to_string(),
            program,
            args: cfg.command[1..].to_vec(),
            cwd: ctx.config_dir.to_path_buf(),
            on_entries: cfg.on_entries,
            on_no_data: cfg.on_no_data,
            filter,
            stdin: cfg.stdin,
            encoding: cfg.encoding,
            timeout: cfg.timeout,
            p4: ctx.format == "p4",
            base_env,
            last_end: None,
            logger: ctx.logger,
        })
    }

    fn is_handled(&mut self, entry: &Entry<'_>) -> bool {
        self.on_entries && self.filter.matches(entry)
    }

    fn listen(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure> {
        if !self.on_entries {
            return Ok(Ack::All);
        }
        let mut done: Option<Position> = None;
        for chunk in entries.chunk_by(|a, b| a.sequence() == b.sequence()) {
            if let Err(f) = self.run_entries(chunk) {
                // Earlier sequences of this batch ran; only the rest comes again.
                return Err(match done {
                    Some(p) => f.with_ack(p),
                    None => f,
                });
            }
            done = chunk.last().map(|e| e.end());
            self.last_end = done;
        }
        Ok(Ack::All)
    }

    fn no_data(&mut self, had_data: bool) -> Result<Ack, Failure> {
        if self.on_no_data {
            self.run(&self.env("no_data", None, self.last_end, 0, had_data), None)?;
        }
        Ok(Ack::All)
    }
}
