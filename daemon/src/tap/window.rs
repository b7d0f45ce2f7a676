//! A tap's window: the shots not yet passed by every member, and each
//! member's reading point (see the invariants in the tap's header).

use super::*;

/// What one fill made: the follower's mark after it (and whether it is at
/// rest there), the batch and what the fill said.
pub(super) struct Made {
    pub(super) end: Option<Mark>,
    pub(super) rest: bool,
    /// The identity proving `end` (none when nothing was made).
    pub(super) id: Option<Identity>,
    pub(super) batch: Batch,
    pub(super) fill: Result<Fill, ShotError>,
}

/// A member's place in the window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Member {
    /// The serial of the next shot it takes.
    pub(super) next: u64,
    /// The oldest serial it may rewind to (≤ `next`).
    pub(super) keep: u64,
    /// The head's serial when it last gave way to a member behind it
    /// (see [`Window::should_give_way`]).
    pub(super) gave_way: Option<u64>,
}

/// The members by id: a vector (ids only grow, so it stays sorted), as a
/// map's first node has room for eleven and a journal has a listener or two.
#[derive(Default)]
pub(super) struct Members(Vec<(u64, Member)>);

impl Members {
    pub(super) fn find(&self, id: u64) -> Option<usize> {
        self.0.binary_search_by_key(&id, |&(k, _)| k).ok()
    }

    pub(super) fn insert(&mut self, id: u64, m: Member) {
        debug_assert!(self.0.last().is_none_or(|&(k, _)| k < id), "ids only grow");
        self.0.push((id, m));
    }

    pub(super) fn get(&self, id: &u64) -> Option<&Member> {
        self.find(*id).map(|i| &self.0[i].1)
    }

    pub(super) fn get_mut(&mut self, id: &u64) -> Option<&mut Member> {
        self.find(*id).map(|i| &mut self.0[i].1)
    }

    pub(super) fn remove(&mut self, id: &u64) {
        if let Some(i) = self.find(*id) {
            self.0.remove(i);
        }
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Member> {
        self.0.iter().map(|(_, m)| m)
    }
}

#[derive(Default)]
pub(super) struct Window {
    pub(super) shots: VecDeque<Arc<Shot>>,
    /// The serial of `shots[0]` (of the head when there is none).
    pub(super) first: u64,
    /// The reader's mark after its last fill, and whether it was at rest.
    pub(super) head: Option<Mark>,
    pub(super) head_rest: bool,
    pub(super) head_id: Option<Identity>,
    /// Bytes of the entries in `shots`.
    pub(super) bytes: usize,
    pub(super) members: Members,
    pub(super) next_id: u64,
    /// Workers given this tap that have not tried to join yet: until they
    /// have, no shot goes but for room (they start where the first did).
    pub(super) expected: usize,
    /// A follower was given (the first member's).
    pub(super) live: bool,
    /// A fill failed: no more fills, no more joins.
    pub(super) broken: bool,
}

impl Window {
    /// The serial after the last shot: the head's.
    pub(super) fn end(&self) -> u64 {
        self.first + self.shots.len() as u64
    }

    /// The serial of the shot that starts at `mark`, or the head's.
    pub(super) fn serial_of(&self, mark: Mark) -> Option<u64> {
        if let Some(s) = self.shots.iter().find(|s| s.start == Some(mark)) {
            return s.rest_before.then_some(s.serial);
        }
        (self.head == Some(mark) && self.head_rest).then(|| self.end())
    }

    pub(super) fn add(&mut self, at: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.members.insert(
            id,
            Member {
                next: at,
                keep: at,
                gave_way: None,
            },
        );
        id
    }

    /// Hands member `id` its next shot (which must be in the window).
    pub(super) fn hand(&mut self, id: u64) -> Arc<Shot> {
        let m = self.members.get_mut(&id).expect("a member");
        let shot = self.shots[(m.next - self.first) as usize].clone();
        m.next += 1;
        self.trim();
        shot
    }

    /// Drops the shots no member may read or rewind to.
    pub(super) fn trim(&mut self) {
        if self.expected > 0 {
            return;
        }
        let end = self.end();
        let low = self
            .members
            .values()
            .map(|m| m.keep.min(m.next))
            .min()
            .unwrap_or(end);
        while self.first < low {
            self.pop();
        }
    }

    pub(super) fn pop(&mut self) {
        if let Some(s) = self.shots.pop_front() {
            self.bytes -= s.batch.size();
            self.first += 1;
        }
    }

    /// Whether the shots from `serial` on, and the head, are all in the
    /// file the live path leads to now, which is at least as long as the
    /// head's position.
    pub(super) fn on_disk(&self, serial: u64, cfg: &JournalConfig) -> bool {
        let Ok(md) = std::fs::metadata(&cfg.path) else {
            return false;
        };
        let key = Some(crate::identity::FileKey::of(&md));
        let from = (serial - self.first) as usize;
        let marks = self.shots.iter().skip(from).flat_map(|s| [s.start, s.end]);
        let mut all = marks.chain([self.head]);
        all.all(|m| m.is_some_and(|m| m.key == key))
            && self.head.is_some_and(|h| md.len() >= h.pos.offset)
    }

    /// Whether member `id`, at the head, should give way once before it
    /// fills: the window is full, so the fill would drop the oldest shot,
    /// which another member has yet to take (it would fall out and read
    /// the journal again on its own). It gives way once per head serial:
    /// a member that is only waiting for a thread takes its shot
    /// meanwhile, and one that is slow or blocked is not waited for again.
    pub(super) fn should_give_way(&mut self, id: u64, batch_bytes: usize) -> bool {
        let end = self.end();
        let (first, full) = (self.first, self.full(batch_bytes));
        let behind = self
            .members
            .0
            .iter()
            .any(|&(k, m)| k != id && m.keep.min(m.next) == first);
        let Some(m) = self.members.get_mut(&id) else {
            return false;
        };
        if m.next != end || !full || !behind || m.gave_way == Some(end) {
            return false;
        }
        m.gave_way = Some(end);
        true
    }

    /// Whether one more shot (of up to a batch) may drop the oldest one.
    pub(super) fn full(&self, batch_bytes: usize) -> bool {
        !self.shots.is_empty()
            && (self.shots.len() >= CAP_SHOTS
                || self.bytes.saturating_add(batch_bytes) > batch_bytes.saturating_mul(CAP_BATCHES))
    }

    /// Drops the oldest shots beyond the cap (never the newest one).
    pub(super) fn cap(&mut self, batch_bytes: usize) {
        let max_bytes = batch_bytes.saturating_mul(CAP_BATCHES);
        while self.shots.len() > CAP_SHOTS || (self.shots.len() > 1 && self.bytes > max_bytes) {
            self.pop();
        }
    }

    /// Stores what a fill from `start` produced; the serial of the shot,
    /// or `None` when it found nothing and moved nowhere.
    pub(super) fn store(
        &mut self,
        start: Option<Mark>,
        made: Made,
        batch_bytes: usize,
    ) -> Option<u64> {
        let Made {
            end,
            rest,
            id,
            batch,
            fill,
        } = made;
        let rest_before = std::mem::replace(&mut self.head_rest, rest);
        self.head = end;
        let nothing = matches!(fill, Ok(Fill::Idle))
            && batch.is_empty()
            && batch.end.is_none()
            && start == end;
        if nothing {
            return None;
        }
        let start_id = std::mem::replace(&mut self.head_id, id.clone());
        self.broken |= fill.is_err();
        let serial = self.end();
        self.bytes += batch.size();
        self.shots.push_back(Arc::new(Shot {
            serial,
            start,
            end,
            batch,
            fill,
            rest_before,
            start_id,
            end_id: id,
        }));
        self.cap(batch_bytes);
        Some(serial)
    }
}
