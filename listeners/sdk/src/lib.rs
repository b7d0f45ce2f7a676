//! The contract between the logdaemon host and its listener plugins.
//!
//! A listener is a shared library (`cdylib`) that exports one function,
//! [`abi::ENTRY_SYMBOL`] (`logdaemon_listener_v1`), returning a pointer to a
//! static [`abi::Descriptor`]. Everything that crosses the boundary is
//! `#[repr(C)]`: borrowed byte slices in, status codes out. The version is in
//! the symbol's name *and* in the descriptor, so a host never calls into a
//! plugin built for another layout.
//!
//! Plugin authors do not touch the raw ABI. They implement [`Listener`] and
//! export it with [`export_listener!`]:
//!
//! ```
//! use logdaemon_sdk::{export_listener, Ack, Entry, Failure, Listener, OpenContext};
//!
//! struct Count(u64);
//!
//! impl Listener for Count {
//!     fn open(_ctx: &OpenContext<'_>) -> Result<Self, Failure> { Ok(Count(0)) }
//!     fn listen(&mut self, entries: &[Entry<'_>]) -> Result<Ack, Failure> {
//!         self.0 += entries.len() as u64;
//!         Ok(Ack::All)
//!     }
//! }
//!
//! export_listener!(Count, "count");
//! ```
//!
//! Why a C ABI and not Rust trait objects: Rust has no stable ABI, so a plugin
//! built by another compiler version must only ever see C layouts. Why the
//! host never unloads a plugin: threads or TLS destructors a plugin started may
//! still point into its code.

pub mod abi;
pub mod durable;
mod entry;
pub mod json;
mod listener;
pub mod p4;
mod run;
#[doc(hidden)]
pub mod shim;
pub mod testing;
pub mod trust;

pub use entry::{Entry, Gap, Position};
pub use listener::{Ack, Failure, FailureKind, Level, Listener, Logger, OpenContext};
pub use run::Run;
