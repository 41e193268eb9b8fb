#!/bin/sh
# Golden-set gates of the haiku task; tests/run_tests.sh runs it from the repo root with ULM
# set (make test). Exits non-zero when a gate fails. The gates guard the shipped model against
# regressions: they sit just under what tasks/haiku/haiku.ulm measured when it was committed
# (tasks/README.md). Issue 7's targets are 0.90 for both; the shipped model does not reach
# them yet, so these defaults are lower. Override with HAIKU_MIN / REFUSAL_MIN.
#   haiku inputs  (260 of golden.jsonl): exact line breaks >= HAIKU_MIN, every output valid
#   refusals      (140 of golden.jsonl): NOT_A_HAIKU >= REFUSAL_MIN, every output valid
#   golden_oov.jsonl (inputs with words never seen in training): reported, no gate
ULM=${ULM:-build/ulm}
HAIKU_MIN=${HAIKU_MIN:-0.90}
REFUSAL_MIN=${REFUSAL_MIN:-0.90}
T=tasks/haiku
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
grep -v '"output": "NOT_A_HAIKU"' $T/golden.jsonl > "$tmp/haiku.jsonl"
grep '"output": "NOT_A_HAIKU"' $T/golden.jsonl > "$tmp/refusals.jsonl"
rc=0
for part in haiku refusals; do
    min=$HAIKU_MIN
    [ $part = refusals ] && min=$REFUSAL_MIN
    "$ULM" eval $T/haiku.ulm "$tmp/$part.jsonl" --min-accuracy "$min" -t 1 > "$tmp/out" 2>&1 || rc=1
    echo "[$part, gate $min]"; cat "$tmp/out"
    grep -q 'validity rate *1.0000' "$tmp/out" || { echo "FAIL: $part: not every output is valid"; rc=1; }
done
echo "[golden_oov: report only]"
"$ULM" eval $T/haiku.ulm $T/golden_oov.jsonl -t 1 || rc=1
exit $rc
