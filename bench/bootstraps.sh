#!/usr/bin/env bash
# For each Lambda bootstrap: its size, zipped size, and the time from process start to the
# first answered invocation against the local Runtime API emulator, with DynamoDB Local and
# moto behind it (median of RUNS, default 10; tests/examples/bootstrap_startup.rs).
#
#   bench/bootstraps.sh            runs `sam build` with the shipped release profile first
#   RUNS=20 bench/bootstraps.sh
#
# The services and tools come from tests/run.sh (--with-services); the bootstraps are the
# release builds of `sam build` with the workspace's release profile (fat LTO, one codegen
# unit), as `sam deploy` ships them, not the faster build the test command checks.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> sam build (the shipped release profile)"
./tests/run.sh --with-services sam build
exec ./tests/run.sh --with-services \
    env RUNS="${RUNS:-10}" cargo run --quiet -p identity-tests --example bootstrap_startup
