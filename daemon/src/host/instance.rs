//! One open listener instance and the calls into it.
//!
//! Every call presets the acknowledgement to "everything delivered so far"
//! and hands the plugin a message buffer; what comes back is turned into a
//! `Result` with the position acknowledged.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use logdaemon_sdk::abi::v1::{OutcomeV1, RawEntryV1, RawGapV1};
use logdaemon_sdk::abi::{
    self, AnyCalls, Bytes, GapCause, HostApi, ListenRunsFn, OpenArgs, Outcome, RawEntry, RawGap,
    RawRun, Status, NO_ACK,
};
use logdaemon_sdk::Position;

use super::Plugin;

/// A failed call.
#[derive(Debug, Clone)]
pub struct CallError {
    pub status: Status,
    pub message: String,
    /// How far the plugin got durably despite the failure.
    pub ack: Option<Position>,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.status {
            Status::Ok => "ok",
            Status::Retry => "retry",
            Status::Error => "error",
            Status::Fatal => "fatal",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

/// What `open` needs besides the plugin.
pub struct OpenParams<'a> {
    pub listener: &'a str,
    pub journal: &'a str,
    pub format: &'a str,
    pub journal_path: &'a Path,
    pub config_toml: &'a str,
    pub config_dir: &'a Path,
    pub state_dir: &'a Path,
    pub cursor: Position,
}

struct LogCtx {
    journal: String,
    listener: String,
}

/// Stop requests (SIGTERM/SIGINT) this process has received; plugins read
/// it through `HostApi::stop_requests` to cut a long call short.
static STOP_REQUESTS: AtomicU32 = AtomicU32::new(0);

/// Counts a stop request: a listener busy in a call (a hook running) learns
/// of it through `HostApi::stop_requests`.
pub fn note_stop_request() {
    STOP_REQUESTS.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn host_stop_requests(_ctx: *const c_void) -> u32 {
    STOP_REQUESTS.load(Ordering::SeqCst)
}

/// The host's `log` for plugins. Never unwinds into the plugin: a panic
/// of the logger (a subscriber or its writer) is caught and its payload
/// dropped here.
///
/// # Safety
/// `ctx` must be the `LogCtx` of the `HostApi` handed to the plugin (they
/// are leaked, so they live as long as the process); `msg` valid for the call.
unsafe extern "C" fn host_log(ctx: *const c_void, level: u32, msg: Bytes) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        if ctx.is_null() {
            return;
        }
        // SAFETY: a non-null `ctx` is the leaked `LogCtx` (the caller's promise).
        let ctx = unsafe { &*(ctx as *const LogCtx) };
        // SAFETY: `msg` is valid for the call (the caller's promise).
        let msg = String::from_utf8_lossy(unsafe { msg.as_slice() });
        log_line(ctx, level, &msg);
    }));
    if let Err(payload) = r {
        // Dropping the payload runs its destructor, which may panic again.
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(again);
        }
    }
}

fn log_line(ctx: &LogCtx, level: u32, msg: &str) {
    match level {
        abi::LEVEL_ERROR => {
            tracing::error!(journal = %ctx.journal, listener = %ctx.listener, "{msg}")
        }
        abi::LEVEL_WARN => {
            tracing::warn!(journal = %ctx.journal, listener = %ctx.listener, "{msg}")
        }
        abi::LEVEL_INFO => {
            tracing::info!(journal = %ctx.journal, listener = %ctx.listener, "{msg}")
        }
        _ => tracing::debug!(journal = %ctx.journal, listener = %ctx.listener, "{msg}"),
    }
}

/// Bytes a plugin may write as the message of a call.
const MSG_CAP: usize = 4096;

thread_local! {
    /// The message buffer of this thread's calls (see [`MsgBuf`]).
    static MSG: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The buffer a call hands the plugin for its message: this thread's, lent
/// for the call and given back when dropped. A message is only read in the
/// call that wrote it, so one buffer per thread serves every instance, and
/// an idle listener holds none (thousands of them held 4 KiB each). A call
/// made while another is in hand on the same thread gets a buffer of its own.
struct MsgBuf(Vec<u8>);

impl MsgBuf {
    fn take() -> MsgBuf {
        let mut v = MSG.take();
        if v.len() != MSG_CAP {
            v = vec![0u8; MSG_CAP];
        }
        MsgBuf(v)
    }

    /// The text of the message of `o`, a call's outcome on this buffer.
    fn text(&self, o: &Outcome) -> String {
        String::from_utf8_lossy(&self.0[..o.msg_len.min(self.0.len())]).into_owned()
    }
}

impl Drop for MsgBuf {
    fn drop(&mut self) {
        MSG.set(std::mem::take(&mut self.0));
    }
}

/// An open listener. Used from one thread at a time.
pub struct Instance {
    plugin: &'static Plugin,
    inst: *mut c_void,
    journal: Vec<u8>,
    /// Version-1 plugins: the entries of a call in their layout. Empty
    /// between calls.
    v1_entries: Vec<RawEntryV1>,
    /// The plugin's `listen_runs`, when this instance said it takes runs
    /// (asked once, after `open`; never for a plugin that filters).
    runs: Option<ListenRunsFn>,
}

// SAFETY: the contract lets the host call an instance from any one thread
// at a time; `v1_entries` is empty (holds no pointer) between calls.
unsafe impl Send for Instance {}

fn bytes(s: &str) -> Bytes {
    Bytes::new(s.as_bytes())
}

/// Calls a version-1 function with a version-1 outcome and copies back
/// what it wrote.
fn with_v1(o: &mut Outcome, call: impl FnOnce(*mut OutcomeV1) -> u32) -> u32 {
    let mut o1 = OutcomeV1 {
        ack: o.ack,
        msg: o.msg,
        msg_cap: o.msg_cap,
        msg_len: 0,
    };
    let st = call(&mut o1);
    o.ack = o1.ack;
    o.msg_len = o1.msg_len;
    st
}

/// Calls `f` with the open arguments of `p`.
fn with_args<R>(p: &OpenParams<'_>, f: impl FnOnce(&OpenArgs) -> R) -> R {
    // Leaked on purpose: the plugin may keep the logger for its lifetime.
    let ctx: &'static LogCtx = Box::leak(Box::new(LogCtx {
        journal: p.journal.to_string(),
        listener: p.listener.to_string(),
    }));
    let host: &'static HostApi = Box::leak(Box::new(HostApi {
        struct_size: std::mem::size_of::<HostApi>() as u32,
        log: host_log,
        ctx: ctx as *const LogCtx as *const c_void,
        stop_requests: Some(host_stop_requests),
    }));
    let jp = p.journal_path.to_string_lossy();
    let cd = p.config_dir.to_string_lossy();
    let sd = p.state_dir.to_string_lossy();
    f(&OpenArgs {
        struct_size: std::mem::size_of::<OpenArgs>() as u32,
        listener: bytes(p.listener),
        journal: bytes(p.journal),
        format: bytes(p.format),
        journal_path: bytes(&jp),
        config_toml: bytes(p.config_toml),
        config_dir: bytes(&cd),
        state_dir: bytes(&sd),
        cursor: p.cursor.into(),
        host,
    })
}

/// Whether a plugin validated a listener's config (`logdaemon check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Its `check` accepted the config.
    Accepted,
    /// The plugin has no `check` (version 1, or a descriptor without it).
    NoCheck,
}

/// Runs the plugin's side-effect-free config check for one listener.
pub fn check(plugin: &'static Plugin, p: &OpenParams<'_>) -> Result<Checked, CallError> {
    let AnyCalls::V2(abi::Calls {
        check: Some(check), ..
    }) = plugin.api.calls
    else {
        return Ok(Checked::NoCheck);
    };
    let mut msg = MsgBuf::take();
    let mut o = outcome(&mut msg, p.cursor);
    // SAFETY: the arguments and `o` are valid for the call; the function
    // pointer passed the handshake.
    let st = with_args(p, |args| unsafe { check(args, &mut o) });
    match Status::from_u32(st) {
        Status::Ok => Ok(Checked::Accepted),
        status => Err(CallError {
            status,
            message: msg.text(&o),
            ack: None,
        }),
    }
}

/// A call's outcome preset to `preset`, its message written into `msg`.
fn outcome(msg: &mut MsgBuf, preset: Position) -> Outcome {
    Outcome {
        struct_size: Outcome::SIZE,
        ack: preset.into(),
        msg: msg.0.as_mut_ptr(),
        msg_cap: msg.0.len(),
        msg_len: 0,
    }
}

/// What a call that returned `st` with `o` (its message in `msg`) says.
fn result(st: u32, o: Outcome, msg: &MsgBuf) -> Result<Position, CallError> {
    let status = Status::from_u32(st);
    let ack = if o.ack == NO_ACK {
        None
    } else {
        Some(Position::from(o.ack))
    };
    if status == Status::Ok {
        return Ok(ack.unwrap_or_default());
    }
    Err(CallError {
        status,
        message: msg.text(&o),
        ack,
    })
}

impl Instance {
    pub fn open(plugin: &'static Plugin, p: &OpenParams<'_>) -> Result<Instance, CallError> {
        let mut me = Instance {
            plugin,
            inst: std::ptr::null_mut(),
            journal: p.journal.as_bytes().to_vec(),
            v1_entries: Vec::new(),
            runs: None,
        };
        let mut out: *mut c_void = std::ptr::null_mut();
        let mut msg = MsgBuf::take();
        let mut o = outcome(&mut msg, p.cursor);
        // SAFETY: the arguments, `out` and `o` are valid for the call; the
        // function pointer passed the handshake for its version.
        let st = with_args(p, |args| match plugin.api.calls {
            // SAFETY: as said above the match.
            AnyCalls::V2(c) => unsafe { (c.open)(args, &mut out, &mut o) },
            // SAFETY: as said above the match.
            AnyCalls::V1(c) => with_v1(&mut o, |o1| unsafe { (c.open)(args, &mut out, o1) }),
        });
        result(st, o, &msg)?;
        if out.is_null() {
            return Err(CallError {
                status: Status::Fatal,
                message: "open returned no instance".into(),
                ack: None,
            });
        }
        me.inst = out;
        if let (AnyCalls::V2(c), false) = (plugin.api.calls, plugin.api.filters) {
            if let Some((takes, listen)) = c.runs {
                // SAFETY: a live instance, used by this thread only.
                if unsafe { takes(out) } != 0 {
                    me.runs = Some(listen);
                }
            }
        }
        Ok(me)
    }

    pub fn plugin(&self) -> &'static Plugin {
        self.plugin
    }

    /// The journal name as the entries carry it.
    pub fn journal_bytes(&self) -> &[u8] {
        &self.journal
    }

    pub fn is_handled(&mut self, e: &RawEntry) -> bool {
        let inst = self.inst;
        // SAFETY: the entry's pointers are valid for the call; the instance
        // is live and used by this thread only.
        let keep = match self.plugin.api.calls {
            // SAFETY: as said above the match.
            AnyCalls::V2(c) => unsafe { (c.is_handled)(inst, e) },
            // SAFETY: as said above the match.
            AnyCalls::V1(c) => unsafe { (c.is_handled)(inst, &RawEntryV1::from_v2(e)) },
        };
        keep != 0
    }

    /// Delivers a batch; `preset` is the end of everything delivered so far.
    pub fn listen(
        &mut self,
        entries: &[RawEntry],
        preset: Position,
    ) -> Result<Position, CallError> {
        let mut msg = MsgBuf::take();
        let mut o = outcome(&mut msg, preset);
        let inst = self.inst;
        let st = match self.plugin.api.calls {
            // SAFETY: the entries (of stride `RawEntry::SIZE`) and their
            // pointers are valid for the call; `o` too.
            AnyCalls::V2(c) => unsafe { (c.listen)(inst, entries.as_ptr(), entries.len(), &mut o) },
            AnyCalls::V1(c) => {
                let mut v1 = std::mem::take(&mut self.v1_entries);
                v1.extend(entries.iter().map(RawEntryV1::from_v2));
                // SAFETY: as above, in the version-1 layout.
                let st = with_v1(&mut o, |o1| unsafe {
                    (c.listen)(inst, v1.as_ptr(), v1.len(), o1)
                });
                v1.clear();
                self.v1_entries = v1;
                st
            }
        };
        result(st, o, &msg)
    }

    /// Whether batches go to [`Instance::listen_runs`] rather than
    /// [`Instance::listen`].
    pub fn takes_runs(&self) -> bool {
        self.runs.is_some()
    }

    /// Delivers a batch as runs (only when [`Instance::takes_runs`]);
    /// `preset` is the end of everything delivered so far.
    pub fn listen_runs(
        &mut self,
        runs: &[RawRun],
        preset: Position,
    ) -> Result<Position, CallError> {
        let listen = self
            .runs
            .expect("listen_runs only for an instance that takes runs");
        let mut msg = MsgBuf::take();
        let mut o = outcome(&mut msg, preset);
        // SAFETY: the runs (of stride `RawRun::SIZE`) and their pointers
        // are valid for the call; `o` too; the instance is live.
        let st = unsafe { listen(self.inst, runs.as_ptr(), runs.len(), &mut o) };
        result(st, o, &msg)
    }

    pub fn no_data(&mut self, had_data: bool, preset: Position) -> Result<Position, CallError> {
        let mut msg = MsgBuf::take();
        let mut o = outcome(&mut msg, preset);
        let (inst, had) = (self.inst, u32::from(had_data));
        // SAFETY: a live instance; `o` is valid for the call.
        let st = match self.plugin.api.calls {
            // SAFETY: as said above the match.
            AnyCalls::V2(c) => unsafe { (c.no_data)(inst, had, &mut o) },
            // SAFETY: as said above the match.
            AnyCalls::V1(c) => with_v1(&mut o, |o1| unsafe { (c.no_data)(inst, had, o1) }),
        };
        result(st, o, &msg)
    }

    pub fn flush(&mut self, preset: Position) -> Result<Position, CallError> {
        let mut msg = MsgBuf::take();
        let mut o = outcome(&mut msg, preset);
        let inst = self.inst;
        // SAFETY: a live instance; `o` is valid for the call.
        let st = match self.plugin.api.calls {
            // SAFETY: as said above the match.
            AnyCalls::V2(c) => unsafe { (c.flush)(inst, &mut o) },
            // SAFETY: as said above the match.
            AnyCalls::V1(c) => with_v1(&mut o, |o1| unsafe { (c.flush)(inst, o1) }),
        };
        result(st, o, &msg)
    }

    pub fn gap(
        &mut self,
        from: Position,
        to: Position,
        cause: GapCause,
        detail: &str,
        preset: Position,
    ) -> Result<Position, CallError> {
        let journal = Bytes::new(&self.journal);
        let g = RawGap {
            struct_size: std::mem::size_of::<RawGap>() as u32,
            cause_code: cause as u32,
            journal,
            from: from.into(),
            to: to.into(),
            cause: bytes(cause.as_str()),
            detail: bytes(detail),
        };
        let g1 = RawGapV1 {
            journal,
            from: g.from,
            to: g.to,
            cause: g.cause,
            detail: g.detail,
        };
        let mut msg = MsgBuf::take();
        let mut o = outcome(&mut msg, preset);
        let inst = self.inst;
        // SAFETY: the gap's pointers and `o` are valid for the call.
        let st = match self.plugin.api.calls {
            // SAFETY: as said above the match.
            AnyCalls::V2(c) => unsafe { (c.gap)(inst, &g, &mut o) },
            // SAFETY: as said above the match.
            AnyCalls::V1(c) => with_v1(&mut o, |o1| unsafe { (c.gap)(inst, &g1, o1) }),
        };
        result(st, o, &msg)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.inst.is_null() {
            return;
        }
        let close = match self.plugin.api.calls {
            AnyCalls::V2(c) => c.close,
            AnyCalls::V1(c) => c.close,
        };
        // SAFETY: the instance came from this plugin's open and is closed once.
        unsafe { close(self.inst) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subscriber whose every event panics, like a logger whose writer fails.
    struct Panics;

    impl tracing::Subscriber for Panics {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {
            panic!("the logger panics");
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// The length of the buffer this thread has to lend (0: none).
    fn in_store() -> usize {
        let v = MSG.take();
        let n = v.len();
        MSG.set(v);
        n
    }

    #[test]
    fn one_message_buffer_per_thread_is_lent_to_each_call() {
        let mut a = MsgBuf::take();
        assert_eq!(in_store(), 0, "lent: the thread holds none meanwhile");
        let mut o = outcome(&mut a, Position::default());
        a.0[..5].copy_from_slice(b"hello");
        o.msg_len = 5;
        assert_eq!(a.text(&o), "hello");
        o.msg_len = MSG_CAP + 10;
        assert_eq!(a.text(&o).len(), MSG_CAP, "a length past the buffer is cut");
        {
            // A call while another is in hand: a buffer of its own.
            let b = MsgBuf::take();
            assert_eq!(b.0.len(), MSG_CAP);
        }
        drop(a);
        assert_eq!(in_store(), MSG_CAP, "given back when the call is over");
        let again = MsgBuf::take();
        assert_eq!(again.0.len(), MSG_CAP);
        assert_eq!(in_store(), 0);
        let other = std::thread::spawn(|| MsgBuf::take().0.len())
            .join()
            .unwrap();
        assert_eq!(other, MSG_CAP);
    }

    #[test]
    fn a_panicking_logger_does_not_unwind_into_the_plugin() {
        let ctx = LogCtx {
            journal: "p4".into(),
            listener: "kit".into(),
        };
        let logged = std::sync::atomic::AtomicBool::new(false);
        tracing::subscriber::with_default(Panics, || {
            for level in [abi::LEVEL_ERROR, abi::LEVEL_INFO, 99] {
                // SAFETY: `ctx` is a `LogCtx` alive for the call; the message is static.
                unsafe {
                    host_log(
                        &ctx as *const LogCtx as *const c_void,
                        level,
                        Bytes::from_static(b"hello"),
                    )
                };
            }
            logged.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        assert!(logged.into_inner(), "host_log returned after each panic");
    }
}
