//! SIGTERM, SIGINT and SIGHUP, taken on their own thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;

use super::watch::Event;
use crate::host;

pub(super) struct SignalGuard(signal_hook::iterator::Handle);

impl Drop for SignalGuard {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Takes SIGTERM and SIGINT: raises `stop` at once (workers that have not
/// started yet then read nothing), counts the request for listeners busy in
/// a call (a second one makes a running hook be killed at once) and tells
/// the engine's loop. SIGHUP, which would otherwise kill the process without
/// a save, asks the loop for a save.
pub(super) fn signal_thread(tx: Sender<Event>, stop: Arc<AtomicBool>) -> Option<SignalGuard> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .ok()?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for s in signals.forever() {
                if s == signal_hook::consts::SIGHUP {
                    let _ = tx.send(Event::Hangup);
                    continue;
                }
                stop.store(true, Ordering::SeqCst);
                host::note_stop_request();
                let _ = tx.send(Event::Signal(s));
            }
        })
        .ok()?;
    Some(SignalGuard(handle))
}
