#!/usr/bin/env bash
# The rotation-torture suite in one command: runs every scenario against the
# real daemon binary (tests/e2e/torture*) plus the simulated power-loss test
# of the checkpoint, and prints the table published in docs/proof.md
# (written, delivered, duplicated, reported lost per scenario).
#
#   scripts/torture.sh           bounded mode (what CI runs, a few minutes)
#   scripts/torture.sh --long    release-check mode: more records, more
#                                rotations, longer delays
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--long" ]; then
    export LOGDAEMON_TORTURE_LONG=1
    shift
fi

. scripts/deps.sh

report=$(mktemp)
trap 'rm -f "$report"' EXIT
export LOGDAEMON_TORTURE_REPORT="$report"

cargo build --workspace --all-targets
status=0
cargo test -p logdaemon-tests --test e2e torture:: "$@" || status=$?
cargo test -p logdaemon-state "$@" || status=$?

echo
echo "| # | scenario | written | delivered | duplicated | reported lost | notes |"
echo "|---|---|---:|---:|---:|---:|---|"
sort -t'|' -k1,1V "$report" | awk -F'|' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }'
if [ $status -ne 0 ]; then
    echo
    echo "torture suite FAILED (see the test output above)"
fi
exit $status
