#!/usr/bin/env bash
# One benchmark run: us and the peers people would otherwise use, side by side, on this
# machine, in this run. Writes bench/results/<date>.md and bench/results/latest.json.
#
#   bench/run.sh
#
# It installs what it needs (wrk from apt; the peers from npm and PyPI into bench/.peers),
# builds what it measures with the release profile, makes the inputs every side measures
# (bench/.work), shows each peer refusing a tampered input before timing it, and runs:
# SAML ACS validation, the worst case per unauthenticated request, the JWT bearer grant, the
# token endpoint over HTTP (wrk, 1 and 16
# connections, against `identity serve` and oidc-provider), the code flow over HTTP. Test
# servers listen on 127.0.0.1 and stop when the run ends; and the Lambda bootstraps against a
# hello-world floor (zipped size, start to first answer, peak memory) with DynamoDB Local and
# moto behind them (tests/run.sh --services). No timing is asserted by a test.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/bench/.work
PEERS=$ROOT/bench/.peers
RESULTS=$ROOT/bench/results
ROWS=$WORK/rows.jsonl
DURATION=${BENCH_SECONDS:-10}
mkdir -p "$WORK" "$PEERS" "$RESULTS"
: > "$ROWS"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
step() { echo "==> $*" >&2; }

step "tools: the build's Debian packages (scripts/build-deps.sh), wrk, node, python3-venv"
# shellcheck source=../scripts/build-deps.sh
. scripts/build-deps.sh
extra=(wrk curl)
# Node and Python may come from elsewhere (nodesource, pyenv): Debian's only when missing.
command -v node >/dev/null || extra+=(nodejs)
command -v npm >/dev/null || extra+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || extra+=(python3-venv)
# shellcheck disable=SC2086 # a list of words
apt_install_missing $BUILD_APT_PACKAGES "${extra[@]}" >&2

step "peers: oidc-provider, @node-saml/node-saml, jose (npm); python3-saml, PyJWT (PyPI)"
if [ ! -d "$PEERS/node/node_modules/oidc-provider" ]; then
    mkdir -p "$PEERS/node"
    npm install --silent --no-audit --no-fund --prefix "$PEERS/node" \
        oidc-provider@9 @node-saml/node-saml@5 jose@6 >&2
fi
if [ ! -x "$PEERS/venv/bin/python" ] || ! "$PEERS/venv/bin/python" -c 'import onelogin.saml2, jwt' 2>/dev/null; then
    python3 -m venv "$PEERS/venv"
    "$PEERS/venv/bin/pip" install -q python3-saml PyJWT cryptography >&2
fi
export NODE_PATH=$PEERS/node/node_modules
PY=$PEERS/venv/bin/python
# Node resolves ES module imports from the script's folder: the scripts run from there.
cp bench/peers/*.mjs "$PEERS/node/"

step "build (release profile)"
cargo build --release --quiet -p identity-bench -p identity-cli
BIN=$ROOT/target/release

step "fixtures"
"$BIN/identity-bench" fixtures "$WORK"

step "SAML ACS validation: ours, samael, python3-saml, node-saml"
"$BIN/identity-bench" acs "$WORK" >> "$ROWS"
# The worst case per unauthenticated request: the costliest inputs the tests know, through
# their routes, against a real ACS validation in the same process (bench/src/worst.rs).
"$BIN/identity-bench" worst "$WORK" >> "$ROWS"
"$PY" bench/peers/saml_python.py "$WORK" >> "$ROWS"
node "$PEERS/node/saml_node.mjs" "$WORK" >> "$ROWS"

step "JWT bearer grant: ours (embedded store), PyJWT, jose"
"$BIN/identity-bench" grant "$WORK" >> "$ROWS"
"$PY" bench/peers/jwt_python.py "$WORK" >> "$ROWS"
node "$PEERS/node/jwt_node.mjs" "$WORK" >> "$ROWS"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
    for _ in $(seq 1 200); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}
# wrk with the token request; appends req/s (and, for 16 connections, p50/p99 in ms) to
# the rows, and refuses a run with any non-2xx answer (a refused request is not a token).
load() {
    local key=$1 url=$2 connections=$3 out
    out=$(wrk -t "$(( connections < 2 ? 1 : 2 ))" -c "$connections" -d "${DURATION}s" --latency \
        -s bench/peers/token.lua "$url")
    echo "$out" >&2
    if grep -q "Non-2xx" <<<"$out"; then
        echo "$key: some answers were not 2xx" >&2
        return 1
    fi
    python3 - "$key" <<PY >> "$ROWS"
import json, re, sys
out = """$out"""
key = sys.argv[1]
def ms(v):
    n, u = re.match(r"([\d.]+)(\w+)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u]
print(json.dumps({"key": key, "value": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "unit": "req/s"}))
for p in ("50", "99"):
    m = re.search(r"^\s+%s%%\s+(\S+)" % p, out, re.M)
    print(json.dumps({"key": f"{key}.p{p}", "value": round(ms(m.group(1)), 3), "unit": "ms"}))
PY
}

step "token endpoint over HTTP: identity serve (release) and oidc-provider, wrk"
STORE=$(mktemp -d)
PORT=$(free_port)
export IDENTITY_STORE="embedded:$STORE"
client=$("$BIN/identity" admin client add --name bench --redirect-uri "http://127.0.0.1/cb" \
    --scope read --json)
CLIENT_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$client")
CLIENT_SECRET=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$client")
"$BIN/identity" serve --listen "127.0.0.1:$PORT" --no-dev-idp >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/.well-known/oauth-authorization-server"
export BENCH_BASIC BENCH_SCOPE=read
BENCH_BASIC=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)
load http.c1.ours "http://127.0.0.1:$PORT/oauth/token" 1
load http.c16.ours "http://127.0.0.1:$PORT/oauth/token" 16

step "code flow end to end over HTTP: identity serve, 4 workers"
printf 'bench password 0123\n' | "$BIN/identity" admin user add --email bench@example.com --password-stdin >/dev/null
web=$("$BIN/identity" admin client add --name "bench web app" --redirect-uri "http://127.0.0.1/cb" \
    --trusted --json)
WEB_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$web")
WEB_SECRET=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$web")
"$BIN/identity-bench" codeflow "http://127.0.0.1:$PORT" "$WEB_ID" "$WEB_SECRET" \
    "http://127.0.0.1/cb" bench@example.com "bench password 0123" "$DURATION" 4 >> "$ROWS"

OPORT=$(free_port)
NODE_ENV=production node "$PEERS/node/oidc_provider.mjs" "$OPORT" bench bench-secret-0123456789 \
    >"$WORK/oidc-provider.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$OPORT/.well-known/openid-configuration"
BENCH_BASIC=$(printf 'bench:bench-secret-0123456789' | base64 -w0)
BENCH_SCOPE=api
# The yardstick refuses a wrong secret before it is timed.
status=$(curl -s -o /dev/null -w '%{http_code}' -u bench:wrong -d grant_type=client_credentials \
    "http://127.0.0.1:$OPORT/token")
[ "$status" = 401 ] || { echo "oidc-provider accepted a wrong client secret ($status)" >&2; exit 1; }
curl -sf -u bench:bench-secret-0123456789 -d grant_type=client_credentials -d scope=api \
    "http://127.0.0.1:$OPORT/token" >/dev/null
load http.c1.oidc-provider "http://127.0.0.1:$OPORT/token" 1
load http.c16.oidc-provider "http://127.0.0.1:$OPORT/token" 16

step "Lambda bootstraps: the five functions and a hello-world floor (release profile, as sam build ships them)"
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
# A build of their own: cargo unifies the features of the packages in one build, and the
# functions must get none of the CLI's (the embedded store, the development IdP).
cargo build --release --quiet -p sso-acs -p oauth-authorize -p oauth-token -p addon-sso \
    -p jwt-grant -p lambda-floor
# DynamoDB Local and moto behind them, as the test command starts them (loopback only).
./tests/run.sh --services bash -c '"$0" bootstraps "$1" "$2" >> "$3"' \
    "$BIN/identity-bench" "$BIN" "${BENCH_STARTS:-10}" "$ROWS" >&2

step "report"
DATE=$(date -u +%Y-%m-%d)
"$BIN/identity-bench" report "$ROWS" "$RESULTS/$DATE.md" "$RESULTS/latest.json"
cat "$RESULTS/$DATE.md"
