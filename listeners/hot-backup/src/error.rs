//! One error type whose variant says what the host must do about it.
//!
//! The listener contract has three outcomes for a failed call; every error
//! the listener can meet is sorted into one of them where it is raised,
//! because only there is it known whether waiting can help.

use logdaemon_sdk::{Failure, FailureKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Waiting can help: the network, the remote host or sshd is down, a
    /// timeout, a remote command failed (disk full). The host backs off and
    /// redelivers; nothing is lost however long it takes.
    #[error("{0}")]
    Transient(String),
    /// Only an operator can help: configuration, host key, authentication,
    /// or remote data that disagrees with the journal.
    #[error("{0}")]
    Fatal(String),
    /// The remote `apply` command failed: retried like `Transient`, but the
    /// host logs it as an error because it is likely not to heal by itself.
    #[error("{0}")]
    Apply(String),
}

impl Error {
    pub fn kind(&self) -> FailureKind {
        match self {
            Error::Transient(_) => FailureKind::Retry,
            Error::Fatal(_) => FailureKind::Fatal,
            Error::Apply(_) => FailureKind::Error,
        }
    }

    /// The host-facing failure, prefixed with the listener's name.
    pub fn into_failure(self, listener: &str) -> Failure {
        let kind = self.kind();
        let message = format!("hot-backup listener '{listener}': {self}");
        match kind {
            FailureKind::Retry => Failure::retry(message),
            FailureKind::Error => Failure::error(message),
            FailureKind::Fatal => Failure::fatal(message),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub fn transient(msg: impl Into<String>) -> Error {
    Error::Transient(msg.into())
}

pub fn fatal(msg: impl Into<String>) -> Error {
    Error::Fatal(msg.into())
}
