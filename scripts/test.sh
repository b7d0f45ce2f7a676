#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the end-to-end suite against
# the real binary, real logrotate, a real sshd and a real SMTP server.
# Installs what the tests need when it is missing (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/deps.sh

cargo build --workspace --all-targets
cargo test --workspace "$@"
