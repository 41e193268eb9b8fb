#!/bin/sh
# Trainer throughput on the entity recipe (tasks/entities/train.sh's model and batch),
# interleaved rounds over one or more ulm binaries (to compare builds of the trainer).
#   sh bench/train_speed.sh [STEPS] [ROUNDS] [ULM[:PRECISION[:THREADS]] ...]   (defaults: 300 3 build/ulm)
# ULM:f32 / ULM:bf16 pass --precision (e.g. build/ulm:f32 build/ulm:bf16 compares the two);
# ULM:auto:2 trains on 2 threads (default 1).
# Each run starts the process (data load and tokenization included), as in make models.
set -e
STEPS=${1:-300}
R=${2:-3}
shift 2 2>/dev/null || shift $#
[ $# -gt 0 ] || set -- build/ulm
W=${TMPDIR:-/tmp}/ulm-bench-train
mkdir -p "$W"
build/gen-entities --seed 1 --novel 50 --shapes 30 --grammar 85 --n 100000 -o "$W/train.jsonl"
"${1%%:*}" train bpe --task tasks/entities/task.json --vocab 2048 --out "$W/tok.ulm" "$W/train.jsonl" > /dev/null
echo "command: $0 $STEPS $R $*"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
i=1
while [ $i -le "$R" ]; do
    for u in "$@"; do
        bin=${u%%:*}
        prec=; th=1
        case $u in *:*) rest=${u#*:}; prec="--precision ${rest%%:*}"; case $rest in *:*) th=${rest#*:} ;; esac ;; esac
        t=$("$bin" train $prec --task tasks/entities/task.json --data "$W/train.jsonl" --tokenizer "$W/tok.ulm" \
            --arch llama --dim 160 --layers 4 --heads 5 --kv-heads 5 --head-dim 32 --ffn 480 --ctx 256 \
            --steps "$STEPS" --batch 16 --lr 3e-3 --warmup 200 --seed 1 --threads "$th" \
            --eval-every 1000000 --log-every 1000000 --out "$W/out.ulm" 2>&1 | awk '/^trained/ {print $(NF-1)}')
        echo "round $i $u $t"
    done
    i=$((i + 1))
done | tee "$W/rounds.txt"
echo "median tokens/s (ratio to the first binary):"
awk '{v[$3] = v[$3] " " $4; if (!($3 in o)) { o[$3] = ++n; name[n] = $3 } }
END { for (k = 1; k <= n; k++) { m = split(v[name[k]], a, " "); for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++)
        if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
      med[k] = m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
      printf "  %s %.0f (%.2fx)\n", name[k], med[k], med[k] / med[1] } }' "$W/rounds.txt"
