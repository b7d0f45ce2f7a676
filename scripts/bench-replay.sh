#!/usr/bin/env bash
# Replay benchmark: the last hour of a plain line-log history of SIZE
# (rotated files plus the live one), with `logdaemon replay --since`
# against `grep` of the same hour over all the files, in the same run.
#
# Reports, for each, the time to the first byte of output and the total
# time (warm page cache: each command runs once before it is measured),
# and checks that both printed the same bytes.
#
# Usage: scripts/bench-replay.sh [SIZE_MIB]   (default 1024; docs/replay.md's
# figure is for 10240)
# Work files go to $BENCH_DIR (default: a fresh directory under /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
REL=${CARGO_TARGET_DIR:-$root/target}/release
size_mib=${1:-1024}
files=${BENCH_FILES:-10}

cargo build --release -p logdaemon >/dev/null
bin=$REL/logdaemon

if [ -z "${BENCH_DIR:-}" ]; then
    BENCH_DIR=$(mktemp -d /tmp/logdaemon-bench-replay.XXXXXX)
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi
cd "$BENCH_DIR"

echo "writing ${size_mib} MiB of history in $files files to $BENCH_DIR ..." >&2
# Lines of about 100 bytes in Python logging's layout, 100 a second; the
# history ends at an hour boundary so that its last hour is one grep
# pattern. app.log.N is older for higher N (logrotate numbering).
python3 - "$size_mib" "$files" <<'PY'
import sys, time
size = int(sys.argv[1]) << 20
nfiles = int(sys.argv[2])
per_sec = 100
line_len = 100
total_lines = size // line_len
end = 1_800_000_000 - 1_800_000_000 % 3600
start = end - total_lines // per_sec
per_file = total_lines // nfiles + 1
names = [f"app.log.{n}" for n in range(nfiles - 1, 0, -1)] + ["app.log"]
t, n = start, 0
for name in names:
    with open(name, "wb", buffering=1 << 22) as f:
        written = 0
        while written < per_file and t < end:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
            chunk = []
            for ms in range(0, 1000, 1000 // per_sec):
                body = f"{stamp},{ms:03d} INFO worker-{n % 7} request {n} handled in {n % 997} ms"
                chunk.append(body.ljust(line_len - 1) + "\n")
                n += 1
            f.write("".join(chunk).encode())
            written += per_sec
            t += 1
print(time.strftime("%Y-%m-%d %H", time.gmtime(end - 3600)), file=open("last-hour", "w"))
PY
hour=$(cat last-hour)
since="${hour/ /T}:00:00Z"
cat > cfg.toml <<CFG
[[journal]]
name = "app"
path = "app.log"
format = "lines"
[journal.timestamp]
preset = "python"
zone = "UTC"
[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "out.raw"
CFG
ls -l app.log* >&2

# Runs a command twice (the first warms the page cache), then reports the
# seconds to the first byte and to the end of its output, and its digest.
measure() {
    python3 - "$@" <<'PY'
import hashlib, subprocess, sys, time
cmd = sys.argv[1:]
subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, shell=False)
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=0)
h = hashlib.sha256()
first = p.stdout.read(1)
t1 = time.monotonic()
h.update(first)
n = len(first)
while True:
    b = p.stdout.read(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
p.wait()
t2 = time.monotonic()
print(f"{t1 - t0:.4f} {t2 - t0:.4f} {n} {h.hexdigest()[:16]}")
PY
}

allfiles=$(ls app.log.* | sort -t. -k3 -rn; echo app.log)
read -r r_first r_total r_bytes r_sum < <(measure "$bin" replay --config cfg.toml --journal app --since "$since")
# shellcheck disable=SC2086
read -r g_first g_total g_bytes g_sum < <(measure grep -h "^$hour:" $allfiles)

echo
echo "last hour of ${size_mib} MiB ($files files), since $since"
printf '%-28s %14s %12s %12s %s\n' command first_byte_s total_s bytes sha256
printf '%-28s %14s %12s %12s %s\n' "logdaemon replay --since" "$r_first" "$r_total" "$r_bytes" "$r_sum"
printf '%-28s %14s %12s %12s %s\n' "grep ^HOUR: (all files)" "$g_first" "$g_total" "$g_bytes" "$g_sum"
python3 - "$r_first" "$r_total" "$g_first" "$g_total" <<'PY'
import sys
rf, rt, gf, gt = map(float, sys.argv[1:])
print(f"grep/replay: first byte {gf / rf:.1f}x, total {gt / rt:.1f}x")
PY
if [ "$r_sum" != "$g_sum" ]; then
    echo "OUTPUTS DIFFER: replay and grep printed different bytes" >&2
    exit 1
fi
