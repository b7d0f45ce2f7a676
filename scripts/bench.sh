#!/usr/bin/env bash
# End-to-end benchmarks of the daemon, each against a baseline run on the
# same machine in the same run (machines here are shared and noisy, so only
# ratios mean anything):
#
#   1. catch-up of a >= 1 GiB p4 journal with `run --once` into the raw
#      `file` listener, versus `cat journal > out` (fsync = false) and
#      `cat journal > out && sync out` (the default, fsync = true), on two
#      journals: the repeated corpus and one of small records (the corpus
#      files with the smallest average record, repeated); `fsync = false`
#      is also set against `cat > && sync`, the baseline of its durability
#      (the listener syncs once, at the end of `run --once`);
#   2. the same from a gzip predecessor, versus `zcat journal.1.gz > out`;
#   3. append-to-listener latency p50/p99 at 10,000 entries/s;
#   4. peak RSS (from the catch-up runs);
#   5. CPU while idle.
#
# Usage: scripts/bench.sh [SIZE_MIB]   (default 1024)
# Work files go to $BENCH_DIR (default: a fresh directory under /dev/shm when
# it has room, else under /tmp), so disk writeback does not decide the result;
# point it at the disk's file system to measure that
# (BENCH_DIR=$(mktemp -d /var/tmp/bench.XXXXXX) scripts/bench.sh).
# BENCH_JOURNALS picks the journals (default "corpus small"); BENCH_ROUNDS
# the number of rounds whose median is printed (default 5: on a shared
# machine single runs of the same build differ by 20 %).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# Where cargo puts the release build (CARGO_TARGET_DIR is honoured).
REL=${CARGO_TARGET_DIR:-$root/target}/release
size_mib=${1:-1024}
rounds=${BENCH_ROUNDS:-5}

cargo build --release --workspace >/dev/null
bin=$REL/logdaemon

if [ -z "${BENCH_DIR:-}" ]; then
    avail=$(df -Pm /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')
    if [ -n "$avail" ] && [ "$avail" -gt $((size_mib * 4 + 512)) ]; then base=/dev/shm; else base=/tmp; fi
    BENCH_DIR=$(mktemp -d "$base/logdaemon-bench.XXXXXX")
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi
cd "$BENCH_DIR"
journals=${BENCH_JOURNALS:-corpus small}
mkdir -p p4root gzroot smallroot

echo "building ${size_mib} MiB p4 journals from tests/data/p4 in $BENCH_DIR ..." >&2
# p4root/journal: the whole corpus repeated; smallroot/journal: the five
# corpus files with the smallest average record, repeated. Records are
# counted by their start (`@xx@ ` at the start of a line), close enough to
# print the average record size.
python3 - "$size_mib" "$root"/tests/data/p4/*jnl.0 "$root"/tests/data/p4/*.seed <<'EOF'
import re, sys
want = int(sys.argv[1]) << 20
records = lambda b: len(re.findall(rb'(?m)^@[a-z]{2}@ ', b))
files = [open(f, 'rb').read() for f in sys.argv[2:]]
small = sorted((b for b in files if records(b)), key=lambda b: len(b) / records(b))[:5]
for path, data in [('p4root/journal', b''.join(files)), ('smallroot/journal', b''.join(small))]:
    with open(path, 'wb') as f:
        n = 0
        while n < want:
            f.write(data)
            n += len(data)
    with open(path + '.avg', 'w') as f:
        f.write('%.0f' % (len(data) / records(data)))
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
config small smallroot false
config smallsync smallroot true
config gz gzroot false 1

# Seconds of wall time of a command, best effort precise.
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); calc "$t1 - $t0"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
daemon_once() { rm -rf "$1.state" "$1.out"; "$bin" run --config "$1.toml" --once; }
rss_kib() { rm -rf "$1.state" "$1.out"; /usr/bin/time -f %M "$bin" run --config "$1.toml" --once 2>&1 >/dev/null | tail -1; }

# One round of the raw catch-ups from DIR/journal: fsync off against
# `cat >`, fsync on against `cat > && sync`; times appended to the arrays
# VAR_cat_t, VAR_run_t, VAR_catsync_t and VAR_sync_t.
catchup_round() { # VAR DIR CONFIG
    local -n c=$1_cat_t r=$1_run_t cs=$1_catsync_t s=$1_sync_t
    c+=("$(secs sh -c "cat $2/journal > cat.out")"); rm -f cat.out
    r+=("$(secs daemon_once "$3")")
    cmp -s "$3.out" "$2/journal" || { echo "MISMATCH: $3.out differs from $2/journal" >&2; exit 1; }
    rm -f "$3.out"
    cs+=("$(secs sh -c "cat $2/journal > cat.out && sync cat.out")"); rm -f cat.out
    s+=("$(secs daemon_once "${3}sync")")
    cmp -s "${3}sync.out" "$2/journal" || { echo "MISMATCH: ${3}sync.out differs from $2/journal" >&2; exit 1; }
    rm -f "${3}sync.out"
}
corpus_cat_t=(); corpus_run_t=(); corpus_catsync_t=(); corpus_sync_t=()
small_cat_t=(); small_run_t=(); small_catsync_t=(); small_sync_t=()
zcat_t=(); gz_t=()
for _ in $(seq "$rounds"); do
    for j in $journals; do
        case $j in
            corpus) catchup_round corpus p4root plain ;;
            small) catchup_round small smallroot small ;;
        esac
    done
    zcat_t+=("$(secs sh -c 'zcat gzroot/journal.1.gz > zcat.out')"); rm -f zcat.out
    gz_t+=("$(secs daemon_once gz)")
    cmp -s gz.out p4root/journal || { echo "MISMATCH: gz.out differs from the journal" >&2; exit 1; }
    rm -f gz.out
done
m() { printf '%s\n' "$@" | median; }
mib=$(calc "$bytes / 1048576")
row() { # label average-record baseline-label base-secs our-secs
    printf '| %s | %s | %.2f s (%.0f MiB/s) | %s %.2f s (%.0f MiB/s) | %.2f |\n' "$1" "$2" "$5" "$(calc "$mib / $5")" "$3" "$4" "$(calc "$mib / $4")" "$(calc "$4 / $5")"
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

printf '\n%.0f MiB journals, median of %d rounds, work dir %s (%s)\n\n' "$mib" "$rounds" "$BENCH_DIR" "$(df -PT . | awk 'NR == 2 {print $2}')"
echo '| what | average record | logdaemon | baseline | ratio (baseline time / ours; >1 is faster than the baseline) |'
echo '|---|---|---|---|---|'
for j in $journals; do
    case $j in corpus) dir=p4root ;; small) dir=smallroot ;; esac
    avg="$(cat $dir/journal.avg) B"
    declare -n c=${j}_cat_t r=${j}_run_t cs=${j}_catsync_t s=${j}_sync_t
    row "catch-up ($j), raw file listener, fsync off" "$avg" "cat >" "$(m "${c[@]}")" "$(m "${r[@]}")"
    row "catch-up ($j), raw file listener, fsync on" "$avg" "cat > && sync" "$(m "${cs[@]}")" "$(m "${s[@]}")"
    # fsync = false still syncs once, at the end of `run --once`: the
    # baseline of the same durability is the synced `cat`.
    row "catch-up ($j), raw file listener, fsync off, against the baseline of its durability (synced once at the end)" "$avg" "cat > && sync" "$(m "${cs[@]}")" "$(m "${r[@]}")"
    unset -n c r cs s
done
row "catch-up from journal.1.gz" "$(cat p4root/journal.avg) B" "zcat >" "$(m "${zcat_t[@]}")" "$(m "${gz_t[@]}")"
printf '| peak RSS | | %d KiB (plain), %d KiB (gzip) | | |\n' "$rss_plain" "$rss_gz"
printf '| append-to-listener latency | | %s | | |\n' "${lat:-testkit plugin not built}"
printf '| CPU while idle | | %.3f %% of one core over 10 s | | |\n' "$idle_cpu"
