//! A real OpenSSH server on a loopback port, with generated keys.
//!
//! The hot-backup listener must be tested against the real thing: host-key
//! checks, public-key authentication, exec channels, a server that dies and
//! comes back on the same port. This fixture generates a host key and a user
//! key with `ssh-keygen` in a private temporary directory, writes an
//! `sshd_config` that listens on a free `127.0.0.1` port and accepts only
//! that user key (for the user running the tests, root included), and runs
//! `/usr/sbin/sshd -D -e` as a child until [`Sshd`] is dropped.
//!
//! Needs `openssh-server` (Debian: `apt-get install openssh-server`).

use std::fs;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where Debian installs the server.
pub const SSHD: &str = "/usr/sbin/sshd";

/// How long to wait for a started server to greet.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running (or stopped) sshd with its keys.
pub struct Sshd {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    user: String,
}

impl Sshd {
    /// Generates keys and a config, starts the server and waits until it
    /// greets on its port.
    pub fn start() -> io::Result<Sshd> {
        let dir = scratch_dir("logdaemon-sshd-")?;
        let mut s = Sshd {
            dir,
            port: 0,
            child: None,
            user: current_user()?,
        };
        keygen(&s.host_key_path(), "fixture host key")?;
        keygen(&s.client_key(), "fixture user key")?;
        fs::copy(
            s.client_key().with_extension("pub"),
            s.dir.join("authorized_keys"),
        )?;
        // /run/sshd is sshd's privilege-separation directory; a fresh
        // machine that never ran the system service lacks it.
        if nix_is_root() {
            fs::create_dir_all("/run/sshd")?;
        }
        // A free port can be taken by someone else between the probe and
        // sshd's bind: try a few.
        let mut last = None;
        for _ in 0..5 {
            s.port = free_port()?;
            s.write_config()?;
            match s.spawn() {
                Ok(()) => {
                    s.write_known_hosts()?;
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("sshd did not start")))
    }

    /// The loopback port the server listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user the server accepts (the user running the tests).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The fixture's private directory (keys, config, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Private key accepted by the server (ed25519, no passphrase, mode 0600).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// A `known_hosts` file holding exactly this server's host key as
    /// `[127.0.0.1]:PORT ssh-ed25519 ...`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The line [`Sshd::known_hosts`] holds.
    pub fn known_hosts_line(&self) -> io::Result<String> {
        let public = fs::read_to_string(self.host_key_path().with_extension("pub"))?;
        let mut parts = public.split_whitespace();
        let (kind, blob) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        Ok(format!("[127.0.0.1]:{} {kind} {blob}", self.port))
    }

    /// The server's log (sshd -e writes to stderr, captured here).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Generates another key pair in the fixture directory that the server
    /// does *not* accept; returns the private key's path.
    pub fn other_key(&self, name: &str) -> io::Result<PathBuf> {
        let p = self.dir.join(name);
        keygen(&p, "fixture stranger key")?;
        Ok(p)
    }

    /// Generates an unrelated host key and returns a known_hosts file that
    /// claims it for this server's address (a host-key mismatch).
    pub fn wrong_known_hosts(&self) -> io::Result<PathBuf> {
        let key = self.dir.join("impostor_host_key");
        if !key.exists() {
            keygen(&key, "impostor")?;
        }
        let public = fs::read_to_string(key.with_extension("pub"))?;
        let mut parts = public.split_whitespace();
        let (kind, blob) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let p = self.dir.join("known_hosts.wrong");
        fs::write(&p, format!("[127.0.0.1]:{} {kind} {blob}\n", self.port))?;
        Ok(p)
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server *and* every connection it is serving (each lives in
    /// its own session, so this walks the process tree), like a crash or a
    /// reboot of the remote host would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_tree(child.id());
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same keys.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        // The port is ours but a killed listener may take a moment to be
        // released; sshd sets SO_REUSEADDR, so one retry loop suffices.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn host_key_path(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }

    fn write_config(&self) -> io::Result<()> {
        let d = self.dir.display();
        let cfg = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {d}/ssh_host_ed25519_key\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             PidFile {d}/sshd.pid\n\
             StrictModes no\n\
             UsePAM no\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             AllowUsers {user}\n\
             MaxStartups 100:30:200\n\
             MaxSessions 100\n\
             ClientAliveInterval 0\n\
             Subsystem sftp internal-sftp\n\
             LogLevel VERBOSE\n",
            port = self.port,
            user = self.user,
        );
        fs::write(self.dir.join("sshd_config"), cfg)
    }

    fn write_known_hosts(&self) -> io::Result<()> {
        fs::write(
            self.known_hosts(),
            format!("{}\n", self.known_hosts_line()?),
        )
    }

    fn spawn(&mut self) -> io::Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("sshd.log"))?;
        let mut child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run {SSHD} ({e}); install openssh-server"),
                )
            })?;
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "sshd exited with {status} before listening on port {}; its log:\n{}",
                    self.port,
                    self.log()
                )));
            }
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                // Wait for the banner: a listening socket is not yet a
                // server that accepts sessions.
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                let mut buf = [0u8; 4];
                if s.read_exact(&mut buf).is_ok() && &buf == b"SSH-" {
                    self.child = Some(child);
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                kill_tree(child.id());
                let _ = child.wait();
                return Err(io::Error::other(format!(
                    "sshd did not greet on port {} within {START_TIMEOUT:?}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("LOGDAEMON_KEEP_TMP").is_some() {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A new private (0700) directory under the system temp dir.
pub fn scratch_dir(prefix: &str) -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    static N: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = base.join(format!(
            "{prefix}{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        match fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn keygen(path: &Path, comment: &str) -> io::Result<()> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run ssh-keygen ({e}); install openssh-client"),
            )
        })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ssh-keygen for {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

fn current_user() -> io::Result<String> {
    let out = Command::new("id").arg("-un").output()?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if name.is_empty() {
        return Err(io::Error::other("`id -un` printed no user name"));
    }
    Ok(name)
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// SIGKILLs `pid` and all its descendants (found through /proc), children first.
fn kill_tree(pid: u32) {
    let mut order = vec![pid];
    let mut i = 0;
    while i < order.len() {
        let parent = order[i];
        order.extend(children_of(parent));
        i += 1;
    }
    // Stop the listener first so it cannot fork new children, then the rest.
    for p in order {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(p.to_string())
            .stderr(Stdio::null())
            .status();
    }
}

fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state ppid ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_greets_stops_and_restarts_on_the_same_port() {
        let mut s = Sshd::start().expect("start sshd");
        let port = s.port();
        let line = s.known_hosts_line().unwrap();
        assert!(
            line.starts_with(&format!("[127.0.0.1]:{port} ssh-ed25519 AAAA")),
            "{line}"
        );
        s.stop();
        assert!(TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            Duration::from_millis(500)
        )
        .is_err());
        s.restart().unwrap();
        assert_eq!(s.port(), port);
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"SSH-");
    }

    #[test]
    fn the_configured_user_can_run_a_command() {
        let s = Sshd::start().expect("start sshd");
        let out = Command::new("ssh")
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-p",
                &s.port().to_string(),
                "-i",
            ])
            .arg(s.client_key())
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", s.known_hosts().display()))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-l",
                s.user(),
                "127.0.0.1",
                "echo hello",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello\n",
            "stderr: {} log: {}",
            String::from_utf8_lossy(&out.stderr),
            s.log()
        );
    }
}
