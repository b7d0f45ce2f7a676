//! Handing one message to the SMTP server, and sorting the outcome into
//! what the listener must do: done, try again later, or refused for good.

use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, MailBodyParameter, MailParameter};
use lettre::transport::smtp::Error;
use lettre::Message;

use crate::config::{Settings, TlsMode};

/// What became of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// The server accepted it (250 after DATA).
    Accepted,
    /// The server is unreachable, timed out or answered 4xx before the
    /// message was complete, or answered 4xx to it: it was not taken, try
    /// again.
    Transient(String),
    /// The whole message went out but no answer came (timeout, connection
    /// closed): the server may have stored it.
    InDoubt(String),
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
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    /// Connect and command timeout.
    timeout: Duration,
    /// Wait for the answer to the message data (RFC 5321 4.5.3.2.6).
    data_timeout: Duration,
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
        Ok(Mailer {
            host: s.smtp_host.clone(),
            port: s.smtp_port,
            tls,
            credentials: s
                .credentials
                .as_ref()
                .map(|(u, p)| Credentials::new(u.clone(), p.expose().to_string())),
            timeout: s.timeout,
            data_timeout: s.data_timeout,
            server: format!("{}:{}", s.smtp_host, s.smtp_port),
        })
    }

    /// Connects, says EHLO, secures and logs in.
    fn connect(&self) -> Result<SmtpConnection, Error> {
        let hello = ClientId::default();
        let wrapper = match &self.tls {
            Tls::Wrapper(p) => Some(p),
            _ => None,
        };
        let mut c = SmtpConnection::connect(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &hello,
            wrapper,
            None,
        )?;
        if let Tls::Required(p) = &self.tls {
            c.starttls(p, &hello)?;
        }
        if let Some(cr) = &self.credentials {
            c.auth(DEFAULT_MECHANISMS, cr)?;
        }
        Ok(c)
    }

    /// Sends `m` over a new connection. Everything up to the message data
    /// waits at most `timeout` per step; the answer to the data waits
    /// `data_timeout`, and only a missing answer there is [`Sent::InDoubt`].
    pub fn send(&self, m: &Message) -> Sent {
        let mut c = match self.connect() {
            Ok(c) => c,
            Err(e) => return self.sorted(&e, self.timeout, false),
        };
        let data = m.formatted();
        let env = m.envelope();
        let mut params = Vec::new();
        if env
            .from()
            .into_iter()
            .chain(env.to())
            .any(|a: &lettre::Address| !a.to_string().is_ascii())
        {
            params.push(MailParameter::SmtpUtfEight);
        }
        if !data.is_ascii() {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let head = c
            .command(Mail::new(env.from().cloned(), params))
            .and_then(|_| {
                env.to()
                    .iter()
                    .try_for_each(|to| c.command(Rcpt::new(to.clone(), vec![])).map(|_| ()))
            })
            .and_then(|_| c.command(Data));
        if let Err(e) = head {
            c.abort();
            return self.sorted(&e, self.timeout, false);
        }
        if let Err(e) = c.set_timeout(Some(self.data_timeout)) {
            c.abort();
            return Sent::Transient(format!("cannot set the socket timeout: {e}"));
        }
        match c.message(&data) {
            Ok(_) => {
                let _ = c.set_timeout(Some(self.timeout)).map(|_| c.quit());
                Sent::Accepted
            }
            Err(e) => {
                c.abort();
                self.sorted(&e, self.data_timeout, true)
            }
        }
    }

    /// Sorts an error; `after_data` when the whole message had been sent.
    fn sorted(&self, e: &Error, waited: Duration, after_data: bool) -> Sent {
        let why = describe(e, waited);
        match e.status() {
            Some(c) if AUTH_CODES.contains(&c.to_string().as_str()) => Sent::AuthFailed(why),
            Some(_) if e.is_permanent() => Sent::Rejected(why),
            Some(_) => Sent::Transient(why),
            None if after_data => Sent::InDoubt(why),
            None => Sent::Transient(why),
        }
    }
}

/// The error and its causes; a socket timeout is named as one (the OS
/// reports it as "Resource temporarily unavailable").
fn describe(e: &Error, waited: Duration) -> String {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(x) = src {
        if let Some(io) = x.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                return format!(
                    "timed out after {} waiting for the server",
                    humantime::format_duration(waited)
                );
            }
        }
        src = x.source();
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        let t = x.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s
}
