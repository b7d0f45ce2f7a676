//! A plain libssh2 upload, none of the listener's code: connect, check the
//! host key, authenticate with a key file, `exec "cat > FILE"`, write stdin
//! into the channel, wait for the remote side to finish. The benchmark runs
//! it next to `ssh host 'cat > file'` to tell what libssh2 itself can do
//! with the same cipher from what the listener adds.
//!
//! Usage: ssh-upload HOST PORT USER IDENTITY KNOWN_HOSTS CIPHER REMOTE_FILE < data

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use ssh2::{CheckResult, KnownHostFileKind, MethodType, Session};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 8 {
        eprintln!(
            "usage: ssh-upload HOST PORT USER IDENTITY KNOWN_HOSTS CIPHER REMOTE_FILE < data"
        );
        std::process::exit(2);
    }
    let (host, port, user, identity, known_hosts, cipher, remote) = (
        &a[1],
        a[2].parse::<u16>().expect("port"),
        &a[3],
        &a[4],
        &a[5],
        &a[6],
        &a[7],
    );
    let tcp = TcpStream::connect((host.as_str(), port)).expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut sess = Session::new().expect("session");
    sess.set_tcp_stream(tcp);
    sess.set_compress(false);
    for dir in [MethodType::CryptCs, MethodType::CryptSc] {
        sess.method_pref(dir, cipher).expect("cipher");
    }
    if let Ok(macs) = std::env::var("SSH_UPLOAD_MACS") {
        for dir in [MethodType::MacCs, MethodType::MacSc] {
            sess.method_pref(dir, &macs).expect("macs");
        }
    }
    sess.handshake().expect("handshake");
    let (key, _) = sess.host_key().expect("host key");
    let mut kh = sess.known_hosts().expect("known_hosts");
    kh.read_file(Path::new(known_hosts), KnownHostFileKind::OpenSSH)
        .expect("read known_hosts");
    match kh.check_port(host, port, key) {
        CheckResult::Match => {}
        other => {
            eprintln!("host key not trusted: {other:?}");
            std::process::exit(1);
        }
    }
    sess.userauth_pubkey_file(user, None, Path::new(identity), None)
        .expect("authenticate");
    let mut ch = sess.channel_session().expect("channel");
    ch.exec(&format!("cat > '{}'", remote.replace('\'', r"'\''")))
        .expect("exec");
    let mut buf = vec![0u8; 1 << 20];
    let mut stdin = std::io::stdin().lock();
    loop {
        let n = stdin.read(&mut buf).expect("read stdin");
        if n == 0 {
            break;
        }
        ch.write_all(&buf[..n]).expect("write");
    }
    ch.send_eof().expect("eof");
    ch.wait_eof().expect("wait eof");
    ch.wait_close().expect("close");
    eprintln!(
        "cipher {}",
        sess.methods(MethodType::CryptCs).unwrap_or("?")
    );
    eprintln!("mac {}", sess.methods(MethodType::MacCs).unwrap_or("?"));
    let st = ch.exit_status().expect("status");
    std::process::exit(st);
}
