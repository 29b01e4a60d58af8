#!/usr/bin/env bash
# For each Lambda bootstrap: its size, zipped size, and the time from process start to the
# first answered invocation against the local Runtime API emulator, with DynamoDB Local and
# moto behind it (median of RUNS, default 10; tests/examples/bootstrap_startup.rs).
#
#   bench/bootstraps.sh            uses .aws-sam/build (runs sam build when it is missing)
#   RUNS=20 bench/bootstraps.sh
#
# The services and tools come from tests/run.sh (--with-services); the bootstraps are the
# release builds of `sam build`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls .aws-sam/build/*/bootstrap >/dev/null 2>&1; then
    echo "==> no bootstraps in .aws-sam/build: sam build"
    ./tests/run.sh --with-services sam build
fi
exec ./tests/run.sh --with-services \
    env RUNS="${RUNS:-10}" cargo run --quiet -p identity-tests --example bootstrap_startup
