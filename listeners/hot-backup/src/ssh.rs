//! One authenticated SSH session to the standby, and commands run over it.
//!
//! Trust comes first: the host key is checked against `known_hosts` right
//! after the key exchange and before authentication, so an impostor never
//! sees our key and never receives a byte of the journal. There is no way
//! to turn the check off. Errors are sorted where they happen: a refused
//! host key or user key is fatal, anything the network does is transient.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use ssh2::{CheckResult, ExtendedData, HashType, KnownHostFileKind, Session};

use crate::config::{Auth, Config};
use crate::error::{fatal, transient, Error, Result};
use crate::hostkey;
use crate::shell::{self, Script};

/// Cipher preference unless configured: OpenSSH's own client order, so the
/// listener negotiates what `ssh standby` does. ChaCha20-Poly1305 first is
/// also the cheapest for libssh2 (1.11), which encrypts a whole packet in
/// one call for it but AES (CTR and GCM) 16 bytes per OpenSSL call: for
/// 256 MiB, 0.6 s of CPU with chacha20-poly1305 against 0.72 s with
/// aes128-gcm@openssh.com (OpenSSH's `ssh` needs 0.26 s with AES-GCM).
pub const DEFAULT_CIPHERS: &str =
    "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com";

/// Bytes of a command's output kept for messages.
const KEEP_OUTPUT: usize = 64 * 1024;
/// Size of one write into the channel.
const CHUNK: usize = 1 << 20;

pub struct Conn {
    sess: Session,
    io_timeout: Duration,
    what: String,
    shell: Option<Shell>,
    pending: usize,
}

/// The remote shell loop's channel and the token that ends each answer.
struct Shell {
    ch: ssh2::Channel,
    token: String,
    /// Bytes read past the last answer (the start of the next one).
    leftover: Vec<u8>,
    /// The defs of the last request sent (see [`Script::frame`]).
    last_defs: String,
    /// Whether a request with data was sent on this channel.
    had_data: bool,
}

impl Shell {
    /// Reads until the loop says it is ready for the data of the request
    /// just sent (`true`), or until that request's answer came instead
    /// (`false`: its `pre` failed), with `pending` earlier requests not yet
    /// answered. What comes before is kept for [`Conn::answer`].
    fn wait_ready(&mut self, pending: usize) -> std::io::Result<bool> {
        let ready = format!("\n{}+\n", self.token).into_bytes();
        let answer = format!("\n{} ", self.token).into_bytes();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(at) = find(&self.leftover, &ready) {
                self.leftover.drain(at..at + ready.len());
                return Ok(true);
            }
            if count(&self.leftover, &answer) > pending {
                return Ok(false);
            }
            let n = self.ch.read(&mut buf)?;
            if n == 0 {
                if count(&self.leftover, &answer) > 0 {
                    // The loop ended after answering an earlier request
                    // (it stops after a failure): that answer says why.
                    return Ok(false);
                }
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the remote loop ended",
                ));
            }
            self.leftover.extend_from_slice(&buf[..n]);
        }
    }
}

/// What a finished remote command said.
#[derive(Debug)]
pub struct Output {
    pub status: i32,
    /// stdout (and stderr, merged, for scripts run with [`Conn::run`]).
    pub out: Vec<u8>,
}

impl Output {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.out).trim().to_string()
    }
}

fn net(what: &str, e: impl std::fmt::Display) -> Error {
    transient(format!("{what}: {e}"))
}

impl Conn {
    /// Connects, verifies the host key and authenticates.
    pub fn open(cfg: &Config) -> Result<Conn> {
        let what = format!("{}@{}:{}", cfg.user, cfg.host, cfg.port);
        // Read known_hosts first: without it nothing can be trusted.
        let known = std::fs::read_to_string(&cfg.known_hosts).map_err(|e| {
            fatal(format!(
                "cannot read known_hosts file {}: {e}; create it with the standby's host key (e.g. `ssh-keyscan -p {} {} > {}`, then compare the fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` run on the standby)",
                cfg.known_hosts.display(),
                cfg.port,
                cfg.host,
                cfg.known_hosts.display()
            ))
        })?;
        if let Auth::Key { identity_file, .. } = &cfg.auth {
            check_identity_file(identity_file)?;
        }

        let addrs: Vec<_> = (cfg.host.as_str(), cfg.port)
            .to_socket_addrs()
            .map_err(|e| net(&format!("cannot resolve {}", cfg.host), e))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, cfg.connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            net(
                &format!("cannot connect to {}:{}", cfg.host, cfg.port),
                last.map_or("no address".to_string(), |e| e.to_string()),
            )
        })?;
        let _ = tcp.set_nodelay(true);

        let mut sess = Session::new().map_err(|e| net("cannot create an SSH session", e))?;
        sess.set_tcp_stream(tcp);
        sess.set_compress(false);
        sess.set_timeout(ms(cfg.connect_timeout));
        if let Some(prefs) = hostkey::preferred_algorithms(&known, &cfg.host, cfg.port) {
            // Only a preference; an error here just leaves libssh2's default.
            let _ = sess.method_pref(ssh2::MethodType::HostKey, &prefs);
        }
        let ciphers = cfg.ciphers.as_deref().unwrap_or(DEFAULT_CIPHERS);
        for dir in [ssh2::MethodType::CryptCs, ssh2::MethodType::CryptSc] {
            sess.method_pref(dir, ciphers).map_err(|e| {
                fatal(format!(
                    "config key `ciphers`: `{ciphers}` is not usable here: {e}"
                ))
            })?;
        }
        sess.handshake()
            .map_err(|e| net(&format!("SSH handshake with {}:{}", cfg.host, cfg.port), e))?;
        verify_host_key(&sess, cfg, &hostkey::KnownHostsText::parse(&known))?;
        sess.set_timeout(ms(cfg.io_timeout));
        authenticate(&sess, cfg)?;
        if !cfg.keepalive.is_zero() {
            sess.set_keepalive(
                true,
                cfg.keepalive.as_secs().clamp(2, u64::from(u32::MAX)) as u32,
            );
        }
        Ok(Conn {
            sess,
            io_timeout: cfg.io_timeout,
            what,
            shell: None,
            pending: 0,
        })
    }

    /// The negotiated cipher (client to server), for logs and benchmarks.
    pub fn cipher(&self) -> String {
        self.sess
            .methods(ssh2::MethodType::CryptCs)
            .unwrap_or("?")
            .to_string()
    }

    /// Sends a keepalive if one is due; an error means the connection is dead.
    pub fn keepalive(&self) -> Result<()> {
        self.sess
            .keepalive_send()
            .map(|_| ())
            .map_err(|e| net(&format!("keepalive to {}", self.what), e))
    }

    /// Runs `script` on the standby with stderr merged into stdout; `feed`
    /// writes exactly `data_len` bytes, which the remote loop appends to
    /// the script's target. Waiting for the answer may take up to `timeout`.
    /// With `keep_all` the whole output is returned, else its last 64 KiB.
    /// Every earlier [`Conn::submit`] must have been answered.
    ///
    /// All scripts of a connection run one after the other in one remote
    /// shell started on the first call: one exec channel per connection,
    /// not per batch, so a batch costs one round trip and no login-shell
    /// start-up (see [`shell::SHELL_LOOP`]).
    pub fn run(
        &mut self,
        script: &Script,
        data_len: u64,
        feed: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
        timeout: Duration,
        keep_all: bool,
    ) -> Result<Output> {
        debug_assert_eq!(self.pending, 0, "run() with answers pending");
        self.submit(script, data_len, feed, timeout)?;
        self.answer(timeout, keep_all)
    }

    /// Number of submitted requests not yet answered.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Sends a request without waiting for its answer (answers come back
    /// in order through [`Conn::answer`]).
    /// Sending may wait up to `timeout` for the standby to take the data
    /// (it does once it has finished the requests before this one).
    pub fn submit(
        &mut self,
        script: &Script,
        data_len: u64,
        feed: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
        timeout: Duration,
    ) -> Result<()> {
        let what = self.what.clone();
        let ctx = || format!("remote shell on {what}");
        if self.shell.is_none() {
            let mut ch = self.sess.channel_session().map_err(|e| net(&ctx(), e))?;
            ch.handle_extended_data(ExtendedData::Merge)
                .map_err(|e| net(&ctx(), e))?;
            let token = format!(
                "@@logdaemon-done-{:016x}",
                xxhash_rust::xxh3::xxh3_64(
                    format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes()
                )
            );
            // Run by `sh` whatever the login shell is (csh and fish parse
            // `exec sh -c '...'` alike).
            let cmd = format!(
                "exec sh -c {}",
                shell::quote(&shell::SHELL_LOOP.replace("TOKEN", &token))
            );
            ch.exec(&cmd).map_err(|e| net(&ctx(), e))?;
            self.shell = Some(Shell {
                ch,
                token,
                leftover: Vec::new(),
                last_defs: String::new(),
                had_data: false,
            });
            // An empty first request: whatever the login shell's start-up
            // files print ends up in its answer, which is dropped.
            self.submit(&Script::default(), 0, &mut |_| Ok(()), self.io_timeout)?;
            self.answer(self.io_timeout, false)?;
        }
        let pending = self.pending;
        let shell = self.shell.as_mut().expect("shell open");
        self.sess.set_timeout(ms(timeout));
        // The first data of the channel also waits: the loop has not yet
        // looked for `dd`, nor `wc` counted the file.
        let ready = data_len > 0 && (script.ready || !shell.had_data);
        shell.had_data |= data_len > 0;
        let written = {
            let defs = script.defs();
            let same = defs == shell.last_defs;
            let r = (|| {
                ChunkWriter {
                    ch: &mut shell.ch,
                    written: 0,
                }
                .write_all(&script.frame(data_len, same, ready))
                .map_err(|e| net(&ctx(), e))?;
                if !same {
                    shell.last_defs = defs;
                }
                if ready && !shell.wait_ready(pending).map_err(|e| net(&ctx(), e))? {
                    // `pre` failed: its answer says why, the data stays here.
                    return Ok(None);
                }
                let mut w = ChunkWriter {
                    ch: &mut shell.ch,
                    written: 0,
                };
                feed(&mut w)?;
                Ok(Some(w.written))
            })();
            self.sess.set_timeout(ms(self.io_timeout));
            match r? {
                Some(n) => n,
                None => {
                    self.pending += 1;
                    return Ok(());
                }
            }
        };
        if written != data_len {
            // The remote loop would read the wrong bytes as the next
            // script: this channel must not be used again.
            self.shell = None;
            return Err(transient(format!(
                "{}: {written} bytes of data sent, {data_len} announced",
                ctx()
            )));
        }
        self.pending += 1;
        Ok(())
    }

    /// Reads the answer to the oldest unanswered request.
    pub fn answer(&mut self, timeout: Duration, keep_all: bool) -> Result<Output> {
        let what = self.what.clone();
        let ctx = || format!("remote shell on {what}");
        let Some(shell) = self.shell.as_mut() else {
            return Err(transient(format!("{}: no request to answer", ctx())));
        };
        self.sess.set_timeout(ms(timeout));
        let marker = format!("\n{} ", shell.token).into_bytes();
        let r = (|| {
            let mut out = std::mem::take(&mut shell.leftover);
            let mut buf = vec![0u8; 256 * 1024];
            let mut from = 0;
            loop {
                if let Some(at) = find(&out[from..], &marker).map(|i| i + from) {
                    let rest = &out[at + marker.len()..];
                    if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                        let status = std::str::from_utf8(&rest[..nl])
                            .ok()
                            .and_then(|s| s.trim().parse::<i32>().ok())
                            .ok_or_else(|| transient(format!("{}: garbled status line", ctx())))?;
                        shell.leftover = rest[nl + 1..].to_vec();
                        out.truncate(at);
                        return Ok(Output { status, out });
                    }
                }
                if !keep_all && out.len() > 2 * KEEP_OUTPUT {
                    out.drain(..out.len() - KEEP_OUTPUT);
                }
                from = out.len().saturating_sub(marker.len() + 24);
                let n = shell.ch.read(&mut buf).map_err(|e| net(&ctx(), e))?;
                if n == 0 {
                    return Err(transient(format!(
                        "{} ended unexpectedly: {}",
                        ctx(),
                        String::from_utf8_lossy(&out[out.len().saturating_sub(2000)..]).trim()
                    )));
                }
                out.extend_from_slice(&buf[..n]);
            }
        })();
        self.sess.set_timeout(ms(self.io_timeout));
        if r.is_ok() {
            self.pending -= 1;
        } else {
            // The stream is out of step: the connection is done for.
            self.shell = None;
        }
        r
    }

    /// Runs `script` without stdin and returns exactly its output; a
    /// non-zero status is an error.
    pub fn capture(&mut self, script: &Script) -> Result<Vec<u8>> {
        let out = self.run(script, 0, &mut |_| Ok(()), self.io_timeout, true)?;
        if out.status != 0 {
            return Err(transient(format!(
                "remote command on {} exited with status {}: {}",
                self.what,
                out.status,
                out.text()
            )));
        }
        Ok(out.out)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn ms(d: Duration) -> u32 {
    d.as_millis().clamp(1, u128::from(u32::MAX)) as u32
}

/// Bounds each write so one huge buffer is not handed to libssh2 at once,
/// and counts what was written.
struct ChunkWriter<'a> {
    ch: &'a mut ssh2::Channel,
    written: u64,
}

impl Write for ChunkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.ch.write(&buf[..buf.len().min(CHUNK)])?;
        self.written += n as u64;
        Ok(n)
    }
    /// Writes are sent as they are made. (`Channel::flush` would discard
    /// *received* data, answers included: never call it.)
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refuses a private key that group or others can read, like ssh does.
pub fn check_identity_file(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(p).map_err(|e| fatal(format!("identity_file {}: {e}", p.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(fatal(format!(
            "identity_file {} is accessible by group or others (mode {mode:04o}); a private key must be private: run `chmod 600 {}`",
            p.display(),
            p.display()
        )));
    }
    Ok(())
}

fn verify_host_key(sess: &Session, cfg: &Config, known: &hostkey::KnownHostsText) -> Result<()> {
    let (key, kind) = sess
        .host_key()
        .ok_or_else(|| transient("the server sent no host key"))?;
    let fp = sess
        .host_key_hash(HashType::Sha256)
        .map(hostkey::fingerprint)
        .unwrap_or_else(|| "SHA256:?".into());
    let line = hostkey::known_hosts_line(&cfg.host, cfg.port, kind, key);
    let kh_path = cfg.known_hosts.display();
    if let Some(n) = known.revoked_line(key) {
        return Err(fatal(format!(
            "REVOKED HOST KEY: {}:{} offers {} key {fp}, which {kh_path} line {n} marks @revoked. Nothing was sent. \
             The standby must get a new host key; never remove the @revoked line to make this pass",
            cfg.host,
            cfg.port,
            hostkey::type_name(kind)
        )));
    }
    let mut kh = sess.known_hosts().map_err(|e| net("known_hosts", e))?;
    for (n, line) in &known.plain {
        kh.read_str(line, KnownHostFileKind::OpenSSH).map_err(|e| {
            fatal(format!(
                "cannot parse known_hosts file {kh_path} line {n}: {e}; fix or remove the line"
            ))
        })?;
    }
    let ca_note = match known.cert_authorities.first() {
        Some(n) => format!(
            " ({kh_path} line {n} is a @cert-authority line: host certificates are not supported, only keys listed plainly are trusted)"
        ),
        None => String::new(),
    };
    match kh.check_port(&cfg.host, cfg.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(fatal(format!(
            "HOST KEY MISMATCH for {}:{}: the server offers {} key {fp}, which is not the key recorded in {kh_path}. \
             Someone may be intercepting the connection, or the standby's host key was changed. Nothing was sent. \
             If the change is legitimate (check with `ssh-keygen -lf` on the standby), replace the host's line in {kh_path} with:\n{line}",
            cfg.host,
            cfg.port,
            hostkey::type_name(kind)
        ))),
        CheckResult::NotFound => Err(fatal(format!(
            "the host key of {}:{} is not in {kh_path}{ca_note}: the server offers {} key {fp}. Nothing was sent. \
             If this is the right standby (check with `ssh-keygen -lf` on the standby), add this line to {kh_path}:\n{line}",
            cfg.host,
            cfg.port,
            hostkey::type_name(kind)
        ))),
        CheckResult::Failure => Err(fatal(format!("the host key of {}:{} ({fp}) could not be checked against {kh_path}", cfg.host, cfg.port))),
    }
}

fn authenticate(sess: &Session, cfg: &Config) -> Result<()> {
    let auth_err = |e: ssh2::Error, how: &str| -> Error {
        use ssh2::ErrorCode::Session as S;
        match e.code() {
            // -16 file, -18 authentication failed, -19 unverified public key.
            S(-16) | S(-18) | S(-19) => fatal(format!(
                "the standby refused {how} for user `{}`: {e}. Check that the public key is in ~{}/.ssh/authorized_keys on {} and that the user exists",
                cfg.user, cfg.user, cfg.host
            )),
            _ => net(&format!("authentication with {} on {}:{}", how, cfg.host, cfg.port), e),
        }
    };
    match &cfg.auth {
        Auth::Key {
            identity_file,
            passphrase,
        } => {
            let how = format!("the key {}", identity_file.display());
            sess.userauth_pubkey_file(&cfg.user, None, identity_file, passphrase.as_deref())
                .map_err(|e| auth_err(e, &how))?;
        }
        Auth::Agent => {
            let mut agent = sess.agent().map_err(|e| net("ssh-agent", e))?;
            agent.connect().map_err(|e| {
                fatal(format!(
                    "cannot reach ssh-agent (is SSH_AUTH_SOCK set for the daemon?): {e}"
                ))
            })?;
            agent
                .list_identities()
                .map_err(|e| fatal(format!("ssh-agent: {e}")))?;
            let ids = agent
                .identities()
                .map_err(|e| fatal(format!("ssh-agent: {e}")))?;
            let mut ok = false;
            for id in &ids {
                if agent.userauth(&cfg.user, id).is_ok() {
                    ok = true;
                    break;
                }
            }
            let _ = agent.disconnect();
            if !ok {
                return Err(fatal(format!(
                    "the standby refused all {} key(s) of ssh-agent for user `{}` on {}:{}",
                    ids.len(),
                    cfg.user,
                    cfg.host,
                    cfg.port
                )));
            }
        }
    }
    if !sess.authenticated() {
        return Err(fatal(format!(
            "authentication as `{}` on {}:{} did not complete",
            cfg.user, cfg.host, cfg.port
        )));
    }
    Ok(())
}
