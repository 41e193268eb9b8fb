/* Reference conversions and (de)quantization: the specification of every weight format. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

float ulm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13; /* inf / NaN */
    } else {
        bits = sign | (exp + 112) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Round to nearest even, like F16C's vcvtps2ph with rounding mode 0. */
uint16_t ulm_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffff;
    if (ax >= 0x7f800000) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000 ? 0x200 : 0));
    if (ax >= 0x477ff000) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (ax < 0x38800000) { /* result is subnormal or zero */
        if (ax < 0x33000000) return (uint16_t)sign;
        uint32_t man = (ax & 0x7fffff) | 0x800000;
        int shift = 113 - (int)(ax >> 23) + 13;
        uint32_t r = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((ax >> 13) - (112u << 10));
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float ulm_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ulm_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

static const char *const dtype_names[ULM_DT_COUNT] = {"f32", "f16", "bf16", "q8", "q4", "i32", "u8", "q8r16", "q4r16"};

const char *ulm_dtype_name(ulm_dtype dt) {
    return (unsigned)dt < ULM_DT_COUNT ? dtype_names[dt] : "?";
}

int ulm_dtype_from_name(const char *name) {
    for (int i = 0; i < ULM_DT_COUNT; i++)
        if (strcmp(name, dtype_names[i]) == 0) return i;
    return -1;
}

int ulm_dtype_is_weight(ulm_dtype dt) { return dt <= ULM_DT_Q4 || dt == ULM_DT_Q8_R16 || dt == ULM_DT_Q4_R16; }
int ulm_dtype_row_group(ulm_dtype dt) { return dt == ULM_DT_Q8_R16 || dt == ULM_DT_Q4_R16 ? ULM_R16 : 1; }
ulm_dtype ulm_dtype_interleaved(ulm_dtype dt) {
    return dt == ULM_DT_Q8 ? ULM_DT_Q8_R16 : dt == ULM_DT_Q4 ? ULM_DT_Q4_R16 : dt;
}
ulm_dtype ulm_dtype_plain(ulm_dtype dt) {
    return dt == ULM_DT_Q8_R16 ? ULM_DT_Q8 : dt == ULM_DT_Q4_R16 ? ULM_DT_Q4 : dt;
}

size_t ulm_dtype_row_bytes(ulm_dtype dt, uint64_t cols) {
    switch (dt) {
    case ULM_DT_F32: case ULM_DT_I32: return (size_t)cols * 4;
    case ULM_DT_F16: case ULM_DT_BF16: return (size_t)cols * 2;
    case ULM_DT_U8: return (size_t)cols;
    case ULM_DT_Q8: case ULM_DT_Q8_R16: return cols % QK ? 0 : (size_t)(cols / QK) * sizeof(block_q8);
    case ULM_DT_Q4: case ULM_DT_Q4_R16: return cols % QK ? 0 : (size_t)(cols / QK) * sizeof(block_q4);
    default: return 0;
    }
}

/* Q8: d = max|x| / 127, q = round(x * (1/d)) (roundf: ties away from zero).
 * Q4: d = x_maxabs / -8 (sign of the extreme value, as GGUF Q4_0 does, so the extreme lands
 * exactly on nibble 0), q = min(15, (int)(x * (1/d) + 8.5)).
 * Both as GGUF's reference quantizers do, except that a block whose scale is 0 once stored as
 * f16 (max|x| below ~4e-6 for q8, ~2e-7 for q4) stores zero quants: such a block dequantizes to
 * zeros either way, and 1/d could overflow to inf.
 * A block holding an infinite or NaN value stores scale NaN and zero quants (every ISA's
 * prepare_input does the same): the outputs that read it are NaN, so a corrupt activation or
 * weight reaches the logits, whose check reports it, instead of quantizing to finite garbage
 * (max ignores NaN, and converting NaN to an integer is undefined). */
static int block_finite(const float *x) {
    int ok = 1;
    for (int j = 0; j < QK; j++) ok &= fabsf(x[j]) <= FLT_MAX; /* false for inf and NaN */
    return ok;
}
void ulm_quantize_row(ulm_dtype dt, const float *x, void *out, int cols) {
    switch (dt) {
    case ULM_DT_F32: memcpy(out, x, (size_t)cols * 4); break;
    case ULM_DT_F16: for (int i = 0; i < cols; i++) ((uint16_t *)out)[i] = ulm_f32_to_f16(x[i]); break;
    case ULM_DT_BF16: for (int i = 0; i < cols; i++) ((uint16_t *)out)[i] = ulm_f32_to_bf16(x[i]); break;
    case ULM_DT_Q8: {
        block_q8 *b = out;
        for (int i = 0; i < cols / QK; i++, x += QK) {
            if (!block_finite(x)) { b[i].d = ULM_F16_NAN; memset(b[i].qs, 0, sizeof b[i].qs); continue; }
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
            float d = amax / 127.0f;
            b[i].d = ulm_f32_to_f16(d);
            float id = b[i].d ? 1.0f / d : 0.0f; /* scale 0 in f16: store zeros (1/d may overflow) */
            for (int j = 0; j < QK; j++) b[i].qs[j] = (int8_t)roundf(x[j] * id);
        }
        break;
    }
    case ULM_DT_Q4: {
        block_q4 *b = out;
        for (int i = 0; i < cols / QK; i++, x += QK) {
            if (!block_finite(x)) { b[i].d = ULM_F16_NAN; memset(b[i].qs, 0x88, sizeof b[i].qs); continue; }
            float amax = 0, max = 0;
            for (int j = 0; j < QK; j++)
                if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
            float d = max / -8.0f;
            b[i].d = ulm_f32_to_f16(d);
            float id = b[i].d & 0x7fff ? 1.0f / d : 0.0f; /* scale 0 in f16: store nibble 8 (zero) */
            for (int j = 0; j < QK / 2; j++) {
                int lo = (int)(x[j] * id + 8.5f), hi = (int)(x[j + QK / 2] * id + 8.5f);
                lo = lo > 15 ? 15 : lo; hi = hi > 15 ? 15 : hi;
                b[i].qs[j] = (uint8_t)(lo | hi << 4);
            }
        }
        break;
    }
    default: break;
    }
}

void ulm_dequantize_row(ulm_dtype dt, const void *in, float *out, int cols) {
    switch (dt) {
    case ULM_DT_F32: memcpy(out, in, (size_t)cols * 4); break;
    case ULM_DT_F16: for (int i = 0; i < cols; i++) out[i] = ulm_f16_to_f32(((const uint16_t *)in)[i]); break;
    case ULM_DT_BF16: for (int i = 0; i < cols; i++) out[i] = ulm_bf16_to_f32(((const uint16_t *)in)[i]); break;
    case ULM_DT_Q8: {
        const block_q8 *b = in;
        for (int i = 0; i < cols / QK; i++) {
            float d = ulm_f16_to_f32(b[i].d);
            for (int j = 0; j < QK; j++) out[i * QK + j] = d * b[i].qs[j];
        }
        break;
    }
    case ULM_DT_Q4: {
        const block_q4 *b = in;
        for (int i = 0; i < cols / QK; i++) {
            float d = ulm_f16_to_f32(b[i].d);
            for (int j = 0; j < QK / 2; j++) {
                out[i * QK + j] = d * ((b[i].qs[j] & 15) - 8);
                out[i * QK + j + QK / 2] = d * ((b[i].qs[j] >> 4) - 8);
            }
        }
        break;
    }
    default: break;
    }
}

/* ---- 16-row interleaved layouts (quant.h): quant byte m of row r of a group block sits at
 * qs[64*(m/4) + 4*r + m%4] ---- */

static int interleave(ulm_dtype plain, const void *in, uint64_t rows, uint64_t cols, void *out, int back) {
    if ((plain != ULM_DT_Q8 && plain != ULM_DT_Q4) || rows % ULM_R16 || cols % QK) return -1;
    size_t bs = plain == ULM_DT_Q8 ? sizeof(block_q8) : sizeof(block_q4), nq = bs - 2, nb = cols / QK;
    size_t rb = nb * bs; /* bytes of a plain row = bytes of a group block / 16 */
    for (uint64_t g = 0; g < rows / ULM_R16; g++)
        for (size_t b = 0; b < nb; b++) {
            uint8_t *G = (uint8_t *)(back ? in : out) + (g * nb + b) * ULM_R16 * bs; /* group block */
            for (int r = 0; r < ULM_R16; r++) {
                uint8_t *B = (uint8_t *)(back ? out : in) + (g * ULM_R16 + r) * rb + b * bs; /* plain block */
                uint8_t *dg = G + 2 * r, *qg = G + 2 * ULM_R16;
                if (back) memcpy(B, dg, 2);
                else memcpy(dg, B, 2);
                for (size_t m = 0; m < nq; m++) {
                    uint8_t *q = qg + 64 * (m / 4) + 4 * r + m % 4;
                    if (back) B[2 + m] = *q;
                    else *q = B[2 + m];
                }
            }
        }
    return 0;
}

int ulm_interleave_rows(ulm_dtype plain, const void *in, uint64_t rows, uint64_t cols, void *out) {
    return interleave(plain, in, rows, cols, out, 0);
}

void *ulm_interleave_rows_new(ulm_dtype plain, const void *in, uint64_t rows, uint64_t cols) {
    if (rows % ULM_R16) return NULL;
    void *out = malloc(rows * ulm_dtype_row_bytes(plain, cols));
    if (out && ulm_interleave_rows(plain, in, rows, cols, out) != 0) { free(out); out = NULL; }
    return out;
}

int ulm_deinterleave_rows(ulm_dtype plain, const void *in, uint64_t rows, uint64_t cols, void *out) {
    return interleave(plain, in, rows, cols, out, 1);
}

void ulm_dequantize_row_at(ulm_dtype dt, const void *data, uint64_t cols, uint64_t r, float *out) {
    ulm_dtype plain = ulm_dtype_plain(dt);
    if (plain == dt) {
        ulm_dequantize_row(dt, (const uint8_t *)data + r * ulm_dtype_row_bytes(dt, cols), out, (int)cols);
        return;
    }
    /* gather row r's blocks out of its group, then dequantize them as a plain row */
    size_t bs = plain == ULM_DT_Q8 ? sizeof(block_q8) : sizeof(block_q4), nq = bs - 2, nb = cols / QK;
    uint64_t g = r / ULM_R16;
    int rr = (int)(r % ULM_R16);
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *G = (const uint8_t *)data + (g * nb + b) * ULM_R16 * bs;
        uint8_t blk[sizeof(block_q8)];
        memcpy(blk, G + 2 * rr, 2);
        for (size_t m = 0; m < nq; m++) blk[2 + m] = G[2 * ULM_R16 + 64 * (m / 4) + 4 * rr + m % 4];
        ulm_dequantize_row(plain, blk, out + b * QK, QK);
    }
}
