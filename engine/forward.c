/* The forward pass: one function for every architecture, parameterized by arch_desc.
 * Reads top to bottom like the math. Activations are f32, [n][width] row-major for a batch of
 * n tokens; weights are used where they lie in the mapped file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "model.h"
#include "threadpool.h"

#define DEFAULT_BATCH 64   /* prefill tokens per forward call: bounds scratch memory */
#define DEFAULT_MAX_CTX 4096

struct ulm_ctx {
    const ulm_model *m;
    const ulm_kernels *kern;
    threadpool *tp;
    int n_ctx, n_batch, pos;
    float *k_cache, *v_cache; /* [n_layers][n_ctx][kv_dim] */
    /* scratch, sized for n_batch tokens */
    float *x;      /* [n_batch][dim]     residual stream */
    float *xb;     /* [n_batch][dim]     normed input of a block */
    float *q;      /* [n_batch][q_dim]   queries, then attention output */
    float *kv;     /* [n_batch][2*kv_dim] new keys | new values */
    float *att;    /* [n_batch][q_dim]   attention output per head */
    float *o;      /* [n_batch][dim]     block output */
    float *gate;   /* [n_batch][ffn]     */
    float *up;     /* [n_batch][ffn]     */
    float *scores; /* [n_threads][n_ctx] */
    float *logits; /* [vocab]            last position, when the caller wants none */
    void *xprep;   /* prepared matmul input */
    size_t xprep_size;
};

/* ---- matmul over the pool: y[i][r] = W[r] . x[i], rows split across threads ---- */
typedef struct {
    const ulm_kernels *k;
    const tensor_ref *w;
    const void *xprep;
    int n, ldy;
    float *y;
} matmul_job;

static void matmul_worker(void *p, int ith, int nth) {
    const matmul_job *j = p;
    int rows = j->w->rows;
    /* chunks of 16 rows keep SIMD row tiles whole */
    int chunks = (rows + 15) / 16;
    int c0 = (int)((int64_t)chunks * ith / nth), c1 = (int)((int64_t)chunks * (ith + 1) / nth);
    int r0 = c0 * 16, r1 = c1 * 16 < rows ? c1 * 16 : rows;
    if (r0 < r1) j->k->matmul(j->w->dtype, j->w->data, j->xprep, j->n, j->w->cols, j->y, j->ldy, r0, r1);
}

static void matmul(ulm_ctx *c, const tensor_ref *w, const float *x, int n, float *y, int ldy) {
    c->kern->prepare_input(w->dtype, x, n, w->cols, c->xprep);
    matmul_job j = {c->kern, w, c->xprep, n, ldy, y};
    tp_run(c->tp, matmul_worker, &j);
}

static void add_bias(float *y, const tensor_ref *b, int n, int width) {
    if (!b->data) return;
    for (int i = 0; i < n; i++) k_add(y + (size_t)i * width, b->data, width);
}

/* ---- attention over the pool: one (token, head) pair per work item ---- */
typedef struct {
    ulm_ctx *c;
    int layer, n, pos0;
} attn_job;

static void attn_worker(void *p, int ith, int nth) {
    const attn_job *j = p;
    ulm_ctx *c = j->c;
    const model_config *cfg = &c->m->cfg;
    int hd = cfg->head_dim, nh = cfg->n_heads, kvd = cfg->n_kv_heads * hd, group = nh / cfg->n_kv_heads;
    int qd = nh * hd;
    const float *kc = c->k_cache + (size_t)j->layer * c->n_ctx * kvd;
    const float *vc = c->v_cache + (size_t)j->layer * c->n_ctx * kvd;
    float *sc = c->scores + (size_t)ith * c->n_ctx;
    int local = c->m->layers[j->layer].is_local;
    int items = j->n * nh;
    for (int it = ith; it < items; it += nth) {
        int i = it / nh, h = it % nh, p = j->pos0 + i;
        int t0 = local && p - cfg->sliding_window + 1 > 0 ? p - cfg->sliding_window + 1 : 0;
        const float *q = c->q + (size_t)i * qd + h * hd;
        int kvh = h / group;
        for (int t = t0; t <= p; t++) sc[t - t0] = k_dot_f32(q, kc + (size_t)t * kvd + kvh * hd, hd) * cfg->query_scale;
        k_softmax(sc, p - t0 + 1);
        float *out = c->att + (size_t)i * qd + h * hd;
        memset(out, 0, (size_t)hd * sizeof *out);
        for (int t = t0; t <= p; t++) k_axpy(out, sc[t - t0], vc + (size_t)t * kvd + kvh * hd, hd);
    }
}

/* One forward step over n tokens at positions pos0..pos0+n-1. Logits of the rows selected by
 * want (all rows, or only the last) go to out with stride vocab. */
static void forward(ulm_ctx *c, const int32_t *tokens, int n, int all_logits, float *out) {
    const ulm_model *m = c->m;
    const model_config *cfg = &m->cfg;
    const arch_desc *a = cfg->arch;
    int D = cfg->dim, hd = cfg->head_dim, nh = cfg->n_heads, nkv = cfg->n_kv_heads;
    int qd = nh * hd, kvd = nkv * hd, F = cfg->ffn_dim, V = cfg->vocab_size;
    float eps = cfg->norm_eps;
    int pos0 = c->pos;

    /* x[i] = embedding(token i) (x sqrt(dim) for gemma) */
    size_t erow = ulm_dtype_row_bytes(m->tok_embd.dtype, (uint64_t)D);
    for (int i = 0; i < n; i++) {
        ulm_dequantize_row(m->tok_embd.dtype, (const char *)m->tok_embd.data + (size_t)tokens[i] * erow, c->x + (size_t)i * D, D);
        if (a->embed_scale_sqrt_dim) k_scale(c->x + (size_t)i * D, sqrtf((float)D), D);
    }

    for (int l = 0; l < cfg->n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        float theta = w->is_local ? cfg->rope_theta_local : cfg->rope_theta;
        float *kc = c->k_cache + ((size_t)l * c->n_ctx + pos0) * kvd;
        float *vc = c->v_cache + ((size_t)l * c->n_ctx + pos0) * kvd;

        /* attention block: xb = norm(x); q, k, v = xb Wq, xb Wk, xb Wv */
        for (int i = 0; i < n; i++) k_rmsnorm(c->xb + (size_t)i * D, c->x + (size_t)i * D, w->attn_norm.data, D, eps, 0);
        matmul(c, &w->wq, c->xb, n, c->q, qd);           /* q  [n][qd]  */
        matmul(c, &w->wk, c->xb, n, c->kv, kvd);         /* k  [n][kvd] */
        matmul(c, &w->wv, c->xb, n, c->kv + (size_t)n * kvd, kvd); /* v [n][kvd] */
        add_bias(c->q, &w->bq, n, qd);
        add_bias(c->kv, &w->bk, n, kvd);
        add_bias(c->kv + (size_t)n * kvd, &w->bv, n, kvd);
        for (int i = 0; i < n; i++) {
            float *q = c->q + (size_t)i * qd, *k = c->kv + (size_t)i * kvd;
            if (a->qk_norm) {
                for (int h = 0; h < nh; h++) k_rmsnorm(q + h * hd, q + h * hd, w->q_norm.data, hd, eps, 0);
                for (int h = 0; h < nkv; h++) k_rmsnorm(k + h * hd, k + h * hd, w->k_norm.data, hd, eps, 0);
            }
            for (int h = 0; h < nh; h++) k_rope(q + h * hd, hd, hd, pos0 + i, theta, a->rope_interleaved, m->rope_freq_factors);
            for (int h = 0; h < nkv; h++) k_rope(k + h * hd, hd, hd, pos0 + i, theta, a->rope_interleaved, m->rope_freq_factors);
        }
        /* append k, v to the cache at positions pos0.. */
        memcpy(kc, c->kv, (size_t)n * kvd * sizeof(float));
        memcpy(vc, c->kv + (size_t)n * kvd, (size_t)n * kvd * sizeof(float));
        attn_job aj = {c, l, n, pos0};
        tp_run(c->tp, attn_worker, &aj);                 /* att [n][qd] */
        matmul(c, &w->wo, c->att, n, c->o, D);           /* o   [n][D]  */
        for (int i = 0; i < n; i++) {
            float *o = c->o + (size_t)i * D;
            if (a->post_norms) k_rmsnorm(o, o, w->post_attn_norm.data, D, eps, 0);
            k_add(c->x + (size_t)i * D, o, D);
        }

        /* FFN block: x += down(act(xb Wgate) * (xb Wup)), xb = norm(x) */
        for (int i = 0; i < n; i++) k_rmsnorm(c->xb + (size_t)i * D, c->x + (size_t)i * D, w->ffn_norm.data, D, eps, 0);
        matmul(c, &w->w_gate, c->xb, n, c->gate, F);     /* gate [n][F] */
        matmul(c, &w->w_up, c->xb, n, c->up, F);         /* up   [n][F] */
        for (int i = 0; i < n; i++) {
            float *g = c->gate + (size_t)i * F, *u = c->up + (size_t)i * F;
            if (a->gelu) k_geglu(g, g, u, F);
            else k_swiglu(g, g, u, F);
        }
        matmul(c, &w->w_down, c->gate, n, c->o, D);      /* o    [n][D] */
        for (int i = 0; i < n; i++) {
            float *o = c->o + (size_t)i * D;
            if (a->post_norms) k_rmsnorm(o, o, w->post_ffn_norm.data, D, eps, 0);
            k_add(c->x + (size_t)i * D, o, D);
        }
    }

    /* logits = norm(x) Wout, only for the rows asked for */
    int first = all_logits ? 0 : n - 1, rows = n - first;
    for (int i = first; i < n; i++) k_rmsnorm(c->xb + (size_t)(i - first) * D, c->x + (size_t)i * D, m->output_norm.data, D, eps, 0);
    matmul(c, &m->output, c->xb, rows, out, V);
    c->pos += n;
}

ulm_status ulm_ctx_eval(ulm_ctx *c, const int32_t *tokens, int n, float *logits, int all_logits, ulm_error *err) {
    const model_config *cfg = &c->m->cfg;
    if (n <= 0) return ulm_set_error(err, ULM_ERR_ARG, "no tokens to evaluate");
    if (n > c->n_ctx - c->pos)
        return ulm_set_error(err, ULM_ERR_CONTEXT, "context full: %d tokens at position %d exceed the context of %d", n, c->pos, c->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= cfg->vocab_size)
            return ulm_set_error(err, ULM_ERR_ARG, "token id %d is outside the vocabulary (%d)", tokens[i], cfg->vocab_size);
    for (int done = 0; done < n;) {
        int chunk = n - done < c->n_batch ? n - done : c->n_batch;
        int last = done + chunk == n;
        float *out = all_logits ? (logits ? logits + (size_t)done * cfg->vocab_size : NULL) : (last && logits ? logits : NULL);
        if (all_logits && out) forward(c, tokens + done, chunk, 1, out);
        else if (out) forward(c, tokens + done, chunk, 0, out);
        else forward(c, tokens + done, chunk, 0, c->logits); /* logits not wanted: scratch */
        done += chunk;
    }
    return ULM_OK;
}

static void *xalloc(size_t n, int *fail) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) { *fail = 1; return NULL; }
    memset(p, 0, n);
    return p;
}

ulm_status ulm_ctx_new(const ulm_model *m, const ulm_ctx_params *p, ulm_ctx **out, ulm_error *err) {
    *out = NULL;
    const model_config *cfg = &m->cfg;
    int n_ctx = p && p->n_ctx > 0 ? p->n_ctx : (cfg->max_ctx < DEFAULT_MAX_CTX ? cfg->max_ctx : DEFAULT_MAX_CTX);
    if (n_ctx > cfg->max_ctx)
        return ulm_set_error(err, ULM_ERR_CONTEXT, "requested context %d exceeds the model's maximum of %d", n_ctx, cfg->max_ctx);
    int nt = p && p->n_threads > 0 ? p->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nt < 1) nt = 1;
    if (nt > 256) nt = 256;
    const ulm_kernels *k = ulm_kernels_best();
    if (!k) return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "ULM_ISA=%s is not available on this CPU or build", getenv("ULM_ISA"));
    ulm_ctx *c = calloc(1, sizeof *c);
    if (!c) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    c->m = m;
    c->kern = k;
    c->n_ctx = n_ctx;
    c->n_batch = DEFAULT_BATCH;
    int D = cfg->dim, qd = cfg->n_heads * cfg->head_dim, kvd = cfg->n_kv_heads * cfg->head_dim, F = cfg->ffn_dim;
    size_t B = (size_t)c->n_batch, fail = 0;
    int f = 0;
    size_t kv_bytes = (size_t)cfg->n_layers * n_ctx * kvd * sizeof(float);
    c->k_cache = xalloc(kv_bytes, &f);
    c->v_cache = xalloc(kv_bytes, &f);
    c->x = xalloc(B * D * 4, &f);
    c->xb = xalloc(B * (D > qd ? D : qd) * 4, &f);
    c->q = xalloc(B * qd * 4, &f);
    c->kv = xalloc(B * 2 * kvd * 4, &f);
    c->att = xalloc(B * qd * 4, &f);
    c->o = xalloc(B * D * 4, &f);
    c->gate = xalloc(B * F * 4, &f);
    c->up = xalloc(B * F * 4, &f);
    c->scores = xalloc((size_t)nt * n_ctx * 4, &f);
    c->logits = xalloc((size_t)cfg->vocab_size * 4, &f);
    /* prepared input: the widest matmul input (dim, q_dim or ffn) in the largest form */
    int widest = D > qd ? D : qd;
    widest = widest > F ? widest : F;
    for (int dt = 0; dt <= ULM_DT_Q4; dt++) {
        size_t s = k->prepare_size((ulm_dtype)dt, (int)B, widest);
        if (s > c->xprep_size) c->xprep_size = s;
    }
    c->xprep = xalloc(c->xprep_size, &f);
    (void)fail;
    if (!f) c->tp = tp_new(nt);
    if (f || !c->tp) {
        ulm_ctx_free(c);
        return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory for a context of %d tokens", n_ctx);
    }
    *out = c;
    return ULM_OK;
}

void ulm_ctx_free(ulm_ctx *c) {
    if (!c) return;
    if (c->tp) tp_free(c->tp);
    free(c->k_cache); free(c->v_cache); free(c->x); free(c->xb); free(c->q); free(c->kv);
    free(c->att); free(c->o); free(c->gate); free(c->up); free(c->scores); free(c->logits); free(c->xprep);
    free(c);
}

void ulm_ctx_reset(ulm_ctx *c) { c->pos = 0; }
int ulm_ctx_pos(const ulm_ctx *c) { return c->pos; }
int ulm_ctx_size(const ulm_ctx *c) { return c->n_ctx; }

const ulm_model *ulm_ctx_model(const ulm_ctx *c) { return c->m; }
