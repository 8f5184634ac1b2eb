#!/usr/bin/env bash
# The whole test suite, as the README gives it and as CI runs it: installs
# the Python packages the integration tests drive Almanac with, runs every
# workspace test in release mode (unit, real-process integration and
# simulation tests), then the simulation tests that plant protocol bugs and
# check that the explorer catches each one.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ci-python-deps.sh

echo "== cargo test --workspace --release"
cargo test --workspace --release

echo "== cargo test -p almanac-sim --release --features planted-bugs"
cargo test -p almanac-sim --release --features planted-bugs
