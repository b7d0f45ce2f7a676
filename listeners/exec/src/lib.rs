//! The built-in `exec` listener: runs a command (a hook) for each batch of
//! entries and, optionally, when the journal goes quiet.
//!
//! The command is an argv list and is never given to a shell; entry data
//! reaches it only on standard input, never in its arguments. What it is
//! told about the batch is in `LOGDAEMON_*` environment variables. A
//! non-zero exit or a timeout makes the host retry the batch (delivery to
//! hooks is at least once); a missing or non-executable program is fatal.
//!
//! ```toml
//! [[journal.listener]]
//! name = "notify"
//! plugin = "exec"
//! [journal.listener.config]
//! command = ["/usr/local/bin/on-change", "--queue", "ci"]
//! on = ["entries", "no_data"]        # default ["entries"]
//! stdin = "jsonl"                    # "none" (default), "raw" or "jsonl"
//! encoding = "base64"                # jsonl: "text" (default, lossy UTF-8) or "base64" (exact bytes)
//! timeout = "30s"                    # default 30s
//! filter = { table = "db.change", op = "pv" }
//! pass_env = ["P4PORT"]              # from the daemon's environment
//! env = { QUEUE = "ci" }             # fixed values
//! ```
//!
//! The command does not inherit the daemon's environment (which may hold
//! other listeners' secrets): it gets `PATH`, `HOME`, `USER`, `LOGNAME`,
//! `LANG`, `LC_ALL`, `LC_CTYPE`, `TZ` and `TMPDIR` when set, the variables
//! named in `pass_env`, those of `env`, and these, describing the event:
//! `LOGDAEMON_EVENT` (`entries` or `no_data`),
//! `LOGDAEMON_JOURNAL`, `LOGDAEMON_LISTENER`, `LOGDAEMON_SEQUENCE`,
//! `LOGDAEMON_FIRST_OFFSET`, `LOGDAEMON_END_OFFSET`, `LOGDAEMON_COUNT` and
//! `LOGDAEMON_HAD_DATA` (`1` or `0`). A batch that spans journal sequences
//! runs the command once per sequence. For `no_data` the positions are the
//! end of the last entry delivered to this listener (empty before the
//! first) and the count is 0. The command runs in the config file's
//! directory.

pub mod config;
pub mod filter;

mod listener;
pub mod run;

pub use listener::ExecListener;

logdaemon_sdk::export_listener!(ExecListener, "exec");
