#!/bin/sh
# Task latency and accuracy, binary against binary and task file against task file: `ulm eval`
# on each task file's own golden set, one thread, interleaved rounds (this machine is shared:
# compare medians).
#   sh bench/task_latency.sh ROUNDS ULM:TASK.ulm [ULM:TASK.ulm ...]
# e.g. sh bench/task_latency.sh 3 /tmp/old/ulm:tasks/entities/entities.ulm build/ulm:tasks/entities/entities.ulm
set -e
[ $# -ge 2 ] || { echo "usage: sh bench/task_latency.sh ROUNDS ULM:TASK.ulm [ULM:TASK.ulm ...]" >&2; exit 2; }
R=$1; shift
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo "command: $0 $R $*; machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
i=1
while [ "$i" -le "$R" ]; do
    c=0
    for bt in "$@"; do
        c=$((c + 1))
        "${bt%%:*}" eval "${bt#*:}" --json -t 1 | awk -v c="$c" -v r="$i" '
            { match($0, /"accuracy":[0-9.]+/); a = substr($0, RSTART + 11, RLENGTH - 11)
              match($0, /"ttft_ms":\{"p50":[0-9.]+,"p95":[0-9.]+/); s = substr($0, RSTART, RLENGTH); sub(/.*"p95":/, "", s)
              match($0, /"total_ms":\{"p50":[0-9.]+,"p95":[0-9.]+/); u = substr($0, RSTART, RLENGTH); sub(/.*"p95":/, "", u)
              printf "%d %d %.4f %.2f %.2f\n", r, c, a, s, u }' >> "$W/rounds.txt"
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
