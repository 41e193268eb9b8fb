#!/bin/sh
# Runs every test binary given, then the shipped tasks' golden-set evals, and ends with one
# summary line over all of them: "N passed, N failed, N skipped".
# ULM_TEST_RUNNER prefixes each binary (qemu for test-arm); ULM_SKIP_EVALS=1 skips the evals.
build=$1; shift
passed=0; failed=0; skipped=0; bad=""
log=$(mktemp); trap 'rm -f "$log"' EXIT
for t in "$@"; do
    echo "== $t"
    $ULM_TEST_RUNNER "$t" >"$log" 2>&1; rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
    if [ $rc -ne 0 ] && [ -z "$f" ]; then failed=$((failed + 1)); fi   # crashed before its summary
    [ $rc -ne 0 ] && bad="$bad $t"
done
if [ -z "$ULM_SKIP_EVALS" ]; then
    for e in tasks/*/eval.sh; do
        [ -f "$e" ] || continue
        echo "== $e"
        if ULM="$build/ulm" sh "$e"; then passed=$((passed + 1)); else failed=$((failed + 1)); bad="$bad $e"; fi
    done
fi
echo "[==========] all test programs done"
[ -n "$bad" ] && echo "failing:$bad"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
