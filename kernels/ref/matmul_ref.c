/* Reference matmul for every weight dtype: the specification the SIMD kernels must match.
 * F32/F16/BF16 weights multiply an f32 input; Q8/Q4 weights multiply the input quantized to
 * q8 blocks, with an exact integer dot per block scaled by d_w * d_x (as GGUF does). */
#include <string.h>
#include "kernels.h"
#include "matmul_tiled.h"

static int is_quant(ulm_dtype dt) { return ulm_dtype_plain(dt) == ULM_DT_Q8 || ulm_dtype_plain(dt) == ULM_DT_Q4; }

static size_t ref_prepare_size(ulm_dtype dt, int n, int k) {
    if (is_quant(dt)) return (size_t)n * ulm_dtype_row_bytes(ULM_DT_Q8, (uint64_t)k);
    return (size_t)n * k * sizeof(float);
}

static void ref_prepare_input(ulm_dtype dt, const float *x, int n, int k, void *out) {
    if (is_quant(dt)) {
        size_t rb = ulm_dtype_row_bytes(ULM_DT_Q8, (uint64_t)k);
        for (int i = 0; i < n; i++) ulm_quantize_row(ULM_DT_Q8, x + (size_t)i * k, (char *)out + i * rb, k);
    } else {
        memcpy(out, x, (size_t)n * k * sizeof(float));
    }
}

static float dot_row(ulm_dtype dt, const void *wrow, const void *xrow, int k) {
    const float *xf = xrow;
    float s = 0;
    switch (dt) {
    case ULM_DT_F32: for (int j = 0; j < k; j++) s += ((const float *)wrow)[j] * xf[j]; break;
    case ULM_DT_F16: for (int j = 0; j < k; j++) s += ulm_f16_to_f32(((const uint16_t *)wrow)[j]) * xf[j]; break;
    case ULM_DT_BF16: for (int j = 0; j < k; j++) s += ulm_bf16_to_f32(((const uint16_t *)wrow)[j]) * xf[j]; break;
    case ULM_DT_Q8: {
        const block_q8 *w = wrow, *x = xrow;
        for (int b = 0; b < k / QK; b++) {
            int32_t acc = 0;
            for (int j = 0; j < QK; j++) acc += w[b].qs[j] * x[b].qs[j];
            s += ulm_f16_to_f32(w[b].d) * ulm_f16_to_f32(x[b].d) * (float)acc;
        }
        break;
    }
    case ULM_DT_Q4: {
        const block_q4 *w = wrow;
        const block_q8 *x = xrow;
        for (int b = 0; b < k / QK; b++) {
            int32_t acc = 0;
            for (int j = 0; j < QK / 2; j++) {
                acc += ((w[b].qs[j] & 15) - 8) * x[b].qs[j];
                acc += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + QK / 2];
            }
            s += ulm_f16_to_f32(w[b].d) * ulm_f16_to_f32(x[b].d) * (float)acc;
        }
        break;
    }
    default: break;
    }
    return s;
}

/* dot_row for row rr of an interleaved group (quant.h): quant byte m of the row's block b is
 * at qs[64*(m/4) + 4*rr + m%4] of group block b. The same bytes and the same arithmetic, in
 * the same order, as the plain layout, so the outputs are bit-identical to Q8 / Q4's. */
static float dot_row_r16(ulm_dtype dt, const void *group, int rr, const block_q8 *x, int k) {
    float s = 0;
    for (int b = 0; b < k / QK; b++) {
        int32_t acc = 0;
        uint16_t d;
        if (dt == ULM_DT_Q8_R16) {
            const block_q8x16 *G = (const block_q8x16 *)group + b;
            for (int m = 0; m < QK; m++) acc += G->qs[64 * (m / 4) + 4 * rr + m % 4] * x[b].qs[m];
            d = G->d[rr];
        } else {
            const block_q4x16 *G = (const block_q4x16 *)group + b;
            for (int m = 0; m < QK / 2; m++) {
                uint8_t q = G->qs[64 * (m / 4) + 4 * rr + m % 4];
                acc += ((q & 15) - 8) * x[b].qs[m];
                acc += ((q >> 4) - 8) * x[b].qs[m + QK / 2];
            }
            d = G->d[rr];
        }
        s += ulm_f16_to_f32(d) * ulm_f16_to_f32(x[b].d) * (float)acc;
    }
    return s;
}

static void ref_matmul_r16(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy,
                           int r0, int r1) {
    size_t grb = ULM_R16 * ulm_dtype_row_bytes(dt, (uint64_t)k); /* bytes of a group of 16 rows */
    size_t xrb = ulm_dtype_row_bytes(ULM_DT_Q8, (uint64_t)k);
    for (int i = 0; i < n; i++)
        for (int r = r0; r < r1; r++)
            y[(size_t)i * ldy + r] = dot_row_r16(dt, (const char *)w + (size_t)(r / ULM_R16) * grb, r % ULM_R16,
                                                 (const block_q8 *)((const char *)xprep + i * xrb), k);
}

static void ref_matmul(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy,
                       int r0, int r1) {
    if (dt == ULM_DT_Q8_R16 || dt == ULM_DT_Q4_R16) {
        ref_matmul_r16(dt, w, xprep, n, k, y, ldy, r0, r1);
        return;
    }
    size_t wrb = ulm_dtype_row_bytes(dt, (uint64_t)k);
    size_t xrb = is_quant(dt) ? ulm_dtype_row_bytes(ULM_DT_Q8, (uint64_t)k) : (size_t)k * sizeof(float);
    for (int i = 0; i < n; i++)
        for (int r = r0; r < r1; r++)
            y[(size_t)i * ldy + r] = dot_row(dt, (const char *)w + (size_t)r * wrb, (const char *)xprep + i * xrb, k);
}

const ulm_kernels ulm_kernels_scalar = {
    .isa = "scalar",
    .prepare_size = ref_prepare_size,
    .prepare_input = ref_prepare_input,
    .matmul = ref_matmul,
    ULM_OPS_REF,
};
