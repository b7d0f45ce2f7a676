#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the end-to-end suite against
# the real binary, real logrotate, a real sshd and a real SMTP server.
# Installs what the tests need when it is missing (scripts/deps.sh). Checks
# first that the code is rustfmt-formatted and clippy-clean (warnings fail).
set -euo pipefail
cd "$(dirname "$0")/.."

# House rules first, so that a failure shows fast.
cargo fmt --all --check

. scripts/deps.sh

cargo clippy --workspace --all-targets -- -D warnings

cargo build --workspace --all-targets
cargo test --workspace "$@"
