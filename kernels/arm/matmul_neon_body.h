/* NEON matmul body, included by matmul_neon.c (plain ARMv8.0 NEON: cortex-a53 and up) and,
 * with ULM_DOTPROD 1, by matmul_dotprod.c (the int8 block dot is then sdot).
 *
 * Scalar reference: dot_row() in kernels/ref/matmul_ref.c. Per q8/q4 block the int32 dot is
 * exact as in the reference; the per-lane float terms are summed in another order.
 * Tile: 1 weight row x up to 4 inputs; each weight block is loaded (and, for q4, unpacked)
 * once for all of them, and the q8/q4 row is prefetched ULM_PREFETCH_AHEAD bytes ahead. */
#include <arm_neon.h>
#include <float.h>
#include <string.h>
#include "kernels.h"
#include "matmul_tiled.h"

#define INLINE static inline __attribute__((always_inline))
#define NR 4

INLINE float h2f(uint16_t h) { /* f16 -> f32 with fcvt (exact, subnormals and inf kept) */
    __fp16 f;
    memcpy(&f, &h, 2);
    return (float)f;
}

/* int32 lanes summing to the dot of one 32-value block (w0,w1) . (x0,x1). */
INLINE int32x4_t dot_block(int8x16_t w0, int8x16_t w1, int8x16_t x0, int8x16_t x1) {
#if ULM_DOTPROD
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, x0), w1, x1);
#else
    /* pairs of int8 products fit int16 (|w| <= 128, |x| <= 127); then widen and add */
    int16x8_t p0 = vmlal_high_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), w0, x0);
    int16x8_t p1 = vmlal_high_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(x1)), w1, x1);
    return vpadalq_s16(vpaddlq_s16(p0), p1);
#endif
}

/* Weights of block b as int8, elements 0..15 in *w0 and 16..31 in *w1; returns d_w. */
INLINE float load_wblock(int q4, const uint8_t *w, int b, int8x16_t *w0, int8x16_t *w1) {
    if (q4) {
        const block_q4 *B = (const block_q4 *)w + b;
        uint8x16_t q = vld1q_u8(B->qs);
        int8x16_t eight = vdupq_n_s8(8);
        *w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(15))), eight); /* low nibbles */
        *w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);             /* high nibbles */
        return h2f(B->d);
    }
    const block_q8 *B = (const block_q8 *)w + b;
    *w0 = vld1q_s8(B->qs);
    *w1 = vld1q_s8(B->qs + 16);
    return h2f(B->d);
}

INLINE void quant_block(int q4, const uint8_t *w, const uint8_t *x, size_t xrb, int nx, int b, float32x4_t *acc) {
    int8x16_t w0, w1;
    float dw = load_wblock(q4, w, b, &w0, &w1);
    for (int i = 0; i < nx; i++) {
        const block_q8 *X = (const block_q8 *)(x + i * xrb) + b;
        int32x4_t p = dot_block(w0, w1, vld1q_s8(X->qs), vld1q_s8(X->qs + 16));
        acc[i] = vfmaq_n_f32(acc[i], vcvtq_f32_s32(p), dw * h2f(X->d));
    }
}

INLINE void tile_quant(int q4, const uint8_t *w, const uint8_t *x, size_t xrb, int nx, int k, float *y, int ldy) {
    float32x4_t a0[NR], a1[NR];
    for (int i = 0; i < nx; i++) a0[i] = a1[i] = vdupq_n_f32(0);
    int nb = k / QK, b = 0;
    size_t bs = q4 ? sizeof(block_q4) : sizeof(block_q8);
    for (; b + 2 <= nb; b += 2) {
        /* the row ULM_PREFETCH_AHEAD bytes on (matmul_tiled.h): decode streams each weight row
         * from memory once, faster than the hardware prefetcher alone follows it */
        ulm_prefetch_ahead(w + b * bs, ULM_PREFETCH_AHEAD, 2 * bs);
        quant_block(q4, w, x, xrb, nx, b, a0);
        quant_block(q4, w, x, xrb, nx, b + 1, a1);
    }
    if (b < nb) quant_block(q4, w, x, xrb, nx, b, a0);
    for (int i = 0; i < nx; i++) y[(size_t)i * ldy] = vaddvq_f32(vaddq_f32(a0[i], a1[i]));
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

#if !ULM_DOTPROD
/* ---- f32 / f16 / bf16 weights and input quantization: plain NEON only ---- */

INLINE float32x4_t load_w4(ulm_dtype dt, const uint8_t *w, int j) {
    if (dt == ULM_DT_F32) return vld1q_f32((const float *)w + j);
    uint16x4_t h = vld1_u16((const uint16_t *)w + j);
    if (dt == ULM_DT_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); /* bf16 */
}

INLINE float w_at(ulm_dtype dt, const uint8_t *w, int j) {
    if (dt == ULM_DT_F32) return ((const float *)w)[j];
    if (dt == ULM_DT_F16) return h2f(((const uint16_t *)w)[j]);
    return ulm_bf16_to_f32(((const uint16_t *)w)[j]);
}

INLINE void tile_float(ulm_dtype dt, const uint8_t *w, const uint8_t *x, size_t xrb, int nx, int k, float *y,
                       int ldy) {
    float32x4_t a0[NR], a1[NR];
    for (int i = 0; i < nx; i++) a0[i] = a1[i] = vdupq_n_f32(0);
    int j = 0;
    for (; j + 8 <= k; j += 8) {
        float32x4_t w0 = load_w4(dt, w, j), w1 = load_w4(dt, w, j + 4);
        for (int i = 0; i < nx; i++) {
            const float *xi = (const float *)(x + i * xrb);
            a0[i] = vfmaq_f32(a0[i], w0, vld1q_f32(xi + j));
            a1[i] = vfmaq_f32(a1[i], w1, vld1q_f32(xi + j + 4));
        }
    }
    for (int i = 0; i < nx; i++) {
        const float *xi = (const float *)(x + i * xrb);
        float s = vaddvq_f32(vaddq_f32(a0[i], a1[i]));
        for (int jj = j; jj < k; jj++) s += w_at(dt, w, jj) * xi[jj];
        y[(size_t)i * ldy] = s;
    }
}

#define CALL_F32(c) tile_float(ULM_DT_F32, w, x, xrb, c, k, y, ldy)
#define CALL_F16(c) tile_float(ULM_DT_F16, w, x, xrb, c, k, y, ldy)
#define CALL_BF16(c) tile_float(ULM_DT_BF16, w, x, xrb, c, k, y, ldy)
DEFINE_TILE(tile_f32, CALL_F32)
DEFINE_TILE(tile_f16, CALL_F16)
DEFINE_TILE(tile_bf16, CALL_BF16)

/* x -> q8 blocks, identical to ulm_quantize_row(ULM_DT_Q8): vcvtaq rounds half away from
 * zero, which is roundf(). */
static void quantize_q8_neon(const float *x, block_q8 *out, int k) {
    for (int b = 0; b < k / QK; b++, x += QK) {
        float32x4_t v[8], m = vdupq_n_f32(0);
        uint32x4_t ok = vdupq_n_u32(~0u);
        for (int j = 0; j < 8; j++) {
            v[j] = vld1q_f32(x + 4 * j), m = vmaxq_f32(m, vabsq_f32(v[j]));
            ok = vandq_u32(ok, vcleq_f32(vabsq_f32(v[j]), vdupq_n_f32(FLT_MAX))); /* false: inf, NaN */
        }
        if (vminvq_u32(ok) == 0) { /* the reference's rule: scale NaN, zero quants */
            out[b].d = ULM_F16_NAN;
            memset(out[b].qs, 0, sizeof out[b].qs);
            continue;
        }
        float d = vmaxvq_f32(m) / 127.0f;
        out[b].d = ulm_f32_to_f16(d);
        float id = out[b].d ? 1.0f / d : 0.0f;
        int16x8_t h[4];
        for (int j = 0; j < 4; j++)
            h[j] = vcombine_s16(vqmovn_s32(vcvtaq_s32_f32(vmulq_n_f32(v[2 * j], id))),
                                vqmovn_s32(vcvtaq_s32_f32(vmulq_n_f32(v[2 * j + 1], id))));
        vst1q_s8(out[b].qs, vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1])));
        vst1q_s8(out[b].qs + 16, vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3])));
    }
}

void ulm_prepare_input_neon(ulm_dtype dt, const float *x, int n, int k, void *out) {
    if (ulm_dtype_plain(dt) == ULM_DT_Q8 || ulm_dtype_plain(dt) == ULM_DT_Q4) {
        size_t rb = ulm_prepared_row_bytes(dt, k);
        for (int i = 0; i < n; i++) quantize_q8_neon(x + (size_t)i * k, (block_q8 *)((char *)out + i * rb), k);
    } else {
        memcpy(out, x, (size_t)n * k * sizeof(float));
    }
}
#endif
