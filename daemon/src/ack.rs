//! Which positions a listener may acknowledge: record boundaries only.
//!
//! A cursor in the middle of a record would make the next run deliver the
//! rest of it as if it were a record of its own (or, for p4, fail to frame
//! the journal). The host therefore checks every acknowledgement a plugin
//! writes before it records anything: it must be the end (or start) of an
//! entry delivered since the last acknowledgement, a position the host
//! itself handed out (the preset end of what was delivered, a gap's ends),
//! the start of a file delivered since; what is not beyond the last
//! acknowledgement is ignored and what lies beyond everything delivered is
//! taken as its end. Anything else is refused.
//!
//! To check acknowledgements of entries held across calls (a digest, an
//! open transaction), the ends of the entries delivered after the
//! acknowledgement are kept while the listener holds them, and only then:
//! a listener that acknowledges every batch whole costs nothing here.

use logdaemon_sdk::Position;

use crate::follow::Meta;

/// `(sequence, offset)`: what positions are compared by.
type Key = (u64, u64);

fn key(p: Position) -> Key {
    (p.sequence, p.offset)
}

/// Ends of entries delivered after the acknowledgement, in stream order.
#[derive(Debug, Default)]
pub(crate) struct Held {
    ends: Vec<Key>,
}

impl Held {
    /// Nothing is held (everything delivered was acknowledged, or it will
    /// be delivered again).
    pub(crate) fn clear(&mut self) {
        self.ends.clear();
    }

    /// After a call that left entries of `batch` held: keeps the ends of
    /// those after `acked`, and forgets those up to it.
    pub(crate) fn keep(&mut self, batch: &[Meta], acked: Position) {
        self.forget(acked);
        let acked = key(acked);
        self.ends.extend(
            batch
                .iter()
                .map(|m| (m.sequence, m.offset + m.len))
                .filter(|&e| e > acked),
        );
    }

    /// Forgets the ends up to `acked`.
    pub(crate) fn forget(&mut self, acked: Position) {
        let n = self.ends.partition_point(|&e| e <= key(acked));
        self.ends.drain(..n);
    }

    fn contains(&self, k: Key) -> bool {
        self.ends.binary_search(&k).is_ok()
    }
}

/// What the host knows of the call an acknowledgement came back from.
pub(crate) struct Known<'a> {
    /// The last recorded acknowledgement.
    pub acked: Position,
    /// Where the host preset the acknowledgement (the end of everything delivered).
    pub preset: Position,
    /// The entries of this call's batch (empty for other calls).
    pub batch: &'a [Meta],
    /// Other positions the host handed out in this call (a gap's ends).
    pub also: &'a [Position],
    pub held: &'a Held,
}

/// Whether `ack` falls on a record boundary the listener may acknowledge.
pub(crate) fn on_boundary(ack: Position, k: &Known<'_>) -> bool {
    let a = key(ack);
    // Not beyond the last acknowledgement (ignored), or not before the end
    // of what was delivered (taken as that end).
    if a <= key(k.acked) || a >= key(k.preset) || k.also.iter().any(|&p| key(p) == a) {
        return true;
    }
    // The start of a file delivered since the acknowledgement.
    if a.1 == 0 && a.0 > k.acked.sequence && a.0 <= k.preset.sequence {
        return true;
    }
    let by_end = k
        .batch
        .binary_search_by(|m| (m.sequence, m.offset + m.len).cmp(&a))
        .is_ok();
    let by_start = k
        .batch
        .binary_search_by(|m| (m.sequence, m.offset).cmp(&a))
        .is_ok();
    by_end || by_start || k.held.contains(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(sequence: u64, offset: u64, len: u64) -> Meta {
        Meta {
            sequence,
            offset,
            len,
            line: 1,
            lines: 1,
            flags: 0,
            start: 0,
        }
    }

    fn pos(sequence: u64, offset: u64) -> Position {
        Position {
            sequence,
            offset,
            line: 1,
        }
    }

    #[test]
    fn ends_and_starts_of_the_batch_are_boundaries_the_middle_of_a_record_is_not() {
        let batch = [meta(1, 100, 10), meta(1, 110, 20), meta(2, 0, 5)];
        let held = Held::default();
        let k = Known {
            acked: pos(1, 100),
            preset: pos(2, 5),
            batch: &batch,
            also: &[],
            held: &held,
        };
        // Before the last acknowledgement or beyond what was delivered: harmless.
        for ok in [
            (1, 100),
            (1, 110),
            (1, 130),
            (2, 0),
            (2, 5),
            (1, 50),
            (2, 6),
        ] {
            assert!(on_boundary(pos(ok.0, ok.1), &k), "{ok:?}");
        }
        for bad in [(1, 105), (1, 129), (2, 3), (1, 131)] {
            assert!(!on_boundary(pos(bad.0, bad.1), &k), "{bad:?}");
        }
    }

    #[test]
    fn held_entries_stay_acknowledgeable_in_later_calls_until_acknowledged() {
        let mut held = Held::default();
        held.keep(
            &[meta(1, 0, 10), meta(1, 10, 10), meta(1, 20, 10)],
            pos(1, 10),
        );
        held.keep(&[meta(1, 30, 10)], pos(1, 10));
        let also = [pos(7, 7)];
        let check = |held: &Held, p: Position| {
            let k = Known {
                acked: pos(1, 10),
                preset: pos(1, 40),
                batch: &[],
                also: &also,
                held,
            };
            on_boundary(p, &k)
        };
        assert!(check(&held, pos(1, 20)));
        assert!(check(&held, pos(1, 30)));
        assert!(check(&held, pos(7, 7)));
        assert!(!check(&held, pos(1, 25)));
        held.forget(pos(1, 30));
        assert_eq!(held.ends, [(1, 40)]);
        held.clear();
        assert!(!check(&held, pos(1, 30)));
    }
}
