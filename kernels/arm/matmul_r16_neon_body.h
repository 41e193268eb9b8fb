/* NEON matmul body for the 16-row interleaved weights Q8_R16 / Q4_R16 (layout: quant.h),
 * included by matmul_r16_neon.c (plain ARMv8.0 NEON, e.g. cortex-a53) and, with ULM_DOTPROD 1,
 * by matmul_r16_dotprod.c (sdot by element).
 *
 * Scalar reference: dot_row_r16() in kernels/ref/matmul_ref.c, matched bit for bit (the
 * r16 tests in tests/test_kernels.c assert equality): each of the 16 rows of a group is a
 * float lane (4 registers of 4), and each lane does its row's reference arithmetic in the
 * reference's order: exact int32 block dot, d = d_w * d_x, s += d * dot with the multiply and
 * the add rounded separately (vmulq + vaddq; the Makefile's -std=c11 keeps GCC from fusing).
 *
 * Why the layout suits NEON: a group block's quants are lines of 64 bytes, line j holding 4
 * consecutive quant bytes of each of the 16 rows; its 16-byte quarter v is 4 bytes of rows
 * 4v..4v+3, i.e. exactly one sdot-by-element operand: sdot(acc, quarter, x, lane j%4) adds
 * the 4-byte dot of each of those 4 rows with input bytes 4j..4j+3 into that row's int32
 * lane. Eight such quarters (q8: lines 0..7; q4: the low then the high nibbles of lines 0..3,
 * which pair with input bytes 0..15 and 16..31 by the same rule) complete the block dot of 4
 * rows with no horizontal sums, and the 16 scales are 4 vector conversions per group block.
 * Without sdot the same quarters go through widening multiplies (see quad_dot).
 * Loop order: per group of 16 rows and tile of up to NX inputs (prefill; decode is 1), the 4
 * quads of rows in turn over a chunk of blocks (quad_tile), each weight quarter loaded and
 * unpacked once for all the inputs of the tile. */
#include <arm_neon.h>
#include <string.h>
#include "kernels.h"
#include "matmul_tiled.h"

#define INLINE static inline __attribute__((always_inline))
#define NX 4

INLINE float h2f(uint16_t h) { /* f16 -> f32 with fcvt (exact, subnormals and inf kept) */
    __fp16 f;
    memcpy(&f, &h, 2);
    return (float)f;
}

/* The 4 int32 block dots of rows 4v..4v+3: w[j] is quarter v of weight line j (4 bytes of each
 * of the 4 rows, as int8), to be multiplied with input bytes 4*(j%4).. of x0 (j < 4) or x1. */
INLINE int32x4_t quad_dot(int q4, const int8x16_t w[8], int8x16_t x0, int8x16_t x1) {
#if ULM_DOTPROD
    (void)q4;
    int32x4_t a = vdupq_n_s32(0), b = vdupq_n_s32(0); /* two chains */
    a = vdotq_laneq_s32(a, w[0], x0, 0);
    b = vdotq_laneq_s32(b, w[1], x0, 1);
    a = vdotq_laneq_s32(a, w[2], x0, 2);
    b = vdotq_laneq_s32(b, w[3], x0, 3);
    a = vdotq_laneq_s32(a, w[4], x1, 0);
    b = vdotq_laneq_s32(b, w[5], x1, 1);
    a = vdotq_laneq_s32(a, w[6], x1, 2);
    b = vdotq_laneq_s32(b, w[7], x1, 3);
    return vaddq_s32(a, b);
#else
    /* x4[j]: input bytes 4j%16.. repeated 4 times, so byte t of it meets byte t of w[j]. The
     * low 8 bytes of w[j] are rows 4v, 4v+1 (4 lanes each), the high 8 rows 4v+2, 4v+3. */
    int8x16_t x4[8];
    x4[0] = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x0), 0));
    x4[1] = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x0), 1));
    x4[2] = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x0), 2));
    x4[3] = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x0), 3));
    x4[4] = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x1), 0));
    x4[5] = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x1), 1));
    x4[6] = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x1), 2));
    x4[7] = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x1), 3));
    int32x4_t lo, hi; /* [row a, row a, row b, row b] partial sums, rows (4v, 4v+1) and (4v+2, 4v+3) */
    if (q4) {
        /* |nibble - 8| <= 8, |x| <= 127: the 8 products a lane sums (<= 8128) fit int16 */
        int16x8_t pl = vmull_s8(vget_low_s8(w[0]), vget_low_s8(x4[0]));
        int16x8_t ph = vmull_high_s8(w[0], x4[0]);
#pragma GCC unroll 7
        for (int j = 1; j < 8; j++) {
            pl = vmlal_s8(pl, vget_low_s8(w[j]), vget_low_s8(x4[j]));
            ph = vmlal_high_s8(ph, w[j], x4[j]);
        }
        lo = vpaddlq_s16(pl);
        hi = vpaddlq_s16(ph);
    } else {
        /* |w| <= 128, |x| <= 127 (prepare_input): two products fit int16, then widen */
        lo = hi = vdupq_n_s32(0);
#pragma GCC unroll 4
        for (int j = 0; j < 8; j += 2) {
            int16x8_t pl = vmlal_s8(vmull_s8(vget_low_s8(w[j]), vget_low_s8(x4[j])), vget_low_s8(w[j + 1]),
                                    vget_low_s8(x4[j + 1]));
            int16x8_t ph = vmlal_high_s8(vmull_high_s8(w[j], x4[j]), w[j + 1], x4[j + 1]);
            lo = vpadalq_s16(lo, pl);
            hi = vpadalq_s16(hi, ph);
        }
    }
    return vpaddq_s32(lo, hi); /* [4v, 4v+1, 4v+2, 4v+3] */
#endif
}

/* Rows 4v..4v+3 of a group, group blocks [b0, b1) from G, against nx inputs: acc[i] (those
 * 4 outputs of input i) += each block's term, in block order. One quad of rows at a time keeps
 * the accumulators, the quad's 8 weight quarters and the inputs' quants in registers. The
 * small loops are unrolled by pragma: GCC's -O2 would keep w[] in memory otherwise. */
INLINE void quad_tile(int q4, const uint8_t *G, size_t gbs, int v, const uint8_t *x, size_t xrb, int nx, int b0,
                      int b1, float32x4_t acc[NX]) {
    float32x4_t a[NX]; /* in registers for the whole loop */
    for (int i = 0; i < nx; i++) a[i] = acc[i];
    G += (size_t)b0 * gbs;
    for (int b = b0; b < b1; b++, G += gbs) {
        if (v == 0) ulm_prefetch_ahead(G, ULM_PREFETCH_AHEAD, gbs); /* quad 0 reads the chunk from memory */
        const uint8_t *qs = G + 32 + 16 * v;
        float32x4_t dw = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)G + 4 * v)));
        int8x16_t w[8];
        if (q4) {
            const uint8x16_t m = vdupq_n_u8(15);
            const int8x16_t eight = vdupq_n_s8(8);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                uint8x16_t q = vld1q_u8(qs + 64 * j);
                w[j] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m)), eight);       /* elements 4j.. */
                w[j + 4] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight); /* elements 16+4j.. */
            }
        } else {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) w[j] = vld1q_s8((const int8_t *)qs + 64 * j);
        }
#pragma GCC unroll 4
        for (int i = 0; i < nx; i++) {
            const block_q8 *X = (const block_q8 *)(x + i * xrb) + b;
            int32x4_t p = quad_dot(q4, w, vld1q_s8(X->qs), vld1q_s8(X->qs + 16));
            float32x4_t d = vmulq_n_f32(dw, h2f(X->d)); /* d_w * d_x */
            a[i] = vaddq_f32(a[i], vmulq_f32(d, vcvtq_f32_s32(p)));
        }
    }
    for (int i = 0; i < nx; i++) acc[i] = a[i];
}

/* The 4 quads of a group take turns over chunks of CHUNK_BLOCKS group blocks (17 KiB of q8,
 * 9 KiB of q4), so the 3 quads after the first read the chunk from L1, not L2. Each lane
 * still adds its blocks in order: the chunks only pause it. */
#define CHUNK_BLOCKS 32

/* One group (16 rows, nb group blocks from G) against nx inputs; acc[v][i] = rows 4v..4v+3
 * of y for input i. */
INLINE void group_tile(int q4, const uint8_t *G, size_t gbs, const uint8_t *x, size_t xrb, int nx, int nb,
                       float32x4_t acc[4][NX]) {
    for (int v = 0; v < 4; v++)
        for (int i = 0; i < nx; i++) acc[v][i] = vdupq_n_f32(0);
    for (int b0 = 0; b0 < nb; b0 += CHUNK_BLOCKS) {
        int b1 = nb - b0 < CHUNK_BLOCKS ? nb : b0 + CHUNK_BLOCKS;
        for (int v = 0; v < 4; v++) quad_tile(q4, G, gbs, v, x, xrb, nx, b0, b1, acc[v]);
    }
}

/* constant q4 and nx for the compiler */
#define GROUP_TILE(q4c)                                                          \
    switch (nx) {                                                                \
    case 1: group_tile(q4c, G, gbs, xi, xrb, 1, nb, out); break;                 \
    case 2: group_tile(q4c, G, gbs, xi, xrb, 2, nb, out); break;                 \
    case 3: group_tile(q4c, G, gbs, xi, xrb, 3, nb, out); break;                 \
    default: group_tile(q4c, G, gbs, xi, xrb, NX, nb, out); break;               \
    }

/* y[i*ldy + r] for r in [r0, r1), i in [0, n): groups of 16 rows, each against the inputs in
 * tiles of NX (a group's weights, nb * gbs bytes, stay in cache across the tiles). */
INLINE void matmul_r16_body(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy,
                            int r0, int r1) {
    int q4 = dt == ULM_DT_Q4_R16, nb = k / QK;
    size_t gbs = q4 ? sizeof(block_q4x16) : sizeof(block_q8x16);
    size_t xrb = ulm_prepared_row_bytes(dt, k);
    for (int g = r0 / ULM_R16; g * ULM_R16 < r1; g++) {
        const uint8_t *G = (const uint8_t *)w + (size_t)g * nb * gbs;
        int lo = g * ULM_R16 < r0 ? r0 - g * ULM_R16 : 0, hi = r1 - g * ULM_R16 < ULM_R16 ? r1 - g * ULM_R16 : ULM_R16;
        for (int i = 0; i < n; i += NX) {
            const uint8_t *xi = (const uint8_t *)xprep + (size_t)i * xrb;
            float32x4_t out[4][NX];
            int nx = n - i < NX ? n - i : NX;
            if (q4) {
                GROUP_TILE(1);
            } else {
                GROUP_TILE(0);
            }
            for (int t = 0; t < nx; t++) {
                float *yt = y + (size_t)(i + t) * ldy + g * ULM_R16;
                if (lo == 0 && hi == ULM_R16) {
                    for (int v = 0; v < 4; v++) vst1q_f32(yt + 4 * v, out[v][t]);
                } else { /* a group cut by [r0, r1) */
                    float tmp[ULM_R16];
                    for (int v = 0; v < 4; v++) vst1q_f32(tmp + 4 * v, out[v][t]);
                    for (int r = lo; r < hi; r++) yt[r] = tmp[r];
                }
            }
        }
    }
}
