/* NEON small ops (the table fields of kernels.h), plain ARMv8.0: every ARM table uses them.
 * Scalar references: kernels/ref/ops_ref.c. Model: kernels/x86/ops_avx2.c.
 *
 * add, scale, axpy, axpy_rows and rope_apply do the reference's roundings in the reference's
 * order (vmulq then vaddq, never vfmaq), so they are bit-identical. GCC's arm_neon.h writes
 * vmulq_f32 and vaddq_f32 as plain C * and +, so only the -std=c11 of the Makefile (which means
 * -ffp-contract=off) keeps GCC from fusing them into fmla; the pragma below does it for clang.
 * rmsnorm and softmax sum in double like the reference, in another order; dot sums floats in
 * 16 lanes. exp is exp8 of ops_avx2.c on 4 lanes: a degree-6 polynomial on [-ln2/2, ln2/2]
 * after the 2^n split (Cephes' expf coefficients), a few ulp from expf, 0 below -87.34 (where
 * expf is subnormal), inf above 88.72, NaN kept. The f16 conversions are fcvtl / fcvtn, exact
 * and round-to-nearest-even (the FPCR default Linux runs with). */
#include <arm_neon.h>
#include <math.h>
#include <string.h>
#include "kernels.h"
#include "matmul_tiled.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define INLINE static inline __attribute__((always_inline))

INLINE float32x4_t exp4(float32x4_t x) {
    const float32x4_t hi = vdupq_n_f32(88.72283935546875f), lo = vdupq_n_f32(-87.33654022216797f);
    uint32x4_t big = vcgtq_f32(x, hi), tiny = vcltq_f32(x, lo); /* both false for NaN */
    uint32x4_t nan = vmvnq_u32(vceqq_f32(x, x));
    float32x4_t t = vminq_f32(vmaxq_f32(x, lo), hi);
    float32x4_t fx = vrndnq_f32(vmulq_f32(t, vdupq_n_f32(1.44269504088896341f)));
    t = vfmsq_f32(t, fx, vdupq_n_f32(0.693359375f)); /* t - fx ln2, ln2 in two parts */
    t = vfmsq_f32(t, fx, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, t);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, t);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, t);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, t);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, t);
    p = vfmaq_f32(vaddq_f32(t, vdupq_n_f32(1.0f)), p, vmulq_f32(t, t));
    /* times 2^fx: fx in [-126, 128]; split in two powers so 2^128 does not overflow the exponent */
    int32x4_t n = vcvtq_s32_f32(fx); /* fx is integral: truncation is exact */
    int32x4_t n1 = vshrq_n_s32(n, 1), n2 = vsubq_s32(n, n1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    float32x4_t r = vmulq_f32(vmulq_f32(p, s1), s2);
    r = vbslq_f32(big, vdupq_n_f32(INFINITY), r);
    r = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(r), tiny));
    return vbslq_f32(nan, x, r); /* fmax/fmin carried the NaN already; this returns x's own */
}

/* A tail of m < 4 floats as one vector (zeros after), so tails run the vector code exactly. */
INLINE float32x4_t load_tail(const float *p, int m) {
    float v[4] = {0};
    memcpy(v, p, (size_t)m * sizeof(float));
    return vld1q_f32(v);
}
INLINE void store_tail(float *p, float32x4_t v, int m) {
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, (size_t)m * sizeof(float));
}

/* sum of squares of 4 floats into two double lanes: exact squares, as in the reference */
INLINE float64x2_t sumsq4(float64x2_t s, float32x4_t v) {
    float64x2_t a = vcvt_f64_f32(vget_low_f32(v)), b = vcvt_high_f64_f32(v);
    return vaddq_f64(vaddq_f64(s, vmulq_f64(a, a)), vmulq_f64(b, b));
}

void ulm_rmsnorm_neon(float *out, const float *x, const float *w, int n, float eps, float w_offset) {
    float64x2_t s0 = vdupq_n_f64(0), s1 = vdupq_n_f64(0);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = sumsq4(s0, vld1q_f32(x + i));
        s1 = sumsq4(s1, vld1q_f32(x + i + 4));
    }
    double ss = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++) ss += (double)x[i] * x[i];
    float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    float32x4_t vi = vdupq_n_f32(inv), vo = vdupq_n_f32(w_offset);
    for (i = 0; i + 4 <= n; i += 4) /* (x * inv) * (w + w_offset), the reference's roundings */
        vst1q_f32(out + i, vmulq_f32(vmulq_f32(vld1q_f32(x + i), vi), vaddq_f32(vld1q_f32(w + i), vo)));
    for (; i < n; i++) out[i] = x[i] * inv * (w[i] + w_offset);
}

void ulm_softmax_neon(float *x, int n) {
    float max = x[0];
    int i = 0;
    float32x4_t vm = vdupq_n_f32(x[0]);
    for (; i + 4 <= n; i += 4) vm = vmaxnmq_f32(vm, vld1q_f32(x + i)); /* a NaN is skipped, as by > */
    float m4 = vmaxnmvq_f32(vm);
    max = m4 > max ? m4 : max;
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    float64x2_t s0 = vdupq_n_f64(0), s1 = vdupq_n_f64(0);
    vm = vdupq_n_f32(max);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), vm));
        vst1q_f32(x + i, e);
        s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(e)));
        s1 = vaddq_f64(s1, vcvt_high_f64_f32(e));
    }
    if (i < n) store_tail(x + i, exp4(vsubq_f32(load_tail(x + i, n - i), vm)), n - i);
    double sum = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++) sum += x[i];
    ulm_scale_neon(x, (float)(1.0 / sum), n);
}

float ulm_dot_neon(const float *a, const float *b, int n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0), s2 = vdupq_n_f32(0), s3 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float r = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

void ulm_axpy_neon(float *y, float a, const float *x, int n) {
    float32x4_t va = vdupq_n_f32(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_f32(va, vld1q_f32(x + i))));
        vst1q_f32(y + i + 4, vaddq_f32(vld1q_f32(y + i + 4), vmulq_f32(va, vld1q_f32(x + i + 4))));
    }
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_f32(va, vld1q_f32(x + i))));
    for (; i < n; i++) y[i] += a * x[i];
}

/* 32 floats of y in 8 registers while all m rows pass; per element the same mul-then-add
 * sequence as m calls of the reference axpy. */
void ulm_axpy_rows_neon(float *y, const float *w, const float *const *x, int m, int n) {
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        float32x4_t a[8];
        for (int j = 0; j < 8; j++) a[j] = vld1q_f32(y + i + 4 * j);
        for (int t = 0; t < m; t++) {
            float32x4_t b = vdupq_n_f32(w[t]);
            const float *r = x[t] + i;
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) a[j] = vaddq_f32(a[j], vmulq_f32(b, vld1q_f32(r + 4 * j)));
        }
        for (int j = 0; j < 8; j++) vst1q_f32(y + i + 4 * j, a[j]);
    }
    for (; i + 4 <= n; i += 4) {
        float32x4_t a = vld1q_f32(y + i);
        for (int t = 0; t < m; t++) a = vaddq_f32(a, vmulq_f32(vdupq_n_f32(w[t]), vld1q_f32(x[t] + i)));
        vst1q_f32(y + i, a);
    }
    for (; i < n; i++)
        for (int t = 0; t < m; t++) y[i] += w[t] * x[t][i];
}

void ulm_add_neon(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
    for (; i < n; i++) y[i] += x[i];
}

void ulm_scale_neon(float *y, float s, int n) {
    float32x4_t vs = vdupq_n_f32(s);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(vld1q_f32(y + i), vs));
    for (; i < n; i++) y[i] *= s;
}

/* silu(g) * u = g / (1 + exp(-g)) * u */
INLINE float32x4_t swiglu4(float32x4_t g, float32x4_t u) {
    return vmulq_f32(vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(g)))), u);
}

void ulm_swiglu_neon(float *out, const float *g, const float *u, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, swiglu4(vld1q_f32(g + i), vld1q_f32(u + i)));
    if (i < n) store_tail(out + i, swiglu4(load_tail(g + i, n - i), load_tail(u + i, n - i)), n - i);
}

/* gelu_tanh(v) = 0.5 v (1 + tanh(y)) = v / (1 + exp(-2y)), y = sqrt(2/pi) (v + 0.044715 v^3):
 * the same function written without the cancellation of 1 + tanh(y) for negative y. */
INLINE float32x4_t geglu4(float32x4_t v, float32x4_t u) {
    const float32x4_t c2 = vdupq_n_f32(-2.0f * 0.7978845608028654f), k = vdupq_n_f32(0.044715f);
    float32x4_t y = vmulq_f32(c2, vfmaq_f32(v, vmulq_f32(k, v), vmulq_f32(v, v)));
    return vmulq_f32(vdivq_f32(v, vaddq_f32(vdupq_n_f32(1.0f), exp4(y))), u);
}

void ulm_geglu_neon(float *out, const float *g, const float *u, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, geglu4(vld1q_f32(g + i), vld1q_f32(u + i)));
    if (i < n) store_tail(out + i, geglu4(load_tail(g + i, n - i), load_tail(u + i, n - i)), n - i);
}

void ulm_rope_apply_neon(float *x, int hd, int rot_dim, int interleaved, const float *cs) {
    int half = rot_dim / 2, i = 0;
    const float *sn = cs + half;
    if (interleaved) { /* pairs (x[2i], x[2i+1]): ld2 splits them into even and odd lanes */
        for (; i + 4 <= half; i += 4) {
            float32x4x2_t v = vld2q_f32(x + 2 * i), o;
            float32x4_t c = vld1q_f32(cs + i), s = vld1q_f32(sn + i);
            o.val[0] = vsubq_f32(vmulq_f32(v.val[0], c), vmulq_f32(v.val[1], s));
            o.val[1] = vaddq_f32(vmulq_f32(v.val[0], s), vmulq_f32(v.val[1], c));
            vst2q_f32(x + 2 * i, o);
        }
    } else { /* NeoX halves (x[i], x[i + hd/2]) */
        float *x1p = x + hd / 2;
        for (; i + 4 <= half; i += 4) {
            float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x1p + i);
            float32x4_t c = vld1q_f32(cs + i), s = vld1q_f32(sn + i);
            vst1q_f32(x + i, vsubq_f32(vmulq_f32(x0, c), vmulq_f32(x1, s)));
            vst1q_f32(x1p + i, vaddq_f32(vmulq_f32(x0, s), vmulq_f32(x1, c)));
        }
    }
    k_rope_apply_from(x, hd, rot_dim, interleaved, cs, i);
}

/* fcvtl is exact, like the reference (a signaling NaN comes out quieted). */
void ulm_f16_to_f32_neon(float *out, const uint16_t *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(x + i));
        vst1q_f32(out + i, vcvt_f32_f16(vget_low_f16(h)));
        vst1q_f32(out + i + 4, vcvt_high_f32_f16(h));
    }
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
    k_f16_to_f32(out + i, x + i, n - i);
}

/* fcvtn rounds to nearest even (FPCR.RMode 0, no flush of f16 subnormals: the Linux default)
 * like the reference; NaN payloads may differ. */
void ulm_f32_to_f16_neon(uint16_t *out, const float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(x + i)), vld1q_f32(x + i + 4));
        vst1q_u16(out + i, vreinterpretq_u16_f16(h));
    }
    for (; i + 4 <= n; i += 4) vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    k_f32_to_f16(out + i, x + i, n - i);
}
