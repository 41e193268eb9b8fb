/* AVX2 + FMA + F16C matmul for every weight dtype, and the q8 quantization of inputs.
 *
 * Scalar reference: dot_row() in kernels/ref/matmul_ref.c (what each output is) and
 * ulm_quantize_row(ULM_DT_Q8) in kernels/ref/quant_ref.c (prepare_input, matched bit for bit).
 * Per q8/q4 block the int32 dot is exact, as in the reference, and each output sums the
 * per-block float terms d_w*d_x*dot over the blocks in order, as the reference does (with a
 * fused multiply-add, so it may round differently).
 *
 * Tiles (ulm_matmul_tiled walks them): q8/q4 8 weight rows x up to 4 inputs; f32/f16/bf16 1
 * weight row x up to 4 inputs. Each weight block is loaded and widened once per tile. */
#include <float.h>
#include <immintrin.h>
#include <string.h>
#include "kernels.h"
#include "matmul_tiled.h"

#define INLINE static inline __attribute__((always_inline))
#define NR 4 /* inputs per tile */

INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- prepare_input: x -> q8 blocks, identical to ulm_quantize_row(ULM_DT_Q8) ---- */

/* roundf(): round half away from zero (the reference's rounding), from truncation + fix-up,
 * since the SIMD nearest mode rounds half to even. */
INLINE __m256i round_away_epi32(__m256 t) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 tr = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(t, tr)); /* exact */
    __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_and_ps(t, sign), _mm256_set1_ps(1.0f)); /* +-1 */
    return _mm256_cvttps_epi32(_mm256_add_ps(tr, _mm256_and_ps(up, one)));
}

void ulm_quantize_q8_avx2(const float *x, block_q8 *out, int k) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < k / QK; b++, x += QK) {
        __m256 v[4], m;
        for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(x + 8 * j);
        /* an inf or NaN in the block: scale NaN, zero quants (the reference's rule) */
        const __m256 big = _mm256_set1_ps(FLT_MAX);
        __m256 bad = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_andnot_ps(sign, v[j]), big, _CMP_NLE_UQ));
        if (_mm256_movemask_ps(bad)) {
            out[b].d = ULM_F16_NAN;
            memset(out[b].qs, 0, sizeof out[b].qs);
            continue;
        }
        m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                          _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f;
        out[b].d = ulm_f32_to_f16(d);
        float id = out[b].d ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int j = 0; j < 4; j++) q[j] = round_away_epi32(_mm256_mul_ps(v[j], vid));
        /* packs work within 128-bit lanes: 32-bit -> 8-bit leaves the dwords in order 0,4,1,5,... */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out[b].qs, p);
    }
}

void ulm_prepare_input_avx2(ulm_dtype dt, const float *x, int n, int k, void *out) {
    if (ulm_dtype_plain(dt) == ULM_DT_Q8 || ulm_dtype_plain(dt) == ULM_DT_Q4) {
        size_t rb = ulm_prepared_row_bytes(dt, k);
        for (int i = 0; i < n; i++) ulm_quantize_q8_avx2(x + (size_t)i * k, (block_q8 *)((char *)out + i * rb), k);
    } else {
        memcpy(out, x, (size_t)n * k * sizeof(float));
    }
}

/* ---- q8 / q4 weights: tiles of up to MR weight rows x NR inputs ----
 *
 * Everything that depends only on a row (|w| or the q4 nibbles, d_w) or only on an input (its
 * quants, d_x, the q4 correction) is loaded or computed once per block of the tile, not per
 * (row, input) pair. A pair costs sign + maddubs + madd: 8 int32 lanes that sum to the block's
 * exact dot. The 8 rows of an input then reduce together, with an unpack/add tree, to one
 * vector of their 8 exact block dots in row order (as y is laid out), so one conversion, one
 * multiply (d_w * d_x, rounded as the reference rounds it) and one FMA serve 8 outputs, and
 * each output is the reference's sequential sum over blocks (fused). The old 1-row tile did a
 * conversion and FMA per pair and block, and one hsum8 per output, a large share when k is
 * 160 (5 blocks); 8 rows x 4 inputs beat 4 x 4 by 6% (prefill) and 25% (n = 1) on Zen 3.
 * (hadd in the tree was slower than unpack + add there.) */
#define MR 8
#define UNROLL_MR _Pragma("GCC unroll 8") /* ULM_UNROLL (4) left the 8-row arrays in memory */

/* Block b of a q4 row as 32 nibbles in element order: low nibbles are elements 0..15,
 * high nibbles 16..31 (quant.h). */
INLINE __m256i load_q4_nibbles(const block_q4 *b) {
    __m128i q = _mm_loadu_si128((const __m128i *)b->qs);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

/* [sum of p0 | p1 | p2 | p3] in each 128-bit half (the halves still to be added). */
INLINE __m256i hsum4_epi32(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
    __m256i a = _mm256_add_epi32(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
    __m256i b = _mm256_add_epi32(_mm256_unpacklo_epi32(p2, p3), _mm256_unpackhi_epi32(p2, p3));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
}

/* Block b of the MR rows wr[] x NX inputs into acc[i] (8 lanes: rows 0..7 of input i). */
INLINE void quant_block(int q4, const uint8_t *const *wr, const uint8_t *x, size_t xrb, int NX, int b,
                        __m256 *acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    size_t bs = q4 ? sizeof(block_q4) : sizeof(block_q8);
    __m256i wa[MR]; /* q8: |w| (maddubs wants unsigned x signed, so w's sign moves onto x); q4: nibbles */
    uint16_t dh[MR];
    UNROLL_MR for (int r = 0; r < MR; r++) {
        const uint8_t *B = wr[r] + b * bs;
        memcpy(&dh[r], B, 2);
        if (q4) wa[r] = load_q4_nibbles((const block_q4 *)B);
        else wa[r] = _mm256_abs_epi8(_mm256_loadu_si256((const __m256i *)(B + 2)));
    }
    __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)dh));
    ULM_UNROLL for (int i = 0; i < NX; i++) {
        const uint8_t *X = x + i * xrb + b * sizeof(block_q8);
        __m256i xv = _mm256_loadu_si256((const __m256i *)(X + 2)), p[MR];
        if (q4) {
            /* sum (n-8)*x = sum n*x - sum 8*x; both pair sums fit int16 */
            __m256i c = _mm256_maddubs_epi16(_mm256_set1_epi8(8), xv);
            UNROLL_MR for (int r = 0; r < MR; r++)
                p[r] = _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(wa[r], xv), c), ones);
        } else {
            /* |x| <= 127, so a pair sum is at most 2 * 128 * 127 and fits int16 */
            UNROLL_MR for (int r = 0; r < MR; r++) {
                __m256i w = _mm256_loadu_si256((const __m256i *)(wr[r] + b * bs + 2));
                p[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(wa[r], _mm256_sign_epi8(xv, w)), ones);
            }
        }
        __m256i q0 = hsum4_epi32(p[0], p[1], p[2], p[3]), q1 = hsum4_epi32(p[4], p[5], p[6], p[7]);
        __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(q0, q1, 0x20),
                                     _mm256_permute2x128_si256(q0, q1, 0x31)); /* rows 0..7, exact */
        uint16_t hx;
        memcpy(&hx, X, 2);
        __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(hx))); /* d_w * d_x, as the reference rounds it */
        acc[i] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc[i]);
    }
}

/* MR rows x NX inputs over the whole k. A tile of nr < MR rows (the end of a row range) reads
 * its last row again in place of the missing ones and stores nr outputs. */
INLINE void tile_quant(int q4, const uint8_t *w, size_t wrb, int nr, const uint8_t *x, size_t xrb, int NX, int k,
                       float *y, int ldy) {
    const uint8_t *wr[MR];
    UNROLL_MR for (int r = 0; r < MR; r++) wr[r] = w + (size_t)(r < nr ? r : nr - 1) * wrb;
    __m256 acc[NR];
    ULM_UNROLL for (int i = 0; i < NX; i++) acc[i] = _mm256_setzero_ps();
    /* Decode (one input) streams the weights: 8 rows read side by side are 8 short strided
     * streams the hardware prefetcher misses when rows are short (k = 576: median 1.7x slower
     * than the old 1-row tile on weights from memory), so fetch the next tile's rows, one
     * contiguous span, in even steps over the blocks. It costs ~5% when they are in cache. */
    const uint8_t *next = w + MR * wrb;
    size_t span = MR * (q4 ? sizeof(block_q4) : sizeof(block_q8));
    for (int b = 0; b < k / QK; b++) {
        if (NX == 1) ulm_prefetch_ahead(next, (size_t)b * span, span);
        quant_block(q4, wr, x, xrb, NX, b, acc);
    }
    if (nr == MR) {
        ULM_UNROLL for (int i = 0; i < NX; i++) _mm256_storeu_ps(y + (size_t)i * ldy, acc[i]);
    } else {
        float out[MR];
        for (int i = 0; i < NX; i++) {
            _mm256_storeu_ps(out, acc[i]);
            for (int r = 0; r < nr; r++) y[(size_t)i * ldy + r] = out[r];
        }
    }
}

/* ---- f32 / f16 / bf16 weights ---- */

INLINE __m256 load_w8(ulm_dtype dt, const uint8_t *w, int j) {
    if (dt == ULM_DT_F32) return _mm256_loadu_ps((const float *)w + j);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + j));
    if (dt == ULM_DT_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); /* bf16 */
}

INLINE float w_at(ulm_dtype dt, const uint8_t *w, int j) {
    if (dt == ULM_DT_F32) return ((const float *)w)[j];
    if (dt == ULM_DT_F16) return _cvtsh_ss(((const uint16_t *)w)[j]);
    return ulm_bf16_to_f32(((const uint16_t *)w)[j]);
}

INLINE void tile_float(ulm_dtype dt, const uint8_t *w, const uint8_t *x, size_t xrb, int nx, int k, float *y,
                       int ldy) {
    __m256 a0[NR], a1[NR];
    ULM_UNROLL for (int i = 0; i < nx; i++) a0[i] = a1[i] = _mm256_setzero_ps();
    int j = 0;
    for (; j + 16 <= k; j += 16) {
        __m256 w0 = load_w8(dt, w, j), w1 = load_w8(dt, w, j + 8);
        ULM_UNROLL for (int i = 0; i < nx; i++) {
            const float *xi = (const float *)(x + i * xrb);
            a0[i] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xi + j), a0[i]);
            a1[i] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xi + j + 8), a1[i]);
        }
    }
    for (; j + 8 <= k; j += 8) {
        __m256 w0 = load_w8(dt, w, j);
        ULM_UNROLL for (int i = 0; i < nx; i++) a0[i] = _mm256_fmadd_ps(w0, _mm256_loadu_ps((const float *)(x + i * xrb) + j), a0[i]);
    }
    ULM_UNROLL for (int i = 0; i < nx; i++) {
        const float *xi = (const float *)(x + i * xrb);
        float s = hsum8(_mm256_add_ps(a0[i], a1[i]));
        for (int jj = j; jj < k; jj++) s += w_at(dt, w, jj) * xi[jj];
        y[(size_t)i * ldy] = s;
    }
}

/* One tile function per dtype; the switch gives the compiler a constant nx to unroll with. */
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
#define CALL_Q8(c) tile_quant(0, w, wrb, nr, x, xrb, c, k, y, ldy)
#define CALL_Q4(c) tile_quant(1, w, wrb, nr, x, xrb, c, k, y, ldy)
#define CALL_F32(c) tile_float(ULM_DT_F32, w, x, xrb, c, k, y, ldy)
#define CALL_F16(c) tile_float(ULM_DT_F16, w, x, xrb, c, k, y, ldy)
#define CALL_BF16(c) tile_float(ULM_DT_BF16, w, x, xrb, c, k, y, ldy)
DEFINE_TILE(tile_q8, CALL_Q8)
DEFINE_TILE(tile_q4, CALL_Q4)
DEFINE_TILE(tile_f32, CALL_F32)
DEFINE_TILE(tile_f16, CALL_F16)
DEFINE_TILE(tile_bf16, CALL_BF16)

void ulm_matmul_avx2(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                     int r1) {
    if (dt == ULM_DT_Q8_R16 || dt == ULM_DT_Q4_R16) {
        ulm_matmul_r16_avx2(dt, w, xprep, n, k, y, ldy, r0, r1);
        return;
    }
    ulm_tile_fn f = dt == ULM_DT_Q8 ? tile_q8 : dt == ULM_DT_Q4 ? tile_q4 : dt == ULM_DT_F32 ? tile_f32
                  : dt == ULM_DT_F16 ? tile_f16 : dt == ULM_DT_BF16 ? tile_bf16 : NULL;
    if (!f) return;
    int mr = dt == ULM_DT_Q8 || dt == ULM_DT_Q4 ? MR : 1; /* the float tiles take 1 row */
    ulm_matmul_tiled(f, mr, NR, w, ulm_dtype_row_bytes(dt, (uint64_t)k), xprep, ulm_prepared_row_bytes(dt, k), n, k,
                     y, ldy, r0, r1);
}

static size_t prepare_size(ulm_dtype dt, int n, int k) { return ulm_prepare_size_common(dt, n, k); }

const ulm_kernels ulm_kernels_avx2 = {
    .isa = "avx2",
    .prepare_size = prepare_size,
    .prepare_input = ulm_prepare_input_avx2,
    .matmul = ulm_matmul_avx2,
    ULM_OPS_AVX2,
};
