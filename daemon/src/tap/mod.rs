//! One reader per journal: the batches of a journal read, decompressed and
//! framed once, and taken by every listener of that journal.
//!
//! Who owns what:
//! - a [`Tap`] belongs to one journal (one stream of a glob journal), made
//!   by the engine and shared (`Arc`) by the workers of that journal's
//!   listeners. A reload that changes the journal gives its workers a new one;
//! - the tap's `reader` lock owns its one [`Follower`]: a worker that finds
//!   nothing new in the window fills the next [`Shot`] under it, and a pool
//!   job may fill one more while listeners are busy (read-ahead);
//! - the `window` lock owns the shots not yet passed by every member, in
//!   stream order and contiguous (each shot starts where the one before it
//!   ended; the last one ends at the reader's position, the *head*), and
//!   each member's reading point;
//! - a shot is immutable once made and shared by `Arc`: a listener's batch
//!   is never copied;
//! - everything about the listener (cursor, acknowledgements, retries,
//!   `on_failure`, `no_data`, entries it holds) stays with its worker.
//!
//! Invariants:
//! - lock order: `reader`, then `window`; never the reverse;
//! - a member reads shots in serial order, each once, and only shots of
//!   this tap's follower: it joined at a shot's start or at the head, where
//!   its own follower stood at the same [`Mark`] (position *and* file);
//! - shots every member has passed (and may not rewind to) are dropped at
//!   once, so an idle journal holds no batch; the window holds at most
//!   [`CAP_SHOTS`] shots and about [`CAP_BATCHES`] batches' bytes: a member
//!   whose next shot was dropped for room *falls out* ([`Take::Evicted`])
//!   and reads from disk on its own until it can join again. A slow or
//!   failing listener never holds back another and never makes the tap
//!   keep more than that. Before the fill that would drop a shot another
//!   member has yet to take, the member at the head gives way once per
//!   shot ([`Tap::should_give_way`]), and the read-ahead does not make
//!   that fill: a member only waiting for a thread keeps up;
//! - nothing here waits for a listener; the timer thread's questions
//!   ([`Tap::idle_unchanged`]) never block.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use logdaemon_sdk::Position;
use logdaemon_state::{Finished, Identity};

use crate::config::JournalConfig;
use crate::engine::pool::Spawner;
use crate::follow::{Batch, Fill, Follower, Mark};

mod window;
use window::{Made, Window};
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

/// Shots the window holds at most.
pub(crate) const CAP_SHOTS: usize = 4;
/// Bytes the window holds at most, in batches (`batch_bytes`) (a shot
/// larger than that, one huge record, is still held alone).
pub(crate) const CAP_BATCHES: usize = 4;

/// One fill of the tap's follower, shared by the listeners.
#[derive(Debug)]
pub(crate) struct Shot {
    /// Its place in the tap's stream of shots.
    pub serial: u64,
    /// The follower's mark before the fill, and after it.
    pub start: Option<Mark>,
    pub end: Option<Mark>,
    /// Entries, or none with `end` set when the fill crossed into a new file.
    pub batch: Batch,
    /// What the fill said.
    pub fill: Result<Fill, ShotError>,
    /// The follower was at rest before the fill ([`Follower::at_rest`]):
    /// a follower at `start` may join here.
    rest_before: bool,
    /// The identities proving `start` and `end`, taken when the follower
    /// stood there (it cannot always prove a position it has left).
    start_id: Option<Identity>,
    end_id: Option<Identity>,
}

impl Drop for Shot {
    fn drop(&mut self) {
        // Its buffers go back to the pool for the next reads.
        self.batch.release();
    }
}

/// A fill that failed: every member that reaches it ends, as its own
/// follower's error would end it.
#[derive(Debug, Clone)]
pub(crate) enum ShotError {
    /// The stream is broken (the follower's error, as text).
    Stream(String),
    /// The fill panicked; the follower is lost with it.
    Panic(String),
}

/// What [`Tap::take`] gives a member.
#[derive(Debug)]
pub(crate) enum Take {
    Shot(Arc<Shot>),
    /// The fill found nothing new (nothing is stored).
    Idle,
    /// The member's next shot was dropped for room: it falls out.
    Evicted,
}

#[derive(Default)]
struct Reader {
    follower: Option<Box<Follower>>,
    /// The last fill found nothing new and the follower took its files'
    /// stamp then ([`Follower::note_idle`]): while the stamp holds, a
    /// member at the head finds nothing either, without a fill of its own.
    noted: bool,
    /// Fills so far (tests look at it).
    #[cfg(test)]
    fills: usize,
}

/// One journal's reader and the window of its shots; see the module header.
pub(crate) struct Tap {
    cfg: Arc<JournalConfig>,
    reader: Mutex<Reader>,
    window: Mutex<Window>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tap {
    pub(crate) fn new(cfg: Arc<JournalConfig>) -> Arc<Tap> {
        Arc::new(Tap {
            cfg,
            reader: Mutex::default(),
            window: Mutex::default(),
        })
    }

    /// The journal's table it reads with.
    pub(crate) fn config(&self) -> &Arc<JournalConfig> {
        &self.cfg
    }

    /// Joins with `own`, a member-to-be's own follower, which must stand
    /// at a shot's start or at the head (or is the first one: the tap takes
    /// it). The member id and the serial of its next shot, `own` taken (no
    /// longer needed); `None`, `own` left alone, when it cannot join (it
    /// reads on its own).
    pub(crate) fn join(&self, own: &mut Option<Box<Follower>>) -> Option<(u64, u64)> {
        let f = own.as_ref()?;
        let mark = f.mark().filter(|_| f.at_rest())?;
        {
            let mut w = lock(&self.window);
            if w.broken {
                return None;
            }
            if w.live {
                let at = w.serial_of(mark)?;
                own.take();
                return Some((w.add(at), at));
            }
        }
        let mut r = lock(&self.reader);
        let mut w = lock(&self.window);
        if w.live || w.broken {
            // Another member gave its follower meanwhile.
            drop(r);
            let at = w.serial_of(mark).filter(|_| !w.broken)?;
            own.take();
            return Some((w.add(at), at));
        }
        let f = own.take()?;
        w.head_id = f.identity_at(mark.pos);
        r.follower = Some(f);
        r.noted = false;
        w.live = true;
        w.head = Some(mark);
        w.head_rest = true;
        let at = w.end();
        Some((w.add(at), at))
    }

    /// A worker of this journal will try to join at its first step: the
    /// shots wait for it (within the cap) until [`Tap::settled`].
    pub(crate) fn expect(&self) {
        lock(&self.window).expected += 1;
    }

    /// An expected worker tried to join (or ended first).
    pub(crate) fn settled(&self) {
        let mut w = lock(&self.window);
        w.expected = w.expected.saturating_sub(1);
        w.trim();
    }

    /// Whether a follower at `mark` would join now (see [`Tap::join`]).
    /// Never blocks: a busy tap says no.
    pub(crate) fn could_join(&self, mark: Mark) -> bool {
        self.window
            .try_lock()
            .is_ok_and(|w| w.live && !w.broken && w.serial_of(mark).is_some())
    }

    /// Member `id` leaves (it ended, or reads on its own now).
    pub(crate) fn leave(&self, id: u64) {
        let mut w = lock(&self.window);
        w.members.remove(&id);
        w.trim();
    }

    /// The next shot of member `id`: from the window, or filled now when
    /// the member is at the head (waiting for a fill in progress).
    pub(crate) fn take(&self, id: u64) -> Take {
        if let Some(t) = Self::from_window(&mut lock(&self.window), id) {
            return t;
        }
        let mut r = lock(&self.reader);
        let mut w = lock(&self.window);
        // Another member may have filled while this one waited.
        if let Some(t) = Self::from_window(&mut w, id) {
            return t;
        }
        if w.broken || r.follower.is_none() {
            return Take::Idle;
        }
        if Self::still_nothing(&mut r) {
            return Take::Idle;
        }
        let start = w.head;
        drop(w);
        let made = self.fill(&mut r, start);
        let mut w = lock(&self.window);
        match w.store(start, made, self.cfg.batch_bytes) {
            Some(_) => Take::Shot(w.hand(id)),
            None => Take::Idle,
        }
    }

    /// Whether member `id` should let the others run before it fills the
    /// next shot (see [`Window::should_give_way`]).
    pub(crate) fn should_give_way(&self, id: u64) -> bool {
        lock(&self.window).should_give_way(id, self.cfg.batch_bytes)
    }

    /// A shot of the window for `id`; `None` when it is at the head.
    fn from_window(w: &mut Window, id: u64) -> Option<Take> {
        let m = *w.members.get(&id).expect("a member");
        if m.next < w.first {
            return Some(Take::Evicted);
        }
        (m.next < w.end()).then(|| Take::Shot(w.hand(id)))
    }

    /// Whether the last fill found nothing and the files are as they were
    /// then (one `stat`): every member that comes to the head after a fill
    /// found nothing (the read-ahead's, another listener's) is told so
    /// without filling again, which would check the file for truncation,
    /// read to its end and prove it anew for each listener.
    fn still_nothing(r: &mut Reader) -> bool {
        if !r.noted {
            return false;
        }
        let f = r.follower.as_mut().expect("a follower");
        r.noted = f.idle_unchanged();
        r.noted
    }

    /// One fill of the follower (the reader lock held). A panic loses the
    /// follower.
    fn fill(&self, r: &mut Reader, start: Option<Mark>) -> Made {
        #[cfg(test)]
        {
            r.fills += 1;
        }
        let mut batch = Batch::default();
        let f = r.follower.as_mut().expect("a follower");
        let max = self.cfg.batch_bytes;
        let got =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.fill(&mut batch, max)));
        match got {
            Ok(fill) => {
                let end = f.mark();
                let moved = end != start || !batch.is_empty() || batch.end.is_some();
                // Nothing new: the follower takes its files' stamp now, for
                // the members that come to the head after this fill.
                r.noted = !moved && matches!(fill, Ok(Fill::Idle));
                if r.noted {
                    f.note_idle();
                }
                let id = match end {
                    Some(m) if moved || !matches!(fill, Ok(Fill::Idle)) => f.identity_at(m.pos),
                    _ => None,
                };
                Made {
                    end,
                    rest: f.at_rest(),
                    id,
                    batch,
                    fill: fill.map_err(|e| ShotError::Stream(e.to_string())),
                }
            }
            Err(p) => {
                r.follower = None;
                r.noted = false;
                let msg = crate::engine::panic_text(p.as_ref());
                Made {
                    end: None,
                    rest: false,
                    id: None,
                    batch: Batch::default(),
                    fill: Err(ShotError::Panic(msg)),
                }
            }
        }
    }

    /// While member `id`'s listener handles a shot, fills the next one on
    /// a pool thread if the member is at the head and the window has room.
    /// Never waits: a reader busy filling needs no help.
    pub(crate) fn read_ahead(self: &Arc<Self>, spawner: &Spawner, id: u64) {
        let Some(at) = self.ahead_at(id) else { return };
        let tap = self.clone();
        let span = tracing::Span::current();
        spawner.spawn(move || span.in_scope(|| tap.fill_ahead(at)));
    }

    /// The serial a read-ahead for member `id` would fill: the member is
    /// at the head, the window has room, and the reader is free and may
    /// find something new. After a fill that found nothing, while the
    /// files are as they were then (one `stat`), a read-ahead would find
    /// nothing either: none is queued, which would cost a thread's wake-up
    /// and a fill for each listener of a journal written once. Never waits.
    fn ahead_at(&self, id: u64) -> Option<u64> {
        let at = {
            let w = lock(&self.window);
            let m = w.members.get(&id)?;
            if m.next != w.end() || w.full(self.cfg.batch_bytes) || w.broken || !w.live {
                return None;
            }
            m.next
        };
        let mut r = self.reader.try_lock().ok()?;
        (!Self::still_nothing(&mut r)).then_some(at)
    }

    /// The read-ahead job: one fill, if the head is still at serial `at`
    /// and the files may hold something new.
    fn fill_ahead(&self, at: u64) {
        let Ok(mut r) = self.reader.try_lock() else {
            return;
        };
        if Self::still_nothing(&mut r) {
            return;
        }
        let start = {
            let w = lock(&self.window);
            if w.end() != at || w.full(self.cfg.batch_bytes) || w.broken || r.follower.is_none() {
                return;
            }
            w.head
        };
        let made = self.fill(&mut r, start);
        lock(&self.window).store(start, made, self.cfg.batch_bytes);
    }

    /// Member `id` may rewind to `serial` from now on (`None`: to no shot,
    /// only to its next one); older shots may go.
    pub(crate) fn keep(&self, id: u64, serial: Option<u64>) {
        let mut w = lock(&self.window);
        if let Some(m) = w.members.get_mut(&id) {
            m.keep = serial.unwrap_or(m.next).min(m.next);
        }
        w.trim();
    }

    /// Member `id` reads again from `serial` (a failed call: the re-read
    /// from the acknowledged position). False when that shot is gone, or
    /// when the disk no longer says what the window does from there (the
    /// live path leads to another file, or a shorter one: rotated or
    /// truncated since), so that a re-read finds what a re-read from disk
    /// would.
    pub(crate) fn rewind(&self, id: u64, serial: u64) -> bool {
        let mut w = lock(&self.window);
        let (first, end) = (w.first, w.end());
        let Some(m) = w.members.get(&id) else {
            return false;
        };
        if serial < first || serial > end || serial > m.next || !w.on_disk(serial, &self.cfg) {
            return false;
        }
        let m = w.members.get_mut(&id).expect("a member");
        m.next = serial;
        m.keep = serial;
        true
    }

    /// The identity proving `pos` (see [`Follower::identity_at`]): the one
    /// taken when the follower stood there, for a shot's start or end or
    /// the head (without waiting for a fill in progress); else read from
    /// the file when the follower holds it plain (a compressed file's
    /// proof is kept for where the follower stands only). `None`: the
    /// position is trusted as it is.
    pub(crate) fn identity_at(&self, pos: Position) -> Option<Identity> {
        {
            let w = lock(&self.window);
            let at = |m: &Option<Mark>| m.is_some_and(|m| m.pos == pos);
            for s in w.shots.iter().rev() {
                if at(&s.end) {
                    return s.end_id.clone();
                }
                if at(&s.start) {
                    return s.start_id.clone();
                }
            }
            if at(&w.head) {
                return w.head_id.clone();
            }
        }
        self.identity_now(pos)
    }

    /// The identity proving `pos` as the files are now (the first bytes
    /// of a file that was empty when a shot was taken, say): from the
    /// follower, where it can prove `pos`.
    pub(crate) fn identity_now(&self, pos: Position) -> Option<Identity> {
        let r = lock(&self.reader);
        let f = r.follower.as_ref()?;
        if f.position() == Some(pos) {
            return f.identity_at(pos);
        }
        f.identity_in_file(pos)
    }

    /// The files the follower finished before file `sequence` (for a
    /// member's checkpoint and for reopening at its cursor): the follower
    /// may be in later files already.
    pub(crate) fn finished_before(&self, sequence: u64) -> Vec<Finished> {
        let r = lock(&self.reader);
        let mut all = r
            .follower
            .as_ref()
            .map(|f| f.finished())
            .unwrap_or_default();
        all.retain(|f| f.sequence < sequence);
        all
    }

    /// A member found nothing to read: the follower takes its files' stamp.
    pub(crate) fn note_idle(&self) {
        let mut r = lock(&self.reader);
        if r.noted {
            // Taken by the fill that found nothing (see `Reader::noted`).
            return;
        }
        if let Some(f) = r.follower.as_mut() {
            f.note_idle();
            r.noted = true;
        }
    }

    /// Whether member `id`, at the head, would find nothing new (see
    /// [`Follower::idle_unchanged`]). Never blocks: a busy tap is "not idle".
    pub(crate) fn idle_unchanged(&self, id: u64) -> bool {
        {
            let Ok(w) = self.window.try_lock() else {
                return false;
            };
            if w.members.get(&id).is_none_or(|m| m.next != w.end()) {
                return false;
            }
        }
        let Ok(mut r) = self.reader.try_lock() else {
            return false;
        };
        r.follower.as_mut().is_some_and(|f| f.idle_unchanged())
    }

    /// When the journal's follower must look again without a file event
    /// (see [`Follower::wake_at`]); `None` when it need not, or when the
    /// reader is busy (whoever holds it is reading).
    pub(crate) fn wake_at(&self) -> Option<std::time::Instant> {
        let r = self.reader.try_lock().ok()?;
        r.follower.as_ref().and_then(|f| f.wake_at())
    }

    /// Gives back the follower's read buffer when no shot is held.
    /// Like [`release_if_idle`](Self::release_if_idle), unless the reader
    /// or the window is busy (whoever holds them is using the buffers):
    /// for the delivery path, which must not wait.
    pub(crate) fn try_release_if_idle(&self) {
        let Ok(mut r) = self.reader.try_lock() else {
            return;
        };
        if !self.window.try_lock().is_ok_and(|w| w.shots.is_empty()) {
            return;
        }
        if let Some(f) = r.follower.as_mut() {
            f.release_buffers();
        }
    }

    pub(crate) fn release_if_idle(&self) {
        let mut r = lock(&self.reader);
        if !lock(&self.window).shots.is_empty() {
            return;
        }
        if let Some(f) = r.follower.as_mut() {
            f.release_buffers();
        }
    }

    /// Whether one more shot may drop the oldest one.
    #[cfg(test)]
    pub(crate) fn is_full(&self) -> bool {
        lock(&self.window).full(self.cfg.batch_bytes)
    }

    /// Fills of the follower so far.
    #[cfg(test)]
    pub(crate) fn fills(&self) -> usize {
        lock(&self.reader).fills
    }

    /// Shots held now (for tests and the status).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        lock(&self.window).shots.len()
    }
}
