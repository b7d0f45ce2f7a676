//! A command whose descendants keep its output pipes open: the run ends
//! after a bounded wait and no thread is left reading those pipes. (Alone
//! in its test binary: it counts the process's threads.)

use std::path::Path;
use std::time::{Duration, Instant};

use logdaemon_listener_exec::run::{run, Invocation};
use logdaemon_sdk::Logger;

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn descendants_holding_the_pipes_leave_no_reader_threads_behind() {
    let before = threads();
    let args = vec![
        "-c".to_string(),
        // A grandchild that keeps stdout and stderr open for 20 s.
        "sleep 20 & echo started".to_string(),
    ];
    for _ in 0..5 {
        let t0 = Instant::now();
        run(
            Invocation {
                program: Path::new("/bin/sh"),
                args: &args,
                cwd: Path::new("/"),
                env: &[],
                stdin: None,
                timeout: Duration::from_secs(30),
            },
            Logger::discard(),
        )
        .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads() > before {
        assert!(
            Instant::now() < deadline,
            "{} threads, {before} before the runs",
            threads()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
