//! Handing one message to the SMTP server, and sorting the outcome into
//! what the listener must do: done, try again later, or refused for good.

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::SmtpTransport;
use lettre::{Message, Transport};

use crate::config::{Settings, TlsMode};

/// What became of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// The server accepted it (250 after DATA).
    Accepted,
    /// The server is unreachable, timed out or answered 4xx: try again.
    Transient(String),
    /// The server answered 5xx (e.g. an unknown recipient): trying again
    /// will not help.
    Rejected(String),
    /// The server refused the credentials or requires them (530, 534, 535,
    /// 538): a configuration problem, never skipped.
    AuthFailed(String),
}

/// SMTP replies that mean "your credentials are the problem".
const AUTH_CODES: &[&str] = &["530", "534", "535", "538"];

/// An SMTP client for one listener. Each message uses a new connection.
pub struct Mailer {
    transport: SmtpTransport,
    /// `host:port`, for messages.
    pub server: String,
}

impl Mailer {
    /// Builds the client; fails only when TLS parameters cannot be built.
    pub fn new(s: &Settings) -> Result<Mailer, String> {
        let tls = match s.tls {
            TlsMode::None => Tls::None,
            TlsMode::Starttls | TlsMode::Tls => {
                let mut b = TlsParameters::builder(s.smtp_host.clone());
                if let Some(pem) = &s.ca_pem {
                    let cert = Certificate::from_pem(pem)
                        .map_err(|e| format!("config key `ca_file`: not a PEM certificate: {e}"))?;
                    b = b.add_root_certificate(cert);
                }
                // Certificates and host names are always verified.
                let p = b
                    .build()
                    .map_err(|e| format!("TLS setup for {}: {e}", s.smtp_host))?;
                if s.tls == TlsMode::Tls {
                    Tls::Wrapper(p)
                } else {
                    Tls::Required(p)
                }
            }
        };
        let mut b = SmtpTransport::builder_dangerous(s.smtp_host.clone())
            .port(s.smtp_port)
            .tls(tls)
            .timeout(Some(s.timeout));
        if let Some((u, p)) = &s.credentials {
            b = b.credentials(Credentials::new(u.clone(), p.expose().to_string()));
        }
        Ok(Mailer {
            transport: b.build(),
            server: format!("{}:{}", s.smtp_host, s.smtp_port),
        })
    }

    pub fn send(&self, m: &Message) -> Sent {
        match self.transport.send(m) {
            Ok(_) => Sent::Accepted,
            Err(e)
                if e.status()
                    .is_some_and(|c| AUTH_CODES.contains(&c.to_string().as_str())) =>
            {
                Sent::AuthFailed(describe(&e))
            }
            Err(e) if e.is_permanent() => Sent::Rejected(describe(&e)),
            Err(e) => Sent::Transient(describe(&e)),
        }
    }
}

fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}
