#!/usr/bin/env bash
# scripts/test-run.sh MAKE-COMMAND... - what `make test` runs: the suites (the
# make command given, e.g. `make test-suites`) with TMPDIR set to a fresh
# directory of this run's own, then two checks that the suites cleaned up
# after themselves:
#   - nothing is left in that directory (every test removes its sockets,
#     logs and scratch files, or keeps them under build/);
#   - the git working tree is as it was before (no test writes a tracked
#     file or an untracked one that .gitignore does not cover).
# The directory is removed in every case. Exit status: the suites', or 1
# when a check fails.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

tree_state() {
    git -C "$ROOT" status --porcelain --untracked-files=all 2>/dev/null
}

in_git=0
git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1 && in_git=1
tree_before=
(( in_git )) && tree_before=$(tree_state)

run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/tachyon-test.XXXXXX") || exit 1
# Searchable, not listable, by other users: the credential tests connect as
# another user to sockets below it.
chmod 0711 "$run_tmp"
trap 'rm -rf "$run_tmp"' EXIT

TMPDIR=$run_tmp "$@"
status=$?

left=$(cd "$run_tmp" && find . -mindepth 1 | sed 's|^\./||' | head -n 20)
if [[ -n $left ]]; then
    echo "make test: the tests left files in their temporary directory (TMPDIR) instead of removing them:" >&2
    sed 's/^/  /' <<<"$left" >&2
    status=1
fi

if (( in_git )); then
    tree_after=$(tree_state)
    if [[ $tree_after != "$tree_before" ]]; then
        echo "make test: the tests changed the git working tree (git status before and after):" >&2
        diff <(sed '/^$/d' <<<"$tree_before") <(sed '/^$/d' <<<"$tree_after") | sed -n 's/^[<>] /  /p' >&2
        status=1
    fi
fi
exit $status
