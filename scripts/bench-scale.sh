#!/usr/bin/env bash
# The daemon at scale: one daemon following N line logs with L `file`
# listeners each (`fsync = false`, default `reconcile_every`), against
# `tail -F` and rsyslog's `imfile` (wildcard, inotify) following the same
# files in the same run. For each it prints:
#
#   threads, RSS, CPU while idle over 5 s, the time from start until every
#   listener (every file, for the baselines) has its first line, the time
#   from appending one line to every log until it is delivered everywhere,
#   the CPU time (user + system) it takes to deliver a burst of lines
#   appended to every log at once (SCALE_BURST_LINES, default 1,000 lines,
#   about 40 KiB, per log: with L = 2 against L = 1 it is what a second
#   listener costs), and whether every output is exact (each line once, in
#   its file's order; the daemon's outputs byte for byte equal to their logs).
#
# Usage: scripts/bench-scale.sh N [L]        (L defaults to 1)
# Environment: BENCH_DIR (work directory; default a fresh one under /tmp,
# the disk's file system), SCALE_TIMEOUT (cap of each phase in seconds,
# default 120: a phase that takes longer prints "timeout"), SCALE_ONLY
# (a space-separated subset of "logdaemon tail imfile"), SCALE_PROFILE (a
# command run with `-p PID` on the daemon during its burst and stopped with
# SIGINT once the burst is delivered, e.g. "perf record -F 10000 -g -o
# /tmp/burst.data"; its overhead is in that run's burst figure; a build
# with frame pointers gives whole call stacks:
# RUSTFLAGS="-C force-frame-pointers=yes" CARGO_TARGET_DIR=/tmp/fp).
# A benchmark, not a test: figures are only meaningful against the
# baselines of the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
REL=${CARGO_TARGET_DIR:-$root/target}/release
n=${1:?usage: scripts/bench-scale.sh N [L]}
l=${2:-1}
timeout=${SCALE_TIMEOUT:-120}
only=${SCALE_ONLY:-logdaemon tail imfile}

cargo build --release -p logdaemon -p logdaemon-listener-file >/dev/null
if [ -z "${BENCH_DIR:-}" ]; then
    BENCH_DIR=$(mktemp -d /tmp/logdaemon-scale.XXXXXX)
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi
# One descriptor per log, per output and per side record at least.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

python3 - "$REL/logdaemon" "$BENCH_DIR" "$n" "$l" "$timeout" "$only" <<'EOF'
import os, signal, subprocess, sys, time

BIN, W, N, L, TIMEOUT, ONLY = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6].split()
LOGS = os.path.join(W, "logs")
HZ = os.sysconf("SC_CLK_TCK")
SETTLE, IDLE = 3.0, 5.0
BURST = int(os.environ.get("SCALE_BURST_LINES", "1000"))

def line(i, k):
    return b"app%06d line %d of the scale benchmark\n" % (i, k)

def log_path(i):
    return os.path.join(LOGS, "app%06d.log" % i)

def fresh_logs():
    subprocess.run(["rm", "-rf", LOGS], check=True)
    os.makedirs(LOGS)
    for i in range(N):
        with open(log_path(i), "wb") as f:
            f.write(line(i, 1))

def append_all(k):
    for i in range(N):
        fd = os.open(log_path(i), os.O_WRONLY | os.O_APPEND)
        os.write(fd, line(i, k))
        os.close(fd)

def append_burst(k0, count):
    """Appends lines k0 .. k0 + count - 1 to every log, one write per log."""
    for i in range(N):
        fd = os.open(log_path(i), os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"".join(line(i, k) for k in range(k0, k0 + count)))
        os.close(fd)

def size(p):
    try:
        return os.stat(p).st_size
    except FileNotFoundError:
        return 0

def wait_until(done):
    """Seconds until done() holds, or None after TIMEOUT."""
    t0 = time.monotonic()
    while not done():
        if time.monotonic() - t0 > TIMEOUT:
            return None
        time.sleep(0.002)
    return time.monotonic() - t0

def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith(key + ":"):
                return int(l.split()[1])

def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])

def idle_cpu(pid):
    time.sleep(SETTLE)
    c0, t0 = cpu_ticks(pid), time.monotonic()
    time.sleep(IDLE)
    c1, t1 = cpu_ticks(pid), time.monotonic()
    return (c1 - c0) / HZ / (t1 - t0) * 100

def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(30)
        return ""
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return " (hung at SIGTERM, killed)"

class Daemon:
    name = "logdaemon"
    def outputs(self, i):
        return [os.path.join(W, "out", "app%06d.%d.out" % (i, j)) for j in range(L)]
    def start(self):
        d = os.path.join(W, "out")
        subprocess.run(["rm", "-rf", d, os.path.join(W, "state")], check=True)
        os.makedirs(d)
        cfg = os.path.join(W, "scale.toml")
        with open(cfg, "w") as f:
            f.write('state_dir = "state"\n')
            for i in range(N):
                f.write(f'[[journal]]\nname = "app{i:06d}"\npath = "{log_path(i)}"\nformat = "lines"\n')
                for j, out in enumerate(self.outputs(i)):
                    f.write(f'[[journal.listener]]\nname = "copy{j}"\nplugin = "file"\n'
                            f'[journal.listener.config]\npath = "{out}"\nformat = "raw"\nfsync = false\n')
        self.err = open(os.path.join(W, "logdaemon.log"), "wb")
        return subprocess.Popen([BIN, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=self.err)
    def delivered(self, k):
        # Outputs still short of their k-th line; each poll re-checks only those.
        pending = [(o, sum(len(line(i, m)) for m in range(1, k + 1))) for i in range(N) for o in self.outputs(i)]
        def done():
            pending[:] = [(o, w) for o, w in pending if size(o) < w]
            return not pending
        return done
    def exact(self):
        for i in range(N):
            with open(log_path(i), "rb") as f:
                src = f.read()
            for o in self.outputs(i):
                with open(o, "rb") as f:
                    if f.read() != src:
                        return f"no ({o})"
        return "yes"

class OneOutput:
    """A follower that writes every file's lines into one output."""
    def delivered(self, k):
        want = sum(len(line(i, m)) for i in range(N) for m in range(1, k + 1))
        return lambda: size(self.out) >= want
    def exact(self):
        seen = {}
        with open(self.out, "rb") as f:
            for l in f:
                seen.setdefault(l.split(b" ", 1)[0], []).append(l)
        for i in range(N):
            got = seen.pop(b"app%06d" % i, [])
            if got != [line(i, m) for m in range(1, len(got) + 1)] or len(got) != self.k:
                return f"no ({log_path(i)}: {len(got)} lines)"
        return "yes" if not seen else "no (lines of no file)"

class Tail(OneOutput):
    name = "tail -F"
    def start(self):
        self.out = os.path.join(W, "tail.out")
        o = open(self.out, "wb")
        return subprocess.Popen(["tail", "-q", "-n", "+1", "-F"] + [log_path(i) for i in range(N)],
                                stdout=o, stderr=subprocess.DEVNULL)

class Imfile(OneOutput):
    name = "rsyslog imfile"
    def start(self):
        d = os.path.join(W, "rsyslog")
        subprocess.run(["rm", "-rf", d], check=True)
        os.makedirs(d)
        self.out = os.path.join(d, "out")
        conf = os.path.join(d, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write(f'''global(workDirectory="{d}")
module(load="imfile" mode="inotify")
template(name="raw" type="string" string="%msg%\\n")
ruleset(name="out") {{ action(type="omfile" file="{self.out}" template="raw") }}
input(type="imfile" file="{LOGS}/*.log" tag="app" ruleset="out")
''')
        err = open(os.path.join(d, "log"), "wb")
        return subprocess.Popen(["/usr/sbin/rsyslogd", "-n", "-f", conf, "-i", os.path.join(d, "pid")],
                                stdout=err, stderr=err)

def profile(pid):
    """SCALE_PROFILE attached to `pid`, once it has started (one second)."""
    cmd = os.environ.get("SCALE_PROFILE", "").split()
    if not cmd:
        return None
    prof = subprocess.Popen(cmd + ["-p", str(pid)], stdout=subprocess.DEVNULL)
    time.sleep(1.0)
    return prof

def fmt_s(s):
    return "timeout" if s is None else f"{s:.3f} s"

def measure(sys_):
    fresh_logs()
    t0 = time.monotonic()
    p = sys_.start()
    sys_.k = 1
    up = wait_until(sys_.delivered(1))
    start = None if up is None else time.monotonic() - t0
    threads = proc_status(p.pid, "Threads")
    idle = idle_cpu(p.pid)
    rss = proc_status(p.pid, "VmRSS") / 1024
    t1 = time.monotonic()
    append_all(2)
    writer = time.monotonic() - t1
    sys_.k = 2
    got = wait_until(sys_.delivered(2))
    delivery = None if got is None else got + writer
    # The burst: BURST lines appended to every log at once; the follower's
    # CPU time (user + system) until every output has them.
    prof = profile(p.pid) if sys_.name == "logdaemon" else None
    c0 = cpu_ticks(p.pid)
    append_burst(3, BURST)
    sys_.k = 2 + BURST
    got = wait_until(sys_.delivered(2 + BURST))
    burst = None if got is None else (cpu_ticks(p.pid) - c0) / HZ
    if prof:
        prof.send_signal(signal.SIGINT)
        prof.wait(60)
    exact = sys_.exact()
    note = stop(p)
    return (sys_.name, threads, rss, idle, fmt_s(start), fmt_s(delivery), fmt_s(burst), exact + note, writer)

systems = {"logdaemon": Daemon(), "tail": Tail(), "imfile": Imfile()}
rows = [measure(systems[s]) for s in ["logdaemon", "tail", "imfile"] if s in ONLY]
print(f"\n{N} line logs, {L} file listener(s) each for logdaemon (fsync = false); work dir {W} "
      f"(idle CPU measured {SETTLE:.0f} s after start-up, over {IDLE:.0f} s; each phase capped at {TIMEOUT:.0f} s)\n")
burst_kib = sum(len(line(N - 1, k)) for k in range(3, 3 + BURST)) / 1024
print("| follower | threads | RSS | CPU while idle | start until every listener has its first line "
      f"| one line appended to every log, delivered in | CPU time to deliver {BURST} lines ({burst_kib:.0f} KiB) appended to every log | exact |")
print("|---|---|---|---|---|---|---|---|")
for name, threads, rss, idle, start, delivery, burst, exact, writer in rows:
    print(f"| {name} | {threads} | {rss:.1f} MiB | {idle:.2f} % | {start} | {delivery} | {burst} | {exact} |")
print(f"\n(the delivery time includes the appends themselves: {rows[0][8]:.3f} s to write one line to each of the {N} logs)" if rows else "")

def one_more_copy():
    """CPU time (user + system) of this process to write the burst once
    more: each log's burst bytes appended to a file of its own that holds
    its first line, and one 4 KiB record slot rewritten per log, which is
    what one more `file` listener must write at least."""
    import resource, shutil
    d = os.path.join(W, "one-more-copy")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    slot = b"r" * 4096
    fds = []
    for i in range(N):
        out = os.open(os.path.join(d, "%d.out" % i), os.O_RDWR | os.O_CREAT, 0o644)
        rec = os.open(os.path.join(d, "%d.rec" % i), os.O_RDWR | os.O_CREAT, 0o600)
        os.write(out, line(i, 1))
        os.pwrite(rec, slot * 2, 0)
        fds.append((i, out, rec))
    data = {i: b"".join(line(i, k) for k in range(3, 3 + BURST)) for i, _, _ in fds}
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for i, out, rec in fds:
        os.pwrite(out, data[i], len(line(i, 1)))
        os.pwrite(rec, slot, 4096)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    for _, out, rec in fds:
        os.close(out)
        os.close(rec)
    shutil.rmtree(d, ignore_errors=True)
    return r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime

if "logdaemon" in ONLY and L >= 2:
    print(f"(writing the burst once more, each log's bytes to one more file and a 4 KiB record per log, "
          f"as one more file listener must at least, takes {one_more_copy():.3f} s of CPU by itself)")
EOF
