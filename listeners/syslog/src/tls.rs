//! TLS for `tls://` and `relp+tls://`: rustls with the configured CA as
//! the only trust anchor, the server's name always verified (there is no
//! switch to turn verification off), and an optional client certificate.
//! The CA, certificate and key files are refused when another user could
//! have changed them; the key also when others can read it.

use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::{HostPort, Settings, TlsFiles};
use crate::transport::{ErrorKind, Io, SendError};

/// How a checked file is used.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Read (a CA or certificate): nobody else may write it.
    Read,
    /// A private key: nobody else may read or write it.
    Private,
    /// A socket written to (`/dev/log` is 0666 by design): only its owner
    /// and directory matter, so nobody else can put another one in its place.
    Socket,
}

/// Refuses a file another user can change or replace (and, for a key, read).
pub fn check_file(key: &str, p: &Path, usage: Use) -> Result<(), String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("{key} {}: {e}", p.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!(
            "{key} {} is owned by uid {}, neither root nor this daemon's user (uid {me}); that user could swap the file: chown it to root",
            p.display(),
            meta.uid()
        ));
    }
    let private = usage == Use::Private;
    let bad = match usage {
        Use::Read => 0o022,
        Use::Private => 0o077,
        Use::Socket => 0,
    };
    if mode & bad != 0 {
        let fix = if private { "600" } else { "go-w" };
        let what = if private {
            "accessible by group or others"
        } else {
            "writable by group or others"
        };
        return Err(format!(
            "{key} {} is {what} (mode {mode:04o}); run `chmod {fix} {}`",
            p.display(),
            p.display()
        ));
    }
    if let Some(dir) = p.parent() {
        if let Ok(d) = std::fs::metadata(dir) {
            let dmode = d.permissions().mode();
            if dmode & 0o022 != 0 && dmode & 0o1000 == 0 {
                return Err(format!(
                    "{key} {}: its directory {} is writable by group or others (mode {:04o}), so another user could replace the file; run `chmod go-w {}`",
                    p.display(),
                    dir.display(),
                    dmode & 0o7777,
                    dir.display()
                ));
            }
        }
    }
    Ok(())
}

/// Builds the client configuration from the configured files.
pub fn client_config(t: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, (&'static str, String)> {
    check_file("ca_file", &t.ca_file, Use::Read).map_err(|e| ("ca_file", e))?;
    let mut roots = rustls::RootCertStore::empty();
    let certs = read_certs(&t.ca_file).map_err(|e| ("ca_file", e))?;
    for c in certs {
        roots.add(c).map_err(|e| {
            (
                "ca_file",
                format!("{}: not a usable CA certificate: {e}", t.ca_file.display()),
            )
        })?;
    }
    // ring rather than aws-lc-rs (rustls's default): no C/CMake build of
    // aws-lc. Its one lack, post-quantum key exchange, is not offered by
    // the receivers this talks to (rsyslog's GnuTLS and OpenSSL drivers).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ("ca_file", e.to_string()))?
        .with_root_certificates(roots);
    let cfg = match (&t.cert_file, &t.key_file) {
        (Some(cert), Some(key)) => {
            check_file("cert_file", cert, Use::Read).map_err(|e| ("cert_file", e))?;
            check_file("key_file", key, Use::Private).map_err(|e| ("key_file", e))?;
            let chain = read_certs(cert).map_err(|e| ("cert_file", e))?;
            let k = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                (
                    "key_file",
                    format!("{}: no PEM private key: {e}", key.display()),
                )
            })?;
            builder.with_client_auth_cert(chain, k).map_err(|e| {
                (
                    "key_file",
                    format!("{} does not fit {}: {e}", key.display(), cert.display()),
                )
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    ServerName::try_from(t.server_name.clone()).map_err(|_| {
        (
            "server_name",
            format!("{:?} is not a host name or address", t.server_name),
        )
    })?;
    Ok(Arc::new(cfg))
}

fn read_certs(p: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(p)
        .map_err(|e| format!("{}: {e}", p.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: bad PEM: {e}", p.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", p.display()));
    }
    Ok(certs)
}

/// Runs the TLS handshake over `tcp`, verifying the server.
pub fn connect(
    tcp: TcpStream,
    cfg: &Arc<rustls::ClientConfig>,
    s: &Settings,
    hp: &HostPort,
) -> Result<Io, SendError> {
    let t = s.tls.as_ref().expect("TLS target has TLS files");
    let name = ServerName::try_from(t.server_name.clone()).expect("checked at open");
    let conn = rustls::ClientConnection::new(cfg.clone(), name)
        .map_err(|e| SendError::new(ErrorKind::Down, format!("{hp}: cannot start TLS: {e}")))?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
            let cert = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
            if cert {
                return Err(SendError::new(
                    ErrorKind::Certificate,
                    format!(
                        "{hp}: the server's TLS certificate was refused: {e}. It must be signed by the CA in ca_file {} and name {:?} (server_name); nothing was sent",
                        t.ca_file.display(),
                        t.server_name
                    ),
                ));
            }
            return Err(SendError::new(
                ErrorKind::Down,
                format!("{hp}: TLS handshake failed: {e}"),
            ));
        }
    }
    Ok(Io::Tls(Box::new(stream)))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn files_others_could_change_or_read_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.pem");
        fs::write(&p, "x").unwrap();
        let mode = |m| fs::set_permissions(&p, fs::Permissions::from_mode(m)).unwrap();
        mode(0o644);
        assert_eq!(check_file("ca_file", &p, Use::Read), Ok(()));
        let e = check_file("key_file", &p, Use::Private).unwrap_err();
        assert!(
            e.contains("accessible by group or others (mode 0644); run `chmod 600"),
            "{e}"
        );
        mode(0o666);
        let e = check_file("ca_file", &p, Use::Read).unwrap_err();
        assert!(e.contains("writable by group or others (mode 0666)"), "{e}");
        assert_eq!(
            check_file("target", &p, Use::Socket),
            Ok(()),
            "a socket's mode is not its risk"
        );
        mode(0o600);
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_file("ca_file", &p, Use::Read).unwrap_err();
        assert!(
            e.contains("its directory") && e.contains("another user could replace the file"),
            "{e}"
        );
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o700)).unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
            let e = check_file("ca_file", &p, Use::Read).unwrap_err();
            assert!(
                e.contains("owned by uid 65534, neither root nor this daemon's user"),
                "{e}"
            );
        }
    }
}
