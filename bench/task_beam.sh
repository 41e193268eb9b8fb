#!/bin/sh
# Greedy vs beam search on a task file: accuracy and latency of `ulm eval --beam N` on its
# golden set, one thread, interleaved rounds (this machine is shared: compare medians).
#   sh bench/task_beam.sh [TASK.ulm] [GOLDEN.jsonl] [ROUNDS] [BEAMS]
# defaults: the shipped entity task, its golden set, 3 rounds, beams "1 2 4".
set -e
ULM=${ULM:-build/ulm}
T=${1:-tasks/entities/entities.ulm}
G=${2:-tasks/entities/golden.jsonl}
R=${3:-3}
BEAMS=${4:-1 2 4}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo "command: $0 $T $G $R \"$BEAMS\"; machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
i=1
while [ "$i" -le "$R" ]; do
    for b in $BEAMS; do
        "$ULM" eval "$T" "$G" --json -t 1 --beam "$b" > "$W/report.json" || { echo "$0: ulm eval failed" >&2; exit 1; }
        awk -v r="$i" -v c="$b" -f "$(dirname "$0")/eval_p95.awk" "$W/report.json" >> "$W/rounds.txt"
    done
    i=$((i + 1))
done
echo "round  beam  exact   ttft p95 ms  answer p95 ms"
awk '{ printf "%5d  %4d  %.4f  %11.2f  %13.2f\n", $1, $2, $3, $4, $5 }' "$W/rounds.txt"
echo "medians over $R rounds:"
for b in $BEAMS; do
    awk -v b="$b" '$2 == b { print $4 }' "$W/rounds.txt" | sort -n > "$W/t"
    awk -v b="$b" '$2 == b { print $5 }' "$W/rounds.txt" | sort -n > "$W/u"
    acc=$(awk -v b="$b" '$2 == b { print $3; exit }' "$W/rounds.txt")
    printf "beam %d: exact %s  ttft p95 %s ms  answer p95 %s ms\n" "$b" "$acc" \
        "$(awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' "$W/t")" \
        "$(awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' "$W/u")"
done
