/* Hugging Face folder → .ulm: config.json + model.safetensors (or an index with shards) +
 * tokenizer.json / tokenizer.model. Architectures by config "model_type":
 *   llama (also "mistral" without sliding window), qwen2, qwen3, gemma3_text / gemma3
 *   (multimodal checkpoints: the language model under "text_config" and "language_model.").
 *
 * What the converter changes so the engine never branches on the source (engine/model.h):
 *   - llama: q/k rows go from HF's NeoX halves to interleaved pairs, the order GGUF and
 *     llama2.c use: within each head, new row 2i + j = old row j*hd/2 + i (j = 0, 1);
 *   - gemma3: every RMSNorm weight w becomes 1 + w (Gemma3RMSNorm multiplies by 1 + w);
 *     query_pre_attn_scalar s gives model.query_scale = 1/sqrt(s); sliding_window,
 *     sliding_window_pattern or layer_types, rope_local_base_freq are kept;
 *   - llama 3 rope_scaling ({"rope_type": "llama3", factor, low/high_freq_factor,
 *     original_max_position_embeddings}) becomes model.rope_scaling* keys.
 * HF names map to GGUF names: model.layers.N.self_attn.q_proj → blk.N.attn_q, ... Note that
 * "post_attention_layernorm" is the FFN pre-norm in llama/qwen but the attention post-norm in
 * gemma3 (whose FFN pre-norm is "pre_feedforward_layernorm"). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert.h"
#include "json.h"
#include "kernels.h"
#include "safetensors.h"
#include "tok_import.h"

typedef struct {
    const json_value *cfg;
    const char *arch;
    int gemma, llama;
    int64_t dim, n_layers, n_heads, n_kv, hd, ffn, vocab, ctx;
} hf_model;

static void close_sft(void *m) { sft_model_close(m); }

static int cfg_int(const json_value *c, const char *k, int64_t *out, int64_t dflt) {
    if (hf_config_int(c, k, out)) {
        *out = dflt;
        return -1;
    }
    return 0;
}

static int is_null_or_absent(const json_value *c, const char *k) {
    const json_value *v = hf_config_get(c, k);
    return v == NULL || json_is_null(v);
}

static ulm_status write_hparams(hf_model *h, ulmw *w, ulm_error *err) {
    const json_value *c = h->cfg;
    if (cfg_int(c, "hidden_size", &h->dim, 0) || cfg_int(c, "num_hidden_layers", &h->n_layers, 0) ||
        cfg_int(c, "num_attention_heads", &h->n_heads, 0) || cfg_int(c, "intermediate_size", &h->ffn, 0))
        return ulm_set_error(err, ULM_ERR_FORMAT, "config.json: hidden_size, num_hidden_layers, num_attention_heads or intermediate_size is missing");
    if (h->dim <= 0 || h->dim > 65536 || h->n_layers <= 0 || h->n_layers > 1024 || h->n_heads <= 0 || h->n_heads > 1024 ||
        h->ffn <= 0 || h->ffn > (1 << 18))
        return ulm_set_error(err, ULM_ERR_FORMAT, "config.json: a model dimension is out of range");
    cfg_int(c, "num_key_value_heads", &h->n_kv, h->n_heads);
    if (is_null_or_absent(c, "head_dim")) h->hd = h->dim / h->n_heads;
    else if (cfg_int(c, "head_dim", &h->hd, 0) || h->hd <= 0 || h->hd > 1024)
        return ulm_set_error(err, ULM_ERR_FORMAT, "config.json: head_dim is not a valid number");
    cfg_int(c, "max_position_embeddings", &h->ctx, 2048);
    if (h->ctx <= 0 || h->ctx > (1 << 24)) h->ctx = 2048;
    double eps = 1e-6, theta = 10000.0;
    hf_config_num(c, "rms_norm_eps", &eps);
    hf_config_num(c, "rope_theta", &theta);
    ulmw_set_str(w, "general.architecture", h->arch, strlen(h->arch));
    ulmw_set_u32(w, "model.dim", (uint32_t)h->dim);
    ulmw_set_u32(w, "model.n_layers", (uint32_t)h->n_layers);
    ulmw_set_u32(w, "model.n_heads", (uint32_t)h->n_heads);
    ulmw_set_u32(w, "model.n_kv_heads", (uint32_t)h->n_kv);
    ulmw_set_u32(w, "model.head_dim", (uint32_t)h->hd);
    ulmw_set_u32(w, "model.ffn_dim", (uint32_t)h->ffn);
    ulmw_set_u32(w, "model.max_ctx", (uint32_t)h->ctx);
    ulmw_set_f32(w, "model.norm_eps", (float)eps);
    ulmw_set_f32(w, "model.rope_theta", (float)theta);

    const json_value *rs = hf_config_get(c, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        const char *type = NULL;
        if (json_get_str(rs, "rope_type", &type, NULL) && json_get_str(rs, "type", &type, NULL))
            return ulm_set_error(err, ULM_ERR_FORMAT, "config.json: rope_scaling has no rope_type");
        double factor = 1, lo = 1, hi = 4;
        int64_t orig = 8192;
        json_get_num(rs, "factor", &factor);
        if (!strcmp(type, "llama3")) {
            json_get_num(rs, "low_freq_factor", &lo);
            json_get_num(rs, "high_freq_factor", &hi);
            json_get_int(rs, "original_max_position_embeddings", &orig);
            if (!(hi > lo) || factor <= 0 || orig <= 0)
                return ulm_set_error(err, ULM_ERR_FORMAT, "config.json: llama3 rope_scaling values are invalid");
            ulmw_set_str(w, "model.rope_scaling", "llama3", 6);
            ulmw_set_f32(w, "model.rope_scaling.factor", (float)factor);
            ulmw_set_f32(w, "model.rope_scaling.low_freq_factor", (float)lo);
            ulmw_set_f32(w, "model.rope_scaling.high_freq_factor", (float)hi);
            ulmw_set_u32(w, "model.rope_scaling.original_max_ctx", (uint32_t)orig);
        } else if (!(factor == 1 && (!strcmp(type, "linear") || !strcmp(type, "default")))) {
            return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "config.json: rope_scaling type '%s' is not supported", type);
        }
    }
    if (!is_null_or_absent(c, "final_logit_softcapping") || !is_null_or_absent(c, "attn_logit_softcapping"))
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "config.json: logit soft-capping is not supported");
    if (h->gemma) {
        double qpas = (double)h->hd, local = 10000.0;
        hf_config_num(c, "query_pre_attn_scalar", &qpas);
        if (!(qpas > 0)) return ulm_set_error(err, ULM_ERR_FORMAT, "config.json: query_pre_attn_scalar must be positive");
        ulmw_set_f32(w, "model.query_scale", (float)(1.0 / sqrt(qpas)));
        int64_t window = 0, pattern = 6;
        if (!is_null_or_absent(c, "sliding_window") && !cfg_int(c, "sliding_window", &window, 0) && window > 0) {
            const json_value *lt = hf_config_get(c, "layer_types");
            if (json_is_arr(lt)) {
                /* the period p with layer i full exactly when (i + 1) % p == 0 */
                pattern = 0;
                for (int64_t p = 1; p <= h->n_layers + 1 && !pattern; p++) {
                    int ok = json_len(lt) == (size_t)h->n_layers;
                    for (int64_t i = 0; i < h->n_layers && ok; i++)
                        ok = json_str_eq(json_at(lt, (size_t)i), "full_attention") == ((i + 1) % p == 0);
                    if (ok) pattern = p;
                }
                if (!pattern) return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "config.json: this layer_types pattern is not periodic (not supported)");
            } else {
                cfg_int(c, "sliding_window_pattern", &pattern, 6);
                if (pattern <= 0) pattern = h->n_layers + 1;
            }
            hf_config_num(c, "rope_local_base_freq", &local);
            ulmw_set_u32(w, "model.sliding_window", (uint32_t)window);
            ulmw_set_u32(w, "model.sliding_pattern", (uint32_t)pattern);
            ulmw_set_f32(w, "model.rope_theta_local", (float)local);
        }
    } else if (!is_null_or_absent(c, "sliding_window")) {
        int use = 1;
        if (!hf_config_bool(c, "use_sliding_window", &use) && !use) { /* qwen2 writes a window it does not use */ }
        else return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "config.json: sliding-window attention is only supported for gemma3");
    }
    return ULM_OK;
}

/* Finds the HF tensor for a GGUF-style name; prefix is "model." or "language_model.model.". */
static const sft_tensor *find(const sft_model *m, const char *prefix, const char *name) {
    char n[256];
    snprintf(n, sizeof n, "%s%s", prefix, name);
    return sft_model_find(m, n);
}

static ulm_dtype sft_to_ulm(sft_dtype dt) {
    return dt == SFT_F32 ? ULM_DT_F32 : dt == SFT_F16 ? ULM_DT_F16 : ULM_DT_BF16;
}

/* Adds one tensor, optionally with llama's q/k row permutation (n_heads > 0) or Gemma's +1. */
static ulm_status add(converter *cv, const sft_tensor *t, const char *name, int permute_heads, int plus_one,
                      ulm_error *err) {
    if (!sft_dtype_supported(t->dtype))
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "tensor %s has dtype %s (F32, F16 or BF16 only)", t->name, t->dtype_name);
    if (t->n_dims < 1 || t->n_dims > 2) return ulm_set_error(err, ULM_ERR_FORMAT, "tensor %s has %u dimensions", t->name, t->n_dims);
    ulm_dtype dt = sft_to_ulm(t->dtype);
    size_t es = sft_dtype_size(t->dtype);
    uint64_t rows = t->n_dims == 2 ? t->shape[0] : 1, cols = t->shape[t->n_dims - 1];
    const void *data = t->data;
    if (plus_one) {
        float *f = conv_keep(cv, malloc(t->n_elements * sizeof *f));
        if (!f) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
        for (uint64_t i = 0; i < t->n_elements; i++) {
            uint16_t hlf;
            float v;
            if (dt == ULM_DT_F32) memcpy(&v, (const char *)data + 4 * i, 4);
            else {
                memcpy(&hlf, (const char *)data + 2 * i, 2);
                v = dt == ULM_DT_F16 ? ulm_f16_to_f32(hlf) : ulm_bf16_to_f32(hlf);
            }
            f[i] = 1.0f + v;
        }
        return conv_tensor(cv, name, ULM_DT_F32, t->n_dims, t->shape, f, err);
    }
    if (permute_heads || (uintptr_t)data % es) { /* a copy: permuted, or aligned for the row converters */
        char *buf = conv_keep(cv, malloc(t->size));
        if (!buf) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
        size_t rb = (size_t)cols * es;
        if (permute_heads) {
            uint64_t hd = rows / (uint64_t)permute_heads;
            if (hd * (uint64_t)permute_heads != rows || hd % 2)
                return ulm_set_error(err, ULM_ERR_FORMAT, "tensor %s: %llu rows do not split into %d heads", t->name, (unsigned long long)rows, permute_heads);
            for (uint64_t h = 0; h < (uint64_t)permute_heads; h++)
                for (uint64_t i = 0; i < hd / 2; i++)
                    for (uint64_t j = 0; j < 2; j++)
                        memcpy(buf + (h * hd + 2 * i + j) * rb, (const char *)data + (h * hd + j * (hd / 2) + i) * rb, rb);
        } else {
            memcpy(buf, data, t->size);
        }
        data = buf;
    }
    return conv_tensor(cv, name, dt, t->n_dims, t->shape, data, err);
}

static ulm_status check_shape(const sft_tensor *t, uint64_t rows, uint64_t cols, ulm_error *err) {
    int ok = rows ? (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols) : (t->n_dims == 1 && t->shape[0] == cols);
    if (!ok) return ulm_set_error(err, ULM_ERR_FORMAT, "tensor %s does not have the shape config.json implies", t->name);
    return ULM_OK;
}

ulm_status convert_hf(converter *cv, const char *dir, const char *tokenizer_path, ulm_error *err) {
    char path[4096];
    json_doc *doc = NULL;
    sft_model *sm = NULL;
    ulm_status st;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((st = json_parse_file(path, &doc, err))) return st;
    hf_model h = {0};
    h.cfg = json_root(doc);
    const char *mt = NULL;
    if (hf_config_str(h.cfg, "model_type", &mt, NULL)) { st = ulm_set_error(err, ULM_ERR_FORMAT, "%s: model_type is missing", path); goto done; }
    /* multimodal gemma3: model_type "gemma3" at the top, "gemma3_text" inside text_config */
    if (!strcmp(mt, "gemma3")) {
        const char *inner = NULL;
        if (!json_get_str(json_get(h.cfg, "text_config"), "model_type", &inner, NULL)) mt = inner;
    }
    if (!strcmp(mt, "llama") || !strcmp(mt, "mistral")) h.arch = "llama", h.llama = 1;
    else if (!strcmp(mt, "qwen2")) h.arch = "qwen2";
    else if (!strcmp(mt, "qwen3")) h.arch = "qwen3";
    else if (!strcmp(mt, "gemma3_text") || !strcmp(mt, "gemma3")) h.arch = "gemma3", h.gemma = 1;
    else { st = ulm_set_error(err, ULM_ERR_UNSUPPORTED, "%s: model_type '%s' is not supported (llama, qwen2, qwen3, gemma3)", path, mt); goto done; }
    if ((st = write_hparams(&h, cv->w, err))) goto done;

    if ((st = sft_model_open(dir, &sm, err))) goto done;
    cv->src = sm;
    cv->src_close = close_sft;
    const char *pre = "model.";
    if (!find(sm, pre, "embed_tokens.weight") && find(sm, "language_model.model.", "embed_tokens.weight")) pre = "language_model.model.";
    const sft_tensor *emb = find(sm, pre, "embed_tokens.weight");
    if (!emb || emb->n_dims != 2 || emb->shape[1] != (uint64_t)h.dim) { st = ulm_set_error(err, ULM_ERR_FORMAT, "%s: embed_tokens.weight is missing or not [vocab, hidden_size]", dir); goto done; }
    h.vocab = (int64_t)emb->shape[0];
    ulmw_set_u32(cv->w, "model.vocab_size", (uint32_t)h.vocab);

    if (tokenizer_path) st = tok_import_path(tokenizer_path, cv->w, err);
    else {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        FILE *fp = fopen(path, "rb");
        if (!fp) snprintf(path, sizeof path, "%s/tokenizer.model", dir);
        else fclose(fp);
        st = tok_import_path(path, cv->w, err);
    }
    if (st) goto done;

    uint64_t D = (uint64_t)h.dim, hd = (uint64_t)h.hd, qd = (uint64_t)h.n_heads * hd, kvd = (uint64_t)h.n_kv * hd, F = (uint64_t)h.ffn;
    if ((st = add(cv, emb, "token_embd", 0, 0, err))) goto done;
    const sft_tensor *t = find(sm, pre, "norm.weight");
    if (!t || (st = check_shape(t, 0, D, err)) || (st = add(cv, t, "output_norm", 0, h.gemma, err))) {
        if (!st) st = ulm_set_error(err, ULM_ERR_FORMAT, "%s: %snorm.weight is missing", dir, pre);
        goto done;
    }
    t = sft_model_find(sm, strcmp(pre, "model.") ? "language_model.lm_head.weight" : "lm_head.weight");
    if (t && !(t->data == emb->data)) {
        if ((st = check_shape(t, (uint64_t)h.vocab, D, err)) || (st = add(cv, t, "output", 0, 0, err))) goto done;
    }
    for (int64_t l = 0; l < h.n_layers; l++) {
        struct { const char *hf, *ours; uint64_t rows, cols; int permute, norm, required; } m[] = {
            {"input_layernorm", "attn_norm", 0, D, 0, 1, 1},
            {"self_attn.q_proj", "attn_q", qd, D, h.llama ? (int)h.n_heads : 0, 0, 1},
            {"self_attn.k_proj", "attn_k", kvd, D, h.llama ? (int)h.n_kv : 0, 0, 1},
            {"self_attn.v_proj", "attn_v", kvd, D, 0, 0, 1},
            {"self_attn.o_proj", "attn_output", D, qd, 0, 0, 1},
            {"self_attn.q_norm", "attn_q_norm", 0, hd, 0, 1, !strcmp(h.arch, "qwen3") || h.gemma},
            {"self_attn.k_norm", "attn_k_norm", 0, hd, 0, 1, !strcmp(h.arch, "qwen3") || h.gemma},
            {"post_attention_layernorm", h.gemma ? "post_attention_norm" : "ffn_norm", 0, D, 0, 1, 1},
            {"pre_feedforward_layernorm", "ffn_norm", 0, D, 0, 1, h.gemma},
            {"post_feedforward_layernorm", "post_ffw_norm", 0, D, 0, 1, h.gemma},
            {"mlp.gate_proj", "ffn_gate", F, D, 0, 0, 1},
            {"mlp.up_proj", "ffn_up", F, D, 0, 0, 1},
            {"mlp.down_proj", "ffn_down", D, F, 0, 0, 1},
        };
        for (size_t i = 0; i < sizeof m / sizeof *m; i++) {
            char hn[160], on[96];
            snprintf(hn, sizeof hn, "layers.%lld.%s.weight", (long long)l, m[i].hf);
            snprintf(on, sizeof on, "blk.%lld.%s", (long long)l, m[i].ours);
            t = find(sm, pre, hn);
            if (!t) {
                if (!m[i].required) continue;
                st = ulm_set_error(err, ULM_ERR_FORMAT, "%s: tensor %s%s is missing", dir, pre, hn);
                goto done;
            }
            if ((st = check_shape(t, m[i].rows, m[i].cols, err)) || (st = add(cv, t, on, m[i].permute, m[i].norm && h.gemma, err))) goto done;
        }
        static const char *bias[3][2] = {{"q_proj", "attn_q.bias"}, {"k_proj", "attn_k.bias"}, {"v_proj", "attn_v.bias"}};
        for (int i = 0; i < 3; i++) {
            char hn[160], on[96];
            snprintf(hn, sizeof hn, "layers.%lld.self_attn.%s.bias", (long long)l, bias[i][0]);
            snprintf(on, sizeof on, "blk.%lld.%s", (long long)l, bias[i][1]);
            if (!(t = find(sm, pre, hn))) {
                if (!strcmp(h.arch, "qwen2")) { st = ulm_set_error(err, ULM_ERR_FORMAT, "%s: qwen2 bias %s%s is missing", dir, pre, hn); goto done; }
                continue;
            }
            if (strcmp(h.arch, "qwen2")) { st = ulm_set_error(err, ULM_ERR_UNSUPPORTED, "%s: %s has q/k/v biases, which this architecture does not use", dir, h.arch); goto done; }
            if ((st = check_shape(t, 0, i ? kvd : qd, err)) || (st = add(cv, t, on, 0, 0, err))) goto done;
        }
    }
done:
    json_free(doc);
    return st;
}
