//! The worker as a task of the engine's pool.

use super::{Worker, WorkerStatus};
use crate::config::OnFailure;
use crate::engine::pool::{Next, Task};

impl Task for Worker {
    fn step(&mut self) -> Next {
        let span = self.span.clone();
        let _in = span.enter();
        #[cfg(debug_assertions)]
        self.failpoint();
        Worker::step(self)
    }

    fn still_idle(&mut self) -> Option<std::time::Duration> {
        self.still_idle()
    }

    /// A panic on the host side (in reading, framing, or the worker's own
    /// logic) is this listener's failure, handled like a fatal answer.
    fn panicked(&mut self, message: &str) {
        let msg = format!(
            "listener {:?} of journal {:?}: the daemon failed internally (a panic: {message}); this is a bug in logdaemon, please report it with the log",
            self.listener.name, self.journal.name
        );
        let status = match self.listener.on_failure {
            OnFailure::Stop => {
                tracing::error!(journal = %self.journal.name, listener = %self.listener.name, "{msg}; stopping (on_failure = \"stop\")");
                WorkerStatus::Failed(msg)
            }
            OnFailure::Disable => {
                tracing::error!(journal = %self.journal.name, listener = %self.listener.name, "{msg}; listener disabled, its cursor is kept (on_failure = \"disable\")");
                WorkerStatus::Disabled(msg)
            }
        };
        self.set_status(status);
        // It is never stepped again: the journal's reader keeps nothing for it.
        self.leave_tap();
    }
}

#[cfg(debug_assertions)]
impl Worker {
    /// Test builds only: `LOGDAEMON_FAILPOINT=panic-in-step:JOURNAL/LISTENER`
    /// makes that worker's steps panic on the host side, as a bug in the
    /// daemon would (the end-to-end tests check what follows). Release
    /// builds have no such hook.
    fn failpoint(&self) {
        if let Some(v) = std::env::var_os("LOGDAEMON_FAILPOINT") {
            let want = format!("panic-in-step:{}/{}", self.journal.name, self.listener.name);
            if v.to_str() == Some(want.as_str()) {
                panic!("failpoint {want}");
            }
        }
    }
}
