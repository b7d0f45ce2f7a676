//! Host-key presentation: fingerprints as OpenSSH prints them and the exact
//! `known_hosts` line an operator adds, so a refused host key can be checked
//! against `ssh-keygen -lf` on the standby and trusted by copy and paste.

use ssh2::HostKeyType;

/// Standard base64 (RFC 4648), with or without `=` padding.
pub fn base64(data: &[u8], pad: bool) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// `SHA256:<base64 without padding>` of a host key, from its SHA-256 digest.
pub fn fingerprint(sha256: &[u8]) -> String {
    format!("SHA256:{}", base64(sha256, false))
}

/// The key type as it appears in `known_hosts` and `.pub` files.
pub fn type_name(kind: HostKeyType) -> &'static str {
    match kind {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// How OpenSSH names a host in `known_hosts`: bare on port 22, else `[host]:port`.
pub fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The line that trusts `key` for `host:port`.
pub fn known_hosts_line(host: &str, port: u16, kind: HostKeyType, key: &[u8]) -> String {
    format!(
        "{} {} {}",
        host_pattern(host, port),
        type_name(kind),
        base64(key, true)
    )
}

/// A `known_hosts` file split the way OpenSSH reads it: plain lines for
/// libssh2 (which knows no markers), and the `@revoked` and
/// `@cert-authority` lines handled here.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct KnownHostsText {
    /// Lines without a marker, with their 1-based line numbers.
    pub plain: Vec<(usize, String)>,
    /// `@revoked` lines: line number and the key's base64 text.
    pub revoked: Vec<(usize, String)>,
    /// Line numbers of `@cert-authority` lines.
    pub cert_authorities: Vec<usize>,
}

impl KnownHostsText {
    pub(crate) fn parse(text: &str) -> KnownHostsText {
        let mut out = KnownHostsText::default();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let mut f = t.split_whitespace();
            match f.next() {
                Some("@revoked") => {
                    // hosts, key type, key: a revoked key is refused for
                    // every host, as OpenSSH's man page says it "must not
                    // ever be accepted".
                    if let Some(key) = f.nth(2) {
                        out.revoked.push((n, key.trim_end_matches('=').to_string()));
                    }
                }
                Some("@cert-authority") => out.cert_authorities.push(n),
                Some(m) if m.starts_with('@') => {}
                _ => out.plain.push((n, t.to_string())),
            }
        }
        out
    }

    /// The `@revoked` line listing `key` (the server's key blob), if any.
    pub(crate) fn revoked_line(&self, key: &[u8]) -> Option<usize> {
        let b = base64(key, false);
        self.revoked.iter().find(|(_, k)| *k == b).map(|(n, _)| *n)
    }
}

/// Host-key algorithms to offer, preferring the key types `known_hosts`
/// lists for this host in clear text, so the server is asked for a key we
/// can check rather than another of its keys. `None` when no clear-text
/// line names the host (hashed entries are still checked after the
/// handshake).
pub fn preferred_algorithms(known_hosts: &str, host: &str, port: u16) -> Option<String> {
    let pattern = host_pattern(host, port);
    let mut algs: Vec<&str> = Vec::new();
    for line in known_hosts.lines() {
        let mut f = line.split_whitespace();
        let Some(mut hosts) = f.next() else { continue };
        if hosts.starts_with('@') {
            // @cert-authority / @revoked markers: not ours to interpret.
            continue;
        }
        if hosts.starts_with('#') {
            continue;
        }
        if !hosts.split(',').any(|h| h == pattern) {
            continue;
        }
        let Some(kind) = f.next() else { continue };
        hosts = kind;
        let names: &[&str] = match hosts {
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
            other => match other {
                "ssh-ed25519" => &["ssh-ed25519"],
                "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
                "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
                "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
                _ => &[],
            },
        };
        for n in names {
            if !algs.contains(n) {
                algs.push(n);
            }
        }
    }
    (!algs.is_empty()).then(|| algs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes(), true), o);
            assert_eq!(base64(i.as_bytes(), false), o.trim_end_matches('='));
        }
    }

    #[test]
    fn fingerprint_is_openssh_style() {
        // SHA-256 of the empty string, as OpenSSH would print it.
        let digest = [
            0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
            0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
            0x78, 0x52, 0xb8, 0x55,
        ];
        assert_eq!(
            fingerprint(&digest),
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }

    #[test]
    fn markers_are_split_from_plain_lines() {
        let kh = "# c\n[h]:2 ssh-ed25519 Zm9v\n@revoked * ssh-ed25519 Zm9vYg==\n@cert-authority *.x ssh-rsa QQ==\n@bogus h ssh-rsa QQ==\n";
        let k = KnownHostsText::parse(kh);
        assert_eq!(k.plain, [(2, "[h]:2 ssh-ed25519 Zm9v".to_string())]);
        assert_eq!(k.revoked_line(b"foob"), Some(3));
        assert_eq!(k.revoked_line(b"foo"), None);
        assert_eq!(k.cert_authorities, [4]);
    }

    #[test]
    fn known_hosts_line_and_preferences() {
        assert_eq!(
            known_hosts_line("127.0.0.1", 2222, HostKeyType::Ed25519, b"foo"),
            "[127.0.0.1]:2222 ssh-ed25519 Zm9v"
        );
        assert_eq!(
            known_hosts_line("h", 22, HostKeyType::Rsa, b"fo"),
            "h ssh-rsa Zm8="
        );
        let kh = "# c\n[127.0.0.1]:2222 ssh-ed25519 AAAA\nother ssh-rsa AAAA\n[127.0.0.1]:2222,x ssh-rsa BBBB\n";
        assert_eq!(
            preferred_algorithms(kh, "127.0.0.1", 2222).as_deref(),
            Some("ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ssh-rsa")
        );
        assert_eq!(preferred_algorithms(kh, "127.0.0.1", 22), None);
    }
}
