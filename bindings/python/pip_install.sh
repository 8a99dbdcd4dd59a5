#!/bin/sh
# pip_install.sh PYTHON ARGS... - "pip install ARGS" into PYTHON, quietly, on a
# fresh machine as on a developer's: bootstraps pip if missing and, on a
# system Python that refuses installs (PEP 668), retries with
# --break-system-packages (CI runs as root on a throwaway machine).
set -e
py="$1"
shift
if ! "$py" -m pip --version >/dev/null 2>&1; then
    "$py" -m ensurepip --upgrade >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq python3-pip python3-venv >/dev/null; }
fi
opts="-q --disable-pip-version-check"
export PIP_ROOT_USER_ACTION=ignore
if ! out=$("$py" -m pip install $opts "$@" 2>&1); then
    case "$out" in
    *externally-managed*) "$py" -m pip install $opts --break-system-packages "$@" ;;
    *) echo "$out" >&2; exit 1 ;;
    esac
fi
