#!/usr/bin/env bash
# Throughput of the nats listener into a local JetStream stream (file
# storage) against a plain async-nats publisher, in the same run:
#
#   1. `logdaemon run --once` publishes a line journal of ENTRIES lines
#      (default 200000, about 120 bytes each) with the nats listener,
#      exactly once (the default: every message guarded, see docs/nats.md,
#      "How exactly once works");
#   2. the example `plain-publisher` (none of the listener's code) sends the
#      same messages with the same headers and checks, the same number in
#      flight (WINDOW, default 256) and acknowledgements taken in order;
#   3. and 4. the same two without the checks: the listener with
#      `exactly_once = false` (at least once) and the plain publisher
#      without the expected-sequence headers.
#
# Each run writes into its own new stream on one nats-server -js started
# here on a free loopback port. Prints entries/s, MB/s and the ratio of the
# listener to the plain publisher (target >= 0.8), and the CPU seconds the
# client side used (the daemon, or the plain publisher; a steadier figure
# than wall time on a loaded machine). Needs nats-server and nats-py (to
# count the messages); builds the release binaries.
#
# Usage: scripts/bench-nats.sh [ENTRIES] [WINDOW]
set -euo pipefail

ENTRIES=${1:-200000}
WINDOW=${2:-256}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REL=${CARGO_TARGET_DIR:-$ROOT/target}/release
cd "$ROOT"
# One command, so that both builds share one feature resolution.
cargo build --release -q -p logdaemon -p logdaemon-listener-nats --lib --bins --example plain-publisher
BIN="$REL/logdaemon"
PLAIN="$REL/examples/plain-publisher"

W=$(mktemp -d /tmp/bench-nats.XXXXXX)
NATS_PID=
cleanup() {
    if [ -n "$NATS_PID" ]; then kill "$NATS_PID" 2>/dev/null || true; wait "$NATS_PID" 2>/dev/null || true; fi
    rm -rf "$W"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -js -a 127.0.0.1 -p "$PORT" -sd "$W/store" >"$W/nats.log" 2>&1 &
NATS_PID=$!
URL="nats://127.0.0.1:$PORT"
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

mkdir -p "$W/logs"
python3 - "$W/logs/app.log" "$ENTRIES" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(f"2026-12-07T05:00:00.{i % 1000000:06d}Z host=db1 pid=4242 level=info msg=\"request {i} served\" user=u{i % 97} bytes={i * 7919 % 100000}\n")
PY
BYTES=$(stat -c %s "$W/logs/app.log")

listener() { # MODE EXACTLY_ONCE
    local d="$W/l-$1"
    mkdir -p "$d"
    cat >"$d/cfg.toml" <<CFG
state_dir = "state"
[[journal]]
name = "app"
path = "$W/logs/app.log"
format = "lines"
start = "beginning"
[[journal.listener]]
name = "fleet"
plugin = "nats"
[journal.listener.config]
servers = ["$URL"]
subject = "bench.listener.$1"
stream = "L_$1"
create_stream = true
host = "bench"
max_in_flight = $WINDOW
exactly_once = $2
CFG
    (cd "$d" && LOGDAEMON_LOG=warn timed "$BIN" run --config cfg.toml --once)
}

plain() { # MODE checked|plain
    timed "$PLAIN" "$URL" "P_$1" "bench.plain.$1" "$W/logs/app.log" "$WINDOW" "$2"
}

# Runs a command; prints its wall-clock seconds and its CPU seconds (user +
# system, the client side only: nats-server is not counted).
timed() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
wall = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.3f} {r.ru_utime + r.ru_stime:.3f}")
PY
}

check() { # STREAM: it must hold every entry
    local n
    n=$(python3 tests/data/nats/js.py count "$URL" "$1")
    [ "$n" = "$ENTRIES" ] || { echo "stream $1 holds $n messages, not $ENTRIES" >&2; exit 1; }
}

row() { # NAME "WALL CPU" "BASE_WALL BASE_CPU"
    python3 -c "
n, b = $ENTRIES, $BYTES
(s, cpu), (base, bcpu) = [float(x) for x in '$2'.split()], [float(x) for x in '$3'.split()]
print(f'| {\"$1\":<44} | {n / s:>10,.0f} | {b / s / 1e6:>7.1f} | {base / s:>5.2f} | {cpu:>6.2f} | {n / cpu:>10,.0f} |')"
}

echo "entries: $ENTRIES, $BYTES bytes, window $WINDOW, nats-server $(nats-server --version | awk '{print $2}'), $(nproc) CPUs"
L_EO=$(listener eo true); check L_eo
P_EO=$(plain eo checked); check P_eo
L_ALO=$(listener alo false); check L_alo
P_ALO=$(plain alo plain); check P_alo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| run | entries/s | MB/s | vs plain | client CPU s | entries per CPU s |"
echo "|---|---:|---:|---:|---:|---:|"
row "plain async-nats, checked (exactly once)" "$P_EO" "$P_EO"
row "nats listener, exactly once" "$L_EO" "$P_EO"
row "plain async-nats, no checks" "$P_ALO" "$P_ALO"
row "nats listener, exactly_once = false" "$L_ALO" "$P_ALO"
