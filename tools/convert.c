#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert.h"
#include "llama2c.h"
#include "tok_import.h"

void *conv_keep(converter *cv, void *buf) {
    if (!buf) return NULL;
    if (cv->n_bufs == cv->cap_bufs) {
        int cap = cv->cap_bufs ? 2 * cv->cap_bufs : 64;
        void **b = realloc(cv->bufs, (size_t)cap * sizeof *b);
        if (!b) { free(buf); return NULL; }
        cv->bufs = b;
        cv->cap_bufs = cap;
    }
    cv->bufs[cv->n_bufs++] = buf;
    return buf;
}

void conv_release(converter *cv) {
    for (int i = 0; i < cv->n_bufs; i++) free(cv->bufs[i]);
    free(cv->bufs);
    cv->bufs = NULL;
    cv->n_bufs = cv->cap_bufs = 0;
    if (cv->src && cv->src_close) cv->src_close(cv->src);
    cv->src = NULL;
}

/* 1 if row[0..n) holds an infinity or a NaN. */
static int has_nonfinite(const float *row, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(row[i])) return 1;
    return 0;
}

/* Every value is read once, converted or not: a weight that is infinite or NaN (a corrupt or
 * diverged source; the quantizers' float-to-int rounding is undefined on it) is an error
 * naming the tensor, not a model that answers NaN. */
ulm_status conv_tensor(converter *cv, const char *name, ulm_dtype src, uint32_t ndim, const uint64_t *shape,
                       const void *data, ulm_error *err) {
    uint64_t rows = 1, cols = shape[ndim - 1];
    for (uint32_t d = 0; d + 1 < ndim; d++) rows *= shape[d];
    ulm_dtype dst = src;
    if (ndim == 1) dst = ULM_DT_F32; /* norms and biases: small and sensitive */
    else if (cv->target >= 0) dst = (ulm_dtype)cv->target;
    /* q8r16/q4r16 targets: matrices are quantized to q8/q4, then rows interleaved by 16 for
     * the SIMD kernels. The embedding table too: a tied model's output projection is the
     * largest matmul (262144 x 640 in Gemma 3), and one row per token is gathered just as
     * cheaply from a group (ulm_dequantize_row_at). */
    int repack = dst == ULM_DT_Q8_R16 || dst == ULM_DT_Q4_R16;
    if (repack) dst = dst == ULM_DT_Q8_R16 ? ULM_DT_Q8 : ULM_DT_Q4;
    /* q8/q4 matrices are interleaved unless --plain asks for the GGUF layout: the same values,
     * read 1.3-2x faster by the decode kernels (bench/results/kernels-*.md) */
    if (!cv->plain && (dst == ULM_DT_Q8 || dst == ULM_DT_Q4)) repack = 1;
    if ((dst == ULM_DT_Q8 || dst == ULM_DT_Q4) && cols % QK) {
        if (!cv->quiet) fprintf(stderr, "ulm convert: %s has %llu columns (not a multiple of %d): kept as f16\n", name, (unsigned long long)cols, QK);
        dst = ULM_DT_F16;
        repack = 0;
        cv->n_fallback++;
    }
    if (cols > INT32_MAX) return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "tensor %s: %llu columns is too many", name, (unsigned long long)cols);
    char *out = NULL;
    size_t srb = ulm_dtype_row_bytes(src, cols), drb = ulm_dtype_row_bytes(dst, cols);
    if (!srb || !drb) return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "tensor %s: cannot convert %s to %s", name, ulm_dtype_name(src), ulm_dtype_name(dst));
    if (dst != src && !(out = malloc(rows * drb))) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory converting %s", name);
    float *row = malloc(cols * sizeof *row);
    if (!row) { free(out); return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory converting %s", name); }
    for (uint64_t r = 0; r < rows; r++) {
        ulm_dequantize_row(src, (const char *)data + r * srb, row, (int)cols);
        if (has_nonfinite(row, cols)) {
            free(row);
            free(out);
            return ulm_set_error(err, ULM_ERR_FORMAT, "tensor %s: row %llu holds an infinite or NaN value", name, (unsigned long long)r);
        }
        if (out) ulm_quantize_row(dst, row, out + r * drb, (int)cols);
    }
    free(row);
    const void *plain = out ? out : data;
    if (repack) {
        void *il = ulm_interleave_rows_new(dst, plain, rows, cols); /* NULL: the plain layout is kept */
        if (il) {
            free(out);
            out = il;
            plain = il;
            dst = ulm_dtype_interleaved(dst);
        }
    }
    if (ulmw_add_tensor(cv->w, name, dst, ndim, shape, plain, out != NULL)) {
        free(out);
        return ulm_set_error(err, ULM_ERR_NOMEM, "cannot add tensor %s", name);
    }
    return ULM_OK;
}

ulm_status convert_llama2c(converter *cv, const char *ckpt, const char *tokenizer_path, void **keep, ulm_error *err) {
    llama2c_ckpt ck;
    ulm_status st = llama2c_load(ckpt, &ck, err);
    if (st) return st;
    *keep = ck.buf;
    ulmw *w = cv->w;
    int hd = ck.dim / ck.n_heads;
    ulmw_set_str(w, "general.architecture", "llama", 5);
    ulmw_set_u32(w, "model.dim", (uint32_t)ck.dim);
    ulmw_set_u32(w, "model.n_layers", (uint32_t)ck.n_layers);
    ulmw_set_u32(w, "model.n_heads", (uint32_t)ck.n_heads);
    ulmw_set_u32(w, "model.n_kv_heads", (uint32_t)ck.n_kv_heads);
    ulmw_set_u32(w, "model.head_dim", (uint32_t)hd);
    ulmw_set_u32(w, "model.ffn_dim", (uint32_t)ck.hidden_dim);
    ulmw_set_u32(w, "model.vocab_size", (uint32_t)ck.vocab_size);
    ulmw_set_u32(w, "model.max_ctx", (uint32_t)ck.seq_len);
    ulmw_set_f32(w, "model.norm_eps", 1e-5f);
    ulmw_set_f32(w, "model.rope_theta", 10000.0f);
    if ((st = tok_import_llama2c(tokenizer_path, w, err))) return st;

    uint64_t D = (uint64_t)ck.dim, F = (uint64_t)ck.hidden_dim, V = (uint64_t)ck.vocab_size, kvd = (uint64_t)hd * ck.n_kv_heads;
    uint64_t s_vd[2] = {V, D}, s_d[1] = {D}, s_dd[2] = {D, D}, s_kd[2] = {kvd, D}, s_fd[2] = {F, D}, s_df[2] = {D, F};
    if ((st = conv_tensor(cv, "token_embd", ULM_DT_F32, 2, s_vd, ck.token_embedding, err))) return st;
    if ((st = conv_tensor(cv, "output_norm", ULM_DT_F32, 1, s_d, ck.rms_final, err))) return st;
    if (!ck.shared_classifier && (st = conv_tensor(cv, "output", ULM_DT_F32, 2, s_vd, ck.wcls, err))) return st;
    for (int l = 0; l < ck.n_layers; l++) {
        char n[64];
        struct { const char *name; const float *base; const uint64_t *shape; uint32_t nd; } t[] = {
            {"attn_norm", ck.rms_att + l * D, s_d, 1},
            {"attn_q", ck.wq + l * D * D, s_dd, 2},
            {"attn_k", ck.wk + l * kvd * D, s_kd, 2},
            {"attn_v", ck.wv + l * kvd * D, s_kd, 2},
            {"attn_output", ck.wo + l * D * D, s_dd, 2},
            {"ffn_norm", ck.rms_ffn + l * D, s_d, 1},
            {"ffn_gate", ck.w1 + l * F * D, s_fd, 2},
            {"ffn_down", ck.w2 + l * D * F, s_df, 2},
            {"ffn_up", ck.w3 + l * F * D, s_fd, 2},
        };
        for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
            snprintf(n, sizeof n, "blk.%d.%s", l, t[i].name);
            if ((st = conv_tensor(cv, n, ULM_DT_F32, t[i].nd, t[i].shape, t[i].base, err))) return st;
        }
    }
    return ULM_OK;
}
