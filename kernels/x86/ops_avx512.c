/* AVX-512 small ops, for the ops where 16 lanes pay (the rest of the AVX-512 tables' ops are
 * ops_avx2.c's). Scalar references: kernels/ref/ops_ref.c; same contracts (kernels.h). */
#include <immintrin.h>
#include "kernels.h"
#include "matmul_tiled.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* 64 floats of y in 4 registers while the m rows pass (a head of 64 is one pass); per element
 * the reference's multiply then add, so bit-identical to m axpy calls. Tails are masked. */
void ulm_axpy_rows_avx512(float *y, const float *w, const float *const *x, int m, int n) {
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 a0 = _mm512_loadu_ps(y + i), a1 = _mm512_loadu_ps(y + i + 16);
        __m512 a2 = _mm512_loadu_ps(y + i + 32), a3 = _mm512_loadu_ps(y + i + 48);
        for (int t = 0; t < m; t++) {
            __m512 b = _mm512_set1_ps(w[t]);
            const float *r = x[t] + i;
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(b, _mm512_loadu_ps(r)));
            a1 = _mm512_add_ps(a1, _mm512_mul_ps(b, _mm512_loadu_ps(r + 16)));
            a2 = _mm512_add_ps(a2, _mm512_mul_ps(b, _mm512_loadu_ps(r + 32)));
            a3 = _mm512_add_ps(a3, _mm512_mul_ps(b, _mm512_loadu_ps(r + 48)));
        }
        _mm512_storeu_ps(y + i, a0), _mm512_storeu_ps(y + i + 16, a1);
        _mm512_storeu_ps(y + i + 32, a2), _mm512_storeu_ps(y + i + 48, a3);
    }
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 a = _mm512_maskz_loadu_ps(k, y + i);
        for (int t = 0; t < m; t++)
            a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_set1_ps(w[t]), _mm512_maskz_loadu_ps(k, x[t] + i)));
        _mm512_mask_storeu_ps(y + i, k, a);
    }
}
