//! The `logdaemon` command line. A thin layer: every command is a function
//! of the `logdaemon` library; this file parses arguments, sets up logging
//! and turns errors into messages and exit codes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use logdaemon::config::Config;
use logdaemon::format::Format;

#[derive(Parser)]
#[command(
    name = "logdaemon",
    version,
    about = "Follow a live journal across truncation, rotation and compression and feed every entry exactly once to listener plugins."
)]
struct Cli {
    /// How log lines (on standard error) are written: text for people, json for a log collector (one object per line).
    #[arg(long, value_enum, global = true, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    P4,
    Lines,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReplayFormat {
    Raw,
    Jsonl,
}

#[derive(Subcommand)]
enum Command {
    /// Follow the journals of a config file and feed their listeners (foreground).
    Run {
        /// The config file (TOML): journals, listeners, state directory.
        #[arg(long, short)]
        config: PathBuf,
        /// Deliver everything available now (rotated predecessors included), flush, write the checkpoint and exit.
        #[arg(long)]
        once: bool,
    },
    /// Print every record of journal files (plain or compressed) as JSON lines.
    Dump {
        /// How the files are framed into records: p4 journal records, or log lines.
        #[arg(long, value_enum, default_value = "p4")]
        format: FormatArg,
        /// lines format: a regex that marks the first line of a multi-line record.
        #[arg(long)]
        record_start: Option<String>,
        /// Dump a configured journal's whole history (rotated and compressed
        /// predecessors, then the live file), with `sequence` and `file`.
        #[arg(long, short, requires = "journal", conflicts_with_all = ["files", "record_start"])]
        config: Option<PathBuf>,
        /// The journal of --config.
        #[arg(long, requires = "config")]
        journal: Option<String>,
        /// Journal files to print, in order (gzip, bzip2, xz, zstd are read as they are).
        #[arg(required_unless_present = "config")]
        files: Vec<PathBuf>,
    },
    /// Read back a time or position range of a journal's history, across its rotated and compressed files.
    Replay {
        /// The config file that names the journal and its files.
        #[arg(long, short)]
        config: PathBuf,
        /// The journal of --config to read back.
        #[arg(long)]
        journal: String,
        /// From the first entry at or after this time (RFC 3339, or relative: -2h).
        #[arg(long, allow_hyphen_values = true)]
        since: Option<String>,
        /// Up to the first entry at or after this time (excluded).
        #[arg(long, allow_hyphen_values = true)]
        until: Option<String>,
        /// From this position: SEQ or SEQ:OFFSET (a record boundary).
        #[arg(long)]
        from: Option<String>,
        /// Up to this position (excluded): SEQ:OFFSET, or SEQ for all of SEQ.
        #[arg(long)]
        to: Option<String>,
        /// Output on stdout: raw bytes exactly as in the journal, or JSON lines.
        #[arg(long, value_enum, default_value = "raw", conflicts_with = "listener")]
        format: ReplayFormat,
        /// Feed the entries to a fresh instance of this configured listener instead.
        #[arg(long)]
        listener: Option<String>,
    },
    /// Read or set the where-was-I checkpoint (while the daemon is stopped).
    Checkpoint {
        #[command(subcommand)]
        command: CheckpointCommand,
    },
    /// Write a commented starter config for a p4 server (from P4ROOT / P4JOURNAL, or flags).
    Init {
        /// The p4 server root (default: $P4ROOT).
        #[arg(long)]
        p4root: Option<PathBuf>,
        /// The live journal (default: $P4JOURNAL, else P4ROOT/journal).
        #[arg(long)]
        journal: Option<PathBuf>,
        /// Where to write the config (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Validate a config and load every plugin, without running.
    Check {
        /// The config file to check.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Write the manual pages (logdaemon.1 and one per subcommand) into a directory.
    Man {
        /// The directory to write them into (created if missing).
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Show each listener's position, lag and state, with the daemon running or not; exit 3 retrying, 4 disabled or stopped, 5 cannot tell.
    Status {
        /// The daemon's config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print the status as JSON (the same as the HTTP endpoint's /status).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CheckpointCommand {
    /// Print the checkpoint in a readable form.
    Show {
        /// The state directory that holds checkpoint.toml.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Take the state directory (and the journals' files) from this config.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Set a journal's (or one listener's) position, atomically.
    Set {
        /// The state directory that holds checkpoint.toml.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Take the state directory from this config, and check the position against the journal's files.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The journal whose position to set.
        #[arg(long)]
        journal: String,
        /// Only this listener (default: the journal and all its listeners).
        #[arg(long)]
        listener: Option<String>,
        /// The journal number (p4: the N of journal.N; a line log: its file's number) of the position.
        #[arg(long)]
        sequence: u64,
        /// The byte offset in that file: the start of a record.
        #[arg(long)]
        offset: u64,
        /// The line number at that offset (default: counted from the file when it is at hand).
        #[arg(long)]
        line: Option<u64>,
        /// The file that holds this sequence, when its name does not say it
        /// (a line log's rotated file): the position is checked against it.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Do not check the position against the file (for a file that is not at hand).
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Status { config, json } = &cli.command {
        return status(config, *json);
    }
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", render(&e));
            ExitCode::FAILURE
        }
    }
}

/// Log lines on standard error, at the level of `LOGDAEMON_LOG` (default
/// info): text, or one JSON object per line with the event's fields and
/// those of its span (journal, listener) for a log collector.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGDAEMON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// The error and its causes, each cause once: most library errors already
/// quote their source in their own message, and repeating it would double
/// the line an operator has to read.
fn render(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

fn load_config(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

fn state_dir(
    state_dir: Option<PathBuf>,
    config: Option<&PathBuf>,
) -> anyhow::Result<(PathBuf, Option<Config>)> {
    match (state_dir, config) {
        (Some(d), c) => Ok((d, c.map(|c| load_config(c)).transpose()?)),
        (None, Some(c)) => {
            let cfg = load_config(c)?;
            Ok((cfg.state_dir.clone(), Some(cfg)))
        }
        (None, None) => anyhow::bail!("say which checkpoint: --state-dir DIR or --config FILE"),
    }
}

/// `logdaemon status`: its own exit statuses (see `status::cmd`); any
/// error means it cannot tell.
fn status(config: &Path, json: bool) -> ExitCode {
    use logdaemon::status::cmd;
    let snap = load_config(config).and_then(|cfg| cmd::status(&cfg).map_err(anyhow::Error::msg));
    match snap {
        Ok(snap) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&snap).unwrap_or_default()
                );
            } else {
                print!("{}", cmd::text(&snap));
            }
            ExitCode::from(cmd::exit_code(&snap))
        }
        Err(e) => {
            eprintln!("error: {}; the status cannot be told", render(&e));
            ExitCode::from(cmd::EXIT_UNKNOWN)
        }
    }
}

/// Device and inode of standard output when it is a regular file.
fn stdout_file() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
    let md = std::fs::File::from(fd).metadata().ok()?;
    md.is_file().then(|| (md.dev(), md.ino()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config, once } => {
            let cfg = load_config(&config)?;
            logdaemon::engine::run(&cfg, logdaemon::engine::RunOptions { once })?;
            Ok(())
        }
        Command::Dump {
            config: Some(config),
            journal: Some(journal),
            ..
        } => {
            let cfg = load_config(&config)?;
            let opts = logdaemon::replay::ReplayOptions {
                journal,
                bounds: logdaemon::replay::Bounds::default(),
                target: logdaemon::replay::Target::Stdout(logdaemon::replay::OutputFormat::Jsonl),
                progress: std::io::stderr().is_terminal(),
                output_file: stdout_file(),
            };
            logdaemon::replay::replay(&cfg, &opts, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Command::Replay {
            config,
            journal,
            since,
            until,
            from,
            to,
            format,
            listener,
        } => {
            let bounds = logdaemon::replay::range::bounds(
                since.as_deref(),
                until.as_deref(),
                from.as_deref(),
                to.as_deref(),
                jiff::Timestamp::now(),
            )?;
            let cfg = load_config(&config)?;
            let target = match (listener, format) {
                (Some(l), _) => logdaemon::replay::Target::Listener(l),
                (None, ReplayFormat::Raw) => {
                    logdaemon::replay::Target::Stdout(logdaemon::replay::OutputFormat::Raw)
                }
                (None, ReplayFormat::Jsonl) => {
                    logdaemon::replay::Target::Stdout(logdaemon::replay::OutputFormat::Jsonl)
                }
            };
            let opts = logdaemon::replay::ReplayOptions {
                journal,
                bounds,
                target,
                progress: std::io::stderr().is_terminal(),
                output_file: stdout_file(),
            };
            let s = logdaemon::replay::replay(&cfg, &opts, &mut std::io::stdout().lock())?;
            if let Some(dir) = s.state {
                eprintln!(
                    "replayed {} entries into the listener; its replay state is in {}",
                    s.entries,
                    dir.display()
                );
            }
            Ok(())
        }
        Command::Dump {
            format,
            record_start,
            files,
            ..
        } => {
            let format = match (format, record_start) {
                (FormatArg::P4, None) => Format::P4,
                (FormatArg::P4, Some(_)) => {
                    anyhow::bail!("--record-start only applies to --format lines")
                }
                (FormatArg::Lines, rs) => Format::Lines {
                    record_start: rs
                        .map(|r| regex::bytes::Regex::new(&r))
                        .transpose()
                        .context("--record-start is not a valid regex")?,
                },
            };
            let opts = logdaemon::dump::DumpOptions {
                format,
                files,
                progress: std::io::stderr().is_terminal(),
            };
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            logdaemon::dump::dump(&opts, &mut lock)?;
            Ok(())
        }
        Command::Checkpoint { command } => match command {
            CheckpointCommand::Show {
                state_dir: sd,
                config,
            } => {
                let (dir, _) = state_dir(sd, config.as_ref())?;
                print!("{}", logdaemon::checkpoint_cmd::show(&dir)?);
                Ok(())
            }
            CheckpointCommand::Set {
                state_dir: sd,
                config,
                journal,
                listener,
                sequence,
                offset,
                line,
                file,
                force,
            } => {
                let (dir, cfg) = state_dir(sd, config.as_ref())?;
                let req = logdaemon::checkpoint_cmd::SetRequest {
                    journal,
                    listener,
                    sequence,
                    offset,
                    line,
                    file,
                    force,
                };
                let msg = logdaemon::checkpoint_cmd::set(&dir, cfg.as_ref(), &req)?;
                println!("{msg}");
                Ok(())
            }
        },
        Command::Init {
            p4root,
            journal,
            output,
        } => {
            let text = logdaemon::init::starter_config(p4root, journal)?;
            match output {
                Some(p) => {
                    if p.exists() {
                        anyhow::bail!(
                            "{} exists; not overwriting it (remove it or choose another --output)",
                            p.display()
                        );
                    }
                    std::fs::write(&p, text)
                        .with_context(|| format!("cannot write {}", p.display()))?;
                    eprintln!(
                        "wrote {}; check it with: logdaemon check --config {}",
                        p.display(),
                        p.display()
                    );
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        Command::Man { output } => {
            std::fs::create_dir_all(&output)
                .with_context(|| format!("cannot create {}", output.display()))?;
            clap_mangen::generate_to(Cli::command(), &output).with_context(|| {
                format!("cannot write the manual pages into {}", output.display())
            })?;
            Ok(())
        }
        // Has exit statuses of its own: answered in `main`.
        Command::Status { .. } => unreachable!("status is handled in main"),
        Command::Check { config } => {
            let cfg = load_config(&config)?;
            for line in logdaemon::init::check(&cfg)? {
                println!("{line}");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    /// Every argument of every subcommand, however deep, explains itself
    /// in `--help` (and so in the man pages made from the same tree).
    #[test]
    fn every_option_of_every_subcommand_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() {
                missing.push(format!("{path}: no about"));
            }
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path}: {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut cmd = <super::Cli as clap::CommandFactory>::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
        assert!(cmd.get_subcommands().count() >= 7, "the walk saw the tree");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("plugin /x.so: refused: {source}")]
    struct Quoting {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated_and_others_are_kept() {
        let e = anyhow::Error::new(Quoting {
            source: std::io::Error::other("bad version"),
        });
        assert_eq!(render(&e), "plugin /x.so: refused: bad version");
        let e =
            anyhow::Error::new(std::io::Error::other("disk full")).context("cannot write cfg.toml");
        assert_eq!(render(&e), "cannot write cfg.toml: disk full");
    }
}
