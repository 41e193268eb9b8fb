/* Causal self-attention of one segment as per-head matrix products on the trainer's GEMM, with
 * the vectorized softmax: op_attn_fwd / op_attn_bwd (train_ops.h) are its specification, and
 * tests/test_grad_ops.c compares the two on many shapes. Same arguments as those, plus the GEMM
 * and the pool thread (ith) whose buffers it uses, and for backward a scratch of L*L floats. */
#ifndef ULM_TRAIN_ATTN_H
#define ULM_TRAIN_ATTN_H
#include "train_gemm.h"
#include "train_vec.h"

void attn_fwd_gemm(tgemm *g, int ith, const train_vec *tv, float *out, float *p, const float *q, const float *k,
                   const float *v, int L, int nh, int nkv, int hd, float scale, int window);
void attn_bwd_gemm(tgemm *g, int ith, const train_vec *tv, float *scratch, float *dq, float *dk, float *dv,
                   const float *dout, const float *p, const float *q, const float *k, const float *v, int L, int nh,
                   int nkv, int hd, float scale);
#endif
