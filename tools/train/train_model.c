/* Model layout, initialization, batched forward/backward and AdamW. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train_model.h"
#include "train_attn.h"
#include "train_ops.h"
#include "train_par.h"
#include "train_vec.h"

static const train_arch archs[] = {
    {"llama", 1, 0, 0, 0, 0, 0},
    {"gemma3", 0, 1, 1, 1, 1, 1},
    {"qwen3", 0, 0, 1, 0, 0, 0},
};

const train_arch *train_arch_find(const char *name) {
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
        if (!strcmp(archs[i].name, name)) return &archs[i];
    return NULL;
}

void train_config_default(train_config *c, const train_arch *arch) {
    memset(c, 0, sizeof *c);
    c->arch = arch;
    c->dim = 128;
    c->n_layers = 4;
    c->n_heads = 4;
    c->n_kv_heads = 2;
    c->head_dim = 32;
    c->ffn_dim = 384;
    c->vocab_size = 259;
    c->max_ctx = 256;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_theta_local = 10000.0f;
    c->query_scale = 0; /* 0: 1/sqrt(head_dim) */
    c->sliding_window = 0;
    c->sliding_pattern = 0;
    c->tied = arch ? arch->tied_default : 0;
}

ulm_status train_config_check(const train_config *c, ulm_error *err) {
    if (!c->arch) return ulm_set_error(err, ULM_ERR_ARG, "train: no architecture");
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
        c->ffn_dim <= 0 || c->vocab_size <= 0 || c->max_ctx <= 0)
        return ulm_set_error(err, ULM_ERR_ARG, "train: every model size must be positive");
    if (c->n_heads % c->n_kv_heads)
        return ulm_set_error(err, ULM_ERR_ARG, "train: n_heads (%d) must be a multiple of n_kv_heads (%d)",
                             c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2) return ulm_set_error(err, ULM_ERR_ARG, "train: head_dim must be even");
    if (c->dim > 65536 || c->ffn_dim > 262144 || c->vocab_size > 1 << 20 || c->max_ctx > 1 << 16 ||
        c->n_layers > 256 || (long)c->n_heads * c->head_dim > 65536)
        return ulm_set_error(err, ULM_ERR_ARG, "train: model sizes out of range");
    return ULM_OK;
}

static int add_tensor(train_model *m, int cap, const char *name, int ndim, int rows, int cols, int decay) {
    if (m->n_tensors >= cap) return -1;
    train_tensor *t = &m->t[m->n_tensors];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->rows = rows;
    t->cols = cols;
    t->off = m->n_params;
    t->decay = decay;
    m->n_params += (size_t)rows * cols;
    m->n_params = (m->n_params + 15) & ~(size_t)15; /* 64-byte aligned tensors */
    return m->n_tensors++;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rand_normal(uint64_t *s) {
    double u1 = ((splitmix64(s) >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    double u2 = (splitmix64(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

ulm_status train_model_new(train_model **out, const train_config *cfg, uint64_t seed, ulm_error *err) {
    ulm_status st = train_config_check(cfg, err);
    if (st) return st;
    train_model *m = calloc(1, sizeof *m);
    if (!m) return ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory");
    m->cfg = *cfg;
    const train_arch *a = cfg->arch;
    int D = cfg->dim, L = cfg->n_layers, hd = cfg->head_dim, Hq = cfg->n_heads * hd, Hk = cfg->n_kv_heads * hd;
    int cap = 3 + 13 * L;
    m->t = calloc((size_t)cap, sizeof *m->t);
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->t || !m->layers) { train_model_free(m); return ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory"); }
    m->tok_embd = add_tensor(m, cap, "token_embd", 2, cfg->vocab_size, D, 1);
    char name[48];
    for (int l = 0; l < L; l++) {
        train_layer *ly = &m->layers[l];
#define T2(field, suffix, r, c) (snprintf(name, sizeof name, "blk.%d." suffix, l), ly->field = add_tensor(m, cap, name, 2, r, c, 1))
#define T1(field, suffix, n) (snprintf(name, sizeof name, "blk.%d." suffix, l), ly->field = add_tensor(m, cap, name, 1, 1, n, 0))
        T1(attn_norm, "attn_norm", D);
        T2(wq, "attn_q", Hq, D);
        T2(wk, "attn_k", Hk, D);
        T2(wv, "attn_v", Hk, D);
        ly->q_norm = ly->k_norm = ly->post_attn_norm = ly->post_ffn_norm = -1;
        if (a->qk_norm) { T1(q_norm, "attn_q_norm", hd); T1(k_norm, "attn_k_norm", hd); }
        T2(wo, "attn_output", D, Hq);
        if (a->post_norms) T1(post_attn_norm, "post_attention_norm", D);
        T1(ffn_norm, "ffn_norm", D);
        T2(w_gate, "ffn_gate", cfg->ffn_dim, D);
        T2(w_up, "ffn_up", cfg->ffn_dim, D);
        T2(w_down, "ffn_down", D, cfg->ffn_dim);
        if (a->post_norms) T1(post_ffn_norm, "post_ffw_norm", D);
#undef T1
#undef T2
    }
    m->output_norm = add_tensor(m, cap, "output_norm", 1, 1, D, 0);
    m->output = cfg->tied ? m->tok_embd : add_tensor(m, cap, "output", 2, cfg->vocab_size, D, 1);
    size_t bytes = m->n_params * sizeof(float);
    m->w = aligned_alloc(64, bytes);
    m->g = aligned_alloc(64, bytes);
    m->m = aligned_alloc(64, bytes);
    m->v = aligned_alloc(64, bytes);
    int half = hd / 2;
    size_t rope_n = (size_t)cfg->max_ctx * half;
    m->rope_cos = malloc(rope_n * sizeof(float));
    m->rope_sin = malloc(rope_n * sizeof(float));
    m->rope_cos_l = malloc(rope_n * sizeof(float));
    m->rope_sin_l = malloc(rope_n * sizeof(float));
    if (!m->w || !m->g || !m->m || !m->v || !m->rope_cos || !m->rope_sin || !m->rope_cos_l || !m->rope_sin_l) {
        train_model_free(m);
        return ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory for %zu parameters", m->n_params);
    }
    memset(m->w, 0, bytes);
    memset(m->g, 0, bytes);
    memset(m->m, 0, bytes);
    memset(m->v, 0, bytes);
    op_rope_tables(m->rope_cos, m->rope_sin, cfg->max_ctx, hd, cfg->rope_theta);
    op_rope_tables(m->rope_cos_l, m->rope_sin_l, cfg->max_ctx, hd, cfg->rope_theta_local);

    uint64_t rs = seed * 0x2545f4914f6cdd1dull + 1;
    double resid_std = 0.02 / sqrt(2.0 * L);
    for (int i = 0; i < m->n_tensors; i++) {
        train_tensor *t = &m->t[i];
        float *p = m->w + t->off;
        size_t n = (size_t)t->rows * t->cols;
        if (t->ndim == 1) {
            for (size_t j = 0; j < n; j++) p[j] = 1.0f;
            continue;
        }
        int resid = strstr(t->name, "attn_output") || strstr(t->name, "ffn_down");
        double std = resid ? resid_std : 0.02;
        for (size_t j = 0; j < n; j++) p[j] = (float)(std * rand_normal(&rs));
    }
    *out = m;
    return ULM_OK;
}

void train_model_free(train_model *m) {
    if (!m) return;
    free(m->t);
    free(m->layers);
    free(m->w);
    free(m->g);
    free(m->m);
    free(m->v);
    free(m->avg);
    free(m->rope_cos);
    free(m->rope_sin);
    free(m->rope_cos_l);
    free(m->rope_sin_l);
    free(m);
}

float *train_param(train_model *m, int t) { return m->w + m->t[t].off; }
float *train_grad(train_model *m, int t) { return m->g + m->t[t].off; }

int train_find_tensor(const train_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->t[i].name, name)) return i;
    return -1;
}

/* ---- batch ---- */
void train_batch_free(train_batch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->ptargets);
    free(b->pos);
    free(b->seg_start);
    free(b->seg_len);
    memset(b, 0, sizeof *b);
}

int train_batch_reserve(train_batch *b, int n, int n_seg) {
    if (n > b->cap_n) {
        int32_t *t = realloc(b->tokens, (size_t)n * 4), *g = t ? realloc(b->targets, (size_t)n * 4) : NULL;
        if (t) b->tokens = t;
        if (g) b->targets = g;
        int32_t *p = g ? realloc(b->pos, (size_t)n * 4) : NULL;
        if (p) b->pos = p;
        int32_t *pt = p ? realloc(b->ptargets, (size_t)n * 4) : NULL;
        if (!pt) return -1;
        b->ptargets = pt;
        b->cap_n = n;
    }
    if (n_seg > b->cap_seg) {
        int32_t *s = realloc(b->seg_start, (size_t)n_seg * 4), *l = s ? realloc(b->seg_len, (size_t)n_seg * 4) : NULL;
        if (s) b->seg_start = s;
        if (!l) return -1;
        b->seg_len = l;
        b->cap_seg = n_seg;
    }
    return 0;
}

/* ---- workspace ---- */
typedef struct layer_acts {
    float *x, *r1, *h1, *qraw, *q, *kraw, *k, *v, *rq, *rk, *p, *att, *o, *rpo, *xm, *r2, *h2, *g, *u, *a, *d, *rpf;
} layer_acts;

struct train_ws {
    tpool *pool;
    tgemm *gemm;
    int cap_n, cap_m;
    size_t cap_p;
    float *arena;
    layer_acts *la;
    int n_la;
    float *xl, *rf, *xf;               /* final residual, norm, normed [N, D] */
    float *xs, *logits, *dxs;          /* selected rows [M, D], [M, V] */
    int32_t *sel, *tsel;               /* [M] row index and target */
    double *row_loss;                  /* [M] each row's loss */
    double prompt_loss;                /* the last forward's summed loss on its prompt_rows rows */
    int prompt_rows;
    float *dx, *db, *dh, *datt, *dq, *dk, *dv, *dqr, *dkr, *dg, *du, *da;
    size_t *poff;                      /* [n_seg] offset into a layer's p */
    int cap_seg;
    const train_vec *tv;
    float *ascr;                       /* [threads][cap_l * cap_l] attention backward scratch */
    int cap_l;
};

train_ws *train_ws_new(tpool *pool) {
    train_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->pool = pool;
    ws->gemm = tgemm_new(pool);
    if (!ws->gemm) { free(ws); return NULL; }
    ws->tv = train_vec_best();
    return ws;
}

void train_ws_free(train_ws *ws) {
    if (!ws) return;
    tgemm_free(ws->gemm);
    free(ws->arena);
    free(ws->la);
    free(ws->sel);
    free(ws->tsel);
    free(ws->row_loss);
    free(ws->poff);
    free(ws->ascr);
    free(ws);
}

tgemm *train_ws_gemm(train_ws *ws) { return ws->gemm; }
double train_ws_prompt_loss(const train_ws *ws, int *rows) {
    *rows = ws->prompt_rows;
    return ws->prompt_loss;
}

/* One arena for everything; carving is done twice (measure, then assign). */
static int ws_reserve(train_ws *ws, const train_config *c, int N, int M, size_t P, int n_seg) {
    if (n_seg > ws->cap_seg) {
        size_t *po = realloc(ws->poff, (size_t)n_seg * sizeof *po);
        if (!po) return -1;
        ws->poff = po;
        ws->cap_seg = n_seg;
    }
    if (N <= ws->cap_n && M <= ws->cap_m && P <= ws->cap_p && ws->n_la == c->n_layers) return 0;
    if (N < ws->cap_n) N = ws->cap_n;
    if (M < ws->cap_m) M = ws->cap_m;
    if (P < ws->cap_p) P = ws->cap_p;
    N += N / 4; /* grow with headroom */
    M += M / 4;
    P += P / 4;
    free(ws->arena);
    ws->arena = NULL;
    free(ws->la);
    ws->la = calloc((size_t)c->n_layers, sizeof *ws->la);
    int32_t *sel = realloc(ws->sel, (size_t)M * 4), *tsel = sel ? realloc(ws->tsel, (size_t)M * 4) : NULL;
    double *rl = tsel ? realloc(ws->row_loss, (size_t)M * sizeof(double)) : NULL;
    if (sel) ws->sel = sel;
    if (tsel) ws->tsel = tsel;
    if (rl) ws->row_loss = rl;
    if (!ws->la || !sel || !tsel || !rl) return -1;
    ws->n_la = c->n_layers;
    size_t D = c->dim, Hq = (size_t)c->n_heads * c->head_dim, Hk = (size_t)c->n_kv_heads * c->head_dim,
           F = c->ffn_dim, V = c->vocab_size, n = N, qk = c->arch->qk_norm;
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0;
        float *base = ws->arena;
#define CARVE(ptr, count) do { size_t cnt_ = (count); if (pass) (ptr) = base + off; off += (cnt_ + 15) & ~(size_t)15; } while (0)
        for (int l = 0; l < c->n_layers; l++) {
            layer_acts *a = &ws->la[l];
            CARVE(a->x, n * D); CARVE(a->r1, n); CARVE(a->h1, n * D);
            CARVE(a->q, n * Hq); CARVE(a->k, n * Hk); CARVE(a->v, n * Hk);
            if (qk) { CARVE(a->qraw, n * Hq); CARVE(a->kraw, n * Hk); CARVE(a->rq, n * c->n_heads); CARVE(a->rk, n * c->n_kv_heads); }
            CARVE(a->p, P); CARVE(a->att, n * Hq); CARVE(a->o, n * D); CARVE(a->rpo, n); CARVE(a->xm, n * D);
            CARVE(a->r2, n); CARVE(a->h2, n * D); CARVE(a->g, n * F); CARVE(a->u, n * F); CARVE(a->a, n * F);
            CARVE(a->d, n * D); CARVE(a->rpf, n);
        }
        CARVE(ws->xl, n * D); CARVE(ws->rf, n); CARVE(ws->xf, n * D);
        CARVE(ws->xs, (size_t)M * D); CARVE(ws->logits, (size_t)M * V); CARVE(ws->dxs, (size_t)M * D);
        CARVE(ws->dx, n * D); CARVE(ws->db, n * D); CARVE(ws->dh, n * D); CARVE(ws->datt, n * Hq);
        CARVE(ws->dq, n * Hq); CARVE(ws->dk, n * Hk); CARVE(ws->dv, n * Hk); CARVE(ws->dqr, n * Hq);
        CARVE(ws->dkr, n * Hk); CARVE(ws->dg, n * F); CARVE(ws->du, n * F); CARVE(ws->da, n * F);
#undef CARVE
        if (!pass) {
            ws->arena = aligned_alloc(64, off * sizeof(float));
            if (!ws->arena) return -1;
        }
    }
    ws->cap_n = N;
    ws->cap_m = M;
    ws->cap_p = P;
    return 0;
}

/* ---- parallel pieces ---- */
typedef struct {
    const train_model *m;
    const train_batch *b;
    train_ws *ws;
    layer_acts *a;
    int layer, window;
    float scale;
} attn_job;

static void attn_fwd_thread(void *ctx, int ith, int nth) {
    attn_job *j = ctx;
    const train_config *c = &j->m->cfg;
    int Hq = c->n_heads * c->head_dim, Hk = c->n_kv_heads * c->head_dim;
    for (int s = ith; s < j->b->n_seg; s += nth) {
        size_t r = (size_t)j->b->seg_start[s];
        attn_fwd_gemm(j->ws->gemm, ith, j->ws->tv, j->a->att + r * Hq, j->a->p + j->ws->poff[s], j->a->q + r * Hq,
                      j->a->k + r * Hk, j->a->v + r * Hk, j->b->seg_len[s], c->n_heads, c->n_kv_heads, c->head_dim,
                      j->scale, j->window);
    }
}

static void attn_bwd_thread(void *ctx, int ith, int nth) {
    attn_job *j = ctx;
    const train_config *c = &j->m->cfg;
    int Hq = c->n_heads * c->head_dim, Hk = c->n_kv_heads * c->head_dim;
    train_ws *ws = j->ws;
    for (int s = ith; s < j->b->n_seg; s += nth) {
        size_t r = (size_t)j->b->seg_start[s];
        attn_bwd_gemm(ws->gemm, ith, ws->tv, ws->ascr + (size_t)ith * ws->cap_l * ws->cap_l, ws->dq + r * Hq,
                      ws->dk + r * Hk, ws->dv + r * Hk, ws->datt + r * Hq, j->a->p + ws->poff[s], j->a->q + r * Hq,
                      j->a->k + r * Hk, j->a->v + r * Hk, j->b->seg_len[s], c->n_heads, c->n_kv_heads, c->head_dim,
                      j->scale);
    }
}

/* Y[N,out] = X[N,in] W^T */
static void mm_fwd(tgemm *g, float *y, const float *x, const float *w, int n, int out, int in) {
    tgemm_run(g, n, out, in, x, in, 0, w, in, 1, y, out, 0);
}
/* dX (+)= dY W ; dW += dY^T X */
static void mm_bwd(tgemm *g, float *dx, float *dw, const float *dy, const float *x, const float *w, int n, int out,
                   int in, int acc_dx) {
    tgemm_run(g, out, in, n, dy, out, 1, x, in, 0, dw, in, 1);
    if (dx) tgemm_run(g, n, in, out, dy, out, 0, w, in, 0, dx, in, acc_dx);
}

static int layer_is_local(const train_config *c, int l) {
    return c->sliding_window > 0 && c->sliding_pattern > 0 && (l + 1) % c->sliding_pattern != 0;
}

ulm_status train_forward(train_model *m, train_ws *ws, const train_batch *b, int backward, double *loss_sum,
                         int *n_targets, float *logits_out, ulm_error *err) {
    const train_config *c = &m->cfg;
    const train_arch *ar = c->arch;
    int N = b->n, D = c->dim, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads, F = c->ffn_dim,
        V = c->vocab_size;
    int Hq = nh * hd, Hk = nkv * hd;
    /* validate the batch: tokens in range, segments tile [0, N), positions fit the context */
    /* M rows of logits: the Mo output targets, then the prompt's when its loss is on */
    int Mo = 0, M = 0, pl = b->prompt_weight > 0;
    size_t P = 0;
    for (int i = 0; i < N; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= V || b->targets[i] >= V || (pl && b->ptargets[i] >= V))
            return ulm_set_error(err, ULM_ERR_ARG, "train: token id out of range at %d", i);
        if (b->targets[i] >= 0) Mo++;
        else if (pl && b->ptargets[i] >= 0) M++;
    }
    if (Mo == 0) M = 0; /* the prompt's loss is weighted against the output's: none without it */
    M += Mo;
    int expect = 0;
    for (int s = 0; s < b->n_seg; s++) {
        if (b->seg_start[s] != expect || b->seg_len[s] <= 0 || b->seg_len[s] > c->max_ctx)
            return ulm_set_error(err, ULM_ERR_ARG, "train: bad segment %d (longer than the context %d?)", s,
                                 c->max_ctx);
        expect += b->seg_len[s];
        P += (size_t)nh * b->seg_len[s] * b->seg_len[s];
    }
    if (expect != N) return ulm_set_error(err, ULM_ERR_ARG, "train: segments do not cover the batch");
    for (int s = 0; s < b->n_seg; s++)
        for (int t = 0; t < b->seg_len[s]; t++)
            if (b->pos[b->seg_start[s] + t] != t) return ulm_set_error(err, ULM_ERR_ARG, "train: bad positions");
    if (ws_reserve(ws, c, N > 0 ? N : 1, M > 0 ? M : 1, P > 0 ? P : 1, b->n_seg > 0 ? b->n_seg : 1))
        return ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory for a batch of %d tokens", N);
    if (backward) {
        int lmax = 0;
        for (int s = 0; s < b->n_seg; s++) lmax = b->seg_len[s] > lmax ? b->seg_len[s] : lmax;
        if (lmax > ws->cap_l) {
            float *scr = malloc((size_t)tpool_size(ws->pool) * lmax * lmax * sizeof(float));
            if (!scr) return ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory for attention scratch");
            free(ws->ascr);
            ws->ascr = scr;
            ws->cap_l = lmax;
        }
    }
    {
        size_t off = 0;
        for (int s = 0; s < b->n_seg; s++) {
            ws->poff[s] = off;
            off += (size_t)nh * b->seg_len[s] * b->seg_len[s];
        }
    }
    tgemm *g = ws->gemm;
    float es = ar->embed_scale ? sqrtf((float)D) : 1.0f;
    float scale = c->query_scale > 0 ? c->query_scale : 1.0f / sqrtf((float)hd);

    /* embeddings */
    const float *E = train_param(m, m->tok_embd);
    for (int i = 0; i < N; i++) {
        const float *e = E + (size_t)b->tokens[i] * D;
        float *x = ws->la[0].x + (size_t)i * D;
        for (int j = 0; j < D; j++) x[j] = e[j] * es;
    }
    for (int l = 0; l < c->n_layers; l++) {
        const train_layer *ly = &m->layers[l];
        layer_acts *a = &ws->la[l];
        float *xnext = l + 1 < c->n_layers ? ws->la[l + 1].x : ws->xl;
        int local = layer_is_local(c, l);
        const float *rc = local ? m->rope_cos_l : m->rope_cos, *rsn = local ? m->rope_sin_l : m->rope_sin;
        par_rmsnorm_fwd(ws->pool, a->h1, a->r1, a->x, train_param(m, ly->attn_norm), N, D, c->norm_eps);
        float *qd = ar->qk_norm ? a->qraw : a->q, *kd = ar->qk_norm ? a->kraw : a->k;
        mm_fwd(g, qd, a->h1, train_param(m, ly->wq), N, Hq, D);
        mm_fwd(g, kd, a->h1, train_param(m, ly->wk), N, Hk, D);
        mm_fwd(g, a->v, a->h1, train_param(m, ly->wv), N, Hk, D);
        if (ar->qk_norm) {
            par_rmsnorm_fwd(ws->pool, a->q, a->rq, a->qraw, train_param(m, ly->q_norm), N * nh, hd, c->norm_eps);
            par_rmsnorm_fwd(ws->pool, a->k, a->rk, a->kraw, train_param(m, ly->k_norm), N * nkv, hd, c->norm_eps);
        }
        par_rope(ws->pool, a->q, b->pos, N, nh, hd, rc, rsn, ar->rope_interleaved, 0);
        par_rope(ws->pool, a->k, b->pos, N, nkv, hd, rc, rsn, ar->rope_interleaved, 0);
        attn_job aj = {m, b, ws, a, l, local ? c->sliding_window : 0, scale};
        tpool_run(ws->pool, attn_fwd_thread, &aj);
        mm_fwd(g, a->o, a->att, train_param(m, ly->wo), N, D, Hq);
        const float *ob = a->o;
        if (ar->post_norms) {
            par_rmsnorm_fwd(ws->pool, ws->dh, a->rpo, a->o, train_param(m, ly->post_attn_norm), N, D, c->norm_eps);
            ob = ws->dh; /* scratch: only needed to form xm */
        }
        par_add(ws->pool, a->xm, a->x, ob, N * D);
        par_rmsnorm_fwd(ws->pool, a->h2, a->r2, a->xm, train_param(m, ly->ffn_norm), N, D, c->norm_eps);
        mm_fwd(g, a->g, a->h2, train_param(m, ly->w_gate), N, F, D);
        mm_fwd(g, a->u, a->h2, train_param(m, ly->w_up), N, F, D);
        if (ar->gelu) op_glu_fwd(a->a, a->g, a->u, N * F, 1);
        else par_silu_glu_fwd(ws->pool, ws->tv, a->a, a->g, a->u, N * F);
        mm_fwd(g, a->d, a->a, train_param(m, ly->w_down), N, D, F);
        const float *db = a->d;
        if (ar->post_norms) {
            par_rmsnorm_fwd(ws->pool, ws->dh, a->rpf, a->d, train_param(m, ly->post_ffn_norm), N, D, c->norm_eps);
            db = ws->dh;
        }
        par_add(ws->pool, xnext, a->xm, db, N * D);
    }
    par_rmsnorm_fwd(ws->pool, ws->xf, ws->rf, ws->xl, train_param(m, m->output_norm), N, D, c->norm_eps);
    /* logits only where there is a loss: output rows first, then prompt rows */
    int k = 0;
    for (int pass = 0; pass < (M > Mo ? 2 : 1); pass++)
        for (int i = 0; i < N; i++) {
            int32_t t = b->targets[i] >= 0 ? (pass ? -1 : b->targets[i]) : (pass ? b->ptargets[i] : -1);
            if (t < 0) continue;
            ws->sel[k] = i;
            ws->tsel[k] = t;
            memcpy(ws->xs + (size_t)k * D, ws->xf + (size_t)i * D, (size_t)D * sizeof(float));
            k++;
        }
    const float *W_out = train_param(m, m->output);
    mm_fwd(g, ws->logits, ws->xs, W_out, M, V, D);
    if (logits_out) memcpy(logits_out, ws->logits, (size_t)Mo * V * sizeof(float));
    /* loss = (sum of output rows + prompt_weight * sum of prompt rows) / Mo; what is returned
     * is the output's part alone, so the logged and validation losses keep their meaning */
    *n_targets = Mo;
    *loss_sum = par_xent(ws->pool, ws->tv, ws->logits, Mo, V, ws->tsel, backward ? 1.0f / Mo : 0.0f, ws->row_loss);
    ws->prompt_loss = M > Mo ? par_xent(ws->pool, ws->tv, ws->logits + (size_t)Mo * V, M - Mo, V, ws->tsel + Mo,
                                        backward ? b->prompt_weight / Mo : 0.0f, ws->row_loss + Mo)
                             : 0.0;
    ws->prompt_rows = M - Mo;
    if (!backward || M == 0) return ULM_OK;

    /* ---- backward ---- */
    mm_bwd(g, ws->dxs, train_grad(m, m->output), ws->logits, ws->xs, W_out, M, V, D, 0);
    par_zero(ws->pool, ws->db, N * D);
    for (int r = 0; r < M; r++)
        memcpy(ws->db + (size_t)ws->sel[r] * D, ws->dxs + (size_t)r * D, (size_t)D * sizeof(float));
    par_zero(ws->pool, ws->dx, N * D);
    par_rmsnorm_bwd(ws->pool, ws->dx, train_grad(m, m->output_norm), ws->db, ws->xl, ws->rf,
                    train_param(m, m->output_norm), N, D);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        const train_layer *ly = &m->layers[l];
        layer_acts *a = &ws->la[l];
        int local = layer_is_local(c, l);
        const float *rc = local ? m->rope_cos_l : m->rope_cos, *rsn = local ? m->rope_sin_l : m->rope_sin;
        /* x_next = xm + post(d): dx holds d/dx_next */
        const float *dd = ws->dx;
        if (ar->post_norms) {
            par_zero(ws->pool, ws->db, N * D);
            par_rmsnorm_bwd(ws->pool, ws->db, train_grad(m, ly->post_ffn_norm), ws->dx, a->d, a->rpf,
                            train_param(m, ly->post_ffn_norm), N, D);
            dd = ws->db;
        }
        mm_bwd(g, ws->da, train_grad(m, ly->w_down), dd, a->a, train_param(m, ly->w_down), N, D, F, 0);
        par_zero(ws->pool, ws->dg, N * F);
        par_zero(ws->pool, ws->du, N * F);
        if (ar->gelu) op_glu_bwd(ws->dg, ws->du, ws->da, a->g, a->u, N * F, 1);
        else par_silu_glu_bwd(ws->pool, ws->tv, ws->dg, ws->du, ws->da, a->g, a->u, N * F);
        mm_bwd(g, ws->dh, train_grad(m, ly->w_gate), ws->dg, a->h2, train_param(m, ly->w_gate), N, F, D, 0);
        mm_bwd(g, ws->dh, train_grad(m, ly->w_up), ws->du, a->h2, train_param(m, ly->w_up), N, F, D, 1);
        par_rmsnorm_bwd(ws->pool, ws->dx, train_grad(m, ly->ffn_norm), ws->dh, a->xm, a->r2,
                        train_param(m, ly->ffn_norm), N, D);
        /* xm = x + post(o): dx now holds d/dxm */
        const float *dob = ws->dx;
        if (ar->post_norms) {
            par_zero(ws->pool, ws->db, N * D);
            par_rmsnorm_bwd(ws->pool, ws->db, train_grad(m, ly->post_attn_norm), ws->dx, a->o, a->rpo,
                            train_param(m, ly->post_attn_norm), N, D);
            dob = ws->db;
        }
        mm_bwd(g, ws->datt, train_grad(m, ly->wo), dob, a->att, train_param(m, ly->wo), N, D, Hq, 0);
        par_zero(ws->pool, ws->dq, N * Hq);
        par_zero(ws->pool, ws->dk, N * Hk);
        par_zero(ws->pool, ws->dv, N * Hk);
        attn_job aj = {m, b, ws, a, l, 0, scale};
        tpool_run(ws->pool, attn_bwd_thread, &aj);
        par_rope(ws->pool, ws->dq, b->pos, N, nh, hd, rc, rsn, ar->rope_interleaved, 1);
        par_rope(ws->pool, ws->dk, b->pos, N, nkv, hd, rc, rsn, ar->rope_interleaved, 1);
        float *dqd = ws->dq, *dkd = ws->dk;
        if (ar->qk_norm) {
            par_zero(ws->pool, ws->dqr, N * Hq);
            par_zero(ws->pool, ws->dkr, N * Hk);
            par_rmsnorm_bwd(ws->pool, ws->dqr, train_grad(m, ly->q_norm), ws->dq, a->qraw, a->rq,
                            train_param(m, ly->q_norm), N * nh, hd);
            par_rmsnorm_bwd(ws->pool, ws->dkr, train_grad(m, ly->k_norm), ws->dk, a->kraw, a->rk,
                            train_param(m, ly->k_norm), N * nkv, hd);
            dqd = ws->dqr;
            dkd = ws->dkr;
        }
        mm_bwd(g, ws->dh, train_grad(m, ly->wq), dqd, a->h1, train_param(m, ly->wq), N, Hq, D, 0);
        mm_bwd(g, ws->dh, train_grad(m, ly->wk), dkd, a->h1, train_param(m, ly->wk), N, Hk, D, 1);
        mm_bwd(g, ws->dh, train_grad(m, ly->wv), ws->dv, a->h1, train_param(m, ly->wv), N, Hk, D, 1);
        par_rmsnorm_bwd(ws->pool, ws->dx, train_grad(m, ly->attn_norm), ws->dh, a->x, a->r1,
                        train_param(m, ly->attn_norm), N, D);
    }
    float *dE = train_grad(m, m->tok_embd);
    for (int i = 0; i < N; i++) {
        float *de = dE + (size_t)b->tokens[i] * D;
        const float *dxi = ws->dx + (size_t)i * D;
        for (int j = 0; j < D; j++) de[j] += dxi[j] * es;
    }
    return ULM_OK;
}

/* ---- optimizer ---- */
void train_opt_default(train_opt *o) {
    o->lr = 3e-3f;
    o->min_lr = 3e-4f;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->weight_decay = 0.1f;
    o->clip = 1.0f;
    o->warmup = 100;
    o->total_steps = 1000;
}

float train_lr_at(const train_opt *o, int step) {
    if (o->warmup > 0 && step < o->warmup) return o->lr * (float)(step + 1) / (float)o->warmup;
    int span = o->total_steps - o->warmup;
    if (span <= 0) return o->lr;
    double t = (double)(step - o->warmup) / span;
    if (t > 1) t = 1;
    return (float)(o->min_lr + 0.5 * (o->lr - o->min_lr) * (1.0 + cos(3.141592653589793 * t)));
}

typedef struct {
    train_model *m;
    const train_vec *tv;
    const tv_adamw_args *args; /* [n_tensors] */
} adamw_job;

/* Thread ith's share of every tensor (elementwise, so any split gives the same bits), and
 * that share of the gradient zeroed for the next step. */
static void adamw_thread(void *ctx, int ith, int nth) {
    const adamw_job *j = ctx;
    train_model *m = j->m;
    for (int k = 0; k < m->n_tensors; k++) {
        const train_tensor *tt = &m->t[k];
        int i0, i1;
        tpool_split(tt->rows * tt->cols, 16, ith, nth, &i0, &i1);
        if (i0 >= i1) continue;
        size_t o = tt->off + (size_t)i0;
        j->tv->adamw(m->w + o, m->g + o, m->m + o, m->v + o, (size_t)(i1 - i0), &j->args[k]);
        memset(m->g + o, 0, (size_t)(i1 - i0) * sizeof(float));
    }
}

float train_adamw_step(train_model *m, const train_opt *o, int step, tpool *pool) {
    double ss = 0;
    for (size_t i = 0; i < m->n_params; i++) ss += (double)m->g[i] * m->g[i];
    float norm = (float)sqrt(ss);
    float clip = o->clip > 0 && norm > o->clip ? o->clip / norm : 1.0f;
    float lr = train_lr_at(o, step);
    int t = step + 1;
    float bc1 = 1.0f - powf(o->beta1, (float)t), bc2 = 1.0f - powf(o->beta2, (float)t);
    tv_adamw_args args[m->n_tensors > 0 ? m->n_tensors : 1];
    for (int k = 0; k < m->n_tensors; k++)
        args[k] = (tv_adamw_args){o->beta1, o->beta2, clip, bc1, bc2,
                                  m->t[k].decay ? 1.0f - lr * o->weight_decay : 1.0f, lr, o->eps};
    adamw_job j = {m, train_vec_best(), args};
    tpool_run(pool, adamw_thread, &j);
    return norm;
}

int train_average_add(train_model *m) {
    if (!m->avg && !(m->avg = aligned_alloc(64, m->n_params * sizeof(float)))) return -1;
    if (m->avg_n == 0) {
        memcpy(m->avg, m->w, m->n_params * sizeof(float));
        m->avg_n = 1;
        return 0;
    }
    /* a running mean: the sum of thousands of steps would lose the low bits of each */
    float k = 1.0f / (float)++m->avg_n;
    for (size_t i = 0; i < m->n_params; i++) m->avg[i] += (m->w[i] - m->avg[i]) * k;
    return 0;
}

void train_average_swap(train_model *m) {
    if (!m->avg) return;
    float *t = m->w;
    m->w = m->avg;
    m->avg = t;
}
