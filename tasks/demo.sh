#!/bin/sh
# The main job: run the two shipped tasks on example inputs (README, "Zero to a result").
ULM=${ULM:-build/ulm}
set -e
for t in tasks/haiku/haiku.ulm tasks/entities/entities.ulm; do
    [ -f "$t" ] || { echo "demo: $t is missing (make models retrains it)" >&2; exit 1; }
done
run() { echo "\$ ulm run $*"; "$ULM" run "$@"; echo; }
run tasks/haiku/haiku.ulm "an old silent pond a frog jumps into the pond splash silence again"
run tasks/haiku/haiku.ulm "the quick brown fox jumps over the lazy dog"
run tasks/entities/entities.ulm "Maria Lopez joined Acme Corp in Paris on 3 May 2021."
run tasks/entities/entities.ulm --json "On Friday, Tom Baker met the board of Northwind Traders in Oslo."
