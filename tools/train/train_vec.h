/* Vectorized elementwise loops of the trainer (train_vec_body.h), dispatched at run time to the
 * best build this CPU runs. Every build gives the same bits (see the body), so the choice only
 * changes speed. Specifications, per element:
 *   tv_exp:          y[i] = exp(x[i])  (polynomial: within 2 ulp of expf; 0 below -86, capped at 88)
 *   tv_softmax:      x = softmax(x * scale) over n values
 *   tv_softmax_bwd:  d[i] = p[i] (d[i] - sum_j p[j] d[j]) * scale  (p = softmax output, d = dL/dp in,
 *                    dL/d(logits) * scale out: attention's backward through its softmax)
 *   tv_silu_glu_fwd: a[i] = silu(g[i]) * u[i]               (op_glu_fwd with gelu = 0)
 *   tv_silu_glu_bwd: dg[i] += da[i] u[i] silu'(g[i]); du[i] += da[i] silu(g[i])
 *   tv_xent_row:     returns -log softmax(l)[t]; l = (softmax(l) - onehot(t)) * scale
 *   tv_adamw:        g' = g clip;  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2;
 *                    w = w decay - lr (m / bc1) / (sqrt(v / bc2) + eps)   (one AdamW step) */
#ifndef ULM_TRAIN_VEC_H
#define ULM_TRAIN_VEC_H
#include <stddef.h>
#include <stdint.h>

typedef struct tv_adamw_args {
    float beta1, beta2, clip, bc1, bc2, decay, lr, eps; /* decay = 1 - lr * weight_decay (or 1) */
} tv_adamw_args;

typedef struct train_vec {
    const char *isa;
    void (*exp)(float *y, const float *x, int n);
    void (*softmax)(float *x, int n, float scale);
    void (*softmax_bwd)(float *d, const float *p, int n, float scale);
    void (*silu_glu_fwd)(float *a, const float *g, const float *u, int n);
    void (*silu_glu_bwd)(float *dg, float *du, const float *da, const float *g, const float *u, int n);
    double (*xent_row)(float *l, int V, int t, float scale);
    void (*adamw)(float *w, const float *g, float *m, float *v, size_t n, const tv_adamw_args *a);
} train_vec;

/* The best build for this CPU (ULM_TRAIN_VEC=generic forces the baseline one). */
const train_vec *train_vec_best(void);
/* Every build this binary has and this CPU runs, NULL-terminated (tests compare them). */
const train_vec *const *train_vec_all(void);
#endif
