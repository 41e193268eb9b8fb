#!/bin/sh
# make fuzz: runs each libFuzzer target (BUILD/fuzz/fuzz_<name>) for SECONDS from its seeds:
# the committed corpus (tests/fuzz/corpus/<name>, also replayed by make test) plus, for the
# model target, tiny models of each weight type and tiny tasks (one and two weight sets)
# written here. New inputs go to BUILD/fuzz-corpus/<name>, crashes to BUILD/fuzz-crashes/.
# SECONDS 0 only replays the corpus (libFuzzer -runs=0). Usage: run.sh BUILD SECONDS [NAME...]
set -e
build=$1; secs=$2; shift 2
names=${*:-$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c | sed 's/^fuzz_//'; done)}
mkdir -p "$build/fuzz-crashes"
seeds=$build/fuzz-seeds/ulm_model
if [ ! -d "$seeds" ]; then # written aside, then moved: two runs at once may both get here
    tmp=$seeds.$$
    mkdir -p "$tmp"
    for t in f32 q8 q4; do "$build/ulm" mkmodel --preset tiny --type $t -o "$tmp/tiny-$t.ulm" 2>/dev/null; done
    printf '%s\n' '{"name": "fuzz", "instruction": "Q: {input}\nA:", "max_tokens": 6,' \
        ' "constraint": {"type": "regex", "pattern": "[a-c]{1,4}( [a-c]+)?"}}' > "$tmp/spec.json"
    "$build/ulm" task pack "$tmp/spec.json" "$tmp/tiny-q4.ulm" -o "$tmp/task-q4.ulm" 2>/dev/null
    # two weight sets decoded together, as the entity task ships
    "$build/ulm" mkmodel --preset tiny --type q4 --seed 2 -o "$tmp/member.ulm" 2>/dev/null
    "$build/ulm" task pack "$tmp/spec.json" "$tmp/tiny-q4.ulm" --member "$tmp/member.ulm" -o "$tmp/task-members.ulm" 2>/dev/null
    rm -f "$tmp/spec.json" "$tmp/member.ulm"
    mv -T "$tmp" "$seeds" 2>/dev/null || rm -rf "$tmp"
fi
status=0
for n in $names; do
    out=$build/fuzz-corpus/$n
    mkdir -p "$out"
    extra=; [ -d "$build/fuzz-seeds/$n" ] && extra=$build/fuzz-seeds/$n
    echo "== fuzz_$n: $secs s"
    # -timeout: one input may take at most 10 s; -rss_limit_mb: hostile sizes must not balloon
    if [ "$secs" = 0 ]; then limit=-runs=0; else limit=-max_total_time=$secs; fi
    if ! "$build/fuzz/fuzz_$n" $limit -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-crashes/$n-" "$out" tests/fuzz/corpus/$n $extra 2>"$build/fuzz-$n.log"; then
        status=1
        echo "fuzz_$n FAILED: $(grep -m1 -E 'ERROR|fuzz check failed|SUMMARY' "$build/fuzz-$n.log")"
        ls "$build/fuzz-crashes/$n-"* 2>/dev/null | head -3
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+.*DONE' "$build/fuzz-$n.log" | tr '\n' ' '; echo
done
exit $status
