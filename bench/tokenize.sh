#!/bin/sh
# Encode speed per tokenizer family: ulm tokenize vs llama.cpp's llama-tokenize on the same text.
#   sh bench/tokenize.sh [TEXT_FILE]
# TEXT_FILE defaults to ~1 MB built from the tokenizer test corpus (tests/fixtures/tokenizers).
# GGUFs carrying the real tokenizers are written under $WORK (default /tmp/tokbench) with the peer
# kit's make_gguf.py; ulm reads the tokenizer.json / tokenizer.model sources directly.
# Reported: tokens, wall time of the whole command (load included) and ulm's encode-only MB/s.
set -e
SHARED=${SHARED:-../shared}
WORK=${WORK:-/tmp/tokbench}
LT=${LLAMA_TOKENIZE:-$HOME/.ulm-peer/llama.cpp-src/build/bin/llama-tokenize}
ULM=${ULM:-build/ulm}
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
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "text: $TEXT ($(wc -c < "$TEXT") bytes)"
printf "%-22s %10s %10s %10s %10s %12s\n" tokenizer llama_tok ulm_tok llama_s ulm_s ulm_enc_MB/s
for t in llama2-sentencepiece smollm2 llama3 qwen3 gemma3; do
    arch=llama
    case $t in qwen*) arch=qwen3 ;; gemma*) arch=gemma3 ;; esac
    [ -f "$WORK/$t.gguf" ] || /usr/bin/python3 "$SHARED/peer/make_gguf.py" "$WORK/$t.gguf" --preset tiny --arch $arch \
        --type q8_0 --tokenizer "$SHARED/tokenizers/$t" >/dev/null
    src="$SHARED/tokenizers/$t/tokenizer.json"
    [ -f "$src" ] || src="$SHARED/tokenizers/$t/tokenizer.model"
    s0=$(date +%s.%N)
    ln=$("$LT" -m "$WORK/$t.gguf" -f "$TEXT" --ids --no-bos --no-parse-special --no-escape --show-count --log-disable 2>/dev/null | tail -1 | sed 's/[^0-9]//g')
    s1=$(date +%s.%N)
    un=$("$ULM" tokenize "$src" -f "$TEXT" --no-bos --count --time 2>"$WORK/ulm_time.txt")
    s2=$(date +%s.%N)
    mbs=$(sed -n 's/.* \([0-9.]*\) MB\/s/\1/p' "$WORK/ulm_time.txt")
    printf "%-22s %10s %10s %10.2f %10.2f %12s\n" $t "$ln" "$un" $(echo "$s1 - $s0" | bc) $(echo "$s2 - $s1" | bc) "$mbs"
done
