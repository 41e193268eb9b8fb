#!/bin/sh
# Constrained vs unconstrained decode speed on the gemma3-270m preset (random weights, q8,
# 262,144-token vocabulary), interleaved rounds, one thread. Issue 6's target: constrained
# decode >= 90% of unconstrained.
#   sh bench/constraint_decode.sh [ROUNDS]
set -e
ULM=${ULM:-build/ulm}
R=${1:-5}
W=${TMPDIR:-/tmp}/ulm-bench-constraint
mkdir -p "$W"
[ -f "$W/g270.ulm" ] || "$ULM" mkmodel --preset gemma3-270m --seed 1 --type q8 -o "$W/g270.ulm"
cat > "$W/free.json" <<'J'
{"name": "free", "instruction": "{input}", "max_tokens": 48, "sampling": {"temperature": 0}}
J
cat > "$W/json.json" <<'J'
{"name": "json", "instruction": "{input}", "max_tokens": 48, "sampling": {"temperature": 0},
 "constraint": {"type": "json_schema", "schema": {"type": "object", "properties": {
   "name": {"type": "string", "maxLength": 200},
   "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20}}, "required": ["name", "tags"]}}}
J
"$ULM" task pack "$W/free.json" "$W/g270.ulm" -o "$W/free.ulm" 2>/dev/null
"$ULM" task pack "$W/json.json" "$W/g270.ulm" -o "$W/json.ulm" 2>/dev/null
echo "command: $0 $R; machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "round  unconstrained tok/s  json-schema tok/s  ratio"
i=1
while [ $i -le "$R" ]; do
    a=$("$ULM" run "$W/free.ulm" --json "hello there" -t 1)
    b=$("$ULM" run "$W/json.ulm" --json "hello there" -t 1)
    echo "$a
$b" | awk -v r=$i '
        { match($0, /"tokens":[0-9]+/); t = substr($0, RSTART + 9, RLENGTH - 9)
          match($0, /"ttft_ms":[0-9.]+/); f = substr($0, RSTART + 10, RLENGTH - 10)
          match($0, /"total_ms":[0-9.]+/); s = substr($0, RSTART + 11, RLENGTH - 11)
          v[NR] = (t - 1) * 1000 / (s - f) }
        END { printf "%5d  %19.2f  %17.2f  %5.2f\n", r, v[1], v[2], v[2] / v[1] }'
    i=$((i + 1))
done | tee "$W/rounds.txt"
sort -n -k4 "$W/rounds.txt" | awk '{ r[NR] = $4 } END { printf "median ratio %.2f (min %.2f, max %.2f)\n", r[int((NR + 1) / 2)], r[1], r[NR] }'
