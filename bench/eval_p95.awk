# One `ulm eval --json` report -> "ROUND CONFIG EXACT TTFT_P95 ANSWER_P95" (shared by
# bench/task_beam.sh and bench/task_latency.sh). A report without these fields is an error.
# usage: awk -v r=ROUND -v c=CONFIG -f bench/eval_p95.awk REPORT.json
{
    if (!match($0, /"accuracy":[0-9.]+/)) next
    a = substr($0, RSTART + 11, RLENGTH - 11)
    if (!match($0, /"ttft_ms":\{"p50":[0-9.]+,"p95":[0-9.]+/)) next
    s = substr($0, RSTART, RLENGTH); sub(/.*"p95":/, "", s)
    if (!match($0, /"total_ms":\{"p50":[0-9.]+,"p95":[0-9.]+/)) next
    u = substr($0, RSTART, RLENGTH); sub(/.*"p95":/, "", u)
    printf "%d %s %.4f %.2f %.2f\n", r, c, a, s, u
    found = 1
}
END { if (!found) { print "eval_p95.awk: no accuracy/ttft/total in the ulm eval report" > "/dev/stderr"; exit 1 } }
