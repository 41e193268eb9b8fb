/* Loading a model: map the .ulm, read the config, bind every tensor in place (zero copies),
 * checking each tensor's dtype and shape against the config before anything runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"

static ulm_status need_u32(const ulmf *f, const char *key, int *out, int min, int max, ulm_error *err) {
    uint32_t v;
    if (ulmf_get_u32(f, key, &v) != 0) return ulm_set_error(err, ULM_ERR_FORMAT, "model metadata '%s' is missing", key);
    if ((int64_t)v < min || (int64_t)v > max)
        return ulm_set_error(err, ULM_ERR_FORMAT, "model metadata '%s' = %u is out of range [%d, %d]", key, v, min, max);
    *out = (int)v;
    return ULM_OK;
}

static float opt_f32(const ulmf *f, const char *key, float dflt) {
    float v;
    return ulmf_get_f32(f, key, &v) == 0 && isfinite(v) ? v : dflt;
}

static ulm_status read_config(const ulmf *f, model_config *c, ulm_error *err) {
    char arch[32];
    ulm_status st;
    if (ulmf_get_cstr(f, "general.architecture", arch, sizeof arch) != 0)
        return ulm_set_error(err, ULM_ERR_FORMAT, "not a model file: metadata 'general.architecture' is missing");
    if (!(c->arch = arch_find(arch))) return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "unsupported architecture '%s'", arch);
    if ((st = need_u32(f, "model.dim", &c->dim, 1, 1 << 16, err)) ||
        (st = need_u32(f, "model.n_layers", &c->n_layers, 1, 1024, err)) ||
        (st = need_u32(f, "model.n_heads", &c->n_heads, 1, 1024, err)) ||
        (st = need_u32(f, "model.n_kv_heads", &c->n_kv_heads, 1, 1024, err)) ||
        (st = need_u32(f, "model.head_dim", &c->head_dim, 2, 1024, err)) ||
        (st = need_u32(f, "model.ffn_dim", &c->ffn_dim, 1, 1 << 18, err)) ||
        (st = need_u32(f, "model.vocab_size", &c->vocab_size, 1, 1 << 22, err)) ||
        (st = need_u32(f, "model.max_ctx", &c->max_ctx, 1, 1 << 24, err)))
        return st;
    if (c->n_heads % c->n_kv_heads) return ulm_set_error(err, ULM_ERR_FORMAT, "n_heads %d is not a multiple of n_kv_heads %d", c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2) return ulm_set_error(err, ULM_ERR_FORMAT, "head_dim %d is odd", c->head_dim);
    c->norm_eps = opt_f32(f, "model.norm_eps", 1e-5f);
    c->rope_theta = opt_f32(f, "model.rope_theta", 10000.0f);
    c->rope_theta_local = opt_f32(f, "model.rope_theta_local", c->rope_theta);
    c->query_scale = opt_f32(f, "model.query_scale", 1.0f / sqrtf((float)c->head_dim));
    uint32_t v;
    c->sliding_window = ulmf_get_u32(f, "model.sliding_window", &v) == 0 ? (int)v : 0;
    c->sliding_pattern = ulmf_get_u32(f, "model.sliding_pattern", &v) == 0 ? (int)v : 0;
    char rs[16] = "none";
    ulmf_get_cstr(f, "model.rope_scaling", rs, sizeof rs);
    c->rope_llama3 = strcmp(rs, "llama3") == 0;
    if (!c->rope_llama3 && strcmp(rs, "none") != 0) return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "unsupported rope scaling '%s'", rs);
    c->rope_factor = opt_f32(f, "model.rope_scaling.factor", 1.0f);
    c->rope_low_freq = opt_f32(f, "model.rope_scaling.low_freq_factor", 1.0f);
    c->rope_high_freq = opt_f32(f, "model.rope_scaling.high_freq_factor", 4.0f);
    c->rope_orig_ctx = ulmf_get_u32(f, "model.rope_scaling.original_max_ctx", &v) == 0 ? (int)v : 8192;
    return ULM_OK;
}

/* Binds tensor prefix+base expecting shape [rows, cols] (rows = 0: a vector of cols). */
static ulm_status bind(const ulmf *f, const char *prefix, const char *base, int rows, int cols, int required,
                       int weight_ok, tensor_ref *out, ulm_error *err) {
    char name[96];
    snprintf(name, sizeof name, "%s%s", prefix, base);
    const ulmf_tensor *t = ulmf_find_tensor(f, name);
    memset(out, 0, sizeof *out);
    if (!t) return required ? ulm_set_error(err, ULM_ERR_FORMAT, "tensor '%s' is missing", name) : ULM_OK;
    int ok = rows ? (t->ndim == 2 && t->shape[0] == (uint64_t)rows && t->shape[1] == (uint64_t)cols)
                  : (t->ndim == 1 && t->shape[0] == (uint64_t)cols);
    if (!ok) {
        if (rows) return ulm_set_error(err, ULM_ERR_FORMAT, "tensor '%s' has shape [%llu, %llu], expected [%d, %d]", name, (unsigned long long)t->shape[0], (unsigned long long)(t->ndim > 1 ? t->shape[1] : 0), rows, cols);
        return ulm_set_error(err, ULM_ERR_FORMAT, "tensor '%s' has the wrong shape, expected [%d]", name, cols);
    }
    if (!ulm_dtype_is_weight(t->dtype) || (!weight_ok && t->dtype != ULM_DT_F32))
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "tensor '%s' has dtype %s, not usable here", name, ulm_dtype_name(t->dtype));
    out->dtype = t->dtype;
    out->rows = rows ? rows : 1;
    out->cols = cols;
    out->data = t->data;
    return ULM_OK;
}

/* llama 3 RoPE scaling: long wavelengths are slowed by `factor`, short ones kept, and the band
 * between is interpolated. Stored as per-frequency divisors for k_rope. */
static float *llama3_freq_factors(const model_config *c) {
    int half = c->head_dim / 2;
    float *ff = malloc((size_t)half * sizeof *ff);
    if (!ff) return NULL;
    float low_wavelen = c->rope_orig_ctx / c->rope_low_freq, high_wavelen = c->rope_orig_ctx / c->rope_high_freq;
    for (int i = 0; i < half; i++) {
        float freq = powf(c->rope_theta, -2.0f * i / c->head_dim);
        float wavelen = 2.0f * (float)M_PI / freq;
        if (wavelen < high_wavelen) ff[i] = 1.0f;
        else if (wavelen > low_wavelen) ff[i] = c->rope_factor;
        else {
            float smooth = (c->rope_orig_ctx / wavelen - c->rope_low_freq) / (c->rope_high_freq - c->rope_low_freq);
            ff[i] = 1.0f / ((1 - smooth) / c->rope_factor + smooth);
        }
    }
    return ff;
}

/* Binds the weight set whose tensor names start with `prefix` ("" for the model's own). */
static ulm_status bind_weights(ulm_model *m, const char *prefix, ulm_error *err) {
    const ulmf *f = m->file;
    model_config *c = &m->cfg;
    ulm_status st;
    if ((st = read_config(f, c, err))) return st;
    const arch_desc *a = c->arch;
    int D = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, F = c->ffn_dim, V = c->vocab_size;
    if ((st = bind(f, prefix, "token_embd", V, D, 1, 1, &m->tok_embd, err)) ||
        (st = bind(f, prefix, "output_norm", 0, D, 1, 0, &m->output_norm, err)) ||
        (st = bind(f, prefix, "output", V, D, 0, 1, &m->output, err)))
        return st;
    if (!m->output.data) m->output = m->tok_embd; /* tied embeddings */
    if (!(m->layers = calloc((size_t)c->n_layers, sizeof *m->layers))) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *w = &m->layers[l];
        char n[64];
#define B(field, suffix, rows, cols, req, wt)                                      \
        snprintf(n, sizeof n, "blk.%d.%s", l, suffix);                            \
        if ((st = bind(f, prefix, n, rows, cols, req, wt, &w->field, err))) return st;
        B(attn_norm, "attn_norm", 0, D, 1, 0)
        B(wq, "attn_q", qd, D, 1, 1)
        B(wk, "attn_k", kvd, D, 1, 1)
        B(wv, "attn_v", kvd, D, 1, 1)
        B(wo, "attn_output", D, qd, 1, 1)
        B(bq, "attn_q.bias", 0, qd, a->qkv_bias, 0)
        B(bk, "attn_k.bias", 0, kvd, a->qkv_bias, 0)
        B(bv, "attn_v.bias", 0, kvd, a->qkv_bias, 0)
        B(q_norm, "attn_q_norm", 0, hd, a->qk_norm, 0)
        B(k_norm, "attn_k_norm", 0, hd, a->qk_norm, 0)
        B(post_attn_norm, "post_attention_norm", 0, D, a->post_norms, 0)
        B(ffn_norm, "ffn_norm", 0, D, 1, 0)
        B(w_gate, "ffn_gate", F, D, 1, 1)
        B(w_up, "ffn_up", F, D, 1, 1)
        B(w_down, "ffn_down", D, F, 1, 1)
        B(post_ffn_norm, "post_ffw_norm", 0, D, a->post_norms, 0)
#undef B
        w->is_local = c->sliding_window > 0 && c->sliding_pattern > 0 && (l + 1) % c->sliding_pattern != 0;
    }
    if (c->rope_llama3 && !(m->rope_freq_factors = llama3_freq_factors(c))) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    /* GGUF llama 3 files carry the factors as a tensor instead (rope_freqs, [head_dim/2]) */
    tensor_ref rf;
    if ((st = bind(f, prefix, "rope_freqs", 0, hd / 2, 0, 0, &rf, err))) return st;
    if (rf.data && !m->rope_freq_factors) {
        if (!(m->rope_freq_factors = malloc((size_t)(hd / 2) * sizeof(float)))) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
        memcpy(m->rope_freq_factors, rf.data, (size_t)(hd / 2) * sizeof(float));
        for (int i = 0; i < hd / 2; i++)
            if (!(m->rope_freq_factors[i] > 0) || !isfinite(m->rope_freq_factors[i]))
                return ulm_set_error(err, ULM_ERR_FORMAT, "tensor 'rope_freqs' has a non-positive factor");
    }
    m->n_params = 0;
    size_t pl = strlen(prefix);
    for (int i = 0; i < ulmf_n_tensors(f); i++) {
        const ulmf_tensor *t = ulmf_tensor_at(f, i);
        /* this weight set's tensors only: not another member's */
        int mine = pl ? t->name_len > pl && !memcmp(t->name, prefix, pl)
                      : !(t->name_len > 6 && !memcmp(t->name, "member", 6));
        if (!mine) continue;
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->ndim; d++) n *= t->shape[d];
        m->n_params += n;
    }
    return ULM_OK;
}

ulm_status model_bind(ulm_model *m, ulm_error *err) {
    ulm_status st = bind_weights(m, "", err);
    uint32_t n = 1;
    if (!st && ulmf_get_u32(m->file, "model.members", &n) == 0 && (n < 1 || n > MODEL_MAX_MEMBERS))
        st = ulm_set_error(err, ULM_ERR_FORMAT, "model metadata 'model.members' = %u is out of range [1, %d]", n, MODEL_MAX_MEMBERS);
    m->n_members = (int)n;
    return st;
}

ulm_status model_member(const ulm_model *m, int k, ulm_model **out, ulm_error *err) {
    *out = NULL;
    if (k < 1 || k >= m->n_members) return ulm_set_error(err, ULM_ERR_ARG, "model has no member %d", k);
    ulm_model *mm = calloc(1, sizeof *mm);
    if (!mm) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    mm->file = m->file;
    mm->tok = m->tok;
    mm->parent = m;
    mm->n_members = 1;
    char prefix[24];
    snprintf(prefix, sizeof prefix, "member%d.", k);
    ulm_status st = bind_weights(mm, prefix, err);
    if (st) {
        ulm_model_free(mm);
        return st;
    }
    *out = mm;
    return ULM_OK;
}

ulm_status ulm_model_load(const char *path, ulm_model **out, ulm_error *err) {
    *out = NULL;
    ulm_model *m = calloc(1, sizeof *m);
    if (!m) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    ulm_status st = ulmf_open(path, 0, &m->file, err);
    if (!st) st = model_bind(m, err);
    if (!st) st = tok_load(m->file, &m->tok, err);
    if (!st && tok_n_vocab(m->tok) > m->cfg.vocab_size)
        st = ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer has %d tokens but the model only %d rows", tok_n_vocab(m->tok), m->cfg.vocab_size);
    if (st) {
        ulm_model_free(m);
        return st;
    }
    *out = m;
    return ULM_OK;
}

void ulm_model_free(ulm_model *m) {
    if (!m) return;
    if (!m->parent) tok_free(m->tok);
    free(m->layers);
    free(m->rope_freq_factors);
    if (!m->parent) ulmf_close(m->file);
    free(m);
}

void ulm_model_get_info(const ulm_model *m, ulm_model_info *i) {
    const model_config *c = &m->cfg;
    memset(i, 0, sizeof *i);
    i->arch = c->arch->name;
    i->n_vocab = c->vocab_size;
    i->dim = c->dim;
    i->n_layers = c->n_layers;
    i->n_heads = c->n_heads;
    i->n_kv_heads = c->n_kv_heads;
    i->head_dim = c->head_dim;
    i->ffn_dim = c->ffn_dim;
    i->max_ctx = c->max_ctx;
    i->bos_id = m->tok ? tok_bos(m->tok) : -1;
    i->eos_id = m->tok ? tok_eos(m->tok) : -1;
    i->file_size = ulmf_file_size(m->file);
    i->n_params = m->n_params;
}
