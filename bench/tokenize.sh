#!/bin/sh
# Encode speed per tokenizer family: ulm vs llama.cpp on the same text and the same GGUF.
#   sh bench/tokenize.sh [TEXT_FILE]
# TEXT_FILE defaults to ~1 MB built from the tokenizer test corpus (tests/fixtures/tokenizers).
# GGUFs carrying the real tokenizers are written under $WORK (default /tmp/tokbench) with the peer
# kit's make_gguf.py. Columns:
#   tokens        llama-tokenize / ulm on the GGUF / ulm on tokenizer.json (.model)
#   llama MB/s    llama.cpp's encode alone (bench/tokenize_llama.mjs: node-llama-cpp, same release,
#                 vocabulary loaded once), best of $REPS
#   ulm MB/s      ulm's encode alone (ulm tokenize --time), best of $REPS, on the GGUF and on the json
#   llama wall s  the whole llama-tokenize command (load included), for reference
# Speeds are bytes per second of CPU time of the encode (both single-threaded): on a shared VM
# the wall time mostly measures the neighbours. Then linear time: one line of 1 MB and of 2 MB
# without spaces (random lowercase letters), ulm CPU seconds.
set -e
SHARED=${SHARED:-../shared}
WORK=${WORK:-/tmp/tokbench}
PEER_DIR=${PEER_DIR:-$HOME/.ulm-peer}
LT=${LLAMA_TOKENIZE:-$PEER_DIR/llama.cpp-src/build/bin/llama-tokenize}
ULM=${ULM:-build/ulm}
REPS=${REPS:-3}
mkdir -p "$WORK"
TEXT=${1:-$WORK/text.txt}
if [ ! -f "$TEXT" ]; then
    /usr/bin/python3 -c "
import json
lines=[json.loads(l) for l in open('tests/fixtures/tokenizers/corpus.jsonl', encoding='utf-8')]
s='\n'.join(lines)
out=(s+'\n')*(1+1000000//len(s.encode()))
open('$TEXT','w',encoding='utf-8').write(out[:1000000])"
fi
for mb in 1 2; do
    [ -f "$WORK/line$mb.txt" ] || /usr/bin/python3 -c "
import random
r=random.Random(5)
open('$WORK/line$mb.txt','w').write(''.join(r.choice('abcdefghijklmnopqrstuvwxyz') for _ in range($mb*1000000)))"
done
# best encode MB/s of REPS runs of ulm tokenize --time; prints "tokens MB/s"
ulm_speed() {
    best=0; n=0
    for r in $(seq "$REPS"); do
        n=$("$ULM" tokenize "$1" -f "$2" --no-bos --count --time 2>"$WORK/ulm_time.txt")
        m=$(sed -n 's/.*cpu [0-9.]* s, \([0-9.]*\) MB\/s/\1/p' "$WORK/ulm_time.txt")
        best=$(echo "if ($m > $best) $m else $best" | bc)
    done
    echo "$n $best"
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "text: $TEXT ($(wc -c < "$TEXT") bytes); no BOS, special-token text not parsed"
printf "%-22s %9s %9s %9s %11s %11s %11s %12s\n" tokenizer llama_tok ulm_gguf ulm_json "llama MB/s" "ulm_gguf" "ulm_json" "llama wall s"
for t in llama2-sentencepiece smollm2 llama3 qwen3 gemma3; do
    arch=llama
    case $t in qwen*) arch=qwen3 ;; gemma*) arch=gemma3 ;; esac
    g="$WORK/$t.gguf"
    [ -f "$g" ] || /usr/bin/python3 "$SHARED/peer/make_gguf.py" "$g" --preset tiny --arch $arch \
        --type q8_0 --tokenizer "$SHARED/tokenizers/$t" >/dev/null
    src="$SHARED/tokenizers/$t/tokenizer.json"
    [ -f "$src" ] || src="$SHARED/tokenizers/$t/tokenizer.model"
    s0=$(date +%s.%N)
    ln=$("$LT" -m "$g" -f "$TEXT" --ids --no-bos --no-parse-special --no-escape --show-count --log-disable 2>/dev/null | tail -1 | sed 's/[^0-9]//g')
    s1=$(date +%s.%N)
    lmbs=$(PEER_DIR=$PEER_DIR node bench/tokenize_llama.mjs "$g" "$TEXT" "$REPS" 2>/dev/null | cut -d' ' -f5)
    set -- $(ulm_speed "$g" "$TEXT"); ug=$1; ugm=$2
    set -- $(ulm_speed "$src" "$TEXT"); uj=$1; ujm=$2
    printf "%-22s %9s %9s %9s %11s %11s %11s %12.2f\n" $t "$ln" "$ug" "$uj" "$lmbs" "$ugm" "$ujm" $(echo "$s1 - $s0" | bc)
done
echo "linear time, one line without spaces (ulm encode CPU s; ratio 2 MB / 1 MB):"
for t in llama2-sentencepiece smollm2 llama3 qwen3 gemma3; do
    "$ULM" tokenize "$WORK/$t.gguf" -f "$WORK/line1.txt" --no-bos --count --time 2>"$WORK/t1.txt" >/dev/null
    "$ULM" tokenize "$WORK/$t.gguf" -f "$WORK/line2.txt" --no-bos --count --time 2>"$WORK/t2.txt" >/dev/null
    a=$(sed -n 's/.*cpu \([0-9.]*\) s.*/\1/p' "$WORK/t1.txt"); b=$(sed -n 's/.*cpu \([0-9.]*\) s.*/\1/p' "$WORK/t2.txt")
    printf "%-22s 1 MB %7.3f s   2 MB %7.3f s   ratio %5.2f\n" $t "$a" "$b" $(echo "scale=3; $b / $a" | bc)
done
