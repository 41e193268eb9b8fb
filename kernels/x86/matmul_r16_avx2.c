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

/* One group against nx inputs; out[i][h]: rows 8h..8h+7 for input i. */
INLINE void group_tile(int q4, const uint8_t *G, size_t gbs, const uint8_t *x, size_t xrb, int nx, int nb,
                       __m256 out[NX][2]) {
    const __m256i one = _mm256_set1_epi16(1);
    __m256 acc[NX][2];
    for (int i = 0; i < nx; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, G += gbs) {
        ulm_prefetch_ahead(G, ULM_PREFETCH_AHEAD, gbs);
        __m256 dw[2] = {_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)G)),
                        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(G + 16)))};
        const uint8_t *qs = G + 32;
        const block_q8 *X[NX];
        __m256i a[NX][2];
        for (int i = 0; i < nx; i++) X[i] = (const block_q8 *)(x + i * xrb) + b;
        for (int h = 0; h < 2; h++) {
            if (q4) {
                const __m256i m = _mm256_set1_epi8(15);
                for (int i = 0; i < nx; i++) a[i][h] = _mm256_set1_epi32(-8 * sum_block(X[i]));
                for (int j = 0; j < 4; j++) {
                    __m256i w = _mm256_loadu_si256((const __m256i *)(qs + 64 * j + 32 * h));
                    __m256i wl = _mm256_and_si256(w, m), wh = _mm256_and_si256(_mm256_srli_epi16(w, 4), m);
                    for (int i = 0; i < nx; i++) {
                        __m256i p = _mm256_maddubs_epi16(wl, bcast32(X[i]->qs + 4 * j));
                        __m256i q = _mm256_maddubs_epi16(wh, bcast32(X[i]->qs + 16 + 4 * j));
                        a[i][h] = _mm256_add_epi32(a[i][h], _mm256_add_epi32(_mm256_madd_epi16(p, one),
                                                                              _mm256_madd_epi16(q, one)));
                    }
                }
            } else {
                for (int i = 0; i < nx; i++) a[i][h] = _mm256_setzero_si256();
                for (int j = 0; j < 8; j++) {
                    __m256i w = _mm256_loadu_si256((const __m256i *)(qs + 64 * j + 32 * h));
                    __m256i aw = _mm256_sign_epi8(w, w);
                    for (int i = 0; i < nx; i++) {
                        __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(bcast32(X[i]->qs + 4 * j), w));
                        a[i][h] = _mm256_add_epi32(a[i][h], _mm256_madd_epi16(p, one));
                    }
                }
            }
        }
        for (int i = 0; i < nx; i++) {
            __m256 dx = _mm256_set1_ps(_cvtsh_ss(X[i]->d));
            for (int h = 0; h < 2; h++)
                acc[i][h] = _mm256_add_ps(acc[i][h], _mm256_mul_ps(_mm256_mul_ps(dw[h], dx), _mm256_cvtepi32_ps(a[i][h])));
        }
    }
    for (int i = 0; i < nx; i++) out[i][0] = acc[i][0], out[i][1] = acc[i][1];
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
