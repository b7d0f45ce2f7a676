//! The connection to the NATS servers and the stream: connect options from
//! the settings (credentials, TLS with the server certificate always
//! verified, endless reconnects with the client's backoff), finding or
//! creating the stream, and reading the last message on the subject.
//!
//! Everything here is async and runs on the listener's own tokio runtime
//! (see [`crate::listener`]); the host never sees it.

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{
    Config as StreamConfig, LastRawMessageErrorKind, StorageType, Stream,
};
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::{self, Context};
use async_nats::{Client, ConnectOptions};

use crate::config::{Auth, Settings, Storage};
use crate::message::{self, Stamp};

/// A connected client and its stream.
pub struct Conn {
    pub client: Client,
    pub js: Context,
    pub stream: Stream,
}

/// Why connecting failed: worth a retry (servers unreachable) or not
/// (a missing stream, a subject stored elsewhere).
#[derive(Debug)]
pub enum ConnError {
    Transient(String),
    Fatal(String),
}

pub async fn connect(s: &Settings, name: &str, subject: &str) -> Result<Conn, ConnError> {
    let t = ConnError::Transient;
    let mut o = ConnectOptions::new()
        .name(format!("logdaemon {name}"))
        .connection_timeout(s.timeout)
        .request_timeout(Some(s.timeout))
        .max_reconnects(None);
    match &s.auth {
        Auth::None => {}
        Auth::UserPassword { user, password } => {
            o = o.user_and_password(user.clone(), password.expose().to_string())
        }
        Auth::Token(tok) => o = o.token(tok.expose().to_string()),
        Auth::NKey(seed) => o = o.nkey(seed.expose().to_string()),
        Auth::Creds(p) => {
            o = o
                .credentials_file(p)
                .await
                .map_err(|e| ConnError::Fatal(format!("creds_file {}: {e}", p.display())))?
        }
    }
    if s.tls.required {
        o = o.require_tls(true);
    }
    if let Some(ca) = &s.tls.ca_file {
        o = o.add_root_certificates(ca.clone());
    }
    if let Some((c, k)) = &s.tls.client {
        o = o.add_client_certificate(c.clone(), k.clone());
    }
    let client = o
        .connect(s.servers.as_slice())
        .await
        .map_err(|e| t(format!("cannot connect to {}: {e}", s.servers.join(", "))))?;
    let js = jetstream::ContextBuilder::new()
        .timeout(s.timeout)
        .max_ack_inflight(s.max_in_flight * 2 + 16)
        .build(client.clone());
    let stream = match js.get_stream(&s.stream).await {
        Ok(st) => st,
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(je) if je.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                match &s.create {
                    None => {
                        return Err(ConnError::Fatal(format!(
                            "stream {:?} does not exist on {}: create it (subjects including {subject:?}), or set create_stream = true",
                            s.stream,
                            s.servers.join(", ")
                        )))
                    }
                    Some(c) => {
                        let subjects = if c.subjects.is_empty() {
                            vec![subject.to_string()]
                        } else {
                            c.subjects.clone()
                        };
                        js.get_or_create_stream(StreamConfig {
                            name: s.stream.clone(),
                            subjects,
                            num_replicas: c.replicas,
                            storage: match c.storage {
                                Storage::File => StorageType::File,
                                Storage::Memory => StorageType::Memory,
                            },
                            duplicate_window: c.duplicate_window,
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| t(format!("cannot create stream {:?}: {e}", s.stream)))?
                    }
                }
            }
            _ => return Err(t(format!("cannot look up stream {:?}: {e}", s.stream))),
        },
    };
    match js.stream_by_subject(subject).await {
        Ok(name) if name == s.stream => {}
        Ok(other) => {
            return Err(ConnError::Fatal(format!(
                "subject {subject:?} is stored by stream {other:?}, not by stream {:?}: fix `subject` or `stream`",
                s.stream
            )))
        }
        Err(e) => {
            return Err(ConnError::Fatal(format!(
                "no stream stores subject {subject:?} (stream {:?} has subjects {:?}): {e}; add the subject to the stream or fix `subject`",
                s.stream,
                stream.cached_info().config.subjects
            )))
        }
    }
    Ok(Conn { client, js, stream })
}

/// The last message on `subject`: its stream sequence and what its
/// headers say (`Err`: a message this listener cannot have written).
pub async fn last_on_subject(
    stream: &Stream,
    subject: &str,
) -> Result<Option<(u64, Result<Stamp, String>)>, String> {
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(m) => Ok(Some((m.sequence, message::stamp(&m.headers)))),
        Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(None),
        Err(e) => Err(format!("cannot read the last message on {subject:?}: {e}")),
    }
}
