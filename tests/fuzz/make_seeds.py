#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs into tests/fuzz/corpus/<target>/seed-* (committed; rerun
only to change them). Small, valid (or nearly valid) inputs of each format, so the fuzzers start
deep inside the parsers: a GGUF the converter accepts, a safetensors file, tokenizers in the
three importable formats, task specs, constraints, texts. Nothing here is read from outside
the repository. The ulm_model seeds are written by `ulm mkmodel` and `ulm task pack`
(tests/fuzz/run.sh, tests/test_fuzz_corpus.c; one tiny task is committed). Other files in the
corpus are kept by hand: crash-* (inputs a fuzzer broke the code with, fixed since) and case-*
(edge cases made by hand, such as a GGUF with alignment 1 and its tensors at odd offsets)."""
import json, os, struct, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

# ---- GGUF ----
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b

U32, I32, F32, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9

def kv(key, t, val, elem=None):
    out = gstr(key) + struct.pack("<I", t)
    if t == U32: out += struct.pack("<I", val)
    elif t == I32: out += struct.pack("<i", val)
    elif t == F32: out += struct.pack("<f", val)
    elif t == BOOL: out += struct.pack("<B", val)
    elif t == STR: out += gstr(val)
    elif t == ARR:
        out += struct.pack("<IQ", elem, len(val))
        for v in val:
            if elem == STR: out += gstr(v)
            elif elem == F32: out += struct.pack("<f", v)
            elif elem == I32: out += struct.pack("<i", v)
    return out

def q8_0(vals):  # blocks of 32: f16 scale, 32 int8
    out = b""
    for i in range(0, len(vals), 32):
        blk = vals[i:i + 32]
        amax = max(abs(v) for v in blk) or 1.0
        d = amax / 127
        out += struct.pack("<e", d) + bytes((round(v / d) & 0xFF) for v in blk)
    return out

def f16(vals): return b"".join(struct.pack("<e", v) for v in vals)
def f32(vals): return b"".join(struct.pack("<f", v) for v in vals)

def pseudo(n, seed):
    x, out = seed, []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((x / 0x7FFFFFFF - 0.5) * 0.2)
    return out

def gguf(arch, meta, tensors, align=32):
    """tensors: (name, ne list innermost first, ggml type, bytes)"""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta)
    infos, data = b"", b""
    for name, ne, t, raw in tensors:
        data += b"\0" * (-len(data) % align)
        infos += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        infos += struct.pack("<IQ", t, len(data))
        data += raw
    body = head + infos
    body += b"\0" * (-len(body) % align)
    return body + data

def tiny_gguf(arch, tok_model, tokens, merges=None):
    dim, ffn, V = 32, 64, len(tokens)
    meta = [kv("general.architecture", STR, arch), kv("general.name", STR, "fuzz seed"),
            kv(arch + ".block_count", U32, 1), kv(arch + ".embedding_length", U32, dim),
            kv(arch + ".feed_forward_length", U32, ffn), kv(arch + ".attention.head_count", U32, 2),
            kv(arch + ".attention.head_count_kv", U32, 1), kv(arch + ".context_length", U32, 64),
            kv(arch + ".attention.layer_norm_rms_epsilon", F32, 1e-5), kv(arch + ".rope.freq_base", F32, 10000.0),
            kv("tokenizer.ggml.model", STR, tok_model), kv("tokenizer.ggml.tokens", ARR, tokens, STR),
            kv("tokenizer.ggml.scores", ARR, [-float(i) for i in range(V)], F32),
            kv("tokenizer.ggml.token_type", ARR, [6 if t.startswith("<0x") else 3 if t.startswith("<") and len(t) > 2 else 1 for t in tokens], I32),
            kv("tokenizer.ggml.bos_token_id", U32, 1), kv("tokenizer.ggml.eos_token_id", U32, 2)]
    if merges is not None:
        meta.append(kv("tokenizer.ggml.merges", ARR, merges, STR))
        meta.append(kv("tokenizer.ggml.pre", STR, "qwen2"))
    if arch == "gemma3":
        meta += [kv("gemma3.attention.sliding_window", U32, 16), kv("gemma3.attention.key_length", U32, 16),
                 kv("gemma3.attention.value_length", U32, 16)]
    hd = 16
    t = [("token_embd.weight", [dim, V], 8, q8_0(pseudo(dim * V, 1))),
         ("output_norm.weight", [dim], 0, f32([1.0] * dim)),
         ("blk.0.attn_norm.weight", [dim], 0, f32([1.0] * dim)),
         ("blk.0.attn_q.weight", [dim, 2 * hd], 1, f16(pseudo(dim * 2 * hd, 2))),
         ("blk.0.attn_k.weight", [dim, hd], 8, q8_0(pseudo(dim * hd, 3))),
         ("blk.0.attn_v.weight", [dim, hd], 8, q8_0(pseudo(dim * hd, 4))),
         ("blk.0.attn_output.weight", [2 * hd, dim], 0, f32(pseudo(2 * hd * dim, 5))),
         ("blk.0.ffn_norm.weight", [dim], 0, f32([1.0] * dim)),
         ("blk.0.ffn_gate.weight", [dim, ffn], 8, q8_0(pseudo(dim * ffn, 6))),
         ("blk.0.ffn_up.weight", [dim, ffn], 8, q8_0(pseudo(dim * ffn, 7))),
         ("blk.0.ffn_down.weight", [ffn, dim], 8, q8_0(pseudo(ffn * dim, 8)))]
    if arch in ("qwen3", "gemma3"):
        t += [("blk.0.attn_q_norm.weight", [hd], 0, f32([1.0] * hd)), ("blk.0.attn_k_norm.weight", [hd], 0, f32([1.0] * hd))]
    if arch == "gemma3":
        t += [("blk.0.post_attention_norm.weight", [dim], 0, f32([0.0] * dim)),
              ("blk.0.post_ffw_norm.weight", [dim], 0, f32([0.0] * dim))]
    return gguf(arch, meta, t)

spm_tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + ["\u2581", "\u2581a", "b", "\u2581ab", "c"]
put("gguf", "llama-spm.gguf", tiny_gguf("llama", "llama", spm_tokens))
bpe_tokens = [chr(c) for c in range(33, 127)] + ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "Ġa", "ab"]
bpe_tokens = bpe_tokens[:3][::-1] + bpe_tokens  # ids 1 and 2 exist as plain pieces too
put("gguf", "qwen3-bpe.gguf", tiny_gguf("qwen3", "gpt2", bpe_tokens, ["Ġ a", "a b"]))
put("gguf", "gemma3-spm.gguf", tiny_gguf("gemma3", "llama", spm_tokens))

# ---- safetensors ----
hdr = {"__metadata__": {"format": "pt", "note": "fuzz seed"},
       "a.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
       "b.weight": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]},
       "c.bias": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [32, 40]},
       "d.ids": {"dtype": "I64", "shape": [1], "data_offsets": [40, 48]}}
h = json.dumps(hdr).encode()
put("safetensors", "mixed.safetensors", struct.pack("<Q", len(h)) + h + bytes(range(48)))

# ---- Hugging Face folders: config.json NUL model.safetensors (tokenizer.json: fuzz_hf's own) ----
def safetensors(tensors):
    hdr, data = {"__metadata__": {"format": "pt"}}, b""
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr).encode()
    return struct.pack("<Q", len(h)) + h + data

def bf16(vals): return b"".join(struct.pack("<f", v)[2:] for v in vals)

def hf_seed(model_type, extra_cfg, extra_tensors):
    D, F, V, H, KV, hd = 32, 64, 128, 2, 1, 16
    cfg = {"model_type": model_type, "hidden_size": D, "num_hidden_layers": 1, "num_attention_heads": H,
           "num_key_value_heads": KV, "head_dim": hd, "intermediate_size": F, "vocab_size": V, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "max_position_embeddings": 64, "tie_word_embeddings": True}
    cfg.update(extra_cfg)
    p = "model.layers.0."
    t = [("model.embed_tokens.weight", "F32", [V, D], f32(pseudo(V * D, 11))),
         ("model.norm.weight", "F32", [D], f32([1.0] * D)),
         (p + "input_layernorm.weight", "BF16", [D], bf16([1.0] * D)),
         (p + "post_attention_layernorm.weight", "F16", [D], f16([1.0] * D)),
         (p + "self_attn.q_proj.weight", "F16", [H * hd, D], f16(pseudo(H * hd * D, 12))),
         (p + "self_attn.k_proj.weight", "BF16", [KV * hd, D], bf16(pseudo(KV * hd * D, 13))),
         (p + "self_attn.v_proj.weight", "F32", [KV * hd, D], f32(pseudo(KV * hd * D, 14))),
         (p + "self_attn.o_proj.weight", "F32", [D, H * hd], f32(pseudo(D * H * hd, 15))),
         (p + "mlp.gate_proj.weight", "F16", [F, D], f16(pseudo(F * D, 16))),
         (p + "mlp.up_proj.weight", "F16", [F, D], f16(pseudo(F * D, 17))),
         (p + "mlp.down_proj.weight", "F32", [D, F], f32(pseudo(D * F, 18)))]
    t += [(p + n, dt, shp, raw) for n, dt, shp, raw in extra_tensors]
    return json.dumps(cfg).encode() + b"\x00" + safetensors(t)

put("hf", "llama", hf_seed("llama", {}, []))
put("hf", "qwen3", hf_seed("qwen3", {}, [("self_attn.q_norm.weight", "F32", [16], f32([1.0] * 16)),
                                       ("self_attn.k_norm.weight", "F32", [16], f32([1.0] * 16))]))
put("hf", "gemma3", hf_seed("gemma3_text", {"sliding_window": 16, "query_pre_attn_scalar": 16, "rope_local_base_freq": 10000.0,
                                            "layer_types": ["sliding_attention"]},
                            [("self_attn.q_norm.weight", "F32", [16], f32([0.0] * 16)),
                             ("self_attn.k_norm.weight", "F32", [16], f32([0.0] * 16)),
                             ("pre_feedforward_layernorm.weight", "F32", [32], f32([0.0] * 32)),
                             ("post_feedforward_layernorm.weight", "F32", [32], f32([0.0] * 32))]))

# ---- tokenizers: 0 tokenizer.json [NUL tokenizer_config.json], 1 tokenizer.model, 2 llama2.c ----
byte_chars = [chr(c) for c in range(ord("!"), ord("~") + 1)]
vocab = {c: i for i, c in enumerate(byte_chars)}
for extra in ["Ġ", "Ġt", "he", "Ġthe", "in"]:
    vocab[extra] = len(vocab)
tj = {"version": "1.0", "added_tokens": [{"id": len(vocab), "content": "<|im_start|>", "special": True},
                                         {"id": len(vocab) + 1, "content": "<|im_end|>", "special": True}],
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
      "decoder": {"type": "ByteLevel"},
      "model": {"type": "BPE", "vocab": vocab, "merges": ["Ġ t", "h e", "Ġt he", "i n"]}}
cfg = {"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}, "add_bos_token": False}
put("tok_import", "hf.json", b"\x00" + json.dumps(tj).encode() + b"\x00" + json.dumps(cfg).encode())
tj2 = dict(tj)
tj2["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\p{N}"}, "behavior": "Isolated"},
                                                               {"type": "ByteLevel", "add_prefix_space": False}]}
put("tok_import", "hf-split.json", b"\x00" + json.dumps(tj2).encode())

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n: return out
def pb_len(num, payload): return varint(num << 3 | 2) + varint(len(payload)) + payload
def pb_var(num, v): return varint(num << 3) + varint(v)
def pb_f32(num, v): return varint(num << 3 | 5) + struct.pack("<f", v)
pieces = [("<unk>", 2), ("<s>", 3), ("</s>", 3)] + [("<0x%02X>" % b, 6) for b in range(256)] + \
         [("\u2581", 1), ("\u2581t", 1), ("he", 1), ("\u2581the", 1), ("h", 1), ("e", 1), ("t", 1)]
model = b"".join(pb_len(1, pb_len(1, p.encode()) + pb_f32(2, -float(i)) + pb_var(3, ty)) for i, (p, ty) in enumerate(pieces))
model += pb_len(2, pb_var(3, 2) + pb_var(35, 1) + pb_var(40, 0) + pb_var(41, 1) + pb_var(42, 2))
model += pb_len(3, pb_var(3, 1) + pb_var(4, 1) + pb_var(5, 1))
put("tok_import", "spm.model", b"\x01" + model)
l2 = [("<unk>", 0.0), ("\n<s>\n", 0.0), ("\n</s>\n", 0.0)] + [("<0x%02X>" % b, 0.0) for b in range(256)] + \
     [(" t", -1.0), ("he", -2.0), (" the", -3.0), ("h", -4.0), ("e", -5.0), ("t", -6.0), (" ", -7.0)]
bin_ = struct.pack("<I", max(len(s.encode()) for s, _ in l2))
for s, sc in l2:
    bin_ += struct.pack("<fi", sc, len(s.encode())) + s.encode()
put("tok_import", "llama2c.bin", b"\x02" + bin_)

# ---- llama2.c checkpoint (the tokenizer is fuzz_llama2c's own: the llama2c seed above, 266 tokens) ----
D, F, L, H, KV, V, S = 32, 64, 1, 2, 1, len(l2), 32
hs = D // H
counts = [V * D, L * D, L * D * D, L * KV * hs * D, L * KV * hs * D, L * D * D, L * D, L * F * D, L * D * F, L * F * D, D, S * hs]
ck = struct.pack("<7i", D, F, L, H, KV, V, S) + b"".join(f32(pseudo(n, 20 + i)) for i, n in enumerate(counts))
put("llama2c", "tiny.bin", ck)
ck2 = struct.pack("<7i", D, F, L, H, KV, -V, S) + b"".join(f32(pseudo(n, 40 + i)) for i, n in enumerate(counts + [V * D]))
put("llama2c", "tiny-classifier.bin", ck2)

# ---- JSON ----
put("json", "spec.json", open(os.path.join(ROOT, "..", "..", "..", "tasks", "entities", "task.json"), "rb").read())
put("json", "values.json", '{"a":[1,-2.5e-3,true,false,null,"\\u00e9\\ud83d\\ude00\\n"],"b":{"c":{}},"a":0}')
put("json", "deep.json", "[" * 40 + "]" * 40)

# ---- task specs (spec NUL input) and golden lines ----
for name in ("haiku", "entities"):
    spec = open(os.path.join(ROOT, "..", "..", "..", "tasks", name, "task.json"), "rb").read()
    put("task_spec", name + ".spec", spec + b"\x00an old silent pond a frog jumps in")
put("task_spec", "regex.spec", json.dumps({"name": "t", "instruction": "Q: {input}\nA:", "max_tokens": 8,
    "constraint": {"type": "regex", "pattern": "(yes|no)[.!]?"}, "validator": {"pattern": "yes|no", "refusals": ["no"]},
    "beam": 2, "min_confidence": 0.01}) + "\x00is it?")
put("task_spec", "schema.spec", json.dumps({"name": "t", "instruction": "{input} =>", "max_tokens": 24, "stop": ["\n"],
    "sampling": {"temperature": 0.7, "top_k": 5, "top_p": 0.9, "seed": 3},
    "constraint": {"type": "json_schema", "strings_from_input": "words", "distinct_strings": True,
                   "schema": {"type": "object", "properties": {"p": {"type": "array", "items": {"type": "string"}, "maxItems": 2}},
                              "required": ["p"]}}}) + "\x00Ann met Bob")
put("task_spec", "golden.jsonl", '{"input": "a b", "output": "a\\nb"}\n{"input": "x", "output": {"people": ["x"]}}\n')

# ---- constraints (spec NUL input NUL choices) ----
cons = [({"type": "choice", "choices": ["positive", "negative", "neutral"]}, ""),
        ({"type": "regex", "pattern": "[A-Z][a-z]+( [a-z]+){0,3}\\.", "leading_space": True}, ""),
        ({"type": "lines", "breaks": 2}, "an old silent pond a frog jumps into the pond splash silence again"),
        ({"type": "json_schema", "schema": {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"enum": ["a", 1, None]},
          "f": {"type": "number"}, "b": {"type": "boolean"}}, "required": ["n"]}}, ""),
        ({"type": "json_schema", "strings_from_input": "words_in_order", "schema": {"type": "object", "properties":
          {"people": {"type": "array", "items": {"type": "string"}}}, "required": ["people"]}}, "Ann Lee met Bob in Paris"),
        ({"type": "any_of", "of": [{"type": "choice", "choices": ["none"]}, {"type": "regex", "pattern": "\\d{1,3}"}]}, ""),
        ({"type": "tagged_spans", "tags": {"p": "people", "l": "places"}, "max_items": 4}, "Ann went to Oslo")]
for i, (spec, inp) in enumerate(cons):
    put("constraint", "%d-%s" % (i, spec["type"]), json.dumps(spec).encode() + b"\x00" + inp.encode() + b"\x00" + bytes([1, 7, 3, 200, 9, 0, 5] * 6))

# ---- chat templates (template byte, then role byte + content per message, NUL-separated) ----
for t in range(3):
    put("chat_template", "t%d" % t, bytes([t | 0x80]) + b"\x00You are brief.\x00\x01Hi <|im_start|>\x00\x02Hello\x00\x01Bye")

# ---- texts to tokenize ----
texts = {"ascii": b"Hello, world! 2026-11-24 <|in|> x<|out|>", "accents": "Łukasz Ó'Brien in Köln, São Paulo".encode(),
         "emoji": "\U0001F600 \u2581 \u00e9\u0301 \ufeff tab\tnl\n".encode(), "bad-utf8": b"abc\xc3\x28\xed\xa0\x80\xf4\x90\x80\x80",
         "spaces": b"   many   spaces\r\n\n", "empty": b""}
for k, v in texts.items():
    put("tokenize", k, v)
