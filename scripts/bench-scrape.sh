#!/usr/bin/env bash
# The HTTP endpoint's cost on a catch-up (run with BENCH_SCRAPE=1), with
# the benchmarks of bench.sh as they stood when it was measured. bench.sh
# itself measures catch-up on small records too.
#
# End-to-end benchmarks of the daemon, each against a baseline run on the
# same machine in the same run (machines here are shared and noisy, so only
# ratios mean anything):
#
#   1. catch-up of a >= 1 GiB p4 journal with `run --once` into the raw
#      `file` listener, versus `cat journal > out`;
#   2. the same from a gzip predecessor, versus `zcat journal.1.gz > out`;
#   3. append-to-listener latency p50/p99 at 10,000 entries/s;
#   4. peak RSS (from the catch-up runs);
#   5. CPU while idle;
#   6. with BENCH_SCRAPE=1: catch-up 1. again with the HTTP endpoint on and
#      its /metrics scraped every 100 ms, versus 1. without it, the two in
#      alternating order in each round, the scraper running throughout (it
#      finds no endpoint in the runs without one): wall time, and the
#      daemon's CPU time (user + system) summed over the rounds, which the
#      machine's other load disturbs less.
#
# Usage: BENCH_SCRAPE=1 scripts/bench-scrape.sh [SIZE_MIB]   (default 1024)
# Work files go to $BENCH_DIR (default: a fresh directory under /dev/shm when
# it has room, else under /tmp), so disk writeback does not decide the result.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# Where cargo puts the release build (CARGO_TARGET_DIR is honoured).
REL=${CARGO_TARGET_DIR:-$root/target}/release
size_mib=${1:-1024}
rounds=${BENCH_ROUNDS:-3}
scrape=${BENCH_SCRAPE:-0}

cargo build --release --workspace >/dev/null
bin=$REL/logdaemon

if [ -z "${BENCH_DIR:-}" ]; then
    avail=$(df -Pm /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')
    if [ -n "$avail" ] && [ "$avail" -gt $((size_mib * 4 + 512)) ]; then base=/dev/shm; else base=/tmp; fi
    BENCH_DIR=$(mktemp -d "$base/logdaemon-bench.XXXXXX")
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi
cd "$BENCH_DIR"
mkdir -p p4root gzroot

echo "building a ${size_mib} MiB p4 journal from tests/data/p4 in $BENCH_DIR ..." >&2
cat "$root"/tests/data/p4/*jnl.0 "$root"/tests/data/p4/*.seed > corpus
python3 - "$size_mib" <<'EOF'
import sys
data = open('corpus', 'rb').read()
want = int(sys.argv[1]) << 20
with open('p4root/journal', 'wb') as f:
    n = 0
    while n < want:
        f.write(data)
        n += len(data)
EOF
bytes=$(stat -c %s p4root/journal)
gzip -1 -c p4root/journal > gzroot/journal.1.gz
: > gzroot/journal

config() { # NAME DIR FSYNC [START]
    cat > "$1.toml" <<EOF
state_dir = "$1.state"
[[journal]]
name = "p4"
path = "$2/journal"
format = "p4"
${4:+start = $4}
[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "$1.out"
format = "raw"
fsync = $3
EOF
}
config plain p4root false
config plainsync p4root true
config gz gzroot false 1
if [ "$scrape" = 1 ]; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    config scraped p4root false
    sed -i "1a [http]\nlisten = \"127.0.0.1:$port\"" scraped.toml
fi

# Seconds of wall time of a command, best effort precise.
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); calc "$t1 - $t0"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
daemon_once() { rm -rf "$1.state" "$1.out"; "$bin" run --config "$1.toml" --once; }
rss_kib() { rm -rf "$1.state" "$1.out"; /usr/bin/time -f %M "$bin" run --config "$1.toml" --once 2>&1 >/dev/null | tail -1; }

cat_t=(); run_t=(); sync_t=(); catsync_t=(); zcat_t=(); gz_t=()
plain_w=(); plain_c=(); scraped_w=(); scraped_c=()
# `run --once` of config NAME: "WALL CPU" seconds (CPU: user + system).
cputime() {
    rm -rf "$1.state" "$1.out"
    /usr/bin/time -f '%e %U %S' "$bin" run --config "$1.toml" --once 2>&1 >/dev/null | tail -1 | awk '{printf "%s %.2f\n", $1, $2 + $3}'
}
# Scrapes /metrics every 100 ms until killed; one byte in scrapes.n per answer.
scraper() {
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
}
if [ "$scrape" = 1 ]; then
    scraper
    prev=$(trap -p EXIT | sed "s/^trap -- '\(.*\)' EXIT$/\1/")
    trap "kill $spid 2>/dev/null; $prev" EXIT
fi
for _ in $(seq "$rounds"); do
    cat_t+=("$(secs sh -c 'cat p4root/journal > cat.out')"); rm -f cat.out
    run_t+=("$(secs daemon_once plain)")
    cmp -s plain.out p4root/journal || { echo "MISMATCH: plain.out differs from the journal" >&2; exit 1; }
    rm -f plain.out
    catsync_t+=("$(secs sh -c 'cat p4root/journal > cat.out && sync cat.out')"); rm -f cat.out
    sync_t+=("$(secs daemon_once plainsync)"); rm -f plainsync.out
    zcat_t+=("$(secs sh -c 'zcat gzroot/journal.1.gz > zcat.out')"); rm -f zcat.out
    gz_t+=("$(secs daemon_once gz)")
    cmp -s gz.out p4root/journal || { echo "MISMATCH: gz.out differs from the journal" >&2; exit 1; }
    rm -f gz.out
    if [ "$scrape" = 1 ]; then
        if [ $(( ${#plain_w[@]} % 2 )) = 0 ]; then order="plain scraped"; else order="scraped plain"; fi
        for n in $order; do
            read -r w c < <(cputime "$n")
            cmp -s "$n.out" p4root/journal || { echo "MISMATCH: $n.out differs from the journal" >&2; exit 1; }
            rm -f "$n.out"
            eval "${n}_w+=($w); ${n}_c+=($c)"
        done
    fi
done
[ "$scrape" = 1 ] && { kill "$spid"; wait "$spid" 2>/dev/null || true; }
m() { printf '%s\n' "$@" | median; }
mib=$(calc "$bytes / 1048576")
row() { # label baseline-label base-secs our-secs
    printf '| %s | %.2f s (%.0f MiB/s) | %s %.2f s (%.0f MiB/s) | %.2f |\n' "$1" "$4" "$(calc "$mib / $4")" "$2" "$3" "$(calc "$mib / $3")" "$(calc "$3 / $4")"
}
rss_plain=$(rss_kib plain); rm -rf plain.out
rss_gz=$(rss_kib gz); rm -rf gz.out

# Latency: a writer appends entries at 10,000/s, each carrying its send time;
# the test plugin records the receive time of each entry.
lat=""
plugin=$REL/liblogdaemon_test_plugin_testkit.so
if [ -f "$plugin" ]; then
    mkdir -p latroot && : > latroot/journal && rm -rf lat.state lat.jsonl
    cat > lat.toml <<EOF
state_dir = "lat.state"
[[journal]]
name = "p4"
path = "latroot/journal"
format = "p4"
quiet_after = "1s"
reconcile_every = "1s"
[[journal.listener]]
name = "rec"
plugin = "$plugin"
[journal.listener.config]
mode = "record"
path = "lat.jsonl"
EOF
    "$bin" run --config lat.toml 2>/dev/null & dpid=$!
    sleep 1
    python3 - <<'EOF'
import time, os
rate, seconds = 10000, 10
fd = os.open('latroot/journal', os.O_WRONLY | os.O_APPEND)
start = time.time_ns(); n = 0
while n < rate * seconds:
    due = start + n * 1_000_000_000 // rate
    now = time.time_ns()
    if now < due:
        time.sleep((due - now) / 1e9)
    os.write(fd, b'@pv@ 0 @db.bench@ %d %d @payload of the latency benchmark@ \n' % (n, time.time_ns()))
    n += 1
os.close(fd)
EOF
    sleep 2; kill -TERM "$dpid"; wait "$dpid" || true
    lat=$(python3 - <<'EOF'
import json
d = []
for line in open('lat.jsonl'):
    r = json.loads(line)
    if r.get('event') != 'entry':
        continue
    f = r['raw'].split(' ')
    d.append((r['t_ns'] - int(f[4])) / 1e6)
d.sort()
q = lambda p: d[min(len(d) - 1, int(p * len(d)))]
print(f"{len(d)} entries at 10,000/s: p50 {q(0.50):.2f} ms, p99 {q(0.99):.2f} ms, max {d[-1]:.2f} ms")
EOF
)
fi

# CPU while idle: a running daemon on a quiet journal for 10 s.
mkdir -p idleroot && printf '@pv@ 0 @db.x@ 1 \n' > idleroot/journal
sed -e 's#p4root/journal#idleroot/journal#' -e 's/plain\./idle./g' plain.toml > idle.toml
rm -rf idle.state idle.out
"$bin" run --config idle.toml 2>/dev/null & ipid=$!
sleep 2
t0=$(awk '{print $14 + $15}' "/proc/$ipid/stat")
sleep 10
t1=$(awk '{print $14 + $15}' "/proc/$ipid/stat")
kill -TERM "$ipid"; wait "$ipid" || true
hz=$(getconf CLK_TCK)
idle_cpu=$(calc "($t1 - $t0) * 100 / $hz / 10")

printf '\n%.0f MiB journal, median of %d rounds, work dir %s\n\n' "$mib" "$rounds" "$BENCH_DIR"
echo '| what | logdaemon | baseline | ratio (baseline time / ours; >1 is faster than the baseline) |'
echo '|---|---|---|---|'
row "catch-up, raw file listener, fsync off" "cat >" "$(m "${cat_t[@]}")" "$(m "${run_t[@]}")"
row "catch-up, raw file listener, fsync on" "cat > && sync" "$(m "${catsync_t[@]}")" "$(m "${sync_t[@]}")"
row "catch-up from journal.1.gz" "zcat >" "$(m "${zcat_t[@]}")" "$(m "${gz_t[@]}")"
if [ "$scrape" = 1 ]; then
    row "catch-up, /metrics scraped every 100 ms ($(stat -c %s scrapes.n 2>/dev/null || echo 0) scrapes answered), wall" "no endpoint:" "$(m "${plain_w[@]}")" "$(m "${scraped_w[@]}")"
    sum() { printf '%s\n' "$@" | awk '{s += $1} END {printf "%.2f", s}'; }
    printf '| the same, CPU time of the daemon, sum of %d rounds | %.2f s | no endpoint: %.2f s | %.3f |\n' "$rounds" "$(sum "${scraped_c[@]}")" "$(sum "${plain_c[@]}")" "$(calc "$(sum "${plain_c[@]}") / $(sum "${scraped_c[@]}")")"
fi
printf '| peak RSS | %d KiB (plain), %d KiB (gzip) | | |\n' "$rss_plain" "$rss_gz"
printf '| append-to-listener latency | %s | | |\n' "${lat:-testkit plugin not built}"
printf '| CPU while idle | %.3f %% of one core over 10 s | | |\n' "$idle_cpu"
