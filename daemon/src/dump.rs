//! `logdaemon dump`.
