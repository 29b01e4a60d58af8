#!/usr/bin/env bash
# The concurrency soak: `identity serve` (release) on DynamoDB Local, many clients at once
# for a bounded time over loopback, each one a person going through SSO login, the code
# flow with refresh and revocation, the JWT bearer grant, add-on SSO and the device flow,
# racing every single-use value it holds; then an audit of the store (bench/src/soak.rs).
#
#   bench/soak.sh        # SOAK_SECONDS (default 120) and SOAK_CLIENTS (default 64)
#
# Writes bench/results/soak-<date>.md and bench/results/soak-latest.json; fails when the
# audit finds a double spend or an inconsistency. DynamoDB Local runs as the test command
# starts it (tests/run.sh --services: loopback only, stopped at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=../scripts/build-deps.sh
. scripts/build-deps.sh
# shellcheck disable=SC2086 # a list of words
apt_install_missing $BUILD_APT_PACKAGES >&2
echo "==> build (release profile)" >&2
cargo build --release --quiet -p identity-bench -p identity-cli
BIN=$ROOT/target/release
DATE=$(date -u +%Y-%m-%d)
mkdir -p "$ROOT/bench/results"
./tests/run.sh --services "$BIN/identity-bench" soak "$BIN/identity" \
    "${SOAK_SECONDS:-120}" "${SOAK_CLIENTS:-64}" \
    "$ROOT/bench/results/soak-$DATE.md" "$ROOT/bench/results/soak-latest.json"
