/* The forward pass: one function for every architecture, parameterized by arch_desc.
 * Reads top to bottom like the math. Activations are f32, [n][width] row-major for a batch of
 * n tokens; weights are used where they lie in the mapped file. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "model.h"
#include "threadpool.h"

#define DEFAULT_BATCH 64   /* prefill tokens per forward call: bounds scratch memory */
#define DEFAULT_MAX_CTX 4096

/* KV cache of one layer: K and V as [n_kv_heads][cap][head_dim] in f16 (or f32), so one
 * kv head's keys are the rows of a matrix the matmul kernel reads directly, shared by every
 * query head of its group (GQA). Position t lives in slot t % cap: global layers have
 * cap = n_ctx; sliding-window layers a ring of cap = min(n_ctx, window + n_batch - 1), enough
 * for the oldest key any query of a batch still sees, so their memory does not grow with the
 * context. */
typedef struct kv_layer {
    void *k, *v;
    int cap;
} kv_layer;

/* A sequence held apart from its context (model.h): its own K/V layers and position. */
struct kv_state {
    const ulm_model *m;
    int n_ctx, n_batch, pos;
    ulm_dtype kv_dt;
    kv_layer *layers; /* [n_layers], shaped as the context's */
};

struct ulm_ctx {
    const ulm_model *m;
    const ulm_kernels *kern;
    threadpool *tp;
    int n_ctx, n_batch, pos, n_threads;
    int64_t par_min;     /* work below this (multiply-adds) stays on the calling thread */
    ulm_dtype kv_dt;     /* ULM_DT_F16 or ULM_DT_F32 */
    kv_layer *kv_layers; /* [n_layers] */
    /* scratch, sized for n_batch tokens */
    float *x;      /* [n_batch][dim]     residual stream */
    float *xb;     /* [n_batch][dim]     normed input of a block */
    float *q;      /* [n_batch][q_dim]   queries */
    float *kv;     /* [n_batch][2*kv_dim] new keys | new values */
    float *att;    /* [n_batch][q_dim]   attention output per head */
    float *o;      /* [n_batch][dim]     block output */
    float *gate;   /* [n_batch][ffn]     */
    float *up;     /* [n_batch][ffn]     */
    float *scores; /* [n_threads][att_scratch] per-thread attention scratch */
    int att_qb;         /* query tokens per attention work item */
    size_t att_scratch; /* floats per thread: scores and weights [att_qb*group][cap_max] each, value rows, q prep */
    float *rope_cs; /* [n_threads][head_dim] cos | sin of a position's RoPE angles */
    void *xprep;   /* prepared matmul input */
    size_t xprep_size;
    kv_state *const *seqs; /* NULL, or during kv_state_eval: row i is one token of sequence seqs[i] */
};

/* Row i's position and K/V layer l: the context's sequence (positions pos0, pos0+1, ...) or,
 * in kv_state_eval, the row's own. */
static inline int row_pos(const ulm_ctx *c, int pos0, int i) { return c->seqs ? c->seqs[i]->pos : pos0 + i; }
static inline const kv_layer *row_kv(const ulm_ctx *c, int l, int i) {
    return c->seqs ? &c->seqs[i]->layers[l] : &c->kv_layers[l];
}

/* Work below this many multiply-adds runs on the calling thread: a fork-join costs ~1-5 us
 * when the other cores are idle, and a time slice (milliseconds) when one of them is busy
 * with another process and a worker must wait for it. A task model of dim 160 issues dozens
 * of 25k-300k MAC products per token; on 2 cores with one of them busy, forking each of them
 * made a shipped task's answer take 200-320 ms instead of 20. */
#define PAR_MIN_MACS (1 << 18) /* the default; ULM_PAR_MIN_MACS overrides it (tests: 0 forks everything) */

/* ---- matmul over the pool: y[i][r] = W[r] . x[i], rows split across threads ----
 * Up to three matrices that read the same input (q/k/v, gate/up) run as one job: one input
 * conversion and one fork-join instead of three, which is what decode latency is made of. */
#define MAX_FUSED 3
typedef struct {
    const ulm_kernels *k;
    int nw, n;
    const tensor_ref *w[MAX_FUSED];
    float *y[MAX_FUSED];
    int ldy[MAX_FUSED];
    const void *xprep;
} matmul_job;

static void matmul_worker(void *p, int ith, int nth) {
    const matmul_job *j = p;
    for (int m = 0; m < j->nw; m++) {
        const tensor_ref *w = j->w[m];
        /* chunks of 16 rows keep SIMD row tiles (and interleaved row groups) whole */
        int chunks = (w->rows + 15) / 16;
        int c0 = (int)((int64_t)chunks * ith / nth), c1 = (int)((int64_t)chunks * (ith + 1) / nth);
        int r0 = c0 * 16, r1 = c1 * 16 < w->rows ? c1 * 16 : w->rows;
        if (r0 < r1) j->k->matmul(w->dtype, w->data, j->xprep, j->n, w->cols, j->y[m], j->ldy[m], r0, r1);
    }
}

/* The matmul input in the kernels' form (q8 blocks for quantized weights): rows are independent
 * and laid side by side, so a prefill batch is split across the pool. */
typedef struct {
    ulm_ctx *c;
    ulm_dtype dt;
    const float *x;
    int n, cols;
} prep_job;

static void prep_worker(void *p, int ith, int nth) {
    const prep_job *j = p;
    int i0 = (int)((int64_t)j->n * ith / nth), i1 = (int)((int64_t)j->n * (ith + 1) / nth);
    size_t rb = j->c->kern->prepare_size(j->dt, 1, j->cols);
    if (i0 < i1)
        j->c->kern->prepare_input(j->dt, j->x + (size_t)i0 * j->cols, i1 - i0, j->cols, (char *)j->c->xprep + (size_t)i0 * rb);
}

static void prepare_rows(ulm_ctx *c, ulm_dtype dt, const float *x, int n, int cols) {
    prep_job j = {c, dt, x, n, cols};
    if (n >= 8 && c->n_threads > 1 && (int64_t)n * cols * 8 >= c->par_min) tp_run(c->tp, prep_worker, &j);
    else prep_worker(&j, 0, 1);
}

/* y_m = x W_m^T for nw matrices sharing input x [n][cols]. */
static void matmul_n(ulm_ctx *c, int nw, const tensor_ref *const *w, const float *x, int n, float *const *y,
                     const int *ldy) {
    /* matrices of one dtype share the converted input; otherwise run them one by one */
    for (int m = 1; m < nw; m++)
        if (w[m]->dtype != w[0]->dtype || w[m]->cols != w[0]->cols) {
            for (int i = 0; i < nw; i++) matmul_n(c, 1, &w[i], x, n, &y[i], &ldy[i]);
            return;
        }
    prepare_rows(c, w[0]->dtype, x, n, w[0]->cols);
    matmul_job j = {.k = c->kern, .nw = nw, .n = n, .xprep = c->xprep};
    int64_t macs = 0;
    for (int m = 0; m < nw; m++) {
        j.w[m] = w[m];
        j.y[m] = y[m];
        j.ldy[m] = ldy[m];
        macs += (int64_t)w[m]->rows * w[m]->cols * n;
    }
    if (macs < c->par_min) matmul_worker(&j, 0, 1); /* rows are exact either way: same bits */
    else tp_run(c->tp, matmul_worker, &j);
}

static void matmul(ulm_ctx *c, const tensor_ref *w, const float *x, int n, float *y, int ldy) {
    matmul_n(c, 1, &w, x, n, &y, &ldy);
}

/* ---- attention over the pool: one (block of query tokens, kv head) per work item ----
 * The query heads sharing a kv head (GQA group), for qb consecutive tokens, are the inputs of
 * one matmul with the cached keys as weight rows, so a key row is read once per block rather
 * than once per token; each cached value row is converted to f32 once per block and added
 * into every query row that sees it. The tokens of a block see nested causal ranges, so the
 * block's keys run from its first token's window start to its last token, and each row masks
 * the rest (weight 0, skipped). */
#define ATT_SCRATCH_BYTES (1 << 20) /* per thread: bounds qb for long contexts */
#define ATT_QB_MAX 16               /* tokens per block */
#define ATT_VCHUNK 32               /* value rows converted at a time */
typedef struct {
    ulm_ctx *c;
    int layer, n, pos0;
} attn_job;

/* First position a query at pos sees: the window start on sliding-window layers. */
static int attn_first_pos(const model_config *cfg, int local, int pos) {
    return local && pos - cfg->sliding_window + 1 > 0 ? pos - cfg->sliding_window + 1 : 0;
}

static void attn_worker(void *p, int ith, int nth) {
    const attn_job *j = p;
    ulm_ctx *c = j->c;
    const model_config *cfg = &c->m->cfg;
    const ulm_kernels *K = c->kern;
    int hd = cfg->head_dim, nh = cfg->n_heads, nkv = cfg->n_kv_heads, group = nh / nkv, qd = nh * hd;
    /* rows of separate sequences (kv_state_eval) are one query block each */
    int local = c->m->layers[j->layer].is_local, qb = c->seqs ? 1 : c->att_qb;
    size_t esz = c->kv_dt == ULM_DT_F16 ? 2 : 4;
    size_t qrow = K->prepare_size(c->kv_dt, 1, hd);
    int nblk = (j->n + qb - 1) / qb, items = nblk * nkv;
    for (int it = ith; it < items; it += nth) {
        int i0 = it / nkv * qb, kvh = it % nkv, nt = j->n - i0 < qb ? j->n - i0 : qb, nq = nt * group;
        const kv_layer *L = row_kv(c, j->layer, i0);
        int cap = L->cap, p0 = row_pos(c, j->pos0, i0);
        size_t head_bytes = (size_t)cap * hd * esz;
        float *sc = c->scores + (size_t)ith * c->att_scratch; /* [qb*group][cap] scores by slot */
        float *pr = sc + (size_t)qb * group * cap;           /* [qb*group][len] weights by position */
        float *vbuf = pr + (size_t)qb * group * cap;         /* [ATT_VCHUNK][hd] value rows in f32 */
        char *qprep = (char *)(vbuf + (size_t)ATT_VCHUNK * hd); /* qb*group prepared query rows */
        int p_last = p0 + nt - 1, t_lo = attn_first_pos(cfg, local, p0);
        int len = p_last - t_lo + 1, s0 = t_lo % cap;
        int n1 = s0 + len <= cap ? len : cap - s0; /* positions t_lo.. are slots s0..s0+n1-1, then 0.. */
        const char *kb = (const char *)L->k + kvh * head_bytes, *vb = (const char *)L->v + kvh * head_bytes;
        /* scores [nq][cap]: row i*group + g is query head kvh*group + g of token i0 + i */
        for (int i = 0; i < nt; i++)
            K->prepare_input(c->kv_dt, c->q + (size_t)(i0 + i) * qd + (size_t)kvh * group * hd, group, hd,
                             qprep + (size_t)i * group * qrow);
        K->matmul(c->kv_dt, kb, qprep, nq, hd, sc, cap, s0, s0 + n1);
        if (n1 < len) K->matmul(c->kv_dt, kb, qprep, nq, hd, sc, cap, 0, len - n1);
        /* weights [nq][len] in position order: softmax over each row's own range [a, b] */
        for (int r = 0; r < nq; r++) {
            int pos = p0 + r / group, a = attn_first_pos(cfg, local, pos) - t_lo, b = pos - t_lo;
            const float *sr = sc + (size_t)r * cap;
            float *pw = pr + (size_t)r * len;
            int m1 = b + 1 < n1 ? b + 1 : n1; /* [a, m1) from slots s0 + t, [max(a, n1), b] wrapped */
            memset(pw, 0, (size_t)a * sizeof *pw);
            if (a < m1) memcpy(pw + a, sr + s0 + a, (size_t)(m1 - a) * sizeof *pw);
            int w0 = a > n1 ? a : n1;
            if (w0 <= b) memcpy(pw + w0, sr + w0 - n1, (size_t)(b + 1 - w0) * sizeof *pw);
            memset(pw + b + 1, 0, (size_t)(len - b - 1) * sizeof *pw);
            K->scale(pw + a, cfg->query_scale, b - a + 1);
            K->softmax(pw + a, b - a + 1);
        }
        /* out[r] = sum_t w[r][t] v[t], the value rows converted a chunk at a time */
        for (int i = 0; i < nt; i++) memset(c->att + (size_t)(i0 + i) * qd + (size_t)kvh * group * hd, 0, (size_t)group * hd * 4);
        for (int t0 = 0; t0 < len; t0 += ATT_VCHUNK) {
            int nc = len - t0 < ATT_VCHUNK ? len - t0 : ATT_VCHUNK;
            const float *vrow[ATT_VCHUNK];
            for (int t = 0; t < nc; t++) {
                const char *vr = vb + (size_t)(t0 + t < n1 ? s0 + t0 + t : t0 + t - n1) * hd * esz;
                if (c->kv_dt == ULM_DT_F16) {
                    K->f16_to_f32(vbuf + (size_t)t * hd, (const uint16_t *)vr, hd);
                    vrow[t] = vbuf + (size_t)t * hd;
                } else {
                    vrow[t] = (const float *)vr;
                }
            }
            for (int r = 0; r < nq; r++) {
                float *out = c->att + (size_t)(i0 + r / group) * qd + (size_t)(kvh * group + r % group) * hd;
                const float *pw = pr + (size_t)r * len + t0, *rows[ATT_VCHUNK];
                float wt[ATT_VCHUNK];
                int m = 0;
                for (int t = 0; t < nc; t++)
                    if (pw[t] != 0) wt[m] = pw[t], rows[m++] = vrow[t]; /* masked rows skipped */
                if (m) K->axpy_rows(out, wt, rows, m, hd);
            }
        }
    }
}

/* ---- the elementwise work between matmuls, one token at a time ----
 * In prefill these stages run over the pool, tokens split across threads (they were the serial
 * part of a 2-thread prefill); a single token (decode) runs them on the calling thread. */
enum { ST_ATTN_IN, ST_QKV, ST_ATTN_OUT, ST_FFN_ACT, ST_FFN_OUT };

/* Token i (position pos0 + i) of a step over n tokens at stage st of layer l; cs: [head_dim]
 * scratch for the RoPE angles. */
static void token_stage(ulm_ctx *c, int st, int l, int i, int n, int pos0, float *cs) {
    const ulm_model *m = c->m;
    const model_config *cfg = &m->cfg;
    const arch_desc *a = cfg->arch;
    const layer_weights *w = &m->layers[l];
    const ulm_kernels *K = c->kern;
    int D = cfg->dim, hd = cfg->head_dim, nh = cfg->n_heads, nkv = cfg->n_kv_heads, F = cfg->ffn_dim;
    int qd = nh * hd, kvd = nkv * hd;
    float eps = cfg->norm_eps, *x = c->x + (size_t)i * D, *o = c->o + (size_t)i * D;
    switch (st) {
    case ST_ATTN_IN: /* xb = norm(x) */
        K->rmsnorm(c->xb + (size_t)i * D, x, w->attn_norm.data, D, eps, 0);
        break;
    case ST_QKV: { /* biases, q/k norms, RoPE; k and v into the cache at slot pos % cap */
        float *q = c->q + (size_t)i * qd, *k = c->kv + (size_t)i * kvd, *v = c->kv + (size_t)(n + i) * kvd;
        if (w->bq.data) K->add(q, w->bq.data, qd);
        if (w->bk.data) K->add(k, w->bk.data, kvd);
        if (w->bv.data) K->add(v, w->bv.data, kvd);
        if (a->qk_norm) {
            for (int h = 0; h < nh; h++) K->rmsnorm(q + h * hd, q + h * hd, w->q_norm.data, hd, eps, 0);
            for (int h = 0; h < nkv; h++) K->rmsnorm(k + h * hd, k + h * hd, w->k_norm.data, hd, eps, 0);
        }
        /* llama 3 frequency scaling applies to global layers only (llama has no local ones) */
        int pos = row_pos(c, pos0, i);
        k_rope_cs(cs, hd, pos, w->is_local ? cfg->rope_theta_local : cfg->rope_theta,
                  w->is_local ? NULL : m->rope_freq_factors); /* angles once per position */
        for (int h = 0; h < nh; h++) K->rope_apply(q + h * hd, hd, hd, a->rope_interleaved, cs);
        for (int h = 0; h < nkv; h++) K->rope_apply(k + h * hd, hd, hd, a->rope_interleaved, cs);
        const kv_layer *L = row_kv(c, l, i);
        int slot = pos % L->cap;
        for (int h = 0; h < nkv; h++) {
            size_t off = ((size_t)h * L->cap + slot) * hd;
            if (c->kv_dt == ULM_DT_F32) {
                memcpy((float *)L->k + off, k + h * hd, (size_t)hd * 4);
                memcpy((float *)L->v + off, v + h * hd, (size_t)hd * 4);
            } else {
                K->f32_to_f16((uint16_t *)L->k + off, k + h * hd, hd);
                K->f32_to_f16((uint16_t *)L->v + off, v + h * hd, hd);
            }
        }
        break;
    }
    case ST_ATTN_OUT: /* x += (norm(o)); xb = norm(x) for the FFN */
        if (a->post_norms) K->rmsnorm(o, o, w->post_attn_norm.data, D, eps, 0);
        K->add(x, o, D);
        K->rmsnorm(c->xb + (size_t)i * D, x, w->ffn_norm.data, D, eps, 0);
        break;
    case ST_FFN_ACT: { /* gate = act(gate) * up */
        float *g = c->gate + (size_t)i * F, *u = c->up + (size_t)i * F;
        if (a->gelu) K->geglu(g, g, u, F);
        else K->swiglu(g, g, u, F);
        break;
    }
    case ST_FFN_OUT: /* x += norm(o) */
        if (a->post_norms) K->rmsnorm(o, o, w->post_ffn_norm.data, D, eps, 0);
        K->add(x, o, D);
        break;
    }
}

typedef struct {
    ulm_ctx *c;
    int st, layer, n, pos0;
} token_job;

static void token_worker(void *p, int ith, int nth) {
    const token_job *j = p;
    int i0 = (int)((int64_t)j->n * ith / nth), i1 = (int)((int64_t)j->n * (ith + 1) / nth);
    for (int i = i0; i < i1; i++)
        token_stage(j->c, j->st, j->layer, i, j->n, j->pos0, j->c->rope_cs + (size_t)ith * j->c->m->cfg.head_dim);
}

#define PAR_TOKENS 4 /* fewer tokens: one thread (a fork-join costs more than the work) */
static void per_token(ulm_ctx *c, int st, int layer, int n, int pos0) {
    token_job j = {c, st, layer, n, pos0};
    if (n >= PAR_TOKENS && c->n_threads > 1 && (int64_t)n * c->m->cfg.dim * 16 >= c->par_min)
        tp_run(c->tp, token_worker, &j);
    else token_worker(&j, 0, 1);
}

/* One forward step over n tokens at positions pos0..pos0+n-1. Logits of all rows (all_logits)
 * or only the last go to out with stride vocab; out NULL: none (a prefill chunk before the
 * last, where the vocabulary matmul would be thrown away). */
static void forward(ulm_ctx *c, const int32_t *tokens, int n, int all_logits, float *out) {
    const ulm_model *m = c->m;
    const model_config *cfg = &m->cfg;
    const arch_desc *a = cfg->arch;
    int D = cfg->dim, hd = cfg->head_dim, nh = cfg->n_heads, nkv = cfg->n_kv_heads;
    int qd = nh * hd, kvd = nkv * hd, F = cfg->ffn_dim, V = cfg->vocab_size;
    float eps = cfg->norm_eps;
    int pos0 = c->pos;

    /* x[i] = embedding(token i) (x sqrt(dim) for gemma) */
    for (int i = 0; i < n; i++) {
        ulm_dequantize_row_at(m->tok_embd.dtype, m->tok_embd.data, (uint64_t)D, (uint64_t)tokens[i], c->x + (size_t)i * D);
        if (a->embed_scale_sqrt_dim) c->kern->scale(c->x + (size_t)i * D, sqrtf((float)D), D);
    }

    for (int l = 0; l < cfg->n_layers; l++) {
        const layer_weights *w = &m->layers[l];

        /* attention block: xb = norm(x); q, k, v = xb Wq, xb Wk, xb Wv */
        per_token(c, ST_ATTN_IN, l, n, pos0);
        {   /* q [n][qd], k [n][kvd], v [n][kvd] */
            const tensor_ref *ws[3] = {&w->wq, &w->wk, &w->wv};
            float *ys[3] = {c->q, c->kv, c->kv + (size_t)n * kvd};
            int lds[3] = {qd, kvd, kvd};
            matmul_n(c, 3, ws, c->xb, n, ys, lds);
        }
        per_token(c, ST_QKV, l, n, pos0);                /* biases, norms, RoPE; k, v cached */
        attn_job aj = {c, l, n, pos0};
        if ((int64_t)n * (pos0 + n) * qd * 2 < c->par_min) attn_worker(&aj, 0, 1); /* scores and values */
        else tp_run(c->tp, attn_worker, &aj);            /* att [n][qd] */
        matmul(c, &w->wo, c->att, n, c->o, D);           /* o   [n][D]  */
        per_token(c, ST_ATTN_OUT, l, n, pos0);           /* x += o; xb = norm(x) */

        /* FFN block: x += down(act(xb Wgate) * (xb Wup)) */
        {   /* gate [n][F], up [n][F] */
            const tensor_ref *ws[2] = {&w->w_gate, &w->w_up};
            float *ys[2] = {c->gate, c->up};
            int lds[2] = {F, F};
            matmul_n(c, 2, ws, c->xb, n, ys, lds);
        }
        per_token(c, ST_FFN_ACT, l, n, pos0);
        matmul(c, &w->w_down, c->gate, n, c->o, D);      /* o    [n][D] */
        per_token(c, ST_FFN_OUT, l, n, pos0);            /* x += o */
    }

    /* logits = norm(x) Wout, only for the rows asked for (none: a prefill chunk before the last) */
    if (out) {
        int first = all_logits ? 0 : n - 1, rows = n - first;
        for (int i = first; i < n; i++) c->kern->rmsnorm(c->xb + (size_t)(i - first) * D, c->x + (size_t)i * D, m->output_norm.data, D, eps, 0);
        matmul(c, &m->output, c->xb, rows, out, V);
    }
    if (c->seqs)
        for (int i = 0; i < n; i++) c->seqs[i]->pos++;
    else
        c->pos += n;
}

/* The loader maps weights unread, so corrupt ones (NaN, or values large enough to overflow)
 * show up here: a logit that is not finite is an error, never a sampled token. Integer test
 * of the exponent bits, so the loop vectorizes (one pass over logits the sampler reads anyway). */
static ulm_status check_logits(const float *x, size_t n, ulm_error *err) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return bad ? ulm_set_error(err, ULM_ERR_FORMAT, "the model computed an infinite or NaN logit: its weights are corrupt or out of range")
               : ULM_OK;
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
        forward(c, tokens + done, chunk, all_logits, out); /* out NULL: no logits wanted from this chunk */
        ulm_status st = out ? check_logits(out, (size_t)(all_logits ? chunk : 1) * cfg->vocab_size, err) : ULM_OK;
        if (st) return st;
        done += chunk;
    }
    return ULM_OK;
}

/* Slots of layer l's KV ring for a context of n_ctx tokens fed in batches of n_batch. */
static int kv_layer_cap(const ulm_model *m, int l, int n_ctx, int n_batch) {
    const model_config *cfg = &m->cfg;
    if (!m->layers[l].is_local) return n_ctx;
    int64_t cap = (int64_t)cfg->sliding_window + n_batch - 1;
    return cap < n_ctx ? (int)cap : n_ctx;
}

uint64_t ulm_kv_cache_bytes(const ulm_model *m, int n_ctx, int kv_f32, int n_batch) {
    const model_config *cfg = &m->cfg;
    uint64_t total = 0, row = (uint64_t)cfg->n_kv_heads * cfg->head_dim * (kv_f32 ? 4 : 2) * 2;
    for (int l = 0; l < cfg->n_layers; l++) total += (uint64_t)kv_layer_cap(m, l, n_ctx, n_batch > 0 ? n_batch : DEFAULT_BATCH) * row;
    return total;
}

/* Zeroed, 64-byte aligned buffers from calloc, whose large blocks come straight from mmap
 * and are not cleared again: the pages of a KV cache or a batch scratch that a short prompt
 * never reaches are then never faulted in (posix_memalign + memset touched all of them, a
 * third of a one-token run's time on SmolLM2-135M). The raw pointer sits just below. */
static void *xalloc(size_t n, int *fail) {
    if (n > SIZE_MAX - 128) { *fail = 1; return NULL; }
    char *raw = calloc(1, n + 72);
    if (!raw) { *fail = 1; return NULL; }
    char *p = (char *)(((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63);
    memcpy(p - sizeof(void *), &raw, sizeof raw);
    return p;
}

static void xfree(void *p) {
    if (!p) return;
    void *raw;
    memcpy(&raw, (char *)p - sizeof raw, sizeof raw);
    free(raw);
}

static void kv_layers_free(const ulm_model *m, kv_layer *layers) {
    if (layers)
        for (int l = 0; l < m->cfg.n_layers; l++) xfree(layers[l].k), xfree(layers[l].v);
    free(layers);
}

/* The K/V layers of one sequence ([n_layers]; ring sizes as kv_layer_cap), or NULL. */
static kv_layer *kv_layers_new(const ulm_model *m, int n_ctx, int n_batch, ulm_dtype dt) {
    const model_config *cfg = &m->cfg;
    kv_layer *layers = calloc((size_t)cfg->n_layers, sizeof *layers);
    int f = !layers;
    size_t row = (size_t)cfg->n_kv_heads * cfg->head_dim * (dt == ULM_DT_F16 ? 2 : 4);
    for (int l = 0; l < cfg->n_layers && !f; l++) {
        layers[l].cap = kv_layer_cap(m, l, n_ctx, n_batch);
        layers[l].k = xalloc((size_t)layers[l].cap * row, &f);
        layers[l].v = xalloc((size_t)layers[l].cap * row, &f);
    }
    if (f) {
        kv_layers_free(m, layers);
        return NULL;
    }
    return layers;
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
    int64_t par_min = PAR_MIN_MACS;
    const char *pm = getenv("ULM_PAR_MIN_MACS");
    if (pm) {
        char *end;
        long long v = strtoll(pm, &end, 10);
        if (end == pm || *end || v < 0)
            return ulm_set_error(err, ULM_ERR_ARG, "ULM_PAR_MIN_MACS=%s is not a non-negative integer", pm);
        par_min = v;
    }
    ulm_ctx *c = calloc(1, sizeof *c);
    if (!c) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    c->par_min = par_min;
    c->m = m;
    c->kern = k;
    c->n_ctx = n_ctx;
    c->n_batch = p && p->n_batch > 0 ? (p->n_batch < 4096 ? p->n_batch : 4096) : DEFAULT_BATCH;
    int D = cfg->dim, qd = cfg->n_heads * cfg->head_dim, kvd = cfg->n_kv_heads * cfg->head_dim, F = cfg->ffn_dim;
    size_t B = (size_t)c->n_batch, fail = 0;
    int f = 0;
    c->kv_dt = p && p->kv_f32 ? ULM_DT_F32 : ULM_DT_F16;
    c->n_threads = nt;
    c->kv_layers = kv_layers_new(m, n_ctx, c->n_batch, c->kv_dt);
    if (!c->kv_layers) f = 1;
    int cap_max = 1;
    for (int l = 0; l < cfg->n_layers && !f; l++)
        if (c->kv_layers[l].cap > cap_max) cap_max = c->kv_layers[l].cap;
    int group = cfg->n_heads / cfg->n_kv_heads, hd = cfg->head_dim;
    size_t qb = ATT_SCRATCH_BYTES / ((size_t)2 * group * cap_max * 4);
    c->att_qb = qb < 1 ? 1 : qb > ATT_QB_MAX ? ATT_QB_MAX : (int)qb;
    if (c->att_qb > c->n_batch) c->att_qb = c->n_batch;
    size_t qprep = k->prepare_size(c->kv_dt, c->att_qb * group, hd);
    c->att_scratch = ((size_t)2 * c->att_qb * group * cap_max + (size_t)ATT_VCHUNK * hd + (qprep + 3) / 4 + 15) / 16 * 16;
    c->x = xalloc(B * D * 4, &f);
    c->xb = xalloc(B * (D > qd ? D : qd) * 4, &f);
    c->q = xalloc(B * qd * 4, &f);
    c->kv = xalloc(B * 2 * kvd * 4, &f);
    c->att = xalloc(B * qd * 4, &f);
    c->o = xalloc(B * D * 4, &f);
    c->gate = xalloc(B * F * 4, &f);
    c->up = xalloc(B * F * 4, &f);
    c->scores = xalloc((size_t)nt * c->att_scratch * 4, &f);
    c->rope_cs = xalloc((size_t)nt * cfg->head_dim * 4, &f);
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
    kv_layers_free(c->m, c->kv_layers);
    xfree(c->x); xfree(c->xb); xfree(c->q); xfree(c->kv);
    xfree(c->att); xfree(c->o); xfree(c->gate); xfree(c->up); xfree(c->scores); xfree(c->rope_cs); xfree(c->xprep);
    free(c);
}

void ulm_ctx_reset(ulm_ctx *c) { c->pos = 0; }

/* A ring slot of position t is overwritten once position t + cap is written. After the
 * sequence reached c->pos, a query at pos (or later) still needs keys back to
 * pos - window + 1; the last write that could have reached them is c->pos - 1, so the rewind
 * is exact when c->pos - cap < pos - window + 1, or when the ring never wrapped. */
int ulm_ctx_rewind(ulm_ctx *c, int pos) {
    if (pos < 0 || pos > c->pos) return -1;
    const model_config *cfg = &c->m->cfg;
    for (int l = 0; l < cfg->n_layers; l++) {
        int cap = c->kv_layers[l].cap;
        if (c->pos <= cap || !c->m->layers[l].is_local) continue;
        if (c->pos - cap >= pos - cfg->sliding_window + 1) return -1;
    }
    c->pos = pos;
    return 0;
}
void kv_state_free(kv_state *s) {
    if (!s) return;
    kv_layers_free(s->m, s->layers);
    free(s);
}

ulm_status kv_state_new(const ulm_ctx *c, kv_state **out, ulm_error *err) {
    kv_state *s = calloc(1, sizeof *s);
    if (s) *s = (kv_state){c->m, c->n_ctx, c->n_batch, 0, c->kv_dt, kv_layers_new(c->m, c->n_ctx, c->n_batch, c->kv_dt)};
    if (!s || !s->layers) {
        free(s);
        return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory for a sequence state of %d tokens", c->n_ctx);
    }
    *out = s;
    return ULM_OK;
}

ulm_status kv_state_eval(ulm_ctx *c, kv_state *const *seqs, const int32_t *tokens, int n, float *logits,
                         ulm_error *err) {
    const model_config *cfg = &c->m->cfg;
    if (n <= 0 || n > c->n_batch) return ulm_set_error(err, ULM_ERR_ARG, "%d sequences in one step (1..%d)", n, c->n_batch);
    for (int i = 0; i < n; i++) {
        const kv_state *s = seqs[i];
        if (s->m != c->m || s->n_ctx != c->n_ctx || s->n_batch != c->n_batch || s->kv_dt != c->kv_dt)
            return ulm_set_error(err, ULM_ERR_ARG, "sequence %d was not made for this context", i);
        if (s->pos >= c->n_ctx)
            return ulm_set_error(err, ULM_ERR_CONTEXT, "context full: sequence %d is at position %d of %d", i, s->pos, c->n_ctx);
        if (tokens[i] < 0 || tokens[i] >= cfg->vocab_size)
            return ulm_set_error(err, ULM_ERR_ARG, "token id %d is outside the vocabulary (%d)", tokens[i], cfg->vocab_size);
        for (int j = 0; j < i; j++)
            if (seqs[j] == s) return ulm_set_error(err, ULM_ERR_ARG, "sequence %d is also sequence %d", i, j);
    }
    c->seqs = seqs;
    forward(c, tokens, n, 1, logits);
    c->seqs = NULL;
    return check_logits(logits, (size_t)n * cfg->vocab_size, err);
}

void kv_state_swap(ulm_ctx *c, kv_state *s) {
    kv_layer *l = c->kv_layers;
    int pos = c->pos;
    c->kv_layers = s->layers;
    c->pos = s->pos;
    s->layers = l;
    s->pos = pos;
}

void kv_state_copy(kv_state *dst, const kv_state *src) {
    const model_config *cfg = &src->m->cfg;
    size_t es = src->kv_dt == ULM_DT_F16 ? 2 : 4, hd = (size_t)cfg->head_dim * es;
    for (int l = 0; l < cfg->n_layers; l++) {
        const kv_layer *a = &src->layers[l];
        kv_layer *b = &dst->layers[l];
        size_t used = (size_t)(src->pos < a->cap ? src->pos : a->cap); /* slots t % cap written so far */
        for (int h = 0; h < cfg->n_kv_heads; h++) { /* [n_kv_heads][cap][head_dim] */
            size_t off = (size_t)h * a->cap * hd;
            memcpy((char *)b->k + off, (const char *)a->k + off, used * hd);
            memcpy((char *)b->v + off, (const char *)a->v + off, used * hd);
        }
    }
    dst->pos = src->pos;
}

int ulm_ctx_pos(const ulm_ctx *c) { return c->pos; }
int ulm_ctx_size(const ulm_ctx *c) { return c->n_ctx; }

const ulm_model *ulm_ctx_model(const ulm_ctx *c) { return c->m; }
