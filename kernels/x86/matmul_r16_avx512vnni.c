/* AVX-512 VNNI matmul for the 16-row interleaved weights Q8_R16 / Q4_R16 (layout: quant.h).
 *
 * Scalar reference: dot_row_r16() in kernels/ref/matmul_ref.c, matched bit for bit: the 16
 * rows of a group are the 16 lanes, so each lane does what the reference does for its row, in
 * the same order (exact int32 block dot; d = d_w * d_x; s += d * dot, multiply and add rounded
 * separately, never fused).
 *
 * Per group block and input: one 64-byte line of weights is 4 bytes of each of the 16 rows;
 * vpdpbusd multiplies it with 4 input bytes broadcast from memory. It takes unsigned x signed:
 *   q4: nibbles (0..15, unsigned) . x, started from -8 * sum(x) (the -8 of every nibble)
 *   q8: (x ^ 0x80 = x + 128, unsigned) . w, minus 128 * sum(w) (a vpdpbusd of 0x80 with w,
 *       shared by all inputs of the tile)
 * The 16 scales of a group block are one load and one conversion. Up to 4 inputs share each
 * weight load (prefill); decode is 1. */
#include <immintrin.h>
#include <string.h>
#include "kernels.h"
#include "matmul_tiled.h"

#define INLINE static inline __attribute__((always_inline))
#define NX 4

INLINE __m512i bcast32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* sum of the 32 quants of an input block */
INLINE int32_t sum_block(const block_q8 *X) {
    __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)X->qs), _mm256_set1_epi8((char)0x80));
    __m256i s = _mm256_sad_epu8(v, _mm256_setzero_si256()); /* 4 sums of 8 (x + 128) */
    __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi64(t, _mm_unpackhi_epi64(t, t));
    return (int32_t)_mm_cvtsi128_si32(t) - 32 * 128;
}

/* One group (16 rows) against nx inputs; out[i] = 16 lanes of y for input i. The loops over
 * inputs are unrolled (ULM_UNROLL) so the accumulators stay in registers: left to -O2, the
 * 4-input tile kept lo[]/hi[] in memory, a load and a store around every vpdpbusd. */
INLINE void group_tile(int q4, const uint8_t *G, size_t gbs, const uint8_t *x, size_t xrb, int nx, int nb,
                       __m512 *out) {
    __m512 acc[NX];
    ULM_UNROLL for (int i = 0; i < nx; i++) acc[i] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++, G += gbs) {
        ulm_prefetch_ahead(G, ULM_PREFETCH_AHEAD, gbs);
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)G));
        const uint8_t *qs = G + 32;
        __m512i lo[NX], hi[NX]; /* two chains per input */
        const block_q8 *X[NX];
        ULM_UNROLL for (int i = 0; i < nx; i++) X[i] = (const block_q8 *)(x + i * xrb) + b;
        if (q4) {
            ULM_UNROLL for (int i = 0; i < nx; i++) lo[i] = _mm512_set1_epi32(-8 * sum_block(X[i])), hi[i] = _mm512_setzero_si512();
            const __m512i m = _mm512_set1_epi8(15);
            for (int j = 0; j < 4; j++) {
                __m512i w = _mm512_loadu_si512(qs + 64 * j);
                __m512i wl = _mm512_and_si512(w, m), wh = _mm512_and_si512(_mm512_srli_epi16(w, 4), m);
                ULM_UNROLL for (int i = 0; i < nx; i++) {
                    lo[i] = _mm512_dpbusd_epi32(lo[i], wl, bcast32(X[i]->qs + 4 * j));
                    hi[i] = _mm512_dpbusd_epi32(hi[i], wh, bcast32(X[i]->qs + 16 + 4 * j));
                }
            }
        } else {
            __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512();
            const __m512i bias = _mm512_set1_epi8((char)0x80);
            int8_t xu[NX][32];
            ULM_UNROLL for (int i = 0; i < nx; i++) {
                lo[i] = hi[i] = _mm512_setzero_si512();
                _mm256_storeu_si256((__m256i *)xu[i],
                                    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)X[i]->qs), _mm256_set1_epi8((char)0x80)));
            }
            for (int j = 0; j < 8; j += 2) {
                __m512i w0 = _mm512_loadu_si512(qs + 64 * j), w1 = _mm512_loadu_si512(qs + 64 * (j + 1));
                c0 = _mm512_dpbusd_epi32(c0, bias, w0);
                c1 = _mm512_dpbusd_epi32(c1, bias, w1);
                ULM_UNROLL for (int i = 0; i < nx; i++) {
                    lo[i] = _mm512_dpbusd_epi32(lo[i], bcast32(xu[i] + 4 * j), w0);
                    hi[i] = _mm512_dpbusd_epi32(hi[i], bcast32(xu[i] + 4 * j + 4), w1);
                }
            }
            __m512i c = _mm512_add_epi32(c0, c1);
            ULM_UNROLL for (int i = 0; i < nx; i++) lo[i] = _mm512_sub_epi32(lo[i], c);
        }
        ULM_UNROLL for (int i = 0; i < nx; i++) {
            __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(_cvtsh_ss(X[i]->d))); /* d_w * d_x */
            __m512 p = _mm512_cvtepi32_ps(_mm512_add_epi32(lo[i], hi[i]));
            acc[i] = _mm512_add_ps(acc[i], _mm512_mul_ps(d, p));
        }
    }
    ULM_UNROLL for (int i = 0; i < nx; i++) out[i] = acc[i];
}

/* constant q4 and nx for the compiler */
#define GROUP_TILE(q4c)                                                          \
    switch (nx) {                                                                \
    case 1: group_tile(q4c, G, gbs, xi, xrb, 1, nb, out); break;                 \
    case 2: group_tile(q4c, G, gbs, xi, xrb, 2, nb, out); break;                 \
    case 3: group_tile(q4c, G, gbs, xi, xrb, 3, nb, out); break;                 \
    default: group_tile(q4c, G, gbs, xi, xrb, NX, nb, out); break;               \
    }

void ulm_matmul_r16_vnni(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                         int r1) {
    int q4 = dt == ULM_DT_Q4_R16, nb = k / QK;
    size_t gbs = q4 ? sizeof(block_q4x16) : sizeof(block_q8x16);
    size_t xrb = ulm_prepared_row_bytes(dt, k);
    for (int g = r0 / ULM_R16; g * ULM_R16 < r1; g++) {
        const uint8_t *G = (const uint8_t *)w + (size_t)g * nb * gbs;
        int lo = g * ULM_R16 < r0 ? r0 - g * ULM_R16 : 0, hi = r1 - g * ULM_R16 < ULM_R16 ? r1 - g * ULM_R16 : ULM_R16;
        __mmask16 keep = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1)); /* rows of [r0, r1) */
        for (int i = 0; i < n; i += NX) {
            const uint8_t *xi = (const uint8_t *)xprep + (size_t)i * xrb;
            __m512 out[NX];
            int nx = n - i < NX ? n - i : NX;
            if (q4) {
                GROUP_TILE(1);
            } else {
                GROUP_TILE(0);
            }
            for (int t = 0; t < nx; t++)
                _mm512_mask_storeu_ps(y + (size_t)(i + t) * ldy + g * ULM_R16, keep, out[t]);
        }
    }
}
