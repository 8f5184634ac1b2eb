#!/usr/bin/env bash
# The whole test suite, as the README gives it and as CI runs it. It
# installs the Python packages that some integration tests drive Almanac
# with, and runs every workspace test in release mode: unit, real-process
# integration and simulation tests. Last come the simulation tests that
# plant protocol bugs and check that the explorer catches each one.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ci-python-deps.sh

echo "== cargo test --workspace --release"
cargo test --workspace --release

echo "== cargo test -p almanac-sim --release --features planted-bugs"
cargo test -p almanac-sim --release --features planted-bugs
