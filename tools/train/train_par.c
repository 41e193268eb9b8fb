/* The trainer's elementwise and per-row ops split over the thread pool. Each thread gets whole
 * rows (or, for a weight gradient summed over rows, whole columns), and runs the op's own
 * loop on them, so the bits are those of the single-threaded op whatever the thread count. */
#include <string.h>
#include "train_ops.h"
#include "train_par.h"

/* Shares of rows and columns in multiples of 16 floats (one vector, one cache line): the
 * vector loops then see the same groups of lanes as on one thread. */
#define ALIGN 16

/* One op's arguments, named as in train_ops.h / train_vec.h (y: the output, or RoPE's rows in
 * place; a, b: the SiLU gate's dg, du; c: the second addend; cr: rstd when only read). */
typedef struct {
    float *y, *rstd, *dx, *dw, *a, *b;
    const float *x, *w, *dy, *g, *u, *c, *cr;
    const int32_t *pos;
    const float *cos_t, *sin_t;
    const train_vec *tv;
    int n, d, nh, hd, interleaved, backward;
    float eps;
} par_job;

static void rmsnorm_fwd_rows(void *ctx, int i0, int i1) {
    const par_job *j = ctx;
    op_rmsnorm_fwd(j->y + (size_t)i0 * j->d, j->rstd + i0, j->x + (size_t)i0 * j->d, j->w, i1 - i0, j->d, j->eps);
}

void par_rmsnorm_fwd(tpool *p, float *y, float *rstd, const float *x, const float *w, int n, int d, float eps) {
    par_job j = {.y = y, .rstd = rstd, .x = x, .w = w, .n = n, .d = d, .eps = eps};
    tpool_for(p, n, ALIGN, rmsnorm_fwd_rows, &j);
}

/* Thread ith of nth: its rows of dx and its columns of dw (independent: both only read). */
static void rmsnorm_bwd_thread(void *ctx, int ith, int nth) {
    const par_job *j = ctx;
    int i0, i1, c0, c1;
    tpool_split(j->n, ALIGN, ith, nth, &i0, &i1);
    tpool_split(j->d, ALIGN, ith, nth, &c0, &c1);
    if (i0 < i1)
        op_rmsnorm_bwd_dx(j->dx + (size_t)i0 * j->d, j->dy + (size_t)i0 * j->d, j->x + (size_t)i0 * j->d,
                          j->cr + i0, j->w, i1 - i0, j->d);
    if (c0 < c1) op_rmsnorm_bwd_dw(j->dw, j->dy, j->x, j->cr, j->n, j->d, c0, c1);
}

void par_rmsnorm_bwd(tpool *p, float *dx, float *dw, const float *dy, const float *x, const float *rstd,
                     const float *w, int n, int d) {
    if (tpool_size(p) == 1 || n <= ALIGN) {
        op_rmsnorm_bwd(dx, dw, dy, x, rstd, w, n, d);
        return;
    }
    par_job j = {.dx = dx, .dw = dw, .dy = dy, .x = x, .cr = rstd, .w = w, .n = n, .d = d};
    tpool_run(p, rmsnorm_bwd_thread, &j);
}

static void rope_rows(void *ctx, int i0, int i1) {
    const par_job *j = ctx;
    float *x = j->y + (size_t)i0 * j->nh * j->hd;
    if (!j->backward) op_rope_fwd(x, j->pos + i0, i1 - i0, j->nh, j->hd, j->cos_t, j->sin_t, j->interleaved);
    else op_rope_bwd(x, j->pos + i0, i1 - i0, j->nh, j->hd, j->cos_t, j->sin_t, j->interleaved);
}

void par_rope(tpool *p, float *x, const int32_t *pos, int n, int nh, int hd, const float *cos_t,
              const float *sin_t, int interleaved, int backward) {
    par_job j = {.y = x, .pos = pos, .nh = nh, .hd = hd, .cos_t = cos_t, .sin_t = sin_t,
                 .interleaved = interleaved, .backward = backward};
    tpool_for(p, n, ALIGN, rope_rows, &j);
}

static void silu_fwd_range(void *ctx, int i0, int i1) {
    const par_job *j = ctx;
    j->tv->silu_glu_fwd(j->y + i0, j->g + i0, j->u + i0, i1 - i0);
}

void par_silu_glu_fwd(tpool *p, const train_vec *tv, float *a, const float *g, const float *u, int n) {
    par_job j = {.y = a, .g = g, .u = u, .tv = tv};
    tpool_for(p, n, ALIGN * 64, silu_fwd_range, &j);
}

static void silu_bwd_range(void *ctx, int i0, int i1) {
    const par_job *j = ctx;
    j->tv->silu_glu_bwd(j->a + i0, j->b + i0, j->dy + i0, j->g + i0, j->u + i0, i1 - i0);
}

void par_silu_glu_bwd(tpool *p, const train_vec *tv, float *dg, float *du, const float *da, const float *g,
                      const float *u, int n) {
    par_job j = {.a = dg, .b = du, .dy = da, .g = g, .u = u, .tv = tv};
    tpool_for(p, n, ALIGN * 64, silu_bwd_range, &j);
}

static void add_range(void *ctx, int i0, int i1) {
    const par_job *j = ctx;
    for (int i = i0; i < i1; i++) j->y[i] = j->x[i] + j->c[i];
}

void par_add(tpool *p, float *y, const float *a, const float *b, int n) {
    par_job j = {.y = y, .x = a, .c = b};
    tpool_for(p, n, ALIGN * 64, add_range, &j);
}

static void zero_range(void *ctx, int i0, int i1) {
    const par_job *j = ctx;
    memset(j->y + i0, 0, (size_t)(i1 - i0) * sizeof(float));
}

void par_zero(tpool *p, float *x, int n) {
    par_job j = {.y = x};
    tpool_for(p, n, ALIGN * 64, zero_range, &j);
}

typedef struct {
    const train_vec *tv;
    float *logits;
    const int32_t *t;
    double *row_loss;
    int V;
    float scale;
} xent_job;

static void xent_rows(void *ctx, int i0, int i1) {
    const xent_job *j = ctx;
    for (int r = i0; r < i1; r++)
        j->row_loss[r] = j->tv->xent_row(j->logits + (size_t)r * j->V, j->V, j->t[r], j->scale);
}

double par_xent(tpool *p, const train_vec *tv, float *logits, int M, int V, const int32_t *t, float scale,
                double *row_loss) {
    xent_job j = {tv, logits, t, row_loss, V, scale};
    tpool_for(p, M, 1, xent_rows, &j);
    double loss = 0;
    for (int r = 0; r < M; r++) loss += row_loss[r]; /* in row order, as one thread sums */
    return loss;
}
