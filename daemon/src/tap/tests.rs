//! The tap with several listeners on one journal: shots shared in order,
//! falling out of the window and joining again, rewinding within it.
//!
//! [`Listener`] drives the tap as a worker does (join when its own
//! follower stands where the window does, take shots, acknowledge, re-read
//! from the acknowledged position after a failed call, fall out and read
//! on its own when its next shot was dropped), and records what it got.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use logdaemon_sdk::Position;
use logdaemon_state::Cursor;

use super::*;
use crate::format::Format;

/// An entry as a listener got it: sequence, offset, bytes.
pub(super) type Got = (u64, u64, Vec<u8>);

/// One listener of the journal, as its worker reads.
pub(super) struct Listener {
    pub(super) tap: Arc<Tap>,
    pub(super) cfg: Arc<JournalConfig>,
    /// Joined: the member id; solo: its own follower.
    pub(super) id: Option<u64>,
    /// It has not tried to join yet.
    expected: bool,
    pub(super) solo: Option<Box<Follower>>,
    /// Everything handed over is acknowledged at once: the cursor.
    pub(super) acked: Cursor,
    /// The shot after the last one handed over (joined).
    pub(super) next_serial: Option<u64>,
    pub(super) got: Vec<Got>,
    /// Serials of the shots taken, in order (to check none twice).
    pub(super) serials: Vec<u64>,
    pub(super) fell_out: u32,
    pub(super) joins: u32,
    pub(super) reopened: u32,
}

fn cursor_at(pos: Position, identity: Option<logdaemon_state::Identity>) -> Cursor {
    Cursor {
        sequence: pos.sequence,
        offset: pos.offset,
        line: pos.line.max(1),
        identity,
    }
}

fn pos_of(c: &Cursor) -> Position {
    Position {
        sequence: c.sequence,
        offset: c.offset,
        line: c.line,
    }
}

impl Listener {
    /// A listener whose worker just started: its own follower at the start.
    pub(super) fn new(tap: &Arc<Tap>, cfg: &Arc<JournalConfig>) -> Listener {
        tap.expect();
        let f = Follower::open_with_history(cfg.clone(), None, &[], None).unwrap();
        let pos = f.position().unwrap_or(Position {
            sequence: 1,
            offset: 0,
            line: 1,
        });
        Listener {
            tap: tap.clone(),
            cfg: cfg.clone(),
            id: None,
            expected: true,
            acked: cursor_at(pos, f.identity_at(pos)),
            solo: Some(Box::new(f)),
            next_serial: None,
            got: Vec::new(),
            serials: Vec::new(),
            fell_out: 0,
            joins: 0,
            reopened: 0,
        }
    }

    fn try_join(&mut self) {
        if self.id.is_some() {
            return;
        }
        let here = self.solo.as_ref().and_then(|f| f.position());
        if here == Some(pos_of(&self.acked)) {
            if let Some((id, at)) = self.tap.join(&mut self.solo) {
                self.id = Some(id);
                self.next_serial = Some(at);
                self.joins += 1;
            }
        }
        if std::mem::take(&mut self.expected) {
            self.tap.settled();
        }
    }

    /// Opens its own follower at `c`, leaving the tap.
    fn go_solo(&mut self, c: &Cursor) -> Result<(), String> {
        let history = match self.id.take() {
            Some(id) => {
                let h = self.tap.finished_before(c.sequence);
                self.tap.leave(id);
                h
            }
            None => self.solo.take().unwrap().finished(),
        };
        self.next_serial = None;
        let f = Follower::open_with_history(self.cfg.clone(), Some(c), &history, None)
            .map_err(|e| format!("reopening at {c:?}: {e}"))?;
        self.solo = Some(Box::new(f));
        Ok(())
    }

    /// One batch read and handed to the listener (which fails the call when
    /// `fail`). Returns whether the read found nothing new.
    pub(super) fn step(&mut self, fail: bool) -> Result<bool, String> {
        self.try_join();
        let mut own = Batch::default();
        let (fill, shot) = match self.id {
            Some(id) => match self.tap.take(id) {
                Take::Shot(s) => {
                    // The shot after the last one handed over: in order, none skipped or twice.
                    if Some(s.serial) != self.next_serial {
                        return Err(format!(
                            "shot {} where {:?} was next",
                            s.serial, self.next_serial
                        ));
                    }
                    self.serials.push(s.serial);
                    (s.fill.clone().map_err(|e| format!("{e:?}"))?, Some(s))
                }
                Take::Idle => return Ok(true),
                Take::Evicted => {
                    self.fell_out += 1;
                    let c = self.acked.clone();
                    let identity = self.tap.identity_at(pos_of(&c));
                    self.go_solo(&cursor_at(pos_of(&c), identity))?;
                    return Ok(false);
                }
            },
            None => {
                let f = self.solo.as_mut().unwrap();
                let fill = f.fill(&mut own, self.cfg.batch_bytes);
                (fill.map_err(|e| e.to_string())?, None)
            }
        };
        let batch = shot.as_ref().map_or(&own, |s| &s.batch);
        if let Fill::Gap(g) = fill {
            return Err(format!("a gap where no byte was lost: {g:?}"));
        }
        let idle = matches!(fill, Fill::Idle) && batch.is_empty();
        if fail && !batch.is_empty() {
            // The call failed: re-read from the acknowledged position.
            self.rewind()?;
            return Ok(false);
        }
        for m in &batch.entries {
            self.got.push((m.sequence, m.offset, batch.raw(m).to_vec()));
        }
        if let Some(end) = batch.end {
            let identity = match self.id {
                Some(_) => self.tap.identity_at(end),
                None => self.solo.as_ref().unwrap().identity_at(end),
            };
            self.acked = cursor_at(end, identity);
        }
        if let (Some(id), Some(s)) = (self.id, &shot) {
            self.next_serial = Some(s.serial + 1);
            self.tap.keep(id, self.next_serial);
        }
        Ok(idle)
    }

    /// After a failed call: from the window if it still holds the shot,
    /// else from disk at the acknowledged cursor.
    fn rewind(&mut self) -> Result<(), String> {
        if let (Some(id), Some(at)) = (self.id, self.next_serial) {
            if self.tap.rewind(id, at) {
                return Ok(());
            }
        }
        self.reopened += 1;
        let c = self.acked.clone();
        self.go_solo(&c)
    }

    /// Reads until the read finds nothing new.
    pub(super) fn drain(&mut self) -> Result<(), String> {
        for _ in 0..100_000 {
            if self.step(false)? {
                return Ok(());
            }
        }
        Err("never idle".into())
    }
}

fn config(path: &Path, batch_bytes: usize) -> Arc<JournalConfig> {
    let mut c = JournalConfig::for_test("app", path, Format::Lines { record_start: None });
    c.batch_bytes = batch_bytes;
    Arc::new(c)
}

fn append(path: &Path, from: usize, to: usize) -> Vec<Vec<u8>> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut lines = Vec::new();
    for i in from..to {
        let l = format!("line {i} {}\n", "x".repeat(i % 17)).into_bytes();
        f.write_all(&l).unwrap();
        lines.push(l);
    }
    lines
}

fn bytes(l: &Listener) -> Vec<Vec<u8>> {
    l.got.iter().map(|g| g.2.clone()).collect()
}

#[test]
fn two_listeners_at_different_speeds_get_every_shot_once_and_in_order() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("app.log");
    let mut want = append(&path, 0, 10);
    let cfg = config(&path, 200);
    let tap = Tap::new(cfg.clone());
    let (mut fast, mut slow) = (Listener::new(&tap, &cfg), Listener::new(&tap, &cfg));
    for round in 0..40 {
        want.extend(append(&path, 10 + round * 20, 30 + round * 20));
        // The fast one reads up to two shots ahead of the slow one (the
        // window's room), which reads one or two at a time.
        while fast.serials.len() < slow.serials.len() + 2 {
            fast.step(false).unwrap();
        }
        for _ in 0..1 + round % 2 {
            slow.step(false).unwrap();
        }
    }
    while slow.got.len() < want.len() {
        if fast.serials.len() < slow.serials.len() + 2 {
            fast.step(false).unwrap();
        }
        slow.step(false).unwrap();
    }
    fast.drain().unwrap();
    assert_eq!(bytes(&fast), want);
    assert_eq!(bytes(&slow), want);
    for l in [&fast, &slow] {
        assert_eq!(l.joins, 1, "joined once, never fell out");
        assert_eq!(l.fell_out, 0);
        assert!(l.serials.windows(2).all(|w| w[1] == w[0] + 1));
    }
    // The same shots, one read: every shot the slow one took, the fast one took.
    assert_eq!(fast.serials, slow.serials);
    assert!(fast.serials.len() > 40, "{} shots", fast.serials.len());
}

#[test]
fn a_listener_evicted_by_the_cap_falls_out_reads_on_its_own_and_joins_again() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("app.log");
    let mut want = append(&path, 0, 200);
    let cfg = config(&path, 300);
    let tap = Tap::new(cfg.clone());
    let (mut fast, mut slow) = (Listener::new(&tap, &cfg), Listener::new(&tap, &cfg));
    slow.step(false).unwrap();
    // The fast one reads far more than the window holds.
    for _ in 0..CAP_SHOTS + 6 {
        fast.step(false).unwrap();
    }
    assert!(tap.held() <= CAP_SHOTS);
    // The slow one's next shot is gone: it reads on its own, from disk.
    slow.step(false).unwrap();
    assert_eq!((slow.fell_out, slow.id.is_none()), (1, true));
    slow.step(false).unwrap();
    assert!(slow.id.is_none(), "still behind: solo");
    fast.drain().unwrap();
    slow.drain().unwrap();
    // Both at the end of the file: the next step joins again.
    want.extend(append(&path, 200, 230));
    slow.drain().unwrap();
    fast.drain().unwrap();
    assert_eq!(slow.joins, 2, "joined again once caught up");
    assert!(slow.id.is_some());
    assert_eq!(bytes(&fast), want);
    assert_eq!(bytes(&slow), want);
}

#[test]
fn a_failed_call_rewinds_within_the_window_without_reopening() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("app.log");
    let want = append(&path, 0, 100);
    let cfg = config(&path, 400);
    let tap = Tap::new(cfg.clone());
    let (mut fast, mut failing) = (Listener::new(&tap, &cfg), Listener::new(&tap, &cfg));
    fast.step(false).unwrap();
    failing.step(false).unwrap();
    for _ in 0..3 {
        fast.step(false).unwrap();
        // Fails once, then takes the same shot again from the window.
        failing.step(true).unwrap();
        failing.step(false).unwrap();
    }
    fast.drain().unwrap();
    for _ in 0..20 {
        failing.step(true).unwrap();
        failing.step(false).unwrap();
    }
    failing.drain().unwrap();
    assert_eq!(failing.reopened, 0, "never read from disk on its own");
    assert_eq!(failing.joins, 1);
    assert_eq!(bytes(&fast), want);
    assert_eq!(bytes(&failing), want);
    // Each shot taken twice (failed, then handed over), in order.
    let mut once = failing.serials.clone();
    once.dedup();
    assert_eq!(once, fast.serials);
}

#[test]
fn nothing_is_held_once_every_listener_passed() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("app.log");
    append(&path, 0, 300);
    let cfg = config(&path, 500);
    let tap = Tap::new(cfg.clone());
    let mut ls: Vec<Listener> = (0..3).map(|_| Listener::new(&tap, &cfg)).collect();
    ls[0].step(false).unwrap();
    ls[0].step(false).unwrap();
    assert!(tap.held() > 0, "shots wait for the others");
    for l in &mut ls {
        l.drain().unwrap();
    }
    assert_eq!(tap.held(), 0, "an idle journal holds no batch");
    // A listener that leaves holds nothing back either.
    append(&path, 300, 400);
    ls[0].drain().unwrap();
    assert!(tap.held() > 0);
    let (a, b) = (ls[1].id.unwrap(), ls[2].id.unwrap());
    tap.leave(a);
    tap.leave(b);
    assert_eq!(tap.held(), 0);
}

#[test]
fn after_a_fill_found_nothing_the_others_at_the_head_are_told_so_without_a_fill_of_their_own() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("app.log");
    let mut want = append(&path, 0, 50);
    let cfg = config(&path, 1 << 20);
    let tap = Tap::new(cfg.clone());
    let mut ls: Vec<Listener> = (0..3).map(|_| Listener::new(&tap, &cfg)).collect();
    for l in &mut ls {
        l.drain().unwrap();
    }
    // Every listener at the head: one fill found nothing (the last one's,
    // or the read-ahead's); the others are told without filling.
    let fills = tap.fills();
    for l in &mut ls {
        assert!(l.step(false).unwrap(), "nothing new");
    }
    assert_eq!(tap.fills(), fills, "no fill while the file is as it was");
    // Appended since: the next one to come fills, the others take its shot.
    want.extend(append(&path, 50, 60));
    for l in &mut ls {
        l.drain().unwrap();
        assert_eq!(bytes(l), want);
    }
    assert_eq!(
        tap.fills(),
        fills + 2,
        "one fill read the lines, one found nothing"
    );
}

#[test]
fn after_a_fill_found_nothing_no_read_ahead_is_queued_until_the_file_changes() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("app.log");
    append(&path, 0, 50);
    let cfg = config(&path, 1 << 20);
    let tap = Tap::new(cfg.clone());
    let mut ls: Vec<Listener> = (0..2).map(|_| Listener::new(&tap, &cfg)).collect();
    for l in &mut ls {
        l.drain().unwrap();
    }
    for l in &ls {
        assert_eq!(
            tap.ahead_at(l.id.unwrap()),
            None,
            "the last fill found nothing"
        );
    }
    append(&path, 50, 60);
    for l in &ls {
        assert!(tap.ahead_at(l.id.unwrap()).is_some(), "the file grew since");
    }
}

#[test]
fn at_a_full_window_the_leader_gives_way_once_to_a_listener_behind_it() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("app.log");
    let want = append(&path, 0, 3000);
    let cfg = config(&path, 4096);
    let tap = Tap::new(cfg.clone());
    let mut ls: Vec<Listener> = (0..2).map(|_| Listener::new(&tap, &cfg)).collect();
    ls[1].step(false).unwrap();
    // The leader reads on until one more shot would drop the oldest,
    // which the other listener has yet to take.
    ls[0].step(false).unwrap();
    while !tap.is_full() {
        ls[0].step(false).unwrap();
    }
    let leader = ls[0].id.unwrap();
    assert!(!tap.should_give_way(ls[1].id.unwrap()), "not at the head");
    assert!(
        tap.should_give_way(leader),
        "the one behind needs the oldest shot"
    );
    assert!(
        !tap.should_give_way(leader),
        "once per shot: a slow listener is not waited for again"
    );
    // Meanwhile the one behind takes its shot: room again.
    ls[1].step(false).unwrap();
    assert_eq!(ls[1].fell_out, 0);
    assert!(!tap.is_full() && !tap.should_give_way(leader));
    for l in &mut ls {
        l.drain().unwrap();
        assert_eq!(bytes(l), want);
    }
    assert!(!tap.should_give_way(leader), "nobody behind");
}
