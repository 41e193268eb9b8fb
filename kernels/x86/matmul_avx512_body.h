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

/* ---- q8 / q4 weights: tiles of up to MR weight rows x NR inputs, two blocks per register ----
 *
 * A register holds blocks b and b+1 of one row in element order (8 int32 lanes per block), the
 * d_w * d_x of each block in the same lanes; q4 nibbles and all scales are picked out of a
 * window load of the blocks with vpermw.
 * Everything that depends only on a row (unpacked weights, d_w, correction terms) or only on an
 * input (quants, d_x) is computed once per tile, not per (row, input) pair; a pair costs one
 * integer dot, a conversion, one multiply (d_w * d_x, rounded as the reference rounds it) and
 * one fused multiply-add.
 *
 * The integer dot, VNNI: vpdpbusd multiplies unsigned by signed bytes, so
 *   q8: (x + 128) . w - 128 * sum(w)    (x + 128 is x ^ 0x80; the second term per row)
 *   q4: n . x - 8 * sum(x)              (n = stored nibbles 0..15; the second term per input)
 * and the correction is the accumulator vpdpbusd starts from. Without VNNI: maddubs, with the
 * sign of w moved onto x for q8 (pair sums stay within int16 since |x| <= 127). All exact. */
#define MR 4

INLINE __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
INLINE __m256i load32(const int8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* f16 words i0 (x8) then i1 (x8) of a register as 16 f32 lanes: d_b for the 8 lanes of block b,
 * d_b+1 for the next 8 (vpermw picks the scales out of a loaded window of blocks). */
INLINE __m512 scales_from(__m512i win, int i0, int i1) {
    const __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_inserti128_si256(
                            _mm256_castsi128_si256(_mm_set1_epi16((short)i0)), _mm_set1_epi16((short)i1), 1)),
                        _mm256_setzero_si256(), 1);
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(idx, win)));
}

/* The bytes of blocks b (and b+1 if two) of a row, loaded without reading past them; a missing
 * block b+1 reads as zeros (so its scale is 0 and it adds exactly 0). */
INLINE __m512i load_window(const void *p, int bytes) {
    return _mm512_maskz_loadu_epi8(bytes >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << bytes) - 1), p);
}

typedef struct {
    __m512i v; /* q8: quants (VNNI) or |quants| (maddubs); q4: nibbles */
    __m512i c; /* q8 VNNI: -128 * sum(w) per lane */
    __mmask64 neg; /* q8 maddubs: where w < 0 */
    __m512 d;
} wprep;

typedef struct {
    __m512i v; /* q8 VNNI: x ^ 0x80; otherwise x */
    __m512i c; /* q4: -8 * sum(x) per lane */
    __m512 d;
} xprep;

INLINE wprep prep_w(int q4, const uint8_t *w, int b, int two) {
    wprep p;
    if (q4) {
        /* two q4 blocks are 36 bytes: one window. Words 1-8 are block b's quants, 10-17 block
         * b+1's; lanes become [b lo nibbles, b hi, b+1 lo, b+1 hi], i.e. elements in order. */
        __m512i win = load_window((const block_q4 *)w + b, two ? 36 : 18);
        const __m512i idx = _mm512_setr_epi32(0x00020001, 0x00040003, 0x00060005, 0x00080007, 0x00020001,
                                              0x00040003, 0x00060005, 0x00080007, 0x000b000a, 0x000d000c,
                                              0x000f000e, 0x00110010, 0x000b000a, 0x000d000c, 0x000f000e,
                                              0x00110010);
        const __m512i shift = _mm512_setr_epi32(0, 0, 0, 0, 0x00040004, 0x00040004, 0x00040004, 0x00040004, 0, 0,
                                                0, 0, 0x00040004, 0x00040004, 0x00040004, 0x00040004);
        p.v = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi16(idx, win), shift), _mm512_set1_epi8(15));
        p.d = scales_from(win, 0, 9);
    } else {
        const block_q8 *B = (const block_q8 *)w + b;
        __m512i v = two ? join(load32(B[0].qs), load32(B[1].qs)) : _mm512_zextsi256_si512(load32(B[0].qs));
#if ULM_VNNI
        p.v = v;
        p.c = _mm512_sub_epi32(_mm512_setzero_si512(),
                               _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), v));
#else
        p.v = _mm512_abs_epi8(v);
        p.neg = _mm512_movepi8_mask(v);
#endif
        p.d = scales_from(load_window(B, two ? 36 : 2), 0, 17);
    }
    return p;
}

INLINE xprep prep_x(int q4, const uint8_t *x, int b, int two) {
    const block_q8 *X = (const block_q8 *)x + b;
    xprep p;
    __m512i v = two ? join(load32(X[0].qs), load32(X[1].qs)) : _mm512_zextsi256_si512(load32(X[0].qs));
    if (q4) {
#if ULM_VNNI
        p.c = _mm512_sub_epi32(_mm512_setzero_si512(),
                               _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), v));
#else
        p.c = _mm512_sub_epi32(_mm512_setzero_si512(),
                               _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_set1_epi8(8), v), _mm512_set1_epi16(1)));
#endif
        p.v = v;
    } else {
#if ULM_VNNI
        p.v = _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
#else
        p.v = v;
#endif
    }
    p.d = scales_from(load_window(X, two ? 36 : 2), 0, 17);
    return p;
}

/* int32 lanes that sum, per block, to the block's exact dot. */
INLINE __m512i pair_dot(int q4, const wprep *w, const xprep *x) {
#if ULM_VNNI
    return q4 ? _mm512_dpbusd_epi32(x->c, w->v, x->v) : _mm512_dpbusd_epi32(w->c, x->v, w->v);
#else
    const __m512i one = _mm512_set1_epi16(1);
    if (q4) return _mm512_add_epi32(x->c, _mm512_madd_epi16(_mm512_maddubs_epi16(w->v, x->v), one));
    __m512i sx = _mm512_mask_sub_epi8(x->v, w->neg, _mm512_setzero_si512(), x->v); /* sign of w onto x */
    return _mm512_madd_epi16(_mm512_maddubs_epi16(w->v, sx), one);
#endif
}

INLINE void quant_step(int q4, const uint8_t *w, size_t wrb, int nr, const uint8_t *x, size_t xrb, int nx, int b,
                       int two, __m512 acc[MR][NR]) {
    wprep wp[MR];
    xprep xp[NR];
    size_t bs = q4 ? sizeof(block_q4) : sizeof(block_q8);
    if (nx > 1) ULM_UNROLL for (int r = 0; r < nr; r++) ulm_prefetch_ahead(w + r * wrb + b * bs, ULM_PREFETCH_AHEAD_ROWS, 1);
    ULM_UNROLL for (int r = 0; r < nr; r++) wp[r] = prep_w(q4, w + r * wrb, b, two);
    ULM_UNROLL for (int i = 0; i < nx; i++) xp[i] = prep_x(q4, x + i * xrb, b, two);
    ULM_UNROLL for (int r = 0; r < nr; r++)
        ULM_UNROLL for (int i = 0; i < nx; i++) {
            __m512 d = _mm512_mul_ps(wp[r].d, xp[i].d); /* d_w * d_x, as the reference rounds it */
            acc[r][i] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(pair_dot(q4, &wp[r], &xp[i])), acc[r][i]);
        }
}

INLINE void tile_quant(int q4, const uint8_t *w, size_t wrb, int nr, const uint8_t *x, size_t xrb, int nx, int k,
                       float *y, int ldy) {
    __m512 acc[MR][NR];
    ULM_UNROLL for (int r = 0; r < nr; r++)
        ULM_UNROLL for (int i = 0; i < nx; i++) acc[r][i] = _mm512_setzero_ps();
    int nb = k / QK, b = 0;
    /* Decode (one input) streams the weights. A fixed distance ahead in each row misses when
     * rows are short (k = 576: 612 bytes of q8, so 1024 ahead lands inside this tile), so, as
     * the AVX2 kernel does, fetch the next tile's rows, one contiguous span, in even steps over
     * the blocks (Zen 5, 576x1536 from memory, 1 thread: q8 48.8 -> 32.2 us, q4 49.3 -> 16.9 us;
     * bench/results/kernels-2026-11-24-zen5-prefetch.md). */
    const uint8_t *next = w + (size_t)nr * wrb;
    size_t span = (size_t)nr * (q4 ? sizeof(block_q4) : sizeof(block_q8));
    for (; b + 2 <= nb; b += 2) {
        if (nx == 1) ulm_prefetch_ahead(next, (size_t)b * span, 2 * span);
        quant_step(q4, w, wrb, nr, x, xrb, nx, b, 1, acc);
    }
    if (b < nb) quant_step(q4, w, wrb, nr, x, xrb, nx, b, 0, acc);
    ULM_UNROLL for (int r = 0; r < nr; r++)
        ULM_UNROLL for (int i = 0; i < nx; i++) y[(size_t)i * ldy + r] = _mm512_reduce_add_ps(acc[r][i]);
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

/* 16 lanes of row w from column j, the last ones masked (m = valid lanes). */
INLINE __m512 load_w16_mask(ulm_dtype dt, const uint8_t *w, int j, __mmask16 m) {
    if (dt == ULM_DT_F32) return _mm512_maskz_loadu_ps(m, (const float *)w + j);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + j);
    if (dt == ULM_DT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The sums of the 16 lanes of a, b, c, d as 4 floats: halves added, then a hadd tree, so the
 * 4 x nx outputs of a tile cost ~3 instructions each instead of a full reduction each. */
INLINE __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
#define HALF(v) _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))
    __m256 ab = _mm256_hadd_ps(HALF(a), HALF(b)), cd = _mm256_hadd_ps(HALF(c), HALF(d));
#undef HALF
    __m256 s = _mm256_hadd_ps(ab, cd); /* [a b c d] of each 128-bit half */
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* 4 weight rows x nx inputs over the whole k; each weight load feeds nx FMAs and each input
 * load 4. The k % 16 tail is one masked step. */
INLINE void tile_float4(ulm_dtype dt, const uint8_t *w, size_t wrb, const uint8_t *x, size_t xrb, int nx, int k,
                        float *y, int ldy) {
    __m512 acc[4][NR];
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < nx; i++) acc[r][i] = _mm512_setzero_ps();
    int j = 0;
    for (; j + 16 <= k; j += 16) {
        __m512 wv[4];
        ULM_UNROLL for (int r = 0; r < 4; r++) wv[r] = load_w16(dt, w + r * wrb, j);
        ULM_UNROLL for (int i = 0; i < nx; i++) {
            __m512 xv = _mm512_loadu_ps((const float *)(x + i * xrb) + j);
            ULM_UNROLL for (int r = 0; r < 4; r++) acc[r][i] = _mm512_fmadd_ps(wv[r], xv, acc[r][i]);
        }
    }
    if (j < k) {
        __mmask16 m = (__mmask16)((1u << (k - j)) - 1);
        __m512 wv[4];
        ULM_UNROLL for (int r = 0; r < 4; r++) wv[r] = load_w16_mask(dt, w + r * wrb, j, m);
        ULM_UNROLL for (int i = 0; i < nx; i++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, (const float *)(x + i * xrb) + j);
            ULM_UNROLL for (int r = 0; r < 4; r++) acc[r][i] = _mm512_fmadd_ps(wv[r], xv, acc[r][i]);
        }
    }
    for (int i = 0; i < nx; i++) _mm_storeu_ps(y + (size_t)i * ldy, hsum4(acc[0][i], acc[1][i], acc[2][i], acc[3][i]));
}

/* Quant tiles: MR x {1..NR} and 1 x {1..NR} with constant trip counts (rows come in MR). */
#define DEFINE_QTILE(name, q4)                                                                           \
    static void name(const uint8_t *w, size_t wrb, int nr, const uint8_t *x, size_t xrb, int nx, int k,  \
                     float *y, int ldy) {                                                                \
        for (; nr >= MR; nr -= MR, w += MR * wrb, y += MR) {                                             \
            switch (nx) {                                                                                \
            case 1: tile_quant(q4, w, wrb, MR, x, xrb, 1, k, y, ldy); break;                             \
            case 2: tile_quant(q4, w, wrb, MR, x, xrb, 2, k, y, ldy); break;                             \
            case 3: tile_quant(q4, w, wrb, MR, x, xrb, 3, k, y, ldy); break;                             \
            default: tile_quant(q4, w, wrb, MR, x, xrb, NR, k, y, ldy); break;                           \
            }                                                                                            \
        }                                                                                                \
        for (; nr > 0; nr--, w += wrb, y++) {                                                            \
            switch (nx) {                                                                                \
            case 1: tile_quant(q4, w, wrb, 1, x, xrb, 1, k, y, ldy); break;                              \
            case 2: tile_quant(q4, w, wrb, 1, x, xrb, 2, k, y, ldy); break;                              \
            case 3: tile_quant(q4, w, wrb, 1, x, xrb, 3, k, y, ldy); break;                              \
            default: tile_quant(q4, w, wrb, 1, x, xrb, NR, k, y, ldy); break;                            \
            }                                                                                            \
        }                                                                                                \
    }
DEFINE_QTILE(tile_q8, 0)
DEFINE_QTILE(tile_q4, 1)
#if !ULM_VNNI
/* Float tiles: 4 x {1..NR} while 4 rows remain, then 1 x {1..NR}. */
#define DEFINE_FTILE(name, dt)                                                                           \
    static void name(const uint8_t *w, size_t wrb, int nr, const uint8_t *x, size_t xrb, int nx, int k,  \
                     float *y, int ldy) {                                                                \
        for (; nr >= 4; nr -= 4, w += 4 * wrb, y += 4) {                                                 \
            switch (nx) {                                                                                \
            case 1: tile_float4(dt, w, wrb, x, xrb, 1, k, y, ldy); break;                                \
            case 2: tile_float4(dt, w, wrb, x, xrb, 2, k, y, ldy); break;                                \
            case 3: tile_float4(dt, w, wrb, x, xrb, 3, k, y, ldy); break;                                \
            default: tile_float4(dt, w, wrb, x, xrb, NR, k, y, ldy); break;                              \
            }                                                                                            \
        }                                                                                                \
        for (; nr > 0; nr--, w += wrb, y++) {                                                            \
            switch (nx) {                                                                                \
            case 1: tile_float(dt, w, x, xrb, 1, k, y, ldy); break;                                      \
            case 2: tile_float(dt, w, x, xrb, 2, k, y, ldy); break;                                      \
            case 3: tile_float(dt, w, x, xrb, 3, k, y, ldy); break;                                      \
            default: tile_float(dt, w, x, xrb, NR, k, y, ldy); break;                                    \
            }                                                                                            \
        }                                                                                                \
    }
DEFINE_FTILE(tile_f32, ULM_DT_F32)
DEFINE_FTILE(tile_f16, ULM_DT_F16)
DEFINE_FTILE(tile_bf16, ULM_DT_BF16)
#endif
