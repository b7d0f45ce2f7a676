//! One open listener instance and the calls into it.
//!
//! Every call presets the acknowledgement to "everything delivered so far"
//! and hands the plugin a message buffer; what comes back is turned into a
//! `Result` with the position acknowledged.

use std::ffi::c_void;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use logdaemon_sdk::abi::{
    self, Bytes, HostApi, OpenArgs, Outcome, RawEntry, RawGap, RawPosition, Status,
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

unsafe extern "C" fn host_log(ctx: *const c_void, level: u32, msg: Bytes) {
    let ctx = &*(ctx as *const LogCtx);
    let msg = String::from_utf8_lossy(msg.as_slice());
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

/// An open listener. Used from one thread at a time.
pub struct Instance {
    plugin: &'static Plugin,
    inst: *mut c_void,
    msg: Vec<u8>,
    journal: Vec<u8>,
}

// SAFETY: the contract lets the host call an instance from any one thread at a time.
unsafe impl Send for Instance {}

const NO_ACK: RawPosition = RawPosition {
    sequence: u64::MAX,
    offset: u64::MAX,
    line: 0,
};

fn bytes(s: &str) -> Bytes {
    Bytes::new(s.as_bytes())
}

impl Instance {
    pub fn open(plugin: &'static Plugin, p: &OpenParams<'_>) -> Result<Instance, CallError> {
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
        let args = OpenArgs {
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
        };
        let mut me = Instance {
            plugin,
            inst: std::ptr::null_mut(),
            msg: vec![0u8; 4096],
            journal: p.journal.as_bytes().to_vec(),
        };
        let mut out: *mut c_void = std::ptr::null_mut();
        let mut o = me.outcome(p.cursor);
        // SAFETY: arguments are valid for the call; the function pointer passed the handshake.
        let st = unsafe { (plugin.api.open)(&args, &mut out, &mut o) };
        me.result(st, o)?;
        if out.is_null() {
            return Err(CallError {
                status: Status::Fatal,
                message: "open returned no instance".into(),
                ack: None,
            });
        }
        me.inst = out;
        Ok(me)
    }

    pub fn plugin(&self) -> &'static Plugin {
        self.plugin
    }

    /// The journal name as the entries carry it.
    pub fn journal_bytes(&self) -> &[u8] {
        &self.journal
    }

    fn outcome(&mut self, preset: Position) -> Outcome {
        Outcome {
            ack: preset.into(),
            msg: self.msg.as_mut_ptr(),
            msg_cap: self.msg.len(),
            msg_len: 0,
        }
    }

    fn result(&self, st: u32, o: Outcome) -> Result<Position, CallError> {
        let status = Status::from_u32(st);
        let ack = if o.ack == NO_ACK {
            None
        } else {
            Some(Position::from(o.ack))
        };
        if status == Status::Ok {
            return Ok(ack.unwrap_or_default());
        }
        let n = o.msg_len.min(self.msg.len());
        let message = String::from_utf8_lossy(&self.msg[..n]).into_owned();
        Err(CallError {
            status,
            message,
            ack,
        })
    }

    pub fn is_handled(&mut self, e: &RawEntry) -> bool {
        // SAFETY: the entry's pointers are valid for the call.
        unsafe { (self.plugin.api.is_handled)(self.inst, e) != 0 }
    }

    /// Delivers a batch; `preset` is the end of everything delivered so far.
    pub fn listen(
        &mut self,
        entries: &[RawEntry],
        preset: Position,
    ) -> Result<Position, CallError> {
        let mut o = self.outcome(preset);
        // SAFETY: entries and their pointers are valid for the call.
        let st =
            unsafe { (self.plugin.api.listen)(self.inst, entries.as_ptr(), entries.len(), &mut o) };
        self.result(st, o)
    }

    pub fn no_data(&mut self, had_data: bool, preset: Position) -> Result<Position, CallError> {
        let mut o = self.outcome(preset);
        // SAFETY: valid instance.
        let st = unsafe { (self.plugin.api.no_data)(self.inst, u32::from(had_data), &mut o) };
        self.result(st, o)
    }

    pub fn flush(&mut self, preset: Position) -> Result<Position, CallError> {
        let mut o = self.outcome(preset);
        // SAFETY: valid instance.
        let st = unsafe { (self.plugin.api.flush)(self.inst, &mut o) };
        self.result(st, o)
    }

    pub fn gap(
        &mut self,
        from: Position,
        to: Position,
        cause: &str,
        detail: &str,
        preset: Position,
    ) -> Result<Position, CallError> {
        let g = RawGap {
            journal: Bytes::new(&self.journal),
            from: from.into(),
            to: to.into(),
            cause: bytes(cause),
            detail: bytes(detail),
        };
        let mut o = self.outcome(preset);
        // SAFETY: the gap's pointers are valid for the call.
        let st = unsafe { (self.plugin.api.gap)(self.inst, &g, &mut o) };
        self.result(st, o)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if !self.inst.is_null() {
            // SAFETY: the instance came from this plugin's open and is closed once.
            unsafe { (self.plugin.api.close)(self.inst) };
        }
    }
}
