#!/usr/bin/env bash
# Forwarding throughput of the syslog listener against rsyslog's own file
# forwarding, in the same run, on this machine, into the same receiver:
#
#   1. `logdaemon run --once` with `plugin = "syslog"`, target relp://;
#   2. the same with target tcp:// (RFC 6587 octet counting);
#   3. a second rsyslogd reading the same file with `imfile` and forwarding
#      it with `omrelp` (rsyslog's own answer to "forward this log file").
#
# The receiver is one rsyslogd (imrelp + imtcp, default in-memory main
# queue) that writes two bytes per message it gets, so arrival is counted
# by the size of its output. Each run is timed from its start until the
# receiver has every line, and the table prints entries per second and
# the ratio to imfile -> omrelp (target >= 3 for RELP).
# Needs rsyslog and rsyslog-relp; builds the release binaries.
#
# Usage: scripts/bench-syslog.sh [LINES]   (default 500000)
set -euo pipefail

LINES=${1:-500000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REL=${CARGO_TARGET_DIR:-$ROOT/target}/release
cd "$ROOT"
cargo build --release -q -p logdaemon -p logdaemon-listener-syslog
BIN="$REL/logdaemon"

W=$(mktemp -d /tmp/bench-syslog.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RELP_PORT=$(free_port)
TCP_PORT=$(free_port)

# --- the log: application lines of 60 to 200 bytes with levels -------------
python3 - "$W/app.log" "$LINES" <<'EOF'
import sys
levels = ["INFO", "INFO", "INFO", "DEBUG", "WARNING", "ERROR"]
words = "order payment user session cache request queue worker retry timeout".split()
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        extra = " ".join(words[(i + k) % len(words)] for k in range(i % 17))
        f.write("2026-12-07 05:%02d:%02d,%03d %s [worker-%d] request %d handled %s\n"
                % (i // 60000 % 60, i // 1000 % 60, i % 1000, levels[i % 6], i % 8, i, extra))
EOF
BYTES=$(stat -c %s "$W/app.log")

# --- the receiver ----------------------------------------------------------
mkdir -p "$W/recv"
cat > "$W/recv/rsyslog.conf" <<EOF
global(workDirectory="$W/recv" maxMessageSize="64k")
template(name="count" type="string" string="x\n")
module(load="imrelp")
module(load="imtcp")
ruleset(name="in") { action(type="omfile" file="$W/recv/out" template="count") }
input(type="imrelp" address="127.0.0.1" port="$RELP_PORT" ruleset="in")
input(type="imtcp" address="127.0.0.1" port="$TCP_PORT" ruleset="in")
EOF
/usr/sbin/rsyslogd -n -f "$W/recv/rsyslog.conf" -i "$W/recv/pid" 2>"$W/recv/log" &
PIDS+=($!)
for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$TCP_PORT") 2>/dev/null; then break; fi
    sleep 0.05
done

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
# Waits until the receiver's output holds $1 messages; prints the time then.
arrived() {
    local want=$(( $1 * 2 ))
    for _ in $(seq 60000); do
        [ "$(stat -c %s "$W/recv/out" 2>/dev/null || echo 0)" -ge "$want" ] && { now; return; }
        sleep 0.01
    done
    echo "timeout: the receiver has $(( $(stat -c %s "$W/recv/out") / 2 )) of $1 messages" >&2
    exit 1
}

declare -A RATE SECS
run_logdaemon() { # name target
    local d="$W/ld-$1"
    mkdir -p "$d"
    cat > "$d/cfg.toml" <<EOF
state_dir = "state"
[[journal]]
name = "app"
path = "$W/app.log"
format = "lines"
start = "beginning"
[[journal.listener]]
name = "fwd"
plugin = "syslog"
[journal.listener.config]
target = "$2"
level = '^\S+ \S+ (?P<level>[A-Z]+) '
timestamp = '^(?P<timestamp>\S+ \S+)'
EOF
    local before
    before=$(( $(stat -c %s "$W/recv/out" 2>/dev/null || echo 0) / 2 ))
    local t0 t1
    t0=$(now)
    (cd "$d" && "$BIN" run --config cfg.toml --once 2>"$d/log")
    t1=$(arrived $(( before + LINES )))
    SECS[$1]=$(calc "$t1 - $t0")
    RATE[$1]=$(calc "$LINES / ${SECS[$1]}")
}

run_imfile() {
    local d="$W/imfile"
    mkdir -p "$d"
    cat > "$d/rsyslog.conf" <<EOF
global(workDirectory="$d" maxMessageSize="64k")
module(load="imfile")
module(load="omrelp")
ruleset(name="fwd") { action(type="omrelp" target="127.0.0.1" port="$RELP_PORT") }
input(type="imfile" file="$W/app.log" tag="app" ruleset="fwd")
EOF
    local before
    before=$(( $(stat -c %s "$W/recv/out" 2>/dev/null || echo 0) / 2 ))
    local t0 t1
    t0=$(now)
    /usr/sbin/rsyslogd -n -f "$d/rsyslog.conf" -i "$d/pid" 2>"$d/log" &
    local pid=$!
    PIDS+=("$pid")
    t1=$(arrived $(( before + LINES )))
    kill "$pid"
    SECS[imfile]=$(calc "$t1 - $t0")
    RATE[imfile]=$(calc "$LINES / ${SECS[imfile]}")
}

run_imfile
run_logdaemon relp "relp://127.0.0.1:$RELP_PORT"
run_logdaemon tcp "tcp://127.0.0.1:$TCP_PORT"

printf '%d lines, %d bytes, %s CPUs\n' "$LINES" "$BYTES" "$(nproc)"
printf '%-34s %10s %14s %8s\n' "sender" "seconds" "entries/s" "ratio"
for k in imfile relp tcp; do
    case $k in
        imfile) name="rsyslog imfile -> omrelp" ;;
        relp) name="logdaemon syslog, relp://" ;;
        tcp) name="logdaemon syslog, tcp://" ;;
    esac
    printf '%-34s %10.2f %14.0f %8.2f\n' "$name" "${SECS[$k]}" "${RATE[$k]}" "$(calc "${RATE[$k]} / ${RATE[imfile]}")"
done
