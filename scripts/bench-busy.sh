#!/usr/bin/env bash
# One busy log among many idle ones: one daemon following N line logs (one
# `file` listener each, `fsync = false`, default settings), one of which is
# written 100 lines a second for S seconds while the others stay idle.
# Prints the CPU time each of the daemon's threads used over those seconds,
# and that of `tail -F` following the same files in the same run (the
# baseline: what following N files costs while one of them is written).
# What the daemon does for the idle logs while one moves (saving the
# checkpoint, looking over its workers, writing its status) is what grows
# with N here; the work itself does not.
#
# Usage: scripts/bench-busy.sh N [S]       (S defaults to 15)
# Environment: BENCH_DIR (work directory; default a fresh one under /tmp).
# A benchmark, not a test: figures are only meaningful against the
# baseline of the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
REL=${CARGO_TARGET_DIR:-$root/target}/release
n=${1:?usage: scripts/bench-busy.sh N [S]}
secs=${2:-15}

cargo build --release -p logdaemon -p logdaemon-listener-file >/dev/null
if [ -z "${BENCH_DIR:-}" ]; then
    BENCH_DIR=$(mktemp -d /tmp/logdaemon-busy.XXXXXX)
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

python3 - "$REL/logdaemon" "$BENCH_DIR" "$n" "$secs" <<'EOF'
import os, subprocess, sys, time

BIN, W, N, S = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
HZ = os.sysconf("SC_CLK_TCK")
logs = [os.path.join(W, "logs", "app%06d.log" % i) for i in range(N)]
outs = [os.path.join(W, "out", "app%06d.out" % i) for i in range(N)]
for d in ("logs", "out", "state"):
    os.makedirs(os.path.join(W, d), exist_ok=True)
with open(os.path.join(W, "busy.toml"), "w") as f:
    f.write('state_dir = "%s"\n' % os.path.join(W, "state"))
    for i in range(N):
        with open(logs[i], "wb") as log:
            log.write(b"first\n")
        f.write('[[journal]]\nname = "app%06d"\npath = "%s"\nformat = "lines"\n' % (i, logs[i]))
        f.write('[[journal.listener]]\nname = "copy"\nplugin = "file"\n[journal.listener.config]\n')
        f.write('path = "%s"\nformat = "raw"\nfsync = false\n' % outs[i])

def wait_for(cond, what, limit=300):
    deadline = time.time() + limit
    while not cond():
        if time.time() > deadline:
            sys.exit("timeout waiting for " + what)
        time.sleep(0.1)

def size(p):
    try:
        return os.path.getsize(p)
    except FileNotFoundError:
        return 0

def cpu_ms(pid):
    """CPU time (user + system) of each thread of `pid`, summed by thread name."""
    by = {}
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            st = open("/proc/%d/task/%s/stat" % (pid, t)).read()
        except FileNotFoundError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        by[name] = by.get(name, 0) + (int(f[11]) + int(f[12])) * 1000 // HZ
    return by

def busy(pid, k0):
    """Writes 100 lines a second to the first log for S seconds; the CPU
    `pid`'s threads used meanwhile, and the number of lines."""
    before = cpu_ms(pid)
    start, k = time.time(), k0
    with open(logs[0], "ab", buffering=0) as log:
        while time.time() - start < S:
            log.write(b"busy line %d\n" % k)
            k += 1
            time.sleep(max(0.0, start + (k - k0) / 100 - time.time()))
    after = cpu_ms(pid)
    return {t: after.get(t, 0) - before.get(t, 0) for t in after}, k - k0

daemon = subprocess.Popen([BIN, "run", "--config", os.path.join(W, "busy.toml")],
                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(W, "daemon.log"), "w"))
wait_for(lambda: all(size(o) == 6 for o in outs), "the daemon's first lines")
time.sleep(3)
threads, lines = busy(daemon.pid, 0)
wait_for(lambda: size(outs[0]) == size(logs[0]), "the busy log's last line")
daemon.terminate()
daemon.wait()
exact = open(outs[0], "rb").read() == open(logs[0], "rb").read()

tail = subprocess.Popen(["tail", "-q", "-n", "0", "-F"] + logs, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(3)
tail_cpu, _ = busy(tail.pid, lines)
tail.terminate()
tail.wait()

print("%d line logs, one written 100 lines a second for %.0f s (%d lines); CPU time over those seconds" % (N, S, lines))
print()
print("| follower | CPU | share of one core | by thread |")
print("|---|---|---|---|")
total = sum(threads.values())
detail = ", ".join("%s %d ms" % (t, v) for t, v in sorted(threads.items(), key=lambda x: -x[1]) if v)
print("| logdaemon | %d ms | %.1f %% | %s |" % (total, total / S / 10, detail))
t = sum(tail_cpu.values())
print("| `tail -F` | %d ms | %.1f %% | |" % (t, t / S / 10))
print()
print("busy log delivered exactly: %s" % ("yes" if exact else "NO"))
EOF
