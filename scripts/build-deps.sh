# shellcheck shell=bash
# What building the workspace needs from Debian, in one place: sourced by ./serve.sh (the
# README's first command) and tests/run.sh (the test command).
#
#   libclang-dev clang       bindgen (samael's libxmlsec1 bindings) finds libclang through them
#   libxmlsec1-dev libxml2-dev libxslt1-dev libssl-dev libicu-dev zlib1g-dev liblzma-dev
#                            the XML-DSig stack samael links (dynamically for `identity serve`,
#                            statically into the sso-acs bootstrap)
#   pkg-config cmake         how the -sys crates find those libraries / build aws-lc
BUILD_APT_PACKAGES="pkg-config libclang-dev clang cmake libxmlsec1-dev libxml2-dev libxslt1-dev libssl-dev libicu-dev zlib1g-dev liblzma-dev"

apt_installed() { # PKG -> 0 if fully installed
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Installs the given Debian packages that are missing (with sudo when not root); quick and
# silent when all are there.
apt_install_missing() {
    local missing=() p
    for p in "$@"; do
        apt_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        echo "apt: all present"
        return 0
    fi
    echo "apt: installing ${missing[*]}"
    local sudo=()
    [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
