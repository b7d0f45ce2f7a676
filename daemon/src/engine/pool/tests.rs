use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::timers::{deadline, COARSE, SLACK};
use super::{Next, Pool, Task};

/// Steps `n` times, then is done; counts its steps.
struct Counter {
    left: usize,
    steps: Arc<AtomicUsize>,
}

impl Task for Counter {
    fn step(&mut self) -> Next {
        self.steps.fetch_add(1, Ordering::SeqCst);
        if self.left == 0 {
            return Next::Done;
        }
        self.left -= 1;
        Next::Now
    }
    fn panicked(&mut self, _: &str) {}
}

fn done_channel() -> (Sender<()>, Receiver<()>) {
    unbounded()
}

fn wait_done(rx: &Receiver<()>, n: usize) {
    for _ in 0..n {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a task done");
    }
}

#[test]
fn every_task_is_stepped_until_done_and_each_done_is_told() {
    let (tx, rx) = done_channel();
    let pool = Pool::new(2, move || {
        let _ = tx.send(());
    })
    .unwrap();
    let steps = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        pool.add(Box::new(Counter {
            left: 9,
            steps: steps.clone(),
        }));
    }
    wait_done(&rx, 50);
    assert!(pool.all_done());
    assert_eq!(steps.load(Ordering::SeqCst), 500);
    pool.shutdown();
}

/// Blocks in its first step until released, as a listener call to a slow
/// server does.
struct Blocker {
    release: Receiver<()>,
}

impl Task for Blocker {
    fn step(&mut self) -> Next {
        super::in_call(|| {
            let _ = self.release.recv_timeout(Duration::from_secs(60));
        });
        Next::Done
    }
    fn panicked(&mut self, _: &str) {}
}

#[test]
fn a_task_blocked_in_a_step_does_not_hold_back_the_others() {
    let (tx, rx) = done_channel();
    let pool = Pool::new(1, move || {
        let _ = tx.send(());
    })
    .unwrap();
    let (release_tx, release) = unbounded();
    pool.add(Box::new(Blocker { release }));
    let steps = Arc::new(AtomicUsize::new(0));
    pool.add(Box::new(Counter {
        left: 3,
        steps: steps.clone(),
    }));
    // The blocker holds the only base thread: the counter is done only
    // because another thread joined.
    wait_done(&rx, 1);
    assert_eq!(steps.load(Ordering::SeqCst), 4);
    assert!(!pool.all_done(), "the blocker is still in its step");
    assert_eq!(pool.threads(), 2, "one thread joined for the blocked task");
    release_tx.send(()).unwrap();
    wait_done(&rx, 1);
    assert!(pool.all_done());
    pool.shutdown();
}

/// Waits, and counts the steps it was given.
struct Sleeper {
    steps: Arc<AtomicUsize>,
    wait: Duration,
}

impl Task for Sleeper {
    fn step(&mut self) -> Next {
        self.steps.fetch_add(1, Ordering::SeqCst);
        Next::Wait(self.wait)
    }
    fn panicked(&mut self, _: &str) {}
}

fn poll(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_waiting_task_runs_when_woken_and_when_its_wait_is_over() {
    let pool = Pool::new(2, || {}).unwrap();
    let steps = Arc::new(AtomicUsize::new(0));
    let id = pool.add(Box::new(Sleeper {
        steps: steps.clone(),
        wait: Duration::from_secs(3600),
    }));
    poll("first step", || steps.load(Ordering::SeqCst) == 1);
    pool.wake(id);
    poll("woken", || steps.load(Ordering::SeqCst) == 2);

    let short = Arc::new(AtomicUsize::new(0));
    pool.add(Box::new(Sleeper {
        steps: short.clone(),
        wait: Duration::from_millis(10),
    }));
    poll("the timer steps it again", || {
        short.load(Ordering::SeqCst) >= 3
    });
}

#[test]
fn a_thousand_waiting_tasks_take_no_more_threads() {
    let pool = Pool::new(2, || {}).unwrap();
    let steps = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        pool.add(Box::new(Sleeper {
            steps: steps.clone(),
            wait: Duration::from_secs(3600),
        }));
    }
    poll("every task stepped once", || {
        steps.load(Ordering::SeqCst) == 1000
    });
    assert_eq!(pool.threads(), 2);
}

struct Panics {
    told: Arc<std::sync::Mutex<Option<String>>>,
}

impl Task for Panics {
    fn step(&mut self) -> Next {
        panic!("injected");
    }
    fn panicked(&mut self, message: &str) {
        *self.told.lock().unwrap() = Some(message.to_string());
    }
}

#[test]
fn a_panic_in_a_step_is_told_to_the_task_which_is_then_done() {
    let (tx, rx) = done_channel();
    let pool = Pool::new(1, move || {
        let _ = tx.send(());
    })
    .unwrap();
    let told = Arc::new(std::sync::Mutex::new(None));
    pool.add(Box::new(Panics { told: told.clone() }));
    wait_done(&rx, 1);
    assert_eq!(told.lock().unwrap().as_deref(), Some("injected"));
    // The thread survived it.
    let steps = Arc::new(AtomicUsize::new(0));
    pool.add(Box::new(Counter {
        left: 0,
        steps: steps.clone(),
    }));
    wait_done(&rx, 1);
    assert!(pool.all_done());
}

/// Busy for a while outside any listener call, as reading and framing on
/// a loaded machine are.
struct Slow {
    done: bool,
}

impl Task for Slow {
    fn step(&mut self) -> Next {
        if self.done {
            return Next::Done;
        }
        let until = Instant::now() + Duration::from_millis(400);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        self.done = true;
        Next::Now
    }
    fn panicked(&mut self, _: &str) {}
}

#[test]
fn slow_reading_adds_no_thread_only_blocking_listener_calls_do() {
    let (tx, rx) = done_channel();
    let pool = Pool::new(1, move || {
        let _ = tx.send(());
    })
    .unwrap();
    for _ in 0..3 {
        pool.add(Box::new(Slow { done: false }));
    }
    wait_done(&rx, 3);
    assert_eq!(pool.threads(), 1);
}

#[test]
fn long_waits_end_on_a_grid_never_early_short_ones_as_asked() {
    let now = Instant::now();
    let short = now + Duration::from_millis(300);
    assert_eq!(deadline(short, now), short + SLACK);
    let mut points = std::collections::BTreeSet::new();
    for ms in (0..1000).step_by(7) {
        let at = now + Duration::from_secs(10) + Duration::from_millis(ms);
        let d = deadline(at, now);
        assert!(d >= at, "woken before its time");
        assert!(d - at <= COARSE, "woken more than a grid step late");
        points.insert(d);
    }
    // 143 checks spread over one second share at most five wake-ups.
    assert!(points.len() <= 5, "{} wake-ups", points.len());
}

/// Steps `n` times (each step busy for `busy`), then is done.
struct Busy {
    left: usize,
    busy: Duration,
}

impl Task for Busy {
    fn step(&mut self) -> Next {
        let until = Instant::now() + self.busy;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        if self.left == 0 {
            return Next::Done;
        }
        self.left -= 1;
        Next::Now
    }
    fn panicked(&mut self, _: &str) {}
}

#[test]
fn a_step_queued_again_by_its_thread_wakes_no_other() {
    let (tx, rx) = done_channel();
    let pool = Pool::new(2, move || {
        let _ = tx.send(());
    })
    .unwrap();
    // Both threads wait for work first.
    poll("both threads wait", || pool.sleeping() == 2);
    // One task stepped again and again: its thread takes it each time.
    pool.add(Box::new(Counter {
        left: 500,
        steps: Arc::new(AtomicUsize::new(0)),
    }));
    wait_done(&rx, 1);
    assert!(
        pool.woken() <= 2,
        "{} wake-ups for one task's 500 steps",
        pool.woken()
    );
    pool.shutdown();
}

#[test]
fn busy_threads_are_looked_at_once_a_while_not_at_every_step() {
    let (tx, rx) = done_channel();
    let pool = Pool::new(2, move || {
        let _ = tx.send(());
    })
    .unwrap();
    // Two tasks keep both threads busy for about 200 ms, every thread
    // busy again at each step: the timer thread is asked to look for
    // blocked threads about once per BUSY, not once per step.
    let started = Instant::now();
    for _ in 0..2 {
        pool.add(Box::new(Busy {
            left: 400,
            busy: Duration::from_micros(500),
        }));
    }
    wait_done(&rx, 2);
    let looks = started.elapsed().as_millis() as usize / super::BUSY.as_millis() as usize + 3;
    assert!(
        pool.nudges() <= looks,
        "{} looks for blocked threads in {:?}",
        pool.nudges(),
        started.elapsed()
    );
    pool.shutdown();
}

/// Busy (not in a listener call) for `first`, then blocked in a listener
/// call until released.
struct ReadsThenBlocks {
    first: Option<Duration>,
    release: Receiver<()>,
}

impl Task for ReadsThenBlocks {
    fn step(&mut self) -> Next {
        if let Some(d) = self.first.take() {
            std::thread::sleep(d);
            return Next::Now;
        }
        super::in_call(|| {
            let _ = self.release.recv_timeout(Duration::from_secs(60));
        });
        Next::Done
    }
    fn panicked(&mut self, _: &str) {}
}

#[test]
fn a_call_that_blocks_after_the_threads_became_busy_still_gets_work_another_thread() {
    let (tx, rx) = done_channel();
    let pool = Pool::new(1, move || {
        let _ = tx.send(());
    })
    .unwrap();
    let (release_tx, release) = unbounded();
    // The only thread is busy from the start; the call that blocks begins
    // 60 ms later, before the timer's first look (at BUSY) finds it old
    // enough, and work comes only after that look.
    pool.add(Box::new(ReadsThenBlocks {
        first: Some(Duration::from_millis(60)),
        release,
    }));
    std::thread::sleep(super::BUSY + Duration::from_millis(30));
    let steps = Arc::new(AtomicUsize::new(0));
    pool.add(Box::new(Counter {
        left: 0,
        steps: steps.clone(),
    }));
    wait_done(&rx, 1);
    assert_eq!(steps.load(Ordering::SeqCst), 1);
    assert!(!pool.all_done(), "the blocked task is still in its call");
    release_tx.send(()).unwrap();
    wait_done(&rx, 1);
    pool.shutdown();
}
