/* The trainer's files: engine-loadable .ulm models (metadata keys and tensor names of
 * engine/model.h), loading any .ulm back to f32 for fine-tuning, and checkpoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train_data.h"
#include "train_model.h"

static int set_config_meta(ulmw *w, const train_config *c) {
    int r = 0;
    r |= ulmw_set_str(w, "general.architecture", c->arch->name, strlen(c->arch->name));
    r |= ulmw_set_str(w, "general.name", "ulm-train", 9);
    r |= ulmw_set_u32(w, "model.dim", (uint32_t)c->dim);
    r |= ulmw_set_u32(w, "model.n_layers", (uint32_t)c->n_layers);
    r |= ulmw_set_u32(w, "model.n_heads", (uint32_t)c->n_heads);
    r |= ulmw_set_u32(w, "model.n_kv_heads", (uint32_t)c->n_kv_heads);
    r |= ulmw_set_u32(w, "model.head_dim", (uint32_t)c->head_dim);
    r |= ulmw_set_u32(w, "model.ffn_dim", (uint32_t)c->ffn_dim);
    r |= ulmw_set_u32(w, "model.vocab_size", (uint32_t)c->vocab_size);
    r |= ulmw_set_u32(w, "model.max_ctx", (uint32_t)c->max_ctx);
    r |= ulmw_set_f32(w, "model.norm_eps", c->norm_eps);
    r |= ulmw_set_f32(w, "model.rope_theta", c->rope_theta);
    r |= ulmw_set_str(w, "model.rope_scaling", "none", 4);
    if (c->query_scale > 0) r |= ulmw_set_f32(w, "model.query_scale", c->query_scale);
    if (!strcmp(c->arch->name, "gemma3")) {
        r |= ulmw_set_f32(w, "model.rope_theta_local", c->rope_theta_local);
        r |= ulmw_set_u32(w, "model.sliding_window", (uint32_t)c->sliding_window);
        /* pattern 1: (i + 1) % 1 == 0, every layer global, when no window is used */
        r |= ulmw_set_u32(w, "model.sliding_pattern", (uint32_t)(c->sliding_pattern > 0 ? c->sliding_pattern : 1));
    }
    return r;
}

/* Matrices are quantized; norms (1-D) stay f32. With Q4 the embedding/output matrix stays Q8:
 * it is both the input table and the output head, where 4 bits cost the most accuracy. */
static ulm_status add_weights(ulmw *w, const train_model *m, train_out_type type, ulm_error *err) {
    for (int i = 0; i < m->n_tensors; i++) {
        const train_tensor *t = &m->t[i];
        const float *p = m->w + t->off;
        uint64_t shape[2] = {(uint64_t)t->rows, (uint64_t)t->cols};
        ulm_dtype dt = ULM_DT_F32;
        if (t->ndim == 2 && type != TRAIN_OUT_F32) {
            int q8 = type == TRAIN_OUT_Q8 || type == TRAIN_OUT_Q8_PLAIN || i == m->tok_embd || i == m->output;
            dt = q8 ? ULM_DT_Q8 : ULM_DT_Q4;
            if (t->cols % QK)
                return ulm_set_error(err, ULM_ERR_ARG, "train: %s has %d columns, not a multiple of %d: cannot quantize",
                                     t->name, t->cols, QK);
        }
        int rc;
        if (dt == ULM_DT_F32) {
            rc = t->ndim == 2 ? ulmw_add_tensor(w, t->name, dt, 2, shape, p, 0)
                              : ulmw_add_tensor(w, t->name, dt, 1, shape + 1, p, 0);
        } else {
            size_t rb = ulm_dtype_row_bytes(dt, (uint64_t)t->cols);
            char *q = malloc(rb * (size_t)t->rows);
            if (!q) return ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory");
            for (int r = 0; r < t->rows; r++) {
                const float *row = p + (size_t)r * t->cols;
                for (int c = 0; c < t->cols; c++)
                    if (!isfinite(row[c])) { /* a diverged run: the quantizer's rounding is undefined on it */
                        free(q);
                        return ulm_set_error(err, ULM_ERR_ARG, "train: %s row %d holds an infinite or NaN weight: not quantized", t->name, r);
                    }
                ulm_quantize_row(dt, row, q + rb * r, t->cols);
            }
            /* 16 rows interleaved where the rows allow, as convert does: the same blocks, the
             * layout the decode kernels read fastest (a shipped entity answer 16.8 -> 11.0 ms
             * p95, tasks/README.md) */
            char *il = type == TRAIN_OUT_Q8_PLAIN || type == TRAIN_OUT_Q4_PLAIN
                           ? NULL : ulm_interleave_rows_new(dt, q, (uint64_t)t->rows, (uint64_t)t->cols);
            if (il) {
                free(q);
                q = il;
                dt = ulm_dtype_interleaved(dt);
            }
            rc = ulmw_add_tensor(w, t->name, dt, 2, shape, q, 1);
            if (rc) free(q);
        }
        if (rc) return ulm_set_error(err, ULM_ERR_NOMEM, "train: cannot add tensor %s", t->name);
    }
    return ULM_OK;
}

/* Per-tensor training state (AdamW moments, averaged weights) as f32 tensors "train.KEY.NAME". */
static int add_state(ulmw *w, const train_model *m, const char *key, const float *src) {
    char name[64];
    int r = 0;
    for (int i = 0; i < m->n_tensors && !r; i++) {
        const train_tensor *t = &m->t[i];
        uint64_t shape[1] = {(uint64_t)t->rows * t->cols};
        snprintf(name, sizeof name, "train.%s.%s", key, t->name);
        r |= ulmw_add_tensor(w, name, ULM_DT_F32, 1, shape, src + t->off, 0);
    }
    return r;
}

static ulm_status read_state(const ulmf *f, const char *path, train_model *m, const char *key, float *dst,
                             const char *what, ulm_error *err) {
    char name[64];
    for (int i = 0; i < m->n_tensors; i++) {
        const train_tensor *t = &m->t[i];
        size_t n = (size_t)t->rows * t->cols;
        snprintf(name, sizeof name, "train.%s.%s", key, t->name);
        const ulmf_tensor *ft = ulmf_find_tensor(f, name);
        if (!ft || ft->dtype != ULM_DT_F32 || ft->size != n * sizeof(float))
            return ulm_set_error(err, ULM_ERR_FORMAT, "%s: %s %s missing", path, what, name);
        memcpy(dst + t->off, ft->data, n * sizeof(float));
    }
    return ULM_OK;
}

static ulm_status write_model(const train_model *m, const train_tok *tok, train_out_type type,
                              const train_state *st, const char *path, ulm_error *err) {
    ulmw *w = ulmw_new();
    if (!w) return ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory");
    ulm_status s = ULM_OK;
    if (set_config_meta(w, &m->cfg) || (tok && tok->write_meta(tok, w))) {
        s = ulm_set_error(err, ULM_ERR_NOMEM, "train: cannot set metadata");
        goto done;
    }
    if ((s = add_weights(w, m, type, err))) goto done;
    if (st) { /* checkpoint: optimizer moments and the step */
        int r = ulmw_set_u32(w, "train.step", (uint32_t)st->step) | ulmw_set_u64(w, "train.seed", st->seed) |
                add_state(w, m, "m", m->m) | add_state(w, m, "v", m->v);
        if (m->avg_n > 0) r |= ulmw_set_u32(w, "train.avg_n", (uint32_t)m->avg_n) | add_state(w, m, "avg", m->avg);
        if (r) { s = ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory"); goto done; }
    }
    s = ulmw_write(w, path, err);
done:
    ulmw_free(w);
    return s;
}

ulm_status train_write_ulm(const train_model *m, const train_tok *tok, train_out_type type, const char *path,
                           ulm_error *err) {
    return write_model(m, tok, type, NULL, path, err);
}

ulm_status train_save_checkpoint(const train_model *m, const train_tok *tok, const train_state *st,
                                 const char *path, ulm_error *err) {
    return write_model(m, tok, TRAIN_OUT_F32, st, path, err);
}

static int get_u32_int(const ulmf *f, const char *key, int *out) {
    uint32_t v;
    if (ulmf_get_u32(f, key, &v) || v > (1u << 30)) return -1;
    *out = (int)v;
    return 0;
}

static ulm_status read_config(const ulmf *f, train_config *c, ulm_error *err) {
    char arch[32];
    if (ulmf_get_cstr(f, "general.architecture", arch, sizeof arch))
        return ulm_set_error(err, ULM_ERR_FORMAT, "train: no general.architecture");
    const train_arch *a = train_arch_find(arch);
    if (!a) return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "train: cannot train architecture '%s'", arch);
    train_config_default(c, a);
    if (get_u32_int(f, "model.dim", &c->dim) || get_u32_int(f, "model.n_layers", &c->n_layers) ||
        get_u32_int(f, "model.n_heads", &c->n_heads) || get_u32_int(f, "model.n_kv_heads", &c->n_kv_heads) ||
        get_u32_int(f, "model.head_dim", &c->head_dim) || get_u32_int(f, "model.ffn_dim", &c->ffn_dim) ||
        get_u32_int(f, "model.vocab_size", &c->vocab_size) || get_u32_int(f, "model.max_ctx", &c->max_ctx))
        return ulm_set_error(err, ULM_ERR_FORMAT, "train: missing or bad model.* size keys");
    if (ulmf_get_f32(f, "model.norm_eps", &c->norm_eps) || ulmf_get_f32(f, "model.rope_theta", &c->rope_theta))
        return ulm_set_error(err, ULM_ERR_FORMAT, "train: missing model.norm_eps / model.rope_theta");
    c->rope_theta_local = c->rope_theta;
    ulmf_get_f32(f, "model.rope_theta_local", &c->rope_theta_local);
    ulmf_get_f32(f, "model.query_scale", &c->query_scale);
    get_u32_int(f, "model.sliding_window", &c->sliding_window);
    get_u32_int(f, "model.sliding_pattern", &c->sliding_pattern);
    char scaling[16] = "none";
    ulmf_get_cstr(f, "model.rope_scaling", scaling, sizeof scaling);
    if (strcmp(scaling, "none"))
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "train: RoPE scaling '%s' is not supported", scaling);
    if (ulmf_find_tensor(f, "blk.0.attn_q.bias"))
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "train: q/k/v biases are not supported");
    c->tied = ulmf_find_tensor(f, "output") == NULL;
    if (c->max_ctx > 4096) c->max_ctx = 4096; /* fine-tuning sequences are short; keeps tables small */
    return train_config_check(c, err);
}

static ulm_status read_weights(train_model *m, const ulmf *f, ulm_error *err) {
    for (int i = 0; i < m->n_tensors; i++) {
        const train_tensor *t = &m->t[i];
        const ulmf_tensor *ft = ulmf_find_tensor(f, t->name);
        if (!ft) return ulm_set_error(err, ULM_ERR_FORMAT, "train: tensor %s missing", t->name);
        uint64_t rows = ft->ndim == 2 ? ft->shape[0] : 1, cols = ft->shape[ft->ndim - 1];
        if (ft->ndim > 2 || rows != (uint64_t)t->rows || cols != (uint64_t)t->cols)
            return ulm_set_error(err, ULM_ERR_FORMAT, "train: tensor %s has the wrong shape", t->name);
        if (!ulm_dtype_is_weight(ft->dtype))
            return ulm_set_error(err, ULM_ERR_FORMAT, "train: tensor %s is not a weight", t->name);
        size_t rb = ulm_dtype_row_bytes(ft->dtype, cols);
        if (!rb || rb * rows != ft->size) return ulm_set_error(err, ULM_ERR_FORMAT, "train: tensor %s size", t->name);
        /* by row index: q8r16/q4r16 files (ulm convert's default) hold 16 rows per group
         * (ulmf_open has checked that their rows are a multiple of 16) */
        for (uint64_t r = 0; r < rows; r++) ulm_dequantize_row_at(ft->dtype, ft->data, cols, r, m->w + t->off + r * cols);
    }
    return ULM_OK;
}

ulm_status train_model_load(train_model **out, const char *path, ulm_error *err) {
    ulmf *f;
    ulm_status s = ulmf_open(path, 0, &f, err);
    if (s) return s;
    train_config c;
    train_model *m = NULL;
    if (!(s = read_config(f, &c, err)) && !(s = train_model_new(&m, &c, 0, err))) s = read_weights(m, f, err);
    ulmf_close(f);
    if (s) { train_model_free(m); return s; }
    *out = m;
    return ULM_OK;
}

ulm_status train_load_checkpoint(train_model **out, train_state *st, const char *path, ulm_error *err) {
    ulmf *f;
    ulm_status s = ulmf_open(path, 1, &f, err);
    if (s) return s;
    train_config c;
    train_model *m = NULL;
    uint32_t step;
    const ulmf_kv *seed = ulmf_find(f, "train.seed");
    if (ulmf_get_u32(f, "train.step", &step) || !seed || seed->type != ULMF_U64) {
        s = ulm_set_error(err, ULM_ERR_FORMAT, "%s: not a training checkpoint (no train.step)", path);
    } else if (!(s = read_config(f, &c, err)) && !(s = train_model_new(&m, &c, 0, err)) &&
               !(s = read_weights(m, f, err))) {
        s = read_state(f, path, m, "m", m->m, "optimizer state", err);
        if (!s) s = read_state(f, path, m, "v", m->v, "optimizer state", err);
        uint32_t avg_n;
        if (!s && !ulmf_get_u32(f, "train.avg_n", &avg_n) && avg_n > 0) {
            if (avg_n > step || avg_n > (1u << 30))
                s = ulm_set_error(err, ULM_ERR_FORMAT, "%s: train.avg_n over train.step", path);
            else if (!(m->avg = aligned_alloc(64, m->n_params * sizeof(float))))
                s = ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory");
            else s = read_state(f, path, m, "avg", m->avg, "averaged weights", err);
            m->avg_n = (int)avg_n;
        }
        st->step = (int)step;
        st->seed = seed->v.u;
    }
    ulmf_close(f);
    if (s) { train_model_free(m); return s; }
    *out = m;
    return ULM_OK;
}
