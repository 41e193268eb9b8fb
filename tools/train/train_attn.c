/* Per head h (kv head kh = h / group), with rows of Q/K/V/O strided by their head count:
 *   forward:  S = Q_h K_kh^T,  P = softmax(scale S) on each row's visible keys,  O_h = P V_kh
 *   backward: dP = dO_h V_kh^T,  dV_kh += P^T dO_h,  dS = P (dP - rowsum(P dP)) scale,
 *             dQ_h += dS K_kh,  dK_kh += dS^T Q_h
 * Causality is used blockwise: query rows [i0, i1) only multiply keys [0, i1), and key rows
 * [j0, j1) only receive from queries [j0, L). Entries above the diagonal of a block are computed
 * and then zeroed (P) or ignored, since P and dS are 0 there. */
#include <string.h>
#include "train_attn.h"

enum { RB = 32 }; /* rows per causal block */

void attn_fwd_gemm(tgemm *g, int ith, const train_vec *tv, float *out, float *p, const float *q, const float *k,
                   const float *v, int L, int nh, int nkv, int hd, float scale, int window) {
    int qs = nh * hd, ks = nkv * hd, group = nh / nkv;
    for (int h = 0; h < nh; h++) {
        int kh = h / group;
        float *P = p + (size_t)h * L * L; /* [L, L] */
        for (int i0 = 0; i0 < L; i0 += RB) {
            int i1 = i0 + RB < L ? i0 + RB : L;
            tgemm_run_local(g, ith, i1 - i0, i1, hd, q + (size_t)i0 * qs + h * hd, qs, 0, k + kh * hd, ks, 1,
                            P + (size_t)i0 * L, L, 0);
        }
        for (int i = 0; i < L; i++) {
            float *pi = P + (size_t)i * L;
            int j0 = window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
            memset(pi, 0, (size_t)j0 * sizeof(float));
            tv->softmax(pi + j0, i - j0 + 1, scale);
            memset(pi + i + 1, 0, (size_t)(L - i - 1) * sizeof(float));
        }
        for (int i0 = 0; i0 < L; i0 += RB) {
            int i1 = i0 + RB < L ? i0 + RB : L;
            tgemm_run_local(g, ith, i1 - i0, hd, i1, P + (size_t)i0 * L, L, 0, v + kh * hd, ks, 0,
                            out + (size_t)i0 * qs + h * hd, qs, 0);
        }
    }
}

void attn_bwd_gemm(tgemm *g, int ith, const train_vec *tv, float *scratch, float *dq, float *dk, float *dv,
                   const float *dout, const float *p, const float *q, const float *k, const float *v, int L, int nh,
                   int nkv, int hd, float scale) {
    int qs = nh * hd, ks = nkv * hd, group = nh / nkv;
    float *dS = scratch; /* [L, L]: dP, then dS in place */
    for (int h = 0; h < nh; h++) {
        int kh = h / group;
        const float *P = p + (size_t)h * L * L;
        for (int i0 = 0; i0 < L; i0 += RB) {
            int i1 = i0 + RB < L ? i0 + RB : L;
            tgemm_run_local(g, ith, i1 - i0, i1, hd, dout + (size_t)i0 * qs + h * hd, qs, 0, v + kh * hd, ks, 1,
                            dS + (size_t)i0 * L, L, 0);
        }
        for (int j0 = 0; j0 < L; j0 += RB) { /* dV rows [j0, j1) += P[j0:, j0:j1]^T dO[j0:] */
            int j1 = j0 + RB < L ? j0 + RB : L;
            tgemm_run_local(g, ith, j1 - j0, hd, L - j0, P + (size_t)j0 * L + j0, L, 1,
                            dout + (size_t)j0 * qs + h * hd, qs, 0, dv + (size_t)j0 * ks + kh * hd, ks, 1);
        }
        for (int i = 0; i < L; i++) {
            float *di = dS + (size_t)i * L;
            tv->softmax_bwd(di, P + (size_t)i * L, i + 1, scale);
            memset(di + i + 1, 0, (size_t)(L - i - 1) * sizeof(float));
        }
        for (int i0 = 0; i0 < L; i0 += RB) {
            int i1 = i0 + RB < L ? i0 + RB : L;
            tgemm_run_local(g, ith, i1 - i0, hd, i1, dS + (size_t)i0 * L, L, 0, k + kh * hd, ks, 0,
                            dq + (size_t)i0 * qs + h * hd, qs, 1);
        }
        for (int j0 = 0; j0 < L; j0 += RB) {
            int j1 = j0 + RB < L ? j0 + RB : L;
            tgemm_run_local(g, ith, j1 - j0, hd, L - j0, dS + (size_t)j0 * L + j0, L, 1, q + (size_t)j0 * qs + h * hd,
                            qs, 0, dk + (size_t)j0 * ks + kh * hd, ks, 1);
        }
    }
}
