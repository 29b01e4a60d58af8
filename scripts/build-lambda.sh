#!/usr/bin/env bash
# Builds a function's Lambda bootstrap for provided.al2023 (x86_64, glibc 2.34) on any Linux
# host, whatever its own glibc: `sam build` runs it through each function's Makefile
# (template.yaml: BuildMethod makefile).
#
#   scripts/build-lambda.sh PACKAGE ARTIFACTS_DIR   build PACKAGE, check it, copy it to
#                                                   ARTIFACTS_DIR/bootstrap
#   scripts/build-lambda.sh --prepare               fetch and build what that needs, and stop
#                                                   (tests/run.sh does, before building offline)
#   scripts/build-lambda.sh --install BINARY NAME ARTIFACTS_DIR
#                                                   the last step alone: the provided.al2023
#                                                   check, then the copy (refused: nothing copied)
#
# How:
# - Rust code is compiled by rustc and linked by zig (`cargo zigbuild`, target
#   x86_64-unknown-linux-gnu.2.34): zig links against glibc 2.34's own symbol list, so a
#   bootstrap cannot need a newer symbol, whatever glibc the host has. C code compiled by the
#   crates' build scripts (aws-lc, the DSig helper) goes through the same zig.
# - sso-acs links libxml2, libxmlsec1 and OpenSSL statically (samael). They are built here from
#   Debian 12's source packages (Debian's patches included; the versions bookworm and
#   bookworm-security publish today), with the same zig and glibc 2.34, into
#   target/lambda/xml-<versions>/: static only, no ICU, iconv, XSLT, zlib or liblzma, no
#   OpenSSL config file loaded at start. functions/sso-acs/build.rs links them from there.
#   Downloads are checked against the sha256 that Debian's signed index gives (gpgv with the
#   Debian archive keyring when the host has it; HTTPS otherwise).
# - The result goes through scripts/check-bootstrap.sh before it is copied: a bootstrap that
#   needs any library but glibc's, or a symbol newer than 2.34, fails the build.
#
# Needs: cargo (rustup), python3 with venv, curl, xz, make, perl, patch, libclang (bindgen);
# scripts/build-deps.sh lists the Debian packages. Everything fetched is kept in target/lambda/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/target/lambda"
ZIGLANG_VERSION="0.17.1"   # PyPI's ziglang: the zig that links
CARGO_ZIGBUILD_VERSION="0.24.1"
TARGET="x86_64-unknown-linux-gnu"
GLIBC="2.34"               # Amazon Linux 2023 (provided.al2023)
DEBIAN_MIRROR="${IDENTITY_DEBIAN_MIRROR:-https://deb.debian.org}"
# "archive suite" pairs whose source indices are read, ';'-separated; the newest version wins.
# Debian 12's point release by default: security fixes reach it at each point release. Where
# the mirror serves bookworm-security's source packages (deb.debian.org does; the proxy this was
# tested behind serves only their upstream tarballs), add it:
#   IDENTITY_DEBIAN_SUITES="debian bookworm;debian-security bookworm-security"
IFS=';' read -r -a DEBIAN_SUITES <<<"${IDENTITY_DEBIAN_SUITES:-debian bookworm}"
DEBIAN_KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"
JOBS="$(nproc 2>/dev/null || echo 2)"

say() { echo "build-lambda: $*" >&2; }
die() {
    say "$*"
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Tools: zig (PyPI) and cargo-zigbuild (crates.io), pinned, in target/lambda/.
# ---------------------------------------------------------------------------------------------
ZIG_VENV="$DEPS/zig-$ZIGLANG_VERSION"
TOOLS="$DEPS/cargo-zigbuild-$CARGO_ZIGBUILD_VERSION"
BIN="$DEPS/bin" # zig, and the cc/ar/ranlib wrappers the C libraries are built with

tools() {
    if [[ ! -x "$ZIG_VENV/bin/python" ]] || ! "$ZIG_VENV/bin/python" -c 'import ziglang' 2>/dev/null; then
        say "installing zig $ZIGLANG_VERSION (PyPI ziglang)"
        rm -rf "$ZIG_VENV"
        python3 -m venv "$ZIG_VENV"
        "$ZIG_VENV/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION"
    fi
    if [[ ! -x "$TOOLS/bin/cargo-zigbuild" ]]; then
        say "installing cargo-zigbuild $CARGO_ZIGBUILD_VERSION"
        cargo install --quiet --locked "cargo-zigbuild@$CARGO_ZIGBUILD_VERSION" --root "$TOOLS"
    fi
    local zig
    zig="$("$ZIG_VENV/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')"
    mkdir -p "$BIN"
    ln -sf "$zig" "$BIN/zig"
    local tool
    for tool in cc ar ranlib; do
        {
            echo '#!/bin/sh'
            case $tool in
            cc) echo "exec \"$zig\" cc -target x86_64-linux-gnu.$GLIBC \"\$@\"" ;;
            *) echo "exec \"$zig\" $tool \"\$@\"" ;;
            esac
        } >"$BIN/zig-$tool"
        chmod +x "$BIN/zig-$tool"
    done
    export PATH="$BIN:$TOOLS/bin:$PATH"
}

# ---------------------------------------------------------------------------------------------
# Debian 12's sources: versions, files and checksums from the signed source indices.
# ---------------------------------------------------------------------------------------------
SRC="$DEPS/src"

fetch() { # URL FILE
    curl --fail --silent --show-error --location --proto '=https,http' --retry 3 -o "$2.part" "$1"
    mv "$2.part" "$2"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# The Sources index of ARCHIVE SUITE, checked against its InRelease file, as plain text on stdout.
sources_index() { # ARCHIVE SUITE
    local archive=$1 suite=$2 dir="$SRC/index/$1-$2"
    mkdir -p "$dir"
    if [[ ! -s "$dir/Sources" ]]; then
        fetch "$DEBIAN_MIRROR/$archive/dists/$suite/InRelease" "$dir/InRelease"
        if [[ -r "$DEBIAN_KEYRING" ]] && command -v gpgv >/dev/null; then
            gpgv --quiet --keyring "$DEBIAN_KEYRING" "$dir/InRelease" >/dev/null 2>&1 ||
                die "$archive/$suite: InRelease is not signed by the Debian archive keyring"
        else
            say "no $DEBIAN_KEYRING or gpgv here: trusting HTTPS for $archive/$suite's index"
        fi
        fetch "$DEBIAN_MIRROR/$archive/dists/$suite/main/source/Sources.xz" "$dir/Sources.xz"
        local want
        want="$(awk '/^SHA256:/ {f=1; next} /^[^ ]/ {f=0} f && $3 == "main/source/Sources.xz" {print $1}' "$dir/InRelease")"
        [[ -n "$want" && "$(sha256_of "$dir/Sources.xz")" == "$want" ]] ||
            die "$archive/$suite: Sources.xz does not match its InRelease checksum"
        xz -dc "$dir/Sources.xz" >"$dir/Sources.tmp"
        mv "$dir/Sources.tmp" "$dir/Sources"
    fi
    cat "$dir/Sources"
}

# "VERSION ARCHIVE DIRECTORY" of the newest PACKAGE across DEBIAN_SUITES.
source_version() { # PACKAGE
    local pair
    for pair in "${DEBIAN_SUITES[@]}"; do
        # shellcheck disable=SC2086
        sources_index $pair | awk -v p="$1" -v a="${pair%% *}" '
            /^Package: / {pkg = $2} /^Version: / {ver = $2} /^Directory: / {dir = $2}
            /^$/ {if (pkg == p) print ver, a, dir; pkg = ""}'
    done | sort -V -k1,1 | tail -n1
}

# Unpacks Debian's source of PACKAGE (upstream tarball + debian/ patches applied) into a fresh
# folder and prints its path; VERSION ARCHIVE DIRECTORY as source_version gives them.
unpack_source() { # PACKAGE VERSION ARCHIVE DIRECTORY
    local package=$1 version=$2 archive=$3 directory=$4 index files f sum
    index=""
    for pair in "${DEBIAN_SUITES[@]}"; do
        [[ "${pair%% *}" == "$archive" ]] && index="$pair"
    done
    # The upstream tarball and Debian's packaging (patches) of that package and version, from
    # its Checksums-Sha256 lines: "sha file".
    # shellcheck disable=SC2086
    files="$(sources_index $index | awk -v p="$package" -v v="$version" '
        /^Package: / {pkg = $2} /^Version: / {ver = $2}
        /^Checksums-Sha256:/ {f = 1; next} /^[^ ]/ {f = 0}
        f && pkg == p && ver == v && $3 ~ /\.(orig|debian)\.tar\.[a-z0-9]+$/ {print $1, $3}
        /^$/ {pkg = ""; f = 0}')"
    [[ -n "$files" ]] || die "$package $version: not in $archive's index"
    mkdir -p "$SRC/dl"
    while read -r sum f; do
        if [[ ! -f "$SRC/dl/$f" || "$(sha256_of "$SRC/dl/$f")" != "$sum" ]]; then
            fetch "$DEBIAN_MIRROR/$archive/$directory/$f" "$SRC/dl/$f"
            [[ "$(sha256_of "$SRC/dl/$f")" == "$sum" ]] || die "$f: checksum differs from Debian's index"
        fi
    done <<<"$files"
    local work="$SRC/build/$package"
    rm -rf "$work"
    mkdir -p "$work"
    local orig debian
    orig="$(awk '$2 ~ /\.orig\./ {print $2}' <<<"$files")"
    debian="$(awk '$2 ~ /\.debian\./ {print $2}' <<<"$files")"
    tar -xf "$SRC/dl/$orig" -C "$work" --strip-components=1
    tar -xf "$SRC/dl/$debian" -C "$work"
    if [[ -f "$work/debian/patches/series" ]]; then
        local patch
        while read -r patch _; do
            [[ -z "$patch" || "$patch" == \#* ]] && continue
            patch -d "$work" -p1 --quiet --forward <"$work/debian/patches/$patch" ||
                die "$package: Debian's patch $patch does not apply"
        done <"$work/debian/patches/series"
    fi
    # Patched Makefile.am files must not send make to automake: the generated files are kept.
    find "$work" \( -name aclocal.m4 -o -name configure -o -name Makefile.in -o -name config.h.in \) \
        -exec touch {} +
    echo "$work"
}

# ---------------------------------------------------------------------------------------------
# The XML-DSig stack for sso-acs, static, against glibc 2.34.
# ---------------------------------------------------------------------------------------------
xml_stack() { # -> sets XML_PREFIX
    local openssl libxml2 xmlsec1
    openssl="$(source_version openssl)"
    libxml2="$(source_version libxml2)"
    xmlsec1="$(source_version xmlsec1)"
    [[ -n "$openssl" && -n "$libxml2" && -n "$xmlsec1" ]] || die "Debian's index lacks openssl, libxml2 or xmlsec1"
    local key
    key="$(printf '%s %s %s glibc%s zig%s' "${openssl%% *}" "${libxml2%% *}" "${xmlsec1%% *}" "$GLIBC" "$ZIGLANG_VERSION" |
        sha256sum | cut -c1-16)"
    XML_PREFIX="$DEPS/xml-$key"
    if [[ -f "$XML_PREFIX/.complete" ]]; then
        return 0
    fi
    say "building the XML stack: openssl ${openssl%% *}, libxml2 ${libxml2%% *}, xmlsec1 ${xmlsec1%% *} (glibc $GLIBC)"
    rm -rf "$XML_PREFIX"
    local dir log="$DEPS/xml-build.log"
    : >"$log"
    local common=(CC=zig-cc AR=zig-ar RANLIB=zig-ranlib)
    # shellcheck disable=SC2086
    dir="$(unpack_source openssl $openssl)"
    (cd "$dir" && ./Configure linux-x86_64 --prefix="$XML_PREFIX" --libdir=lib \
        --openssldir="$XML_PREFIX/ssl" no-shared no-tests no-module no-autoload-config "${common[@]}" &&
        make -j"$JOBS" build_libs && make install_dev) >>"$log" 2>&1 || die "OpenSSL did not build (see $log)"
    # shellcheck disable=SC2086
    dir="$(unpack_source libxml2 $libxml2)"
    (cd "$dir" && env "${common[@]}" ./configure --prefix="$XML_PREFIX" --libdir="$XML_PREFIX/lib" \
        --host=x86_64-linux-gnu --enable-static --disable-shared --with-pic --without-python \
        --without-icu --without-iconv --without-lzma --without-zlib --without-http --without-ftp \
        --without-debug --without-modules &&
        make -j"$JOBS" libxml2.la && make install-libLTLIBRARIES install-pkgconfigDATA install-binSCRIPTS &&
        make -C include install) >>"$log" 2>&1 || die "libxml2 did not build (see $log)"
    # shellcheck disable=SC2086
    dir="$(unpack_source xmlsec1 $xmlsec1)"
    (cd "$dir" && env "${common[@]}" PKG_CONFIG_LIBDIR="$XML_PREFIX/lib/pkgconfig" ./configure \
        --prefix="$XML_PREFIX" --libdir="$XML_PREFIX/lib" --host=x86_64-linux-gnu --enable-static \
        --disable-shared --with-pic --disable-crypto-dl --disable-apps-crypto-dl --disable-apps \
        --disable-docs --without-libxslt --with-openssl="$XML_PREFIX" --with-libxml="$XML_PREFIX" \
        --without-nss --without-nspr --without-gcrypt --without-gnutls &&
        make -j"$JOBS" && make install) >>"$log" 2>&1 || die "xmlsec1 did not build (see $log)"
    # samael asks for a plain `-lssl`, which zig resolves to a shared library only: this one
    # is a linker script that names the archive.
    printf '/* scripts/build-lambda.sh: libssl is linked statically */\nINPUT(%s)\n' \
        "$XML_PREFIX/lib/libssl.a" >"$XML_PREFIX/lib/libssl.so"
    rm -rf "$SRC/build"
    printf 'openssl %s\nlibxml2 %s\nxmlsec1 %s\n' "$openssl" "$libxml2" "$xmlsec1" >"$XML_PREFIX/.complete"
}

# ---------------------------------------------------------------------------------------------
# The bootstrap.
# ---------------------------------------------------------------------------------------------
install_bootstrap() { # BINARY NAME ARTIFACTS_DIR
    local binary=$1 name=$2 artifacts=$3
    "$ROOT/scripts/check-bootstrap.sh" "$binary" "$name" >&2 ||
        die "$name would not start on provided.al2023; nothing copied"
    mkdir -p "$artifacts"
    cp "$binary" "$artifacts/bootstrap"
}

prepare() {
    mkdir -p "$DEPS"
    tools
    xml_stack
}

build() { # PACKAGE ARTIFACTS_DIR
    local package=$1 artifacts=$2
    [[ -f "$ROOT/functions/$package/Cargo.toml" ]] || die "no function $package in functions/"
    prepare
    # The same environment for every function (so their shared dependencies are compiled once):
    # pkg-config, openssl-sys and samael's xmlsec1-config see only the stack built above.
    # From the function's folder: zig names its include folders relative to the working folder
    # when they are under it (target/lambda/ is under the root), and bindgen, which is given
    # them, runs elsewhere.
    (
        cd "$ROOT/functions/$package"
        export PATH="$XML_PREFIX/bin:$PATH"
        export PKG_CONFIG_LIBDIR="$XML_PREFIX/lib/pkgconfig" PKG_CONFIG_PATH=""
        export OPENSSL_DIR="$XML_PREFIX" OPENSSL_STATIC=1 IDENTITY_XML_PREFIX="$XML_PREFIX"
        cargo zigbuild --release --target "$TARGET.$GLIBC" -p "$package"
    ) || die "$package did not build"
    install_bootstrap "$ROOT/target/$TARGET/release/$package" "$package" "$artifacts"
}

case "${1:-}" in
--prepare) prepare ;;
--install)
    (($# == 4)) || die "usage: $0 --install BINARY NAME ARTIFACTS_DIR"
    install_bootstrap "$2" "$3" "$4"
    ;;
-* | "") die "usage: $0 PACKAGE ARTIFACTS_DIR | --prepare | --install BINARY NAME ARTIFACTS_DIR" ;;
*)
    (($# == 2)) || die "usage: $0 PACKAGE ARTIFACTS_DIR"
    build "$1" "$2"
    ;;
esac
