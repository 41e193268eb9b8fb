/* AVX-512 (F, BW, DQ, VL) matmul body, included by matmul_avx512.c and, with ULM_VNNI 1, by
 * matmul_avx512vnni.c (the int8 dot then uses vpdpbusd).
 *
 * Scalar reference: dot_row() in kernels/ref/matmul_ref.c. Per q8/q4 block the int32 dot is
 * exact; the per-block float terms d_w*d_x*dot are summed in another order than the reference.
 * Two 32-value blocks fill one 512-bit register; an odd last block is zero-extended (with a
 * zero scale, so it adds exactly 0). Tile: 1 weight row x up to 4 inputs. prepare_input is
 * the AVX2 one (same bytes as the reference). */
#include <immintrin.h>
#include "kernels.h"
#include "matmul_tiled.h"

#define INLINE static inline __attribute__((always_inline))
#define NR 4

/* int32 lanes summing, per 256-bit half, to the dot of one block: w signed q8, x in [-127,127]. */
INLINE __m512i dot2_q8(__m512i w, __m512i x) {
    __m512i aw = _mm512_abs_epi8(w);
    __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x); /* sign of w onto x */
#if ULM_VNNI
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, sx);
#else
    return _mm512_madd_epi16(_mm512_maddubs_epi16(aw, sx), _mm512_set1_epi16(1));
#endif
}

/* q4: n = stored nibbles 0..15, dot = sum n*x - sum 8*x. */
INLINE __m512i dot2_q4(__m512i n, __m512i x) {
#if ULM_VNNI
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), n, x),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), x));
#else
    __m512i p = _mm512_sub_epi16(_mm512_maddubs_epi16(n, x), _mm512_maddubs_epi16(_mm512_set1_epi8(8), x));
    return _mm512_madd_epi16(p, _mm512_set1_epi16(1));
#endif
}

INLINE __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

/* Blocks b and b+1 (or b alone, the rest zero) of a q4 row as nibbles in element order. */
INLINE __m512i load_q4_nibbles2(const block_q4 *B, int two) {
    __m128i q0 = _mm_loadu_si128((const __m128i *)B[0].qs);
    __m128i q1 = two ? _mm_loadu_si128((const __m128i *)B[1].qs) : _mm_setzero_si128();
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
    __m256i m = _mm256_set1_epi8(15);
    __m256i lo = _mm256_and_si256(q, m), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m);
    __m512i v = join(lo, hi); /* [b0 lo, b1 lo, b0 hi, b1 hi] -> [b0 lo, b0 hi, b1 lo, b1 hi] */
    v = _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
    if (!two) v = _mm512_zextsi256_si512(_mm512_castsi512_si256(v));
    return v;
}

INLINE __m256i load32(const int8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

INLINE void quant_step(int q4, const uint8_t *w, const uint8_t *x, size_t xrb, int nx, int b, int two,
                       __m512 *acc) {
    __m512i wv;
    float dw0, dw1 = 0;
    if (q4) {
        const block_q4 *B = (const block_q4 *)w + b;
        wv = load_q4_nibbles2(B, two);
        dw0 = _cvtsh_ss(B[0].d);
        if (two) dw1 = _cvtsh_ss(B[1].d);
    } else {
        const block_q8 *B = (const block_q8 *)w + b;
        wv = two ? join(load32(B[0].qs), load32(B[1].qs)) : _mm512_zextsi256_si512(load32(B[0].qs));
        dw0 = _cvtsh_ss(B[0].d);
        if (two) dw1 = _cvtsh_ss(B[1].d);
    }
    for (int i = 0; i < nx; i++) {
        const block_q8 *X = (const block_q8 *)(x + i * xrb) + b;
        __m512i xv = two ? join(load32(X[0].qs), load32(X[1].qs)) : _mm512_zextsi256_si512(load32(X[0].qs));
        __m512i p = q4 ? dot2_q4(wv, xv) : dot2_q8(wv, xv);
        float d0 = dw0 * _cvtsh_ss(X[0].d), d1 = two ? dw1 * _cvtsh_ss(X[1].d) : 0.0f;
        __m512 d = _mm512_insertf32x8(_mm512_set1_ps(d0), _mm256_set1_ps(d1), 1);
        acc[i] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[i]);
    }
}

INLINE void tile_quant(int q4, const uint8_t *w, const uint8_t *x, size_t xrb, int nx, int k, float *y, int ldy) {
    __m512 a0[NR], a1[NR];
    for (int i = 0; i < nx; i++) a0[i] = a1[i] = _mm512_setzero_ps();
    int nb = k / QK, b = 0;
    for (; b + 4 <= nb; b += 4) {
        quant_step(q4, w, x, xrb, nx, b, 1, a0);
        quant_step(q4, w, x, xrb, nx, b + 2, 1, a1);
    }
    if (b + 2 <= nb) quant_step(q4, w, x, xrb, nx, b, 1, a0), b += 2;
    if (b < nb) quant_step(q4, w, x, xrb, nx, b, 0, a1);
    for (int i = 0; i < nx; i++) y[(size_t)i * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(a0[i], a1[i]));
}

INLINE __m512 load_w16(ulm_dtype dt, const uint8_t *w, int j) {
    if (dt == ULM_DT_F32) return _mm512_loadu_ps((const float *)w + j);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + j));
    if (dt == ULM_DT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); /* bf16 */
}

INLINE float w_at(ulm_dtype dt, const uint8_t *w, int j) {
    if (dt == ULM_DT_F32) return ((const float *)w)[j];
    if (dt == ULM_DT_F16) return _cvtsh_ss(((const uint16_t *)w)[j]);
    return ulm_bf16_to_f32(((const uint16_t *)w)[j]);
}

INLINE void tile_float(ulm_dtype dt, const uint8_t *w, const uint8_t *x, size_t xrb, int nx, int k, float *y,
                       int ldy) {
    __m512 a0[NR], a1[NR];
    for (int i = 0; i < nx; i++) a0[i] = a1[i] = _mm512_setzero_ps();
    int j = 0;
    for (; j + 32 <= k; j += 32) {
        __m512 w0 = load_w16(dt, w, j), w1 = load_w16(dt, w, j + 16);
        for (int i = 0; i < nx; i++) {
            const float *xi = (const float *)(x + i * xrb);
            a0[i] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xi + j), a0[i]);
            a1[i] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xi + j + 16), a1[i]);
        }
    }
    for (; j + 16 <= k; j += 16) {
        __m512 w0 = load_w16(dt, w, j);
        for (int i = 0; i < nx; i++) a0[i] = _mm512_fmadd_ps(w0, _mm512_loadu_ps((const float *)(x + i * xrb) + j), a0[i]);
    }
    for (int i = 0; i < nx; i++) {
        const float *xi = (const float *)(x + i * xrb);
        float s = _mm512_reduce_add_ps(_mm512_add_ps(a0[i], a1[i]));
        for (int jj = j; jj < k; jj++) s += w_at(dt, w, jj) * xi[jj];
        y[(size_t)i * ldy] = s;
    }
}

#define DEFINE_TILE(name, call)                                                                          \
    static void name(const uint8_t *w, size_t wrb, int nr, const uint8_t *x, size_t xrb, int nx, int k,  \
                     float *y, int ldy) {                                                                \
        switch (nx) {                                                                                    \
        case 1: call(1); break;                                                                          \
        case 2: call(2); break;                                                                          \
        case 3: call(3); break;                                                                          \
        default: call(NR); break;                                                                        \
        }                                                                                                \
    }
#define CALL_Q8(c) tile_quant(0, w, x, xrb, c, k, y, ldy)
#define CALL_Q4(c) tile_quant(1, w, x, xrb, c, k, y, ldy)
DEFINE_TILE(tile_q8, CALL_Q8)
DEFINE_TILE(tile_q4, CALL_Q4)
#if !ULM_VNNI
#define CALL_F32(c) tile_float(ULM_DT_F32, w, x, xrb, c, k, y, ldy)
#define CALL_F16(c) tile_float(ULM_DT_F16, w, x, xrb, c, k, y, ldy)
#define CALL_BF16(c) tile_float(ULM_DT_BF16, w, x, xrb, c, k, y, ldy)
DEFINE_TILE(tile_f32, CALL_F32)
DEFINE_TILE(tile_f16, CALL_F16)
DEFINE_TILE(tile_bf16, CALL_BF16)
#endif
