#!/usr/bin/env bash
# The deployment, locally (docs/deploy.md, "Try a release locally"):
#
#   scripts/local-stack.sh [--listen 127.0.0.1:PORT] [--template FILE] [--param NAME=VALUE]...
#                          [--strict] [--report FILE] [-- CMD ARGS...]
#
# Serves the six bootstraps `sam build` made (built first when missing or older than the
# code) behind a loopback listener that routes exactly the routes of template.yaml as API
# Gateway does (payload 2.0), each function with the environment and the IAM policy the
# template gives it, on DynamoDB Local and moto, after creating the tables and secrets and
# running the first key rotation through the rotation bootstrap, as a deploy does.
#
# With `-- CMD`, runs CMD with IDENTITY_BASE_URL and what `identity admin` needs (store,
# secrets, endpoints, credentials) exported, stops everything, and exits with CMD's status.
# Without, prints the base URL and the export lines and serves until interrupted.
#
# Either way it ends with the IAM audit: a call outside a function's policy fails it (with
# --strict, so does a grant no call needed). DynamoDB Local and moto are those of the test
# command: started here through `tests/run.sh --with-services` unless already running.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.test-deps/venv"
BUILD="${IDENTITY_TEST_BOOTSTRAPS:-$ROOT/.aws-sam/build}"

die() {
    printf 'local-stack.sh: %s\n' "$*" >&2
    exit 1
}

# The bootstraps: built by `sam build` unless each exists and is newer than everything it is
# built from.
stale() {
    local id bin
    for id in $(sed -n 's/^  \([A-Za-z0-9]\+Function\):$/\1/p' template.yaml); do
        bin="$BUILD/$id/bootstrap"
        [[ -x "$bin" ]] || return 0
        if [[ -n "$(find core shared functions Cargo.toml Cargo.lock scripts/build-lambda.sh \
            -newer "$bin" -type f -print -quit)" ]]; then
            return 0
        fi
    done
    return 1
}

if [[ -z "${IDENTITY_TEST_DYNAMODB_ENDPOINT:-}" ]]; then
    # Not yet inside the test environment: install what is missing, build, then come back
    # here with DynamoDB Local and moto running.
    [[ -x "$VENV/bin/sam" ]] || die "the SAM CLI is missing: run ./tests/run.sh once (it installs it)"
    if stale; then
        echo "local-stack.sh: the bootstraps are missing or older than the code: sam build" >&2
        cargo fetch --quiet
        scripts/build-lambda.sh --prepare
        env PATH="$VENV/bin:$PATH" SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" build
    fi
    # The local-stack binary, as the test command builds it (a `cargo build -p` would unify
    # features differently and build most dependencies again).
    cargo test --workspace --no-run --quiet
    exec "$ROOT/tests/run.sh" --with-services "$ROOT/scripts/local-stack.sh" "$@"
fi

stale && die "the bootstraps in $BUILD are missing or older than the code (run sam build, or this script outside the test environment)"
cargo test --workspace --no-run --quiet
exec "$ROOT/target/debug/local-stack" "$@"
