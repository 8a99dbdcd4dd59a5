#!/usr/bin/env bash
# Run test programs with a per-test timeout; exit codes 0 pass, 77 skip, else fail.
# Each program's output goes to PROGRAM.log beside it (under build/).
# Usage: run_tests.sh LABEL program...
set -u
label=$1; shift
timeout_s=${TACHYON_TEST_TIMEOUT:-600}
pass=0 fail=0 skip=0 failed=()
for t in "$@"; do
    name=$(basename "$t")
    start=$(date +%s.%N)
    log="$t.log"
    timeout --foreground -k 10 "$timeout_s" "$t" > "$log" 2>&1
    rc=$?
    secs=$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")
    case $rc in
        0)  pass=$((pass + 1)); echo "PASS $name (${secs}s)";;
        77) skip=$((skip + 1)); echo "SKIP $name";;
        124) fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name: timed out after ${timeout_s}s";;
        *)  fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (exit $rc)";;
    esac
    if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then sed 's/^/    /' "$log" | tail -40; fi
done
echo "$label: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
