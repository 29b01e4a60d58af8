#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for a bounded time each, from the seeds in
# fuzz/seeds/TARGET plus the corpus it grew before (target/fuzz-corpus/TARGET). A crash fails
# the run; libFuzzer writes the input to fuzz/artifacts/TARGET/, to turn into a regression test.
#
#   scripts/fuzz.sh [SECONDS]      (tests/run.sh runs it with 20; default 20)
#   FUZZ_BUILD=release scripts/fuzz.sh 3600    an optimised build, for long runs
#
# Needs the nightly toolchain (libFuzzer's sanitizer flags) and cargo-fuzz, which it installs
# into target/cargo-fuzz/ when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH="${1:-20}"
CARGO_FUZZ_VERSION="0.13.2"
TOOLS="$ROOT/target/cargo-fuzz-$CARGO_FUZZ_VERSION"
cd "$ROOT"

rustup toolchain list | grep -q '^nightly' ||
    { echo "fuzz.sh: no nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
if [[ ! -x "$TOOLS/bin/cargo-fuzz" ]]; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --quiet --locked "cargo-fuzz@$CARGO_FUZZ_VERSION" --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH"
profile=(--dev)
[[ "${FUZZ_BUILD:-dev}" == release ]] && profile=()

t0=$(date +%s)
cargo +nightly fuzz build ${profile[@]+"${profile[@]}"}
echo "fuzz.sh: targets built in $(($(date +%s) - t0))s"
failed=0
for target in $(cargo +nightly fuzz list); do
    corpus="target/fuzz-corpus/$target"
    mkdir -p "$corpus"
    log="target/fuzz-$target.log"
    if cargo +nightly fuzz run ${profile[@]+"${profile[@]}"} "$target" "$corpus" "fuzz/seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -timeout=10 >"$log" 2>&1; then
        echo "fuzz.sh: $target: ${SECONDS_EACH}s, $(grep -E '^#[0-9]+.*DONE' "$log" | tail -n1 | sed 's/^#\([0-9]*\).*cov: \([0-9]*\).*corp: \([0-9]*\).*exec\/s: \([0-9]*\).*/\1 runs, coverage \2, corpus \3, \4 runs\/s/'), no crash"
    else
        echo "fuzz.sh: $target FAILED (see $log; the input is in fuzz/artifacts/$target/):" >&2
        grep -E 'ERROR|panicked|SUMMARY|artifact' "$log" | head -n 20 >&2 || true
        failed=1
    fi
done
exit "$failed"
