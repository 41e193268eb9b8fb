/* NEON with the int8 matrix multiply extension (smmla) for prefill: a tile of 2 weight rows
 * x 2 inputs per instruction, 8 values deep. Reference: dot_row() in kernels/ref/matmul_ref.c.
 * Here each block's int32 dot is complete before it is scaled, and blocks are added in order,
 * so the only difference from the reference is the fused multiply-add.
 * Decode (n = 1) has no second input to pair with, so it is the dot-product kernel. */
#include <arm_neon.h>
#include <string.h>
#include "kernels.h"
#include "matmul_tiled.h"

#define INLINE static inline __attribute__((always_inline))

INLINE float h2f(uint16_t h) {
    __fp16 f;
    memcpy(&f, &h, 2);
    return (float)f;
}

INLINE float load_wblock(int q4, const uint8_t *w, int b, int8x16_t *w0, int8x16_t *w1) {
    if (q4) {
        const block_q4 *B = (const block_q4 *)w + b;
        uint8x16_t q = vld1q_u8(B->qs);
        int8x16_t eight = vdupq_n_s8(8);
        *w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(15))), eight);
        *w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
        return h2f(B->d);
    }
    const block_q8 *B = (const block_q8 *)w + b;
    *w0 = vld1q_s8(B->qs);
    *w1 = vld1q_s8(B->qs + 16);
    return h2f(B->d);
}

/* [lo 8 bytes of a, lo 8 of b] and [hi 8 of a, hi 8 of b]: two rows of an smmla operand. */
INLINE int8x16_t rows_lo(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
INLINE int8x16_t rows_hi(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

INLINE void tile_mmla(int q4, const uint8_t *w, size_t wrb, int nr, const uint8_t *x, size_t xrb, int nx, int k,
                      float *y, int ldy) {
    const uint8_t *wa = w, *wb = nr > 1 ? w + wrb : w; /* a missing row or input repeats the first */
    const block_q8 *xa = (const block_q8 *)x, *xb = (const block_q8 *)(nx > 1 ? x + xrb : x);
    float32x4_t acc = vdupq_n_f32(0); /* [a.x, a.y, b.x, b.y] */
    for (int b = 0; b < k / QK; b++) {
        int8x16_t a0, a1, b0, b1;
        float da = load_wblock(q4, wa, b, &a0, &a1), db = load_wblock(q4, wb, b, &b0, &b1);
        int8x16_t x0 = vld1q_s8(xa[b].qs), x1 = vld1q_s8(xa[b].qs + 16);
        int8x16_t y0 = vld1q_s8(xb[b].qs), y1 = vld1q_s8(xb[b].qs + 16);
        int32x4_t s = vdupq_n_s32(0);
        s = vmmlaq_s32(s, rows_lo(a0, b0), rows_lo(x0, y0));
        s = vmmlaq_s32(s, rows_hi(a0, b0), rows_hi(x0, y0));
        s = vmmlaq_s32(s, rows_lo(a1, b1), rows_lo(x1, y1));
        s = vmmlaq_s32(s, rows_hi(a1, b1), rows_hi(x1, y1));
        float dx = h2f(xa[b].d), dy = h2f(xb[b].d);
        float32x4_t d = {da * dx, da * dy, db * dx, db * dy}; /* d_w * d_x, rounded as the reference */
        acc = vfmaq_f32(acc, vcvtq_f32_s32(s), d);
    }
    y[0] = vgetq_lane_f32(acc, 0);
    if (nx > 1) y[ldy] = vgetq_lane_f32(acc, 1);
    if (nr > 1) y[1] = vgetq_lane_f32(acc, 2);
    if (nr > 1 && nx > 1) y[ldy + 1] = vgetq_lane_f32(acc, 3);
}

static void tile_q8(const uint8_t *w, size_t wrb, int nr, const uint8_t *x, size_t xrb, int nx, int k, float *y,
                    int ldy) {
    tile_mmla(0, w, wrb, nr, x, xrb, nx, k, y, ldy);
}
static void tile_q4(const uint8_t *w, size_t wrb, int nr, const uint8_t *x, size_t xrb, int nx, int k, float *y,
                    int ldy) {
    tile_mmla(1, w, wrb, nr, x, xrb, nx, k, y, ldy);
}

static void matmul_i8mm(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                        int r1) {
    if (n == 1 || (dt != ULM_DT_Q8 && dt != ULM_DT_Q4)) {
        ulm_matmul_neon_dotprod(dt, w, xprep, n, k, y, ldy, r0, r1);
        return;
    }
    ulm_matmul_tiled(dt == ULM_DT_Q8 ? tile_q8 : tile_q4, 2, 2, w, ulm_dtype_row_bytes(dt, (uint64_t)k), xprep,
                     ulm_prepared_row_bytes(dt, k), n, k, y, ldy, r0, r1);
}

static size_t prepare_size(ulm_dtype dt, int n, int k) { return ulm_prepare_size_common(dt, n, k); }

const ulm_kernels ulm_kernels_neon_i8mm = {
    .isa = "neon-i8mm",
    .prepare_size = prepare_size,
    .prepare_input = ulm_prepare_input_neon,
    .matmul = matmul_i8mm,
    ULM_OPS_NEON,
};
