#!/usr/bin/env bash
# Runs the service on its embedded default: every route on http://127.0.0.1:3000, records in
# ./.identity/, development keys generated on first start. Installs what the build needs when it
# is missing (Debian packages, see scripts/build-deps.sh), then
#   cargo run --release -p identity-cli -- serve ARGS...
# so `./serve.sh --listen 127.0.0.1:8080` passes `--listen` on to `identity serve`.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/build-deps.sh
. scripts/build-deps.sh
if command -v dpkg-query >/dev/null 2>&1; then
    # shellcheck disable=SC2086 # a list of words
    apt_install_missing $BUILD_APT_PACKAGES
else
    echo "serve.sh: not a Debian system; install libclang, pkg-config and libxmlsec1's development files yourself" >&2
fi
exec cargo run --release -p identity-cli -- serve "$@"
