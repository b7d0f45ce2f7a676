//! The model's reader side: drives the follower as a worker does (fill,
//! acknowledge, restart at the acknowledged cursor) and checks every entry,
//! gap and error against the model.

use logdaemon_sdk::abi::FLAG_INCOMPLETE;
use logdaemon_sdk::Position;
use logdaemon_state::Cursor;

use super::disk::{ExpectGap, Harness};
use super::{Fmt, Naming, Op};
use crate::config::OnGap;
use crate::follow::{Batch, Fill, FollowError, Follower};

impl Harness {
    pub(super) fn crash(&mut self) -> Result<(), String> {
        if self.acked.is_none() && self.rotations > 0 {
            // Without a checkpoint a new follower starts at the live file: not this model.
            return Ok(());
        }
        if self.avoid.restart_at_finished_end && !self.ack_file_exists() {
            self.trace
                .push("  (skipped: the acknowledged file is gone)".into());
            return Ok(());
        }
        // As the engine does: the checkpoint keeps the files finished before.
        let history = self
            .follower
            .take()
            .map(|f| f.finished())
            .unwrap_or_default();
        match Follower::open_with_history(self.cfg.clone(), self.acked.as_ref(), &history, None) {
            Ok(f) => self.follower = Some(f),
            Err(e) => {
                return Err(self.fail(format!(
                    "reopening at the acknowledged cursor {:?} failed: {e}",
                    self.acked
                )))
            }
        }
        Ok(())
    }

    /// Deletes a rotated file whose records after the acknowledged cursor
    /// were not delivered, then restarts: the follower must stop with
    /// `Missing` from the cursor, or report the gap up to the next sequence.
    pub(super) fn lose_rotated(&mut self, k: usize) -> Result<(), String> {
        // Line logs have no journal numbers to tell which rotated file came
        // after a deleted one: only the newest rotated file is lost there.
        let newest_only = self.fmt == Fmt::Lines || self.avoid.lose_before_rotated;
        let inside: Vec<usize> = (0..self.rotated.len())
            .filter(|&i| {
                self.rotated[i].first < self.delivered && self.delivered < self.rotated[i].end
            })
            .filter(|&i| !newest_only || i + 1 == self.rotated.len())
            .collect();
        if inside.is_empty() || self.acked.is_none() || self.expect_gap.is_some() {
            return Ok(());
        }
        let gone = self.rotated.remove(inside[k % inside.len()]);
        std::fs::remove_file(&gone.path).unwrap();
        self.trace
            .push(format!("  deleted {} and restarted", gone.path.display()));
        let ack = self.acked.clone().unwrap();
        let from = (ack.sequence, ack.offset);
        self.follower = None;
        match (
            Follower::open(self.cfg.clone(), Some(&ack), None),
            self.cfg.on_gap,
        ) {
            (Err(FollowError::Missing(m)), OnGap::Stop) => {
                if (m.from.sequence, m.from.offset) != from {
                    return Err(
                        self.fail(format!("Missing from {:?}, expected from {from:?}", m.from))
                    );
                }
                self.stopped = true;
                Ok(())
            }
            (Ok(f), OnGap::Report) => {
                self.follower = Some(f);
                let seq = self.recs[gone.first].sequence;
                self.expect_gap = Some(ExpectGap {
                    from,
                    to_sequence: seq + 1,
                    resume: gone.end,
                });
                Ok(())
            }
            (Ok(_), OnGap::Stop) => {
                Err(self.fail("restarted in a deleted file without stopping on Missing".into()))
            }
            (Err(e), _) => Err(self.fail(format!("restart in a deleted file: {e}"))),
        }
    }

    /// Does the file holding the last delivered record still exist?
    pub(super) fn ack_file_exists(&self) -> bool {
        let Some(last) = self.delivered.checked_sub(1) else {
            return true;
        };
        self.recs[last].sequence == self.live_seq
            || self.rotated.iter().any(|f| f.first <= last && last < f.end)
    }

    pub(super) fn fail(&self, msg: String) -> String {
        let mut s = format!("{msg}\nop trace:\n");
        for t in &self.trace {
            s.push_str(t);
            s.push('\n');
        }
        s.push_str(&format!(
            "model: {} records, {} delivered; rotated: {:?}\n",
            self.recs.len(),
            self.delivered,
            self.rotated
        ));
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        s.push_str(&format!("directory: {names:?}\n"));
        s
    }

    /// One `fill`; checks what it returned against the model and acknowledges
    /// it as a worker would. Returns whether it was Idle.
    pub(super) fn read(&mut self, max: usize) -> Result<bool, String> {
        let mut batch = Batch::default();
        let follower = self.follower.as_mut().expect("follower");
        let r = follower.fill(&mut batch, max);
        let idle = match r {
            Ok(Fill::Idle) => true,
            Ok(Fill::Entries) => false,
            Ok(Fill::Gap(g)) => {
                let Some(want) = self.expect_gap.take() else {
                    return Err(
                        self.fail(format!("gap reported although no bytes were lost: {g:?}"))
                    );
                };
                if (g.from.sequence, g.from.offset) != want.from
                    || (g.to.sequence, g.to.offset) != (want.to_sequence, 0)
                {
                    return Err(self.fail(format!(
                        "gap {g:?} has the wrong range; expected from {:?} to sequence {} offset 0",
                        want.from, want.to_sequence
                    )));
                }
                self.delivered = want.resume;
                // The listener acknowledges the gap at the follower's position, as the worker presets it.
                let pos = self.follower.as_ref().unwrap().position().unwrap_or(g.to);
                self.ack(pos);
                return Ok(false);
            }
            Err(FollowError::Other { message, .. })
                if self.naming == Naming::Ascending
                    && message.contains("set rotated = [\"{name}.{N}{ext}\"]") =>
            {
                // The names contradict the order: a refusal, not a guess.
                self.trace.push(format!("  stopped: {message}"));
                self.stopped = true;
                return Ok(true);
            }
            Err(e) => {
                return Err(self.fail(format!("fill failed although no bytes were lost: {e}")))
            }
        };
        if let (Some(want), false) = (self.expect_gap, batch.entries.is_empty()) {
            return Err(self.fail(format!(
                "entries delivered before the gap {want:?} was reported"
            )));
        }
        for m in &batch.entries {
            let raw = batch.raw(m);
            let Some(want) = self.recs.get(self.delivered) else {
                return Err(self.fail(format!(
                    "delivered a record beyond what was written (repeat?): seq {} offset {} {:?}",
                    m.sequence,
                    m.offset,
                    String::from_utf8_lossy(raw)
                )));
            };
            let got_incomplete = m.flags & FLAG_INCOMPLETE != 0;
            if raw != want.bytes.as_slice()
                || got_incomplete != want.incomplete
                || m.sequence != want.sequence
                || m.offset != want.offset
                || m.line != want.line
            {
                return Err(self.fail(format!(
                    "record #{} differs:\n  expected seq {} offset {} line {} incomplete {} {:?}\n  got      seq {} offset {} line {} incomplete {} {:?}",
                    self.delivered,
                    want.sequence,
                    want.offset,
                    want.line,
                    want.incomplete,
                    String::from_utf8_lossy(&want.bytes),
                    m.sequence,
                    m.offset,
                    m.line,
                    got_incomplete,
                    String::from_utf8_lossy(raw)
                )));
            }
            self.delivered += 1;
        }
        // As the worker does: a batch is acknowledged at its end, also when
        // it only moved past a finished file (no entries).
        if let Some(end) = batch.end {
            self.ack(end);
        }
        Ok(idle)
    }

    pub(super) fn ack(&mut self, pos: Position) {
        let identity = self.follower.as_ref().unwrap().identity_at(pos);
        self.acked = Some(Cursor {
            sequence: pos.sequence,
            offset: pos.offset,
            line: pos.line.max(1),
            identity,
        });
    }

    /// Fills until Idle; then everything available must have been delivered.
    pub(super) fn idle(&mut self) -> Result<(), String> {
        for _ in 0..1000 {
            if self.read(1 << 20)? {
                if self.stopped {
                    return Ok(());
                }
                // A record cut by the last rotation waits until the writer moves on.
                let lag = match (self.recs.last(), self.rotated.last()) {
                    (Some(r), Some(f)) => {
                        r.incomplete && self.live_len == 0 && f.end == self.recs.len()
                    }
                    _ => false,
                };
                let want = self.recs.len() - usize::from(lag);
                let excused =
                    self.avoid.idle_behind_compressed && self.rotated.iter().any(|f| f.compressed);
                if self.delivered < want && !excused {
                    return Err(self.fail(format!(
                        "fill is Idle but only {} of {} available records were delivered",
                        self.delivered, want
                    )));
                }
                return Ok(());
            }
        }
        Err(self.fail("fill never returned Idle".into()))
    }

    pub(super) fn apply(&mut self, op: &Op) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.trace.push(format!("{op:?}"));
        match op {
            Op::Write(t) => self.write(t),
            Op::PartialWrite(t, cut) => self.partial_write(t, *cut),
            Op::Rotate(r) => self.rotate(*r)?,
            Op::Compress(k, c) => self.compress_rotated(*k, *c),
            Op::Delete(k) => self.delete(*k),
            Op::LoseRotated(k) => self.lose_rotated(*k)?,
            Op::Read(n) => {
                self.read(*n)?;
            }
            Op::Crash => self.crash()?,
            Op::Idle => self.idle()?,
        }
        Ok(())
    }

    /// Ends the case: the writer moves on (one more record), everything is read.
    pub(super) fn finish(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.trace.push("final write and drain".into());
        self.write(&[b"end".to_vec()]);
        self.idle()?;
        if self.stopped {
            return Ok(());
        }
        if self.delivered != self.recs.len() {
            return Err(self.fail(format!(
                "at the end {} of {} records were delivered",
                self.delivered,
                self.recs.len()
            )));
        }
        Ok(())
    }
}
