//! Running one command: argv only (never a shell), entry data only on
//! standard input, a deadline enforced by killing the command's whole
//! process group, a stop of the daemon passed on to it (SIGTERM, then
//! SIGKILL after a grace or at a second request), and its output drained concurrently so that a command
//! which does not read its input or floods its output cannot deadlock us.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use logdaemon_sdk::Logger;

/// Longest line of the command's output kept or logged; the rest is cut.
pub const MAX_LINE: usize = 1024;
/// Lines of each output stream logged per run; the rest are counted.
pub const MAX_LOGGED_LINES: usize = 100;
/// Last lines of standard error quoted in a failure message.
pub const STDERR_TAIL: usize = 10;
/// How long to wait for the output pipes to close once the command has
/// exited (descendants it left running may still hold them).
const PIPE_GRACE: Duration = Duration::from_secs(2);
/// How long a command has to exit after SIGTERM when the daemon is told to
/// stop, before it is killed (at once at a second stop request).
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often a running command's deadline and the daemon's stop requests
/// are looked at.
const POLL: Duration = Duration::from_millis(50);

/// One run of the command.
pub struct Invocation<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub cwd: &'a Path,
    /// The command's whole environment (nothing is inherited).
    pub env: &'a [(String, OsString)],
    /// Bytes for standard input; `None` gives the command `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("command {program} cannot be started: {source}")]
    Spawn { program: PathBuf, source: io::Error },
    #[error("command {program} failed ({status}){}", tail(stderr))]
    Failed {
        program: PathBuf,
        status: ExitStatus,
        stderr: Vec<String>,
    },
    #[error("command {program} did not finish within {}; killed it and its process group{}", humantime::format_duration(*timeout), tail(stderr))]
    TimedOut {
        program: PathBuf,
        timeout: Duration,
        stderr: Vec<String>,
    },
    #[error("command {program} was interrupted because the daemon is stopping; nothing of this run is acknowledged, its entries are delivered again at the next start{}", tail(stderr))]
    Stopped {
        program: PathBuf,
        stderr: Vec<String>,
    },
    #[error("cannot wait for command {program}: {source}")]
    Wait { program: PathBuf, source: io::Error },
}

impl RunError {
    /// A problem no retry can fix (the program is missing or not executable).
    pub fn is_permanent(&self) -> bool {
        matches!(self, RunError::Spawn { source, .. }
            if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied)
                || source.raw_os_error() == Some(libc::ENOEXEC))
    }
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; last lines of its stderr: {}", lines.join(" | "))
    }
}

/// Runs the command to completion or until its deadline.
pub fn run(inv: Invocation<'_>, logger: Logger) -> Result<(), RunError> {
    let program = inv.program.to_path_buf();
    let mut cmd = Command::new(inv.program);
    cmd.args(inv.args)
        .current_dir(inv.cwd)
        .env_clear()
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .stdin(if inv.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills everything it started.
        .process_group(0);
    let mut child = spawn(&mut cmd).map_err(|source| RunError::Spawn {
        program: program.clone(),
        source,
    })?;
    let pid = child.id() as libc::pid_t;

    if let (Some(data), Some(mut pipe)) = (inv.stdin, child.stdin.take()) {
        // Detached: it ends when the data is written or the pipe breaks.
        thread::spawn(move || match pipe.write_all(&data) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                logger.debug("command exited without reading all of its standard input");
            }
            Err(e) => logger.warn(&format!("writing the command's standard input: {e}")),
        });
    }
    let (out_tx, out_rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let tx = out_tx.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stdout = Stoppable::new(stdout, &stop);
    let stderr = Stoppable::new(stderr, &stop);
    thread::spawn(move || {
        drain(stdout, "stdout", logger);
        let _ = tx.send(None);
    });
    thread::spawn(move || {
        let tail = drain(stderr, "stderr", logger);
        let _ = out_tx.send(Some(tail));
    });

    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut child: Child = child;
        let _ = done_tx.send(child.wait());
    });
    let (status, end) = wait(pid, &done_rx, inv.timeout, logger);
    let status = status.map_err(|source| RunError::Wait {
        program: program.clone(),
        source,
    })?;

    let mut stderr = Vec::new();
    let mut open_pipes = 2;
    while open_pipes > 0 {
        match out_rx.recv_timeout(PIPE_GRACE) {
            Ok(Some(t)) => {
                stderr = t;
                open_pipes -= 1;
            }
            Ok(None) => open_pipes -= 1,
            Err(_) => {
                logger.warn("the command exited but processes it started still hold its output open; not waiting for them (their further output is not read)");
                // The readers end and close the pipes: no thread waits on
                // descendants that may run for ever.
                stop.store(true, Ordering::SeqCst);
                break;
            }
        }
    }
    match end {
        End::TimedOut => {
            return Err(RunError::TimedOut {
                program,
                timeout: inv.timeout,
                stderr,
            })
        }
        End::Stopped => return Err(RunError::Stopped { program, stderr }),
        End::Exited => {}
    }
    if status.success() {
        Ok(())
    } else {
        Err(RunError::Failed {
            program,
            status,
            stderr,
        })
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Exited,
    TimedOut,
    /// The daemon was told to stop while the command ran.
    Stopped,
}

/// Waits for the command's exit, its deadline, or a stop of the daemon: at
/// the first stop request the command's process group gets SIGTERM, and
/// SIGKILL after [`STOP_GRACE`] or at a second request; at the deadline,
/// SIGKILL. Returns once the command has been reaped.
fn wait(
    pid: libc::pid_t,
    done: &mpsc::Receiver<io::Result<ExitStatus>>,
    timeout: Duration,
    logger: Logger,
) -> (io::Result<ExitStatus>, End) {
    let started = Instant::now();
    let mut end = End::Exited;
    let mut termed: Option<Instant> = None;
    let mut killed = false;
    loop {
        match done.recv_timeout(POLL) {
            Ok(r) => return (r, end),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return (Err(io::Error::other("waiter thread vanished")), end)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if killed {
            continue;
        }
        let stops = logger.stop_requests();
        let signal = if started.elapsed() >= timeout && termed.is_none() {
            end = End::TimedOut;
            Some(libc::SIGKILL)
        } else if stops >= 2 || termed.is_some_and(|t| t.elapsed() >= STOP_GRACE) {
            end = End::Stopped;
            Some(libc::SIGKILL)
        } else if stops == 1 && termed.is_none() {
            end = End::Stopped;
            termed = Some(Instant::now());
            logger.warn(&format!(
                "stopping: sent SIGTERM to the command (process group {pid}); SIGKILL in {} s or at a second stop request",
                STOP_GRACE.as_secs()
            ));
            Some(libc::SIGTERM)
        } else {
            None
        };
        if let Some(sig) = signal {
            // SAFETY: plain syscall; the group leader is not reaped yet (the
            // waiter has not reported), so the group id is still ours.
            unsafe { libc::kill(-pid, sig) };
            killed = sig == libc::SIGKILL;
        }
    }
}

/// Spawns, retrying briefly on `ETXTBSY`: a program that was just written
/// can stay "busy" while any other thread of this process forks before the
/// writer's descriptor is closed in the child.
fn spawn(cmd: &mut Command) -> io::Result<Child> {
    let mut attempt = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < 10 => {
                attempt += 1;
                thread::sleep(Duration::from_millis(10 * attempt));
            }
            r => return r,
        }
    }
}

/// A pipe read until it ends or `stop` is set (looked at every
/// [`STOP_POLL`]); dropping it closes the pipe.
struct Stoppable<R> {
    inner: R,
    stop: Arc<AtomicBool>,
}

/// How often a blocked reader looks whether it is told to stop.
const STOP_POLL: libc::c_int = 100;

impl<R> Stoppable<R> {
    fn new(inner: R, stop: &Arc<AtomicBool>) -> Stoppable<R> {
        Stoppable {
            inner,
            stop: stop.clone(),
        }
    }
}

impl<R: Read + AsRawFd> Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(0);
            }
            let mut p = libc::pollfd {
                fd: self.inner.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the duration of the call.
            match unsafe { libc::poll(&mut p, 1, STOP_POLL) } {
                0 => continue,
                n if n > 0 => return self.inner.read(buf),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// A line of the command's output as logged: control characters other
/// than tab (CR, ESC, ...) escaped, so output cannot forge or hide log
/// lines nor drive the terminal reading the log.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads a stream to its end, logging lines (bounded) and returning the
/// last [`STDERR_TAIL`] lines.
fn drain(mut r: impl Read, stream: &str, logger: Logger) -> Vec<String> {
    let mut tail: VecDeque<String> = VecDeque::with_capacity(STDERR_TAIL);
    let mut logged = 0usize;
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut cut = false;
    let mut emit = |line: &mut Vec<u8>, cut: &mut bool| {
        let mut text = escaped(&String::from_utf8_lossy(line));
        if *cut {
            text.push_str(" [cut]");
        }
        if logged < MAX_LOGGED_LINES {
            logger.info(&format!("{stream}: {text}"));
        }
        logged += 1;
        if tail.len() == STDERR_TAIL {
            tail.pop_front();
        }
        tail.push_back(text);
        line.clear();
        *cut = false;
    };
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for chunk in buf[..n].split_inclusive(|&b| b == b'\n') {
            let (body, ends) = match chunk.strip_suffix(b"\n") {
                Some(b) => (b, true),
                None => (chunk, false),
            };
            let room = MAX_LINE.saturating_sub(line.len());
            line.extend_from_slice(&body[..body.len().min(room)]);
            cut |= body.len() > room;
            if ends {
                emit(&mut line, &mut cut);
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line, &mut cut);
    }
    if logged > MAX_LOGGED_LINES {
        logger.info(&format!(
            "{stream}: {} more lines not logged",
            logged - MAX_LOGGED_LINES
        ));
    }
    tail.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_logged_with_control_characters_escaped() {
        let tail = drain(
            &b"ok\tcol\rfake line\n\x1b[2Jcleared\n"[..],
            "stderr",
            Logger::discard(),
        );
        assert_eq!(tail, ["ok\tcol\\rfake line", "\\u{1b}[2Jcleared"]);
    }

    #[test]
    fn drain_keeps_the_last_lines_and_cuts_long_ones() {
        let mut input = Vec::new();
        for i in 0..15 {
            input.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        input.extend_from_slice(&vec![b'x'; MAX_LINE + 10]);
        let tail = drain(&input[..], "stderr", Logger::discard());
        assert_eq!(tail.len(), STDERR_TAIL);
        assert_eq!(tail[0], "line 6");
        assert_eq!(tail[8], "line 14");
        assert_eq!(tail[9], format!("{} [cut]", "x".repeat(MAX_LINE)));
    }
}
