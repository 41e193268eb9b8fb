/* AVX2 matmul for the 16-row interleaved weights Q8_R16 / Q4_R16 (layout: quant.h); also
 * used by the AVX-512 table without VNNI.
 *
 * Scalar reference: dot_row_r16() in kernels/ref/matmul_ref.c, matched bit for bit: rows are
 * lanes (8 per register, two registers per group), each doing its row's reference arithmetic
 * in the reference's order (exact int32 block dot; s += (d_w * d_x) * dot, not fused).
 *
 * A 32-byte half line is 4 bytes of each of 8 rows, multiplied with 4 input bytes broadcast:
 *   q4: maddubs(nibbles, x) then madd with 1s (pair sums <= 2*15*127 fit int16), started
 *       from -8 * sum(x);
 *   q8: maddubs(|w|, x with the sign of w) (pair sums <= 2*128*127 fit int16), then madd. */
#include <immintrin.h>
#include <string.h>
#include "kernels.h"
#include "matmul_tiled.h"

#define INLINE static inline __attribute__((always_inline))
#define NX 4

INLINE __m256i bcast32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

INLINE int32_t sum_block(const block_q8 *X) {
    __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)X->qs), _mm256_set1_epi8((char)0x80));
    __m256i s = _mm256_sad_epu8(v, _mm256_setzero_si256());
    __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi64(t, _mm_unpackhi_epi64(t, t));
    return (int32_t)_mm_cvtsi128_si32(t) - 32 * 128;
}

/* One group against nx inputs; out[i][h]: rows 8h..8h+7 for input i. Each half's block dot
 * runs over the inputs innermost with the accumulators in registers (fully unrolled loops:
 * left to -O2, the accumulators lived in memory and a store-to-load chain ran through every
 * add, which held prefill at a third of the decode kernel's integer rate). */
INLINE void group_tile(int q4, const uint8_t *G, size_t gbs, const uint8_t *x, size_t xrb, int nx, int nb,
                       __m256 out[NX][2]) {
    const __m256i one = _mm256_set1_epi16(1);
    __m256 acc[NX][2];
    ULM_UNROLL for (int i = 0; i < nx; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, G += gbs) {
        ulm_prefetch_ahead(G, ULM_PREFETCH_AHEAD, gbs);
        const uint8_t *qs = G + 32;
        const int8_t *X[NX];
        int32_t corr[NX]; /* q4: -8 * sum of the input block, added once per block */
        ULM_UNROLL for (int i = 0; i < nx; i++) {
            X[i] = ((const block_q8 *)(x + i * xrb) + b)->qs;
            if (q4) corr[i] = -8 * sum_block((const block_q8 *)(x + i * xrb) + b);
        }
        /* a[i][h]: the exact block dots of rows 8h..8h+7 with input i. Each line of 4 bytes
         * per row is loaded once for both halves and each input's 4 bytes broadcast once. */
        __m256i a[NX][2];
        if (q4) {
            /* nibble x input pair sums are at most 2*15*127, so the 8 maddubs of a block
             * (4 lines x 2 nibbles) add up in int16 (<= 30480) before one madd */
            const __m256i m = _mm256_set1_epi8(15);
            ULM_UNROLL for (int i = 0; i < nx; i++) a[i][0] = a[i][1] = _mm256_setzero_si256();
            _Pragma("GCC unroll 1") for (int j = 0; j < 4; j++) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)(qs + 64 * j));
                __m256i w1 = _mm256_loadu_si256((const __m256i *)(qs + 64 * j + 32));
                __m256i l0 = _mm256_and_si256(w0, m), h0 = _mm256_and_si256(_mm256_srli_epi16(w0, 4), m);
                __m256i l1 = _mm256_and_si256(w1, m), h1 = _mm256_and_si256(_mm256_srli_epi16(w1, 4), m);
                ULM_UNROLL for (int i = 0; i < nx; i++) {
                    __m256i xl = bcast32(X[i] + 4 * j), xh = bcast32(X[i] + 16 + 4 * j);
                    a[i][0] = _mm256_add_epi16(a[i][0], _mm256_add_epi16(_mm256_maddubs_epi16(l0, xl),
                                                                          _mm256_maddubs_epi16(h0, xh)));
                    a[i][1] = _mm256_add_epi16(a[i][1], _mm256_add_epi16(_mm256_maddubs_epi16(l1, xl),
                                                                          _mm256_maddubs_epi16(h1, xh)));
                }
            }
            ULM_UNROLL for (int i = 0; i < nx; i++) {
                __m256i c = _mm256_set1_epi32(corr[i]);
                a[i][0] = _mm256_add_epi32(_mm256_madd_epi16(a[i][0], one), c);
                a[i][1] = _mm256_add_epi32(_mm256_madd_epi16(a[i][1], one), c);
            }
        } else {
            ULM_UNROLL for (int i = 0; i < nx; i++) a[i][0] = a[i][1] = _mm256_setzero_si256();
            _Pragma("GCC unroll 1") for (int j = 0; j < 8; j++) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)(qs + 64 * j));
                __m256i w1 = _mm256_loadu_si256((const __m256i *)(qs + 64 * j + 32));
                __m256i u0 = _mm256_sign_epi8(w0, w0), u1 = _mm256_sign_epi8(w1, w1);
                ULM_UNROLL for (int i = 0; i < nx; i++) {
                    __m256i xb = bcast32(X[i] + 4 * j);
                    a[i][0] = _mm256_add_epi32(a[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(u0, _mm256_sign_epi8(xb, w0)), one));
                    a[i][1] = _mm256_add_epi32(a[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(u1, _mm256_sign_epi8(xb, w1)), one));
                }
            }
        }
        __m256 dw[2] = {_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)G)),
                        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(G + 16)))};
        ULM_UNROLL for (int i = 0; i < nx; i++) {
            __m256 dx = _mm256_set1_ps(_cvtsh_ss(((const block_q8 *)(x + i * xrb) + b)->d));
            acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_mul_ps(_mm256_mul_ps(dw[0], dx), _mm256_cvtepi32_ps(a[i][0])));
            acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_mul_ps(_mm256_mul_ps(dw[1], dx), _mm256_cvtepi32_ps(a[i][1])));
        }
    }
    ULM_UNROLL for (int i = 0; i < nx; i++) out[i][0] = acc[i][0], out[i][1] = acc[i][1];
}

#define GROUP_TILE(q4c)                                                          \
    switch (nx) {                                                                \
    case 1: group_tile(q4c, G, gbs, xi, xrb, 1, nb, out); break;                 \
    case 2: group_tile(q4c, G, gbs, xi, xrb, 2, nb, out); break;                 \
    case 3: group_tile(q4c, G, gbs, xi, xrb, 3, nb, out); break;                 \
    default: group_tile(q4c, G, gbs, xi, xrb, NX, nb, out); break;               \
    }

void ulm_matmul_r16_avx2(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                         int r1) {
    int q4 = dt == ULM_DT_Q4_R16, nb = k / QK;
    size_t gbs = q4 ? sizeof(block_q4x16) : sizeof(block_q8x16);
    size_t xrb = ulm_prepared_row_bytes(dt, k);
    for (int g = r0 / ULM_R16; g * ULM_R16 < r1; g++) {
        const uint8_t *G = (const uint8_t *)w + (size_t)g * nb * gbs;
        int lo = g * ULM_R16 < r0 ? r0 - g * ULM_R16 : 0, hi = r1 - g * ULM_R16 < ULM_R16 ? r1 - g * ULM_R16 : ULM_R16;
        for (int i = 0; i < n; i += NX) {
            const uint8_t *xi = (const uint8_t *)xprep + (size_t)i * xrb;
            __m256 out[NX][2];
            int nx = n - i < NX ? n - i : NX;
            if (q4) {
                GROUP_TILE(1);
            } else {
                GROUP_TILE(0);
            }
            for (int t = 0; t < nx; t++) {
                float *yt = y + (size_t)(i + t) * ldy + g * ULM_R16;
                if (lo == 0 && hi == ULM_R16) {
                    _mm256_storeu_ps(yt, out[t][0]);
                    _mm256_storeu_ps(yt + 8, out[t][1]);
                } else { /* a group cut by [r0, r1) */
                    float tmp[16];
                    _mm256_storeu_ps(tmp, out[t][0]);
                    _mm256_storeu_ps(tmp + 8, out[t][1]);
                    for (int r = lo; r < hi; r++) yt[r] = tmp[r];
                }
            }
        }
    }
}
