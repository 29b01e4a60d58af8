#!/usr/bin/env bash
# Whether a Lambda bootstrap runs on provided.al2023 (Amazon Linux 2023, glibc 2.34): it may
# need only glibc's own libraries, and no glibc symbol version newer than 2.34.
#
#   scripts/check-bootstrap.sh BINARY [NAME]     exit 0 if it runs there; 1 with the reason
#
# Run by scripts/lambda-link after every link of a function's release binary (so `sam build`
# fails on a bootstrap that would not start), and by tests/run.sh on what `sam build` made.
set -euo pipefail
BOOTSTRAP_ALLOWED_NEEDED="libc.so.6 libm.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2"
BOOTSTRAP_MAX_GLIBC="2.34"
bin=$1
name=${2:-$(basename "$bin")}
bad=0
needed="$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
for lib in $needed; do
    if [[ " $BOOTSTRAP_ALLOWED_NEEDED " != *" $lib "* ]]; then
        echo "$name needs $lib, which provided.al2023 does not have" >&2
        bad=1
    fi
done
newest="$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -n1 || true)"
if [[ -z "$newest" ]]; then
    echo "$name: no glibc symbol versions found (not a dynamically linked glibc binary?)" >&2
    bad=1
elif [[ "$(printf '%s\n%s\n' "$newest" "$BOOTSTRAP_MAX_GLIBC" | sort -V | tail -n1)" != "$BOOTSTRAP_MAX_GLIBC" ]]; then
    echo "$name needs GLIBC_$newest; provided.al2023 has glibc $BOOTSTRAP_MAX_GLIBC (build on an older host; docs/deploy.md, \"Building on another host\")" >&2
    bad=1
fi
((bad == 0)) || exit 1
echo "$name: glibc $newest at most, needs only: $needed"
