//! Real `nats-server -js` processes for the tests, on free loopback ports
//! with their own store directories: one server, or a three-node cluster.
//! Servers can be stopped (SIGTERM, or SIGKILL for a crash) and started
//! again on the same ports with the same store. The stream is read back by
//! an independent client, `data/nats/js.py` (Python's `nats-py`), never by
//! the listener's own code.
//!
//! Needs Debian's `nats-server` and `pip install nats-py` (both installed
//! by `scripts/deps.sh`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// One server process (of a cluster, or alone).
pub struct NatsServer {
    pub name: String,
    dir: PathBuf,
    port: u16,
    monitor: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl NatsServer {
    fn new(root: &Path, name: &str, cluster: Option<(u16, &[u16])>, extra: &str) -> NatsServer {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("store")).unwrap();
        let (port, monitor) = (free_port(), free_port());
        let mut conf = format!(
            "server_name: {name}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\njetstream {{ store_dir: \"{}\" }}\n",
            dir.join("store").display()
        );
        if let Some((cport, routes)) = cluster {
            let routes: Vec<String> = routes
                .iter()
                .map(|p| format!("nats-route://127.0.0.1:{p}"))
                .collect();
            conf += &format!(
                "cluster {{ name: logdaemon-test, listen: 127.0.0.1:{cport}, routes: [{}] }}\n",
                routes.join(", ")
            );
        }
        conf += extra;
        std::fs::write(dir.join("server.conf"), conf).unwrap();
        NatsServer {
            name: name.to_string(),
            dir,
            port,
            monitor,
            child: None,
        }
    }

    /// Starts one server with JetStream (file storage) on free ports.
    pub fn start(root: &Path) -> NatsServer {
        NatsServer::start_with(root, "")
    }

    /// As [`NatsServer::start`], with more lines for the server's config
    /// file (e.g. `max_payload: 2048`).
    pub fn start_with(root: &Path, extra: &str) -> NatsServer {
        let mut s = NatsServer::new(root, "n1", None, extra);
        s.spawn();
        s.wait_ready();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(self.dir.join("server.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("cannot start nats-server; install it (Debian package nats-server, see scripts/deps.sh)");
        self.child = Some(child);
    }

    /// Waits until the monitor's `/healthz` answers ok (JetStream ready).
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("nats-server {} exited with {s}:\n{}", self.name, self.log());
            }
            if self.healthz() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server {} not ready within 30 s:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn healthz(&self) -> bool {
        let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.monitor)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200")
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server gracefully (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Kills the server (SIGKILL): a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same ports with the same store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_ready();
    }

    /// Starts a stopped server again without waiting for it to be ready
    /// (a cluster member waits for its peers).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none());
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three servers routed to each other.
pub struct NatsCluster {
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    pub fn start(root: &Path) -> NatsCluster {
        let cports = [free_port(), free_port(), free_port()];
        let mut servers: Vec<NatsServer> = (0..3)
            .map(|i| NatsServer::new(root, &format!("n{}", i + 1), Some((cports[i], &cports)), ""))
            .collect();
        for s in &mut servers {
            s.spawn();
        }
        for s in &mut servers {
            s.wait_ready();
        }
        NatsCluster { servers }
    }

    /// Every server's URL, comma-separated (for `js.py`).
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URLs of the servers running now, comma-separated.
    pub fn running_urls(&self) -> String {
        self.servers
            .iter()
            .filter(|s| s.is_running())
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn by_name(&mut self, name: &str) -> &mut NatsServer {
        self.servers
            .iter_mut()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no server named {name:?}"))
    }
}

/// One message as the independent client read it.
#[derive(Deserialize, Debug, Clone)]
pub struct Stored {
    pub seq: u64,
    pub headers: std::collections::HashMap<String, String>,
    data: String,
}

impl Stored {
    pub fn data(&self) -> Vec<u8> {
        base64_decode(&self.data)
    }
    pub fn header(&self, k: &str) -> &str {
        self.headers.get(k).map(String::as_str).unwrap_or("")
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let n = chunk
            .iter()
            .filter(|&&c| c != b'=')
            .fold(0u32, |acc, &c| acc << 6 | val(c))
            << (6 * pad);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/nats/js.py")
}

fn js_py(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("cannot run python3 for data/nats/js.py");
    assert!(
        out.status.success(),
        "js.py {args:?} failed (is nats-py installed? `pip install nats-py`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every message on `subject` in `stream`, in stream order, read by nats-py.
pub fn dump(servers: &str, stream: &str, subject: &str) -> Vec<Stored> {
    js_py(&["dump", servers, stream, subject])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// The name of the stream's leader, waiting (up to 60 s) for one other
/// than `other_than` to be elected.
pub fn leader(servers: &str, stream: &str, other_than: &str) -> String {
    js_py(&["leader", servers, stream, other_than])
        .trim()
        .to_string()
}

/// One plain publish with nats-py (another writer).
pub fn publish(servers: &str, subject: &str, data: &str) {
    js_py(&["publish", servers, subject, data]);
}

/// Starts `js.py flood`: plain publishes on `subject` for `seconds`.
pub fn flood(servers: &str, subject: &str, seconds: u32) -> std::process::Child {
    Command::new("python3")
        .arg(script())
        .args(["flood", servers, subject, &seconds.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run python3 for data/nats/js.py")
}
