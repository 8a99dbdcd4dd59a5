#!/usr/bin/env bash
# scripts/setup.sh - make this machine able to build, test, benchmark and run
# the demo: the Debian packages in scripts/apt-packages.txt (only those
# missing, with one apt-get run), a Rust toolchain check, and the project's
# virtual environment .venv with scripts/requirements.txt. Idempotent and quiet:
# when everything is there it only checks and returns (well under a second).
#
# The system Python is never written to; everything Python goes into .venv.
# Environment: VENV (default .venv), PYTHON (the interpreter that creates the
# venv, default python3).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

probe_present() {
    case $1 in
    */*) compgen -G "$1" >/dev/null ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

install_apt_packages() {
    local missing=() probe pkg
    while read -r probe pkg; do
        [[ -z $probe || $probe == \#* ]] && continue
        probe_present "$probe" || missing+=("$pkg")
    done < scripts/apt-packages.txt
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null ||
            die "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "missing packages ${missing[*]} and no apt-get to install them; install them with your package manager"
    say "installing ${missing[*]} (apt-get)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null 2>&1 </dev/null ||
        die "apt-get install ${missing[*]} failed"
    for pkg in "${missing[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || die "package $pkg did not install"
    done
}

check_rust() {
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found: install Rust with rustup (https://rustup.rs), then run make again"
}

# The venv is rebuilt when requirements.txt changes (its hash is kept inside).
make_venv() {
    local want have=""
    want=$(sha256sum scripts/requirements.txt | cut -c1-16)
    [[ -f $VENV/.requirements ]] && have=$(cat "$VENV/.requirements")
    [[ -x $VENV/bin/python && $want == "$have" ]] && return 0
    if [[ ! -x $VENV/bin/python ]]; then
        say "creating the virtual environment $VENV"
        "$PYTHON" -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    fi
    say "installing scripts/requirements.txt into $VENV"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q -r scripts/requirements.txt ||
        die "pip install -r scripts/requirements.txt failed"
    echo "$want" > "$VENV/.requirements"
}

install_apt_packages
check_rust
make_venv
