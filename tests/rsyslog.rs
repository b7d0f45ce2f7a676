//! A real `rsyslogd` in the foreground, for the syslog listener's tests.
//!
//! The fixture writes its own config into a private directory (work
//! directory, pid file, received messages), loads only the input modules a
//! test asks for on free loopback ports (`imudp`, `imtcp`, `imrelp`,
//! `imuxsock` on a socket in that directory, and TLS through rsyslog's
//! GnuTLS driver with a CA the fixture makes with `openssl`), and writes
//! every message as received (`%rawmsg%`, one per line) to `out.log`. The
//! main queue is direct, so a message is in `out.log` before rsyslog
//! acknowledges it (RELP) or reads the next one.
//!
//! Needs Debian's `rsyslog`, `rsyslog-relp`, `rsyslog-gnutls` and `openssl`.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// An input rsyslog listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Udp,
    Tcp,
    /// RFC 5425 TLS on imtcp (not together with [`Input::Tcp`]).
    TcpTls,
    Relp,
    RelpTls,
    /// imuxsock on [`Rsyslogd::socket`].
    Unix,
}

/// Which certificate the server shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cert {
    /// Signed by [`Rsyslogd::ca`], for `localhost` and `127.0.0.1`.
    Good,
    /// Signed by another CA the client does not trust.
    OtherCa,
}

pub struct Rsyslogd {
    dir: PathBuf,
    inputs: Vec<(Input, u16)>,
    child: Option<Child>,
}

impl Rsyslogd {
    pub fn start(inputs: &[Input]) -> io::Result<Rsyslogd> {
        Self::start_with(inputs, Cert::Good)
    }

    pub fn start_with(inputs: &[Input], cert: Cert) -> io::Result<Rsyslogd> {
        assert!(
            !(inputs.contains(&Input::Tcp) && inputs.contains(&Input::TcpTls)),
            "one imtcp per fixture"
        );
        let dir = tempfile::Builder::new()
            .prefix("logdaemon-rsyslog-")
            .tempdir()?
            .keep();
        fs::create_dir_all(dir.join("work"))?;
        let mut inputs_ports = Vec::new();
        for &i in inputs {
            let port = match i {
                Input::Udp => UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?
                    .local_addr()?
                    .port(),
                Input::Unix => 0,
                _ => TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
                    .local_addr()?
                    .port(),
            };
            inputs_ports.push((i, port));
        }
        let mut r = Rsyslogd {
            dir,
            inputs: inputs_ports,
            child: None,
        };
        if inputs
            .iter()
            .any(|i| matches!(i, Input::TcpTls | Input::RelpTls))
        {
            r.make_certs(cert)?;
        }
        r.write_config()?;
        r.spawn()?;
        Ok(r)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The port of `input`.
    pub fn port(&self, input: Input) -> u16 {
        self.inputs
            .iter()
            .find(|(i, _)| *i == input)
            .map(|(_, p)| *p)
            .expect("input not configured")
    }

    /// The imuxsock socket ([`Input::Unix`]).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("log.sock")
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A client certificate signed by [`Rsyslogd::ca`] for the name
    /// `logdaemon-client`, which the RELP TLS input requires, and its key.
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("client.pem"), self.dir.join("client.key"))
    }

    /// Everything received so far, one message per line as rsyslog wrote it
    /// (control characters escaped as `#ooo`).
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let data = fs::read(self.dir.join("out.log")).unwrap_or_default();
        data.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Polls until `n` messages arrived or `timeout` passes; returns them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// rsyslogd's own messages (stderr and its internal log).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("rsyslogd.log")).unwrap_or_default()
    }

    /// Stops rsyslogd with SIGTERM (it finishes what it has and exits).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts rsyslogd again with the same config and ports.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn write_config(&self) -> io::Result<()> {
        let d = self.dir.display();
        let has = |i: Input| self.inputs.iter().any(|(x, _)| *x == i);
        let mut c = format!(
            "global(workDirectory=\"{d}/work\" maxMessageSize=\"256k\" parser.escapeControlCharactersOnReceive=\"on\"{tls})\n\
             main_queue(queue.type=\"Direct\")\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             ruleset(name=\"out\") {{ action(type=\"omfile\" file=\"{d}/out.log\" template=\"raw\") }}\n",
            tls = if has(Input::TcpTls) {
                format!(
                    " defaultNetstreamDriverCAFile=\"{d}/ca.pem\" defaultNetstreamDriverCertFile=\"{d}/server.pem\" defaultNetstreamDriverKeyFile=\"{d}/server.key\""
                )
            } else {
                String::new()
            }
        );
        for &(i, port) in &self.inputs {
            let line = match i {
                Input::Udp => format!("module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"out\" rcvbufSize=\"16m\")\n"),
                Input::Tcp => format!("module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"out\")\n"),
                Input::TcpTls => format!(
                    "module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")\n\
                     input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"out\")\n"
                ),
                Input::Relp => format!("module(load=\"imrelp\")\ninput(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"out\")\n"),
                Input::RelpTls => format!(
                    "module(load=\"imrelp\")\ninput(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"out\" tls=\"on\" \
                     tls.caCert=\"{d}/ca.pem\" tls.myCert=\"{d}/server.pem\" tls.myPrivKey=\"{d}/server.key\" \
                     tls.authMode=\"name\" tls.permittedPeer=[\"logdaemon-client\"])\n"
                ),
                Input::Unix => format!(
                    "module(load=\"imuxsock\" sysSock.use=\"off\")\ninput(type=\"imuxsock\" socket=\"{d}/log.sock\" ruleset=\"out\" rateLimit.interval=\"0\")\n"
                ),
            };
            c.push_str(&line);
        }
        if has(Input::Relp) && has(Input::RelpTls) {
            // imrelp is loaded once.
            c = c.replacen("module(load=\"imrelp\")\n", "", 1);
        }
        fs::write(self.dir.join("rsyslog.conf"), c)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("rsyslogd.log"))?;
        let _ = fs::remove_file(self.dir.join("rsyslogd.pid"));
        let mut child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run {RSYSLOGD} ({e}); install rsyslog, rsyslog-relp and rsyslog-gnutls"),
                )
            })?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "rsyslogd exited with {status} before listening; its log:\n{}",
                    self.log()
                )));
            }
            if self.inputs.iter().all(|&(i, p)| self.listening(i, p)) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other(format!(
                    "rsyslogd did not listen within {START_TIMEOUT:?}; its log:\n{}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the kernel shows the input's socket bound (no probe message,
    /// which would end up in the output).
    fn listening(&self, i: Input, port: u16) -> bool {
        let (table, state) = match i {
            Input::Unix => return self.socket().exists(),
            Input::Udp => ("/proc/net/udp", "07"),
            _ => ("/proc/net/tcp", "0A"),
        };
        let want = format!("0100007F:{port:04X}");
        fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1] == want && f[3] == state
            })
    }

    fn make_certs(&self, cert: Cert) -> io::Result<()> {
        let d = &self.dir;
        let ca = |name: &str| -> io::Result<()> {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN={name}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.pem"),
                ],
            )
        };
        ca("ca")?;
        ca("other-ca")?;
        let signer = match cert {
            Cert::Good => "ca",
            Cert::OtherCa => "other-ca",
        };
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        )?;
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=logdaemon-client",
                "-keyout",
                "client.key",
                "-out",
                "client.csr",
            ],
        )?;
        fs::write(
            d.join("client.ext"),
            "subjectAltName=DNS:logdaemon-client\nbasicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "client.ext",
                "-out",
                "client.pem",
            ],
        )?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(d.join("client.key"), fs::Permissions::from_mode(0o600))?;
        fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n",
        )?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                &format!("{signer}.pem"),
                "-CAkey",
                &format!("{signer}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        )
    }
}

fn openssl(dir: &Path, args: &[&str]) -> io::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run openssl ({e}); install openssl"),
            )
        })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("LOGDAEMON_KEEP_TMP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
