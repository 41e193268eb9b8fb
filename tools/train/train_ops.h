/* Forward and backward of every operation the trainer uses, on row-major [n, d] buffers.
 * Conventions: backward functions ADD into their input gradients (dx, dw, ...), so callers
 * zero them once and residual branches sum for free. RoPE is the one in-place exception. */
#ifndef ULM_TRAIN_OPS_H
#define ULM_TRAIN_OPS_H
#include <stdint.h>

/* y[i,:] = x[i,:] * rstd[i] * w  (rstd = 1/sqrt(mean(x^2) + eps) is saved for backward) */
void op_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int n, int d, float eps);
void op_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rstd, const float *w,
                    int n, int d);
/* Its two halves, for the row-parallel trainer: dx over rows (independent), dw over columns
 * j0 <= j < j1 (each column summed over all n rows in order). Together: op_rmsnorm_bwd. */
void op_rmsnorm_bwd_dx(float *dx, const float *dy, const float *x, const float *rstd, const float *w, int n, int d);
void op_rmsnorm_bwd_dw(float *dw, const float *dy, const float *x, const float *rstd, int n, int d, int j0, int j1);

/* RoPE on n rows of nh heads of size hd; row i has position pos[i]. cos/sin tables are
 * [max_pos][hd/2]. interleaved: pairs (2j, 2j+1) (llama); else NeoX halves (j, j+hd/2). */
void op_rope_fwd(float *x, const int32_t *pos, int n, int nh, int hd, const float *cos_t, const float *sin_t,
                 int interleaved);
/* The transpose rotation, in place on the gradient. */
void op_rope_bwd(float *dx, const int32_t *pos, int n, int nh, int hd, const float *cos_t, const float *sin_t,
                 int interleaved);
/* Tables the same way the engine computes them (kernels/ref k_rope): freq_j = base^(-2j/hd). */
void op_rope_tables(float *cos_t, float *sin_t, int max_pos, int hd, float base);

/* Causal self-attention within one segment of L rows (rows are consecutive tokens of one
 * example, position 0..L-1), GQA: head h reads kv head h / (nh / nkv).
 * q [L, nh*hd], k/v [L, nkv*hd] (row strides given), out [L, nh*hd], p [nh, L, L] saved probs.
 * window > 0: key j is visible from query i only when i - j < window. */
void op_attn_fwd(float *out, float *p, const float *q, const float *k, const float *v, int L, int nh, int nkv,
                 int hd, float scale, int window);
void op_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *p, const float *q,
                 const float *k, const float *v, int L, int nh, int nkv, int hd, float scale);

/* Gated activation: a = act(g) * u, act = SiLU (gelu = 0) or GELU-tanh (gelu = 1). */
void op_glu_fwd(float *a, const float *g, const float *u, int n, int gelu);
void op_glu_bwd(float *dg, float *du, const float *da, const float *g, const float *u, int n, int gelu);

/* Softmax cross-entropy of m rows of V logits against targets; returns the summed loss
 * (double) and replaces logits by dloss/dlogits * scale. */
double op_xent(float *logits, const int32_t *targets, int m, int V, float scale);
#endif
