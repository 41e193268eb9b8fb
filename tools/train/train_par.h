/* Row-parallel launches of the trainer's ops (train_ops.h, train_vec.h): same arguments and the
 * same bits as the single-threaded op, with the pool first. */
#ifndef ULM_TRAIN_PAR_H
#define ULM_TRAIN_PAR_H
#include <stdint.h>
#include "train_pool.h"
#include "train_vec.h"

void par_rmsnorm_fwd(tpool *p, float *y, float *rstd, const float *x, const float *w, int n, int d, float eps);
void par_rmsnorm_bwd(tpool *p, float *dx, float *dw, const float *dy, const float *x, const float *rstd,
                     const float *w, int n, int d);
/* op_rope_fwd, or op_rope_bwd when backward */
void par_rope(tpool *p, float *x, const int32_t *pos, int n, int nh, int hd, const float *cos_t,
              const float *sin_t, int interleaved, int backward);
void par_silu_glu_fwd(tpool *p, const train_vec *tv, float *a, const float *g, const float *u, int n);
void par_silu_glu_bwd(tpool *p, const train_vec *tv, float *dg, float *du, const float *da, const float *g,
                      const float *u, int n);
/* y = a + b over n floats; x = 0 over n floats */
void par_add(tpool *p, float *y, const float *a, const float *b, int n);
void par_zero(tpool *p, float *x, int n);
/* tv->xent_row on M rows of V logits (targets t); returns the sum of the row losses in row
 * order. row_loss: [M] scratch. */
double par_xent(tpool *p, const train_vec *tv, float *logits, int M, int V, const int32_t *t, float scale,
                double *row_loss);
#endif
