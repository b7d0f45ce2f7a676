//! Which entries a replay range holds, decided entry by entry in journal
//! order.
//!
//! A range is a slice of the journal: it starts at the first entry at or
//! after `--from` whose time is at or after `--since`, and ends before the
//! first entry after that at or after `--to` or at or after `--until`.
//! Entries inside the slice are kept whatever their time, so a clock
//! stepped back or a second writer never drops or reorders anything; such
//! steps are counted and reported.

use jiff::Timestamp;

/// A position in the history: a sequence and a byte offset in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub sequence: u64,
    pub offset: u64,
}

/// The range asked for. `to` is exclusive.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub from: Option<Pos>,
    pub to: Option<Pos>,
    /// `to` was given with an offset (`SEQ:OFFSET`), which must then be a
    /// record boundary.
    pub to_exact: bool,
}

/// What to do with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Skip,
    Emit,
    Stop,
}

/// A position of the range that is not where a record starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffBoundary {
    pub pos: Pos,
    /// The record that holds it: its start and end.
    pub record: (u64, u64),
}

/// The running decision over a range.
#[derive(Debug)]
pub struct Selector {
    pub bounds: Bounds,
    pub started: bool,
    /// Entries whose time is before the previous timed entry's.
    pub backwards: u64,
    last: Option<Timestamp>,
}

impl Selector {
    pub fn new(bounds: Bounds) -> Selector {
        Selector {
            bounds,
            started: false,
            backwards: 0,
            last: None,
        }
    }

    /// Whether the next decision depends on entries' times.
    pub fn needs_time(&self) -> bool {
        self.bounds.until.is_some() || (!self.started && self.bounds.since.is_some())
    }

    /// Notes an entry's own time (not one taken from a neighbour), for the
    /// count of times that went backwards.
    pub fn saw_time(&mut self, t: Timestamp) {
        if self.last.is_some_and(|l| t < l) {
            self.backwards += 1;
        }
        self.last = Some(t);
    }

    /// Decides on the record `[offset, end)` of `sequence`, whose time is
    /// `time` (`Timestamp::MIN` when it has none yet, `Timestamp::MAX` when
    /// its transaction is not closed yet).
    pub fn judge(
        &mut self,
        sequence: u64,
        offset: u64,
        end: u64,
        time: Timestamp,
    ) -> Result<Verdict, OffBoundary> {
        let here = Pos { sequence, offset };
        if !self.started {
            if let Some(f) = self.bounds.from {
                if here < f {
                    if sequence == f.sequence && end > f.offset {
                        return Err(OffBoundary {
                            pos: f,
                            record: (offset, end),
                        });
                    }
                    return Ok(Verdict::Skip);
                }
            }
            if self.bounds.since.is_some_and(|s| time < s) {
                return Ok(Verdict::Skip);
            }
            self.started = true;
        }
        if let Some(t) = self.bounds.to {
            if here >= t {
                return Ok(Verdict::Stop);
            }
            if self.bounds.to_exact && sequence == t.sequence && end > t.offset {
                return Err(OffBoundary {
                    pos: t,
                    record: (offset, end),
                });
            }
        }
        if self.bounds.until.is_some_and(|u| time >= u) {
            return Ok(Verdict::Stop);
        }
        Ok(Verdict::Emit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn a_time_range_is_a_slice_that_keeps_times_that_step_back() {
        let mut s = Selector::new(Bounds {
            since: Some(t(10)),
            until: Some(t(20)),
            ..Bounds::default()
        });
        let times = [5, 12, 8, 15, 25, 11];
        let got: Vec<Verdict> = times
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                s.saw_time(t(x));
                s.judge(1, i as u64, i as u64 + 1, t(x)).unwrap()
            })
            .collect();
        use Verdict::*;
        assert_eq!(&got[..5], &[Skip, Emit, Emit, Emit, Stop]);
        assert_eq!(s.backwards, 2);
    }

    #[test]
    fn positions_must_be_record_boundaries() {
        let from = Pos {
            sequence: 2,
            offset: 10,
        };
        let mut s = Selector::new(Bounds {
            from: Some(from),
            ..Bounds::default()
        });
        assert_eq!(s.judge(1, 0, 50, t(0)), Ok(Verdict::Skip));
        assert_eq!(
            s.judge(2, 0, 15, t(0)),
            Err(OffBoundary {
                pos: from,
                record: (0, 15)
            })
        );
        let to = Pos {
            sequence: 3,
            offset: 4,
        };
        let mut s = Selector::new(Bounds {
            to: Some(to),
            to_exact: true,
            ..Bounds::default()
        });
        assert_eq!(s.judge(3, 0, 4, t(0)), Ok(Verdict::Emit));
        assert_eq!(s.judge(3, 4, 9, t(0)), Ok(Verdict::Stop));
        let mut s = Selector::new(Bounds {
            to: Some(to),
            to_exact: true,
            ..Bounds::default()
        });
        assert!(s.judge(3, 0, 9, t(0)).is_err());
    }
}
