/* GGUF → .ulm: llama, qwen2, qwen3 and gemma3 files as llama.cpp's converter writes them.
 *
 * GGUF tensor names are already the engine's (minus ".weight"), and GGUF already stores the
 * layouts the engine expects: llama q/k rows permuted for interleaved RoPE, gemma3 norm weights
 * as (1 + w). So this importer maps hyperparameter keys and hands tensors to conv_tensor:
 * F32/F16/BF16/Q8_0/Q4_0 are used as they lie (or converted by --type); Q4_1, Q5_0, Q5_1,
 * Q4_K, Q5_K and Q6_K are dequantized here and requantized (to q8 unless --type says otherwise)
 * with a warning; any other ggml type is refused by name.
 *
 * Keys read ({a} = general.architecture), as llama.cpp reads them:
 *   {a}.embedding_length, .block_count, .feed_forward_length, .context_length,
 *   .attention.head_count, .attention.head_count_kv (default = heads), .attention.key_length
 *   (default dim/heads), .attention.layer_norm_rms_epsilon, .rope.freq_base (10000),
 *   .rope.dimension_count (must be head_dim: partial RoPE is not supported),
 *   .rope.scaling.type (none/linear factor 1 only; llama 3 scaling comes as rope_freqs),
 *   gemma3: .attention.sliding_window, .attention.sliding_window_pattern (number, default 6,
 *   or a per-layer bool array), .rope.freq_base_swa (default 10000), .final_logit_softcapping
 *   (must be 0/absent). The query scale is llama.cpp's: 1/sqrt(head_dim), except the 62-layer
 *   gemma3 (27B): 1/sqrt(dim/heads). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert.h"
#include "gguf.h"
#include "kernels.h"
#include "tok_import.h"


/* ---- dequantizers for the ggml block types the engine does not run (layouts as ggml's) ---- */
static float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return ulm_f16_to_f32(h);
}

/* Q4_1: d, m (f16), 16 bytes of nibbles (j low, j+16 high): x = d*q + m */
static void deq_q4_1(const uint8_t *b, float *y) {
    float d = f16(b), m = f16(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (b[4 + j] & 15) + m;
        y[j + 16] = d * (b[4 + j] >> 4) + m;
    }
}

/* Q5_0 / Q5_1: d (, m), u32 of fifth bits, 16 bytes of nibbles: x = d*(q - 16)  or  d*q + m */
static void deq_q5(const uint8_t *b, float *y, int has_min) {
    float d = f16(b), m = has_min ? f16(b + 2) : 0;
    const uint8_t *p = b + (has_min ? 4 : 2);
    uint32_t qh;
    memcpy(&qh, p, 4);
    const uint8_t *qs = p + 4;
    int off = has_min ? 0 : 16;
    for (int j = 0; j < 16; j++) {
        int x0 = (qs[j] & 15) | (((qh >> j) & 1) << 4);
        int x1 = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
        y[j] = d * (x0 - off) + m;
        y[j + 16] = d * (x1 - off) + m;
    }
}

/* K-quant 6-bit scale and min j of the 12 packed bytes (Q4_K, Q5_K) */
static void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K (144 bytes / 256) and Q5_K (176 bytes / 256): d, dmin, scales[12], (qh[32]), qs[128] */
static void deq_qk45(const uint8_t *b, float *y, int five) {
    float d = f16(b), dmin = f16(b + 2);
    const uint8_t *sc = b + 4, *qh = b + 16, *q = b + (five ? 48 : 16);
    int is = 0;
    unsigned u1 = 1, u2 = 2;
    for (int j = 0; j < 256; j += 64) {
        int s1, m1, s2, m2;
        scale_min_k4(is, sc, &s1, &m1);
        scale_min_k4(is + 1, sc, &s2, &m2);
        for (int l = 0; l < 32; l++) *y++ = d * s1 * ((q[l] & 15) + (five && (qh[l] & u1) ? 16 : 0)) - dmin * m1;
        for (int l = 0; l < 32; l++) *y++ = d * s2 * ((q[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - dmin * m2;
        q += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
    }
}

/* Q6_K (210 bytes / 256): ql[128], qh[64], int8 scales[16], d */
static void deq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16(b + 208);
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

/* Dequantizes n values of a ggml type this importer can read but the engine does not run.
 * Returns -1 for a type it cannot read. */
int ggml_dequantize(uint32_t type, const void *src, float *dst, uint64_t n) {
    uint32_t blck, bytes;
    if (gguf_ggml_block(type, &blck, &bytes) || n % blck) return -1;
    const uint8_t *b = src;
    for (uint64_t i = 0; i < n / blck; i++, b += bytes, dst += blck) {
        switch (type) {
        case GGML_Q4_1: deq_q4_1(b, dst); break;
        case GGML_Q5_0: deq_q5(b, dst, 0); break;
        case GGML_Q5_1: deq_q5(b, dst, 1); break;
        case GGML_Q4_K: deq_qk45(b, dst, 0); break;
        case GGML_Q5_K: deq_qk45(b, dst, 1); break;
        case GGML_Q6_K: deq_q6_k(b, dst); break;
        default: return -1;
        }
    }
    return 0;
}

/* ggml types the engine runs directly */
static int native_dtype(uint32_t t) {
    switch (t) {
    case GGML_F32: return ULM_DT_F32;
    case GGML_F16: return ULM_DT_F16;
    case GGML_BF16: return ULM_DT_BF16;
    case GGML_Q8_0: return ULM_DT_Q8;
    case GGML_Q4_0: return ULM_DT_Q4;
    default: return -1;
    }
}

static void close_gguf(void *g) { gguf_close(g); }

/* {arch}.suffix as a u32; -1 if absent */
static int key_u32(const gguf *g, const char *arch, const char *suffix, uint32_t *out) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, suffix);
    return gguf_get_u32(g, k, out);
}
static int key_f32(const gguf *g, const char *arch, const char *suffix, float *out) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, suffix);
    return gguf_get_f32(g, k, out);
}

/* Sliding-window pattern from a per-layer array: the period p such that layer i is global
 * exactly when (i + 1) % p == 0; 0 if the array has no such period. */
static uint32_t pattern_from_array(const gguf_kv *kv, uint32_t n_layers) {
    if (kv->count != n_layers) return 0;
    for (uint32_t p = 1; p <= n_layers + 1; p++) {
        int ok = 1;
        for (uint32_t i = 0; i < n_layers && ok; i++) {
            int64_t swa;
            if (gguf_arr_i64(kv, i, &swa)) return 0;
            ok = (swa != 0) == ((i + 1) % p != 0);
        }
        if (ok) return p;
    }
    return 0;
}

static ulm_status write_hparams(const gguf *g, const char *arch, ulmw *w, uint32_t vocab, ulm_error *err) {
    uint32_t dim, n_layers, n_heads, n_kv, hd, ffn, ctx = 2048, v;
    float eps = 1e-5f, theta = 10000.0f, f;
    if (key_u32(g, arch, "embedding_length", &dim) || key_u32(g, arch, "block_count", &n_layers) ||
        key_u32(g, arch, "attention.head_count", &n_heads) || key_u32(g, arch, "feed_forward_length", &ffn))
        return ulm_set_error(err, ULM_ERR_FORMAT, "GGUF: %s.embedding_length, block_count, attention.head_count or feed_forward_length is missing (or not a single number)", arch);
    if (!dim || !n_layers || !n_heads || !ffn) return ulm_set_error(err, ULM_ERR_FORMAT, "GGUF: a model dimension is 0");
    if (key_u32(g, arch, "attention.head_count_kv", &n_kv)) n_kv = n_heads;
    if (key_u32(g, arch, "attention.key_length", &hd)) hd = dim / n_heads;
    if (!key_u32(g, arch, "attention.value_length", &v) && v != hd)
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "GGUF: value_length %u != key_length %u is not supported", v, hd);
    if (!key_u32(g, arch, "rope.dimension_count", &v) && v != hd)
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "GGUF: partial RoPE (rope.dimension_count %u of head_dim %u) is not supported", v, hd);
    key_u32(g, arch, "context_length", &ctx);
    key_f32(g, arch, "attention.layer_norm_rms_epsilon", &eps);
    key_f32(g, arch, "rope.freq_base", &theta);
    char k[128], s[32] = "none";
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    gguf_get_cstr(g, k, s, sizeof s);
    if (strcmp(s, "none") && !(strcmp(s, "linear") == 0 && (key_f32(g, arch, "rope.scaling.factor", &f) || f == 1.0f)))
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "GGUF: rope scaling '%s' is not supported", s);
    if (!key_f32(g, arch, "final_logit_softcapping", &f) && f != 0)
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "GGUF: final logit soft-capping is not supported");
    if (!key_f32(g, arch, "attn_logit_softcapping", &f) && f != 0)
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "GGUF: attention logit soft-capping is not supported");
    ulmw_set_str(w, "general.architecture", arch, strlen(arch));
    char name[256];
    if (!gguf_get_cstr(g, "general.name", name, sizeof name)) ulmw_set_str(w, "general.name", name, strlen(name));
    ulmw_set_u32(w, "model.dim", dim);
    ulmw_set_u32(w, "model.n_layers", n_layers);
    ulmw_set_u32(w, "model.n_heads", n_heads);
    ulmw_set_u32(w, "model.n_kv_heads", n_kv);
    ulmw_set_u32(w, "model.head_dim", hd);
    ulmw_set_u32(w, "model.ffn_dim", ffn);
    ulmw_set_u32(w, "model.vocab_size", vocab);
    ulmw_set_u32(w, "model.max_ctx", ctx);
    ulmw_set_f32(w, "model.norm_eps", eps);
    ulmw_set_f32(w, "model.rope_theta", theta);
    if (!strcmp(arch, "gemma3")) {
        uint32_t swa = 0, pattern = 6;
        float theta_local = 10000.0f;
        if (!key_u32(g, arch, "attention.sliding_window", &swa) && swa > 0) {
            snprintf(k, sizeof k, "%s.attention.sliding_window_pattern", arch);
            const gguf_kv *kv = gguf_find(g, k);
            if (kv && kv->type == GGUF_ARR) {
                if (!(pattern = pattern_from_array(kv, n_layers)))
                    return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "GGUF: this sliding-window layer pattern is not periodic (not supported)");
            } else if (kv && gguf_get_u32(g, k, &pattern)) {
                return ulm_set_error(err, ULM_ERR_FORMAT, "GGUF: %s is not a number", k);
            }
            /* pattern 0 means every layer is local: a period longer than the model */
            if (pattern == 0) pattern = n_layers + 1;
            key_f32(g, arch, "rope.freq_base_swa", &theta_local);
            ulmw_set_u32(w, "model.sliding_window", swa);
            ulmw_set_u32(w, "model.sliding_pattern", pattern);
            ulmw_set_f32(w, "model.rope_theta_local", theta_local);
        }
        float qs = n_layers == 62 ? 1.0f / sqrtf((float)dim / n_heads) : 1.0f / sqrtf((float)hd);
        ulmw_set_f32(w, "model.query_scale", qs);
    }
    return ULM_OK;
}

/* "token_embd.weight" → "token_embd"; biases keep their ".bias". */
static void ulm_name(const char *gname, char *out, size_t cap) {
    size_t n = strlen(gname);
    if (n > 7 && !strcmp(gname + n - 7, ".weight")) n -= 7;
    if (n >= cap) n = cap - 1;
    memcpy(out, gname, n);
    out[n] = 0;
}

ulm_status convert_gguf(converter *cv, const char *path, const char *tokenizer_path, ulm_error *err) {
    gguf *g;
    ulm_status st = gguf_open(path, &g, err);
    if (st) return st;
    cv->src = g;
    cv->src_close = close_gguf;
    char arch[64];
    if (gguf_get_cstr(g, "general.architecture", arch, sizeof arch))
        return ulm_set_error(err, ULM_ERR_FORMAT, "%s: general.architecture is missing", path);
    if (strcmp(arch, "llama") && strcmp(arch, "qwen2") && strcmp(arch, "qwen3") && strcmp(arch, "gemma3"))
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (llama, qwen2, qwen3, gemma3)", path, arch);
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2) return ulm_set_error(err, ULM_ERR_FORMAT, "%s: token_embd.weight is missing or not a matrix", path);
    if (emb->ne[1] > (1u << 22)) return ulm_set_error(err, ULM_ERR_FORMAT, "%s: vocabulary of %llu rows is too large", path, (unsigned long long)emb->ne[1]);
    if ((st = write_hparams(g, arch, cv->w, (uint32_t)emb->ne[1], err))) return st;

    if (tokenizer_path) st = tok_import_path(tokenizer_path, cv->w, err);
    else st = tok_import_gguf(g, cv->w, err);
    if (st) return st;

    int warned = 0;
    for (int i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        char name[256];
        ulm_name(t->name, name, sizeof name);
        uint64_t shape[GGUF_MAX_DIMS];
        for (uint32_t d = 0; d < t->n_dims; d++) shape[d] = t->ne[t->n_dims - 1 - d]; /* outermost first */
        int dt = native_dtype(t->type);
        if (dt >= 0) {
            if ((st = conv_tensor(cv, name, (ulm_dtype)dt, t->n_dims, shape, t->data, err))) return st;
            continue;
        }
        float *buf = conv_keep(cv, malloc(t->n_elements * sizeof *buf));
        if (!buf) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory dequantizing %s", t->name);
        if (ggml_dequantize(t->type, t->data, buf, t->n_elements))
            return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "%s: tensor %s has ggml type %s, which ulm cannot read", path, t->name, gguf_ggml_type_name(t->type));
        int saved = cv->target;
        if (cv->target < 0) cv->target = ULM_DT_Q8;
        if (!warned && !cv->quiet)
            fprintf(stderr, "ulm convert: warning: %s tensors (first: %s) are dequantized and requantized to %s\n",
                    gguf_ggml_type_name(t->type), t->name, ulm_dtype_name((ulm_dtype)cv->target));
        warned = 1;
        st = conv_tensor(cv, name, ULM_DT_F32, t->n_dims, shape, buf, err);
        cv->target = saved;
        if (st) return st;
    }
    return ULM_OK;
}
