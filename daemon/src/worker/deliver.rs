//! Handing a batch to the listener: one ABI entry per record (with the
//! p4 fields split when the listener wants them) and the listener's
//! filter, or the batch's runs of bytes for a listener that takes runs;
//! and the next batch read ahead meanwhile.

use std::borrow::Cow;

use logdaemon_sdk::abi::{Bytes, RawEntry, RawRun};

use super::{Call, Flow, Worker};
use crate::engine::pool::in_call;
use crate::follow::Batch;
use crate::follow::Meta;
use crate::format::Format;

impl Worker {
    /// Hands the batch to the listener; with `read_ahead`, reads the next
    /// batch meanwhile.
    pub(super) fn deliver(&mut self, read_ahead: bool) -> Flow {
        // The shot's batch when joined (a clone of the `Arc`, not of the batch).
        let shot = self.shot.clone();
        let batch = match &shot {
            Some(s) => &s.batch,
            None => &self.batch,
        };
        let preset = batch.end.expect("non-empty batch");
        // Joined: the tap reads the next batch on another thread from now
        // on, while this one builds the entries and the listener writes.
        let shared_ahead = match (read_ahead, &self.joined, &self.ahead.spawner) {
            (true, Some(j), Some(sp)) => {
                j.tap.read_ahead(sp, j.id);
                true
            }
            _ => false,
        };
        let holding = self.acked < self.delivered;
        if self.instance.takes_runs() {
            let runs = runs_of(batch, Bytes::new(self.instance.journal_bytes()));
            // Read ahead from disk meanwhile, unless the shared reader does.
            let r = self.ahead.around(
                read_ahead && !shared_ahead,
                &mut self.follower,
                &self.journal,
                &self.listener.name,
                || in_call(|| self.instance.listen_runs(&runs, preset)),
            );
            drop(shot);
            return self.after_call(r, preset, Call::Batch);
        }
        let p4 =
            matches!(self.journal.format, Format::P4) && self.instance.plugin().api.wants_fields;
        let filters = self.instance.plugin().api.filters;
        let journal = Bytes::new(self.instance.journal_bytes());
        let mut handled = self.entries.take();
        // Fields (they may own unquoted copies) and their slices outlive the call.
        let mut fields: Vec<Cow<'_, [u8]>> = Vec::new();
        let mut slices: Vec<Bytes> = Vec::new();
        if p4 {
            let mut counts: Vec<(usize, usize)> = Vec::with_capacity(batch.entries.len());
            for m in &batch.entries {
                let start = fields.len();
                logdaemon_sdk::p4::split_into(batch.raw(m), &mut fields);
                counts.push((start, fields.len() - start));
            }
            slices = fields.iter().map(|f| Bytes::new(f)).collect();
            for (m, &(start, n)) in batch.entries.iter().zip(&counts) {
                let (op, rest) = if n > 0 {
                    (slices[start], &slices[start + 1..start + n])
                } else {
                    (Bytes::EMPTY, &slices[0..0])
                };
                let mut e = raw_entry(journal, m, batch.raw(m), batch.chunk(m));
                e.op = op;
                if !rest.is_empty() {
                    e.fields = rest.as_ptr();
                    e.n_fields = rest.len();
                }
                handled.push(e);
            }
        } else {
            handled.extend(
                batch
                    .entries
                    .iter()
                    .map(|m| raw_entry(journal, m, batch.raw(m), batch.chunk(m))),
            );
        }
        if filters {
            handled.retain(|e| self.instance.is_handled(e));
        }
        let r = if handled.is_empty() {
            Ok(if holding { self.acked } else { preset })
        } else {
            self.ahead.around(
                read_ahead && !shared_ahead,
                &mut self.follower,
                &self.journal,
                &self.listener.name,
                || in_call(|| self.instance.listen(&handled, preset)),
            )
        };
        // The entries point into the batch and the fields: none is kept.
        self.entries.keep(handled);
        drop(slices);
        drop(fields);
        drop(shot);
        self.after_call(r, preset, Call::Batch)
    }
}

/// The ABI runs of `batch` (usually one: a batch read in one go).
fn runs_of(batch: &Batch, journal: Bytes) -> Vec<RawRun> {
    let mut runs = Vec::with_capacity(1);
    batch.for_each_run(|r| {
        runs.push(RawRun {
            struct_size: RawRun::SIZE,
            flags: r.first.flags,
            journal,
            sequence: r.first.sequence,
            offset: r.first.offset,
            line: r.first.line,
            lines: r.end_line - r.first.line,
            records: r.records as u64,
            raw: Bytes::new(r.bytes),
        })
    });
    runs
}

/// The ABI entry for `m` (no op, no fields); `raw` lies within `chunk`.
#[inline]
fn raw_entry(journal: Bytes, m: &Meta, raw: &[u8], chunk: &[u8]) -> RawEntry {
    RawEntry {
        struct_size: RawEntry::SIZE,
        journal,
        sequence: m.sequence,
        offset: m.offset,
        len: m.len,
        line: m.line,
        lines: m.lines,
        flags: m.flags,
        raw: Bytes::new(raw),
        op: Bytes::EMPTY,
        fields: std::ptr::null(),
        n_fields: 0,
        chunk: Bytes::new(chunk),
    }
}
