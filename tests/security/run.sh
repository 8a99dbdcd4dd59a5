#!/bin/sh
# run.sh BUILD_DIR TIMEOUT_S PROGRAM... - run the security test programs, each
# under its own timeout, and print one line per program plus a summary.
# Exit 0 when none failed (77 from a program means skipped).
set -u
dir=$1
limit=$2
shift 2
passed=0 failed=0 skipped=0 failures=""
for prog in "$@"; do
    log="$dir/$prog.log"
    timeout --signal=KILL "$limit" "$dir/$prog" >"$log" 2>&1
    rc=$?
    case $rc in
        0) passed=$((passed + 1)); status=ok ;;
        77) skipped=$((skipped + 1)); status=skip ;;
        137) failed=$((failed + 1)); status="FAIL (timed out after ${limit}s)"; failures="$failures $prog" ;;
        *) failed=$((failed + 1)); status="FAIL (exit $rc)"; failures="$failures $prog" ;;
    esac
    printf '%-22s %-28s %s\n' "$prog" "$status" "$(tail -n 1 "$log")"
done
for prog in $failures; do
    echo "---- $prog ($dir/$prog.log) ----"
    grep -v ' ok$' "$dir/$prog.log" | tail -n 40
done
echo "security: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
