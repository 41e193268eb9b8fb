#!/bin/sh
# Retrains tasks/haiku/haiku.ulm from scratch (make models runs this from the repo root):
# training data from the seeded generator, the task BPE, the model, quantization, packing
# with the spec and golden set, then the golden eval. Deterministic for a given machine
# (seeded data, init and batches). --precision f32: the shipped model was trained with f32
# products (the trainer's default on AMX machines is bf16, tasks/README.md).
set -e
ULM=${ULM:-build/ulm}
GEN=${GEN:-build/gen-haiku}
W=${WORK:-build/models/haiku}
THREADS=${THREADS:-1}
TYPE=${TYPE:-q8}
mkdir -p "$W"
"$GEN" --seed 1 -o "$W/train.jsonl"
"$GEN" --split valid --seed 1 -o "$W/valid.jsonl"
"$ULM" train bpe --task tasks/haiku/task.json --vocab 4096 --out "$W/tok.ulm" "$W/train.jsonl"
# six cosine cycles, as the shipped model was trained: 3000 steps, then from that checkpoint
# a 6000-step schedule resumed at step 3000 (a warm restart at lr 1.65e-3)
"$ULM" train --task tasks/haiku/task.json --data "$W/train.jsonl" --val "$W/valid.jsonl" --tokenizer "$W/tok.ulm" \
    --arch llama --dim 128 --layers 4 --heads 4 --kv-heads 4 --head-dim 32 --ffn 384 --ctx 256 \
    --steps 3000 --batch 24 --lr 3e-3 --warmup 100 --seed 1 --threads "$THREADS" --precision f32 \
    --eval-every 500 --log-every 100 --checkpoint "$W/phase1.ckpt" --out "$W/phase1-f32.ulm"
"$ULM" train --task tasks/haiku/task.json --resume "$W/phase1.ckpt" --data "$W/train.jsonl" --val "$W/valid.jsonl" --tokenizer "$W/tok.ulm" \
    --steps 6000 --batch 24 --lr 3e-3 --warmup 100 --threads "$THREADS" --precision f32 \
    --eval-every 500 --log-every 100 --checkpoint "$W/phase2.ckpt" --out "$W/phase2-f32.ulm"
# a third cycle from step 6000 of an 8500-step schedule at lr 1.5e-3
"$ULM" train --task tasks/haiku/task.json --resume "$W/phase2.ckpt" --data "$W/train.jsonl" --val "$W/valid.jsonl" \
    --steps 8500 --batch 24 --lr 1.5e-3 --warmup 100 --threads "$THREADS" --precision f32 \
    --eval-every 500 --log-every 100 --checkpoint "$W/phase3.ckpt" --out "$W/phase3-f32.ulm"
# a fourth from step 8500 of an 11000-step schedule at lr 1.5e-3
"$ULM" train --task tasks/haiku/task.json --resume "$W/phase3.ckpt" --data "$W/train.jsonl" --val "$W/valid.jsonl" \
    --steps 11000 --batch 24 --lr 1.5e-3 --warmup 100 --threads "$THREADS" --precision f32 \
    --eval-every 500 --log-every 100 --checkpoint "$W/phase4.ckpt" --out "$W/phase4-f32.ulm"
# a fifth from step 11000 of a 16000-step schedule at lr 1.5e-3 (refusals 81% -> 94%)
"$ULM" train --task tasks/haiku/task.json --resume "$W/phase4.ckpt" --data "$W/train.jsonl" --val "$W/valid.jsonl" \
    --steps 16000 --batch 24 --lr 1.5e-3 --warmup 100 --threads "$THREADS" --precision f32 \
    --eval-every 500 --log-every 100 --checkpoint "$W/phase5.ckpt" --out "$W/phase5-f32.ulm"
# a sixth from step 16000 of a 21000-step schedule at lr 1.5e-3 (golden f32 97.75% -> 98.75%)
"$ULM" train --task tasks/haiku/task.json --resume "$W/phase5.ckpt" --data "$W/train.jsonl" --val "$W/valid.jsonl" \
    --steps 21000 --batch 24 --lr 1.5e-3 --warmup 100 --threads "$THREADS" --precision f32 \
    --eval-every 500 --log-every 100 --checkpoint "$W/phase6.ckpt" --out "$W/model-f32.ulm"
"$ULM" train --init "$W/model-f32.ulm" --steps 0 --type "$TYPE" --data "$W/valid.jsonl" --out "$W/model-$TYPE.ulm"
"$ULM" task pack tasks/haiku/task.json "$W/model-f32.ulm" -o "$W/haiku-f32.ulm" --golden tasks/haiku/golden.jsonl
"$ULM" task pack tasks/haiku/task.json "$W/model-$TYPE.ulm" -o tasks/haiku/haiku.ulm --golden tasks/haiku/golden.jsonl
"$ULM" eval tasks/haiku/haiku.ulm --baseline "$W/haiku-f32.ulm" --max-drop 0.02 -t "$THREADS"
