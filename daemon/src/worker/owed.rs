//! A gap the listener is owed from before this run.
//!
//! `logdaemon checkpoint set` can move a listener past entries it never
//! received. The checkpoint then carries the skipped range for that
//! listener (`pending_gap`), and the worker reports it through the ABI's
//! `gap` call before the listener's first entry: every listener hears of
//! the skip, whatever it does with gaps. The range stays in the checkpoint
//! until the call succeeds, so a restart before then reports it again,
//! and once it succeeded it is removed, so it is reported once.

use logdaemon_sdk::abi::GapCause;
use logdaemon_sdk::Position;
use logdaemon_state::PendingGap;

use super::{Call, Flow, Worker};

fn position((sequence, offset, line): (u64, u64, u64)) -> Position {
    Position {
        sequence,
        offset,
        line,
    }
}

impl Worker {
    /// Reports the owed gap, if any; `None` when there is none.
    pub(super) fn report_owed(&mut self) -> Option<Flow> {
        let g: PendingGap = self.owed.clone()?;
        let (from, to) = (position(g.from), position(g.to));
        tracing::warn!(journal = %self.journal.name, listener = %self.listener.name, from = %from, to = %to, cause = %g.cause, "reporting the entries the checkpoint was moved past as a gap");
        let preset = self.acked;
        // `checkpoint set` writes `operator`; a hand-edited name that is
        // no cause is still a range the listener never received.
        let cause = GapCause::from_name(&g.cause).unwrap_or(GapCause::Operator);
        let r =
            crate::engine::pool::in_call(|| self.instance.gap(from, to, cause, &g.detail, preset));
        let ok = r.is_ok();
        let flow = self.after_call(r, preset, Call::Gap(from, to));
        if ok {
            self.owed = None;
            let mut s = self.shared_mut();
            s.owed_reported = true;
            s.version += 1;
        }
        Some(flow)
    }
}
