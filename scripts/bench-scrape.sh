#!/usr/bin/env bash
# The HTTP endpoint's cost on a catch-up: `run --once` of a p4 journal (the
# corpus repeated) into the raw `file` listener with the endpoint on and
# /metrics scraped every 100 ms, versus the same without the endpoint. The
# two run in alternating order in each round and the scraper runs
# throughout (it finds no endpoint in the runs without one). Prints the
# median wall time and the daemon's CPU time (user + system) summed over
# the rounds, which the machine's other load disturbs less. The other
# catch-up figures are scripts/bench.sh's.
#
# Usage: scripts/bench-scrape.sh [SIZE_MIB]   (default 1024; BENCH_ROUNDS, default 3)
# Work files go to $BENCH_DIR (default: a fresh directory under /dev/shm when
# it has room, else under /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
REL=${CARGO_TARGET_DIR:-$root/target}/release
size_mib=${1:-1024}
rounds=${BENCH_ROUNDS:-3}

cargo build --release -p logdaemon -p logdaemon-listener-file >/dev/null
bin=$REL/logdaemon

if [ -z "${BENCH_DIR:-}" ]; then
    avail=$(df -Pm /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')
    if [ -n "$avail" ] && [ "$avail" -gt $((size_mib * 3 + 512)) ]; then base=/dev/shm; else base=/tmp; fi
    BENCH_DIR=$(mktemp -d "$base/logdaemon-scrape.XXXXXX")
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi
cd "$BENCH_DIR"
mkdir -p p4root

echo "building a ${size_mib} MiB p4 journal from tests/data/p4 in $BENCH_DIR ..." >&2
python3 - "$size_mib" "$root"/tests/data/p4/*jnl.0 "$root"/tests/data/p4/*.seed <<'EOF'
import sys
data = b''.join(open(f, 'rb').read() for f in sys.argv[2:])
want = int(sys.argv[1]) << 20
with open('p4root/journal', 'wb') as f:
    n = 0
    while n < want:
        f.write(data)
        n += len(data)
EOF

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for name in plain scraped; do
    {
        echo "state_dir = \"$name.state\""
        [ "$name" = scraped ] && printf '[http]\nlisten = "127.0.0.1:%s"\n' "$port"
        cat <<EOF
[[journal]]
name = "p4"
path = "p4root/journal"
format = "p4"
[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "$name.out"
format = "raw"
fsync = false
EOF
    } > "$name.toml"
done

# Scrapes /metrics every 100 ms until killed; one byte in scrapes.n per answer.
python3 - "$port" <<'EOF' >/dev/null 2>&1 &
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/metrics"
while True:
    try:
        urllib.request.urlopen(url, timeout=5).read()
        open('scrapes.n', 'a').write('x')
    except OSError:
        pass
    time.sleep(0.1)
EOF
spid=$!
trap 'kill $spid 2>/dev/null; rm -rf "$BENCH_DIR"' EXIT

calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
sum() { printf '%s\n' "$@" | awk '{s += $1} END {printf "%.2f", s}'; }
# `run --once` of config NAME: "WALL CPU" seconds (CPU: user + system).
cputime() {
    rm -rf "$1.state" "$1.out"
    /usr/bin/time -f '%e %U %S' "$bin" run --config "$1.toml" --once 2>&1 >/dev/null | tail -1 | awk '{printf "%s %.2f\n", $1, $2 + $3}'
}

plain_w=(); plain_c=(); scraped_w=(); scraped_c=()
for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order="plain scraped"; else order="scraped plain"; fi
    for n in $order; do
        read -r w c < <(cputime "$n")
        cmp -s "$n.out" p4root/journal || { echo "MISMATCH: $n.out differs from the journal" >&2; exit 1; }
        rm -f "$n.out"
        eval "${n}_w+=($w); ${n}_c+=($c)"
    done
done

printf '\n%d MiB journal, %d rounds, work dir %s\n\n' "$size_mib" "$rounds" "$BENCH_DIR"
echo '| what | with /metrics scraped every 100 ms | no endpoint | ratio (no endpoint / scraped) |'
echo '|---|---|---|---|'
pw=$(median "${plain_w[@]}"); sw=$(median "${scraped_w[@]}")
printf '| catch-up, wall, median (%s scrapes answered) | %.2f s | %.2f s | %.3f |\n' \
    "$(stat -c %s scrapes.n 2>/dev/null || echo 0)" "$sw" "$pw" "$(calc "$pw / $sw")"
pc=$(sum "${plain_c[@]}"); sc=$(sum "${scraped_c[@]}")
printf '| the daemon'"'"'s CPU time, sum of %d rounds | %.2f s | %.2f s | %.3f |\n' "$rounds" "$sc" "$pc" "$(calc "$pc / $sc")"
