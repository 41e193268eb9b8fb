#!/bin/sh
# Task latency and accuracy, binary against binary and task file against task file: `ulm eval`
# on each task file's own golden set, one thread, interleaved rounds (this machine is shared:
# compare medians).
#   sh bench/task_latency.sh ROUNDS ULM:TASK.ulm [ULM:TASK.ulm ...]
# e.g. sh bench/task_latency.sh 3 /tmp/old/ulm:tasks/entities/entities.ulm build/ulm:tasks/entities/entities.ulm
set -e
[ $# -ge 2 ] || { echo "usage: sh bench/task_latency.sh ROUNDS ULM:TASK.ulm [ULM:TASK.ulm ...]" >&2; exit 2; }
R=$1; shift
case $R in "" | *[!0-9]*) echo "task_latency.sh: ROUNDS must be a number, not '$R'" >&2; exit 2 ;; esac
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo "command: $0 $R $*; machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
i=1
while [ "$i" -le "$R" ]; do
    c=0
    for bt in "$@"; do
        c=$((c + 1))
        "${bt%%:*}" eval "${bt#*:}" --json -t 1 > "$W/report.json" || { echo "$0: ulm eval failed" >&2; exit 1; }
        awk -v r="$i" -v c="$c" -f "$(dirname "$0")/eval_p95.awk" "$W/report.json" >> "$W/rounds.txt"
    done
    i=$((i + 1))
done
echo "round  config  exact   ttft p95 ms  answer p95 ms"
awk '{ printf "%5d  %6d  %.4f  %11.2f  %13.2f\n", $1, $2, $3, $4, $5 }' "$W/rounds.txt"
echo "medians over $R rounds:"
c=0
for bt in "$@"; do
    c=$((c + 1))
    awk -v c="$c" '$2 == c { print $4 }' "$W/rounds.txt" | sort -n > "$W/t"
    awk -v c="$c" '$2 == c { print $5 }' "$W/rounds.txt" | sort -n > "$W/u"
    printf "config %d (%s): exact %s  ttft p95 %s ms  answer p95 %s ms\n" "$c" "$bt" \
        "$(awk -v c="$c" '$2 == c { print $3; exit }' "$W/rounds.txt")" \
        "$(awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' "$W/t")" \
        "$(awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' "$W/u")"
done
