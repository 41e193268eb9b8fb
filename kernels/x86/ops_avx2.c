/* AVX2 + FMA small ops (the table fields of kernels.h). Scalar references: kernels/ref/ops_ref.c.
 *
 * add, scale, axpy and rope_apply do the reference's roundings in the reference's order (no
 * fused multiply-add), so they are bit-identical. rmsnorm and softmax sum in double like the
 * reference, in another order; dot sums floats in 8 lanes. exp is a degree-6 polynomial on
 * [-ln2/2, ln2/2] after the usual 2^n split (Cephes' expf coefficients), a few ulp from expf,
 * with exp(x) = 0 below -87.34 (where expf is subnormal) and inf above 88.72. */
#include <immintrin.h>
#include <math.h>
#include "kernels.h"
#include "matmul_tiled.h"

/* The scalar tails must round like the reference (built without FMA): clang would otherwise
 * fuse a * b + c here, where -mfma is on. (GCC in ISO C mode does not contract.) */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define INLINE static inline __attribute__((always_inline))

INLINE __m256 exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.72283935546875f), lo = _mm256_set1_ps(-87.33654022216797f);
    __m256 big = _mm256_cmp_ps(x, hi, _CMP_GT_OQ), tiny = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256 t = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    t = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), t);
    t = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), t);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(t, t), _mm256_add_ps(t, _mm256_set1_ps(1.0f)));
    /* times 2^fx: fx in [-126, 128]; split in two powers so 2^128 does not overflow the exponent */
    __m256i n = _mm256_cvtps_epi32(fx);
    __m256i n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    __m256 r = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    r = _mm256_blendv_ps(r, _mm256_set1_ps(INFINITY), big);
    r = _mm256_andnot_ps(tiny, r);
    return _mm256_blendv_ps(r, x, nan);
}

/* scalar tail with the same polynomial: one lane of exp8 */
static float exp1(float x) {
    float v[8] = {x};
    _mm256_storeu_ps(v, exp8(_mm256_loadu_ps(v)));
    return v[0];
}

INLINE double hsum4d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

void ulm_rmsnorm_avx2(float *out, const float *x, const float *w, int n, float eps, float w_offset) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8) { /* squares of floats are exact in double, as in the reference */
        __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        s0 = _mm256_fmadd_pd(a, a, s0);
        s1 = _mm256_fmadd_pd(b, b, s1);
    }
    double ss = hsum4d(_mm256_add_pd(s0, s1));
    for (; i < n; i++) ss += (double)x[i] * x[i];
    float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    __m256 vi = _mm256_set1_ps(inv), vo = _mm256_set1_ps(w_offset);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi),
                                                _mm256_add_ps(_mm256_loadu_ps(w + i), vo)));
    for (; i < n; i++) out[i] = x[i] * inv * (w[i] + w_offset);
}

void ulm_softmax_avx2(float *x, int n) {
    float max = x[0];
    int i = 0;
    __m256 vm = _mm256_set1_ps(x[0]);
    for (; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float m8[8];
    _mm256_storeu_ps(m8, vm);
    for (int j = 0; j < 8; j++) max = m8[j] > max ? m8[j] : max;
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    vm = _mm256_set1_ps(max);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double sum = hsum4d(_mm256_add_pd(s0, s1));
    if (i < n) { /* the tail as one vector (attention rows are short, so tails are common) */
        float v[8] = {0}, e[8];
        for (int j = 0; i + j < n; j++) v[j] = x[i + j] - max;
        _mm256_storeu_ps(e, exp8(_mm256_loadu_ps(v)));
        for (int j = 0; i + j < n; j++) { x[i + j] = e[j]; sum += e[j]; }
    }
    float inv = (float)(1.0 / sum);
    ulm_scale_avx2(x, inv, n);
}

float ulm_dot_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    __m256 v = _mm256_add_ps(s0, s1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float r = _mm_cvtss_f32(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

void ulm_axpy_avx2(float *y, float a, const float *x, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(va, _mm256_loadu_ps(x + i))));
    for (; i < n; i++) y[i] += a * x[i];
}

/* 32 floats of y in 4 registers while all m rows pass; per element the same mul-then-add
 * sequence as m calls of the reference axpy. */
void ulm_axpy_rows_avx2(float *y, const float *w, const float *const *x, int m, int n) {
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a0 = _mm256_loadu_ps(y + i), a1 = _mm256_loadu_ps(y + i + 8);
        __m256 a2 = _mm256_loadu_ps(y + i + 16), a3 = _mm256_loadu_ps(y + i + 24);
        for (int t = 0; t < m; t++) {
            __m256 b = _mm256_set1_ps(w[t]);
            const float *r = x[t] + i;
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(b, _mm256_loadu_ps(r)));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(b, _mm256_loadu_ps(r + 8)));
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(b, _mm256_loadu_ps(r + 16)));
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(b, _mm256_loadu_ps(r + 24)));
        }
        _mm256_storeu_ps(y + i, a0), _mm256_storeu_ps(y + i + 8, a1);
        _mm256_storeu_ps(y + i + 16, a2), _mm256_storeu_ps(y + i + 24, a3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(y + i);
        for (int t = 0; t < m; t++) a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_set1_ps(w[t]), _mm256_loadu_ps(x[t] + i)));
        _mm256_storeu_ps(y + i, a);
    }
    for (; i < n; i++)
        for (int t = 0; t < m; t++) y[i] += w[t] * x[t][i];
}

void ulm_add_avx2(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] += x[i];
}

void ulm_scale_avx2(float *y, float s, int n) {
    __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vs));
    for (; i < n; i++) y[i] *= s;
}

/* silu(g) * u = g / (1 + exp(-g)) * u */
void ulm_swiglu_avx2(float *out, const float *g, const float *u, int n) {
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(g + i);
        __m256 s = _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_xor_ps(v, neg))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) out[i] = g[i] / (1.0f + exp1(-g[i])) * u[i];
}

/* gelu_tanh(v) = 0.5 v (1 + tanh(y)) = v / (1 + exp(-2y)), y = sqrt(2/pi) (v + 0.044715 v^3):
 * the same function written without the cancellation of 1 + tanh(y) for negative y. */
void ulm_geglu_avx2(float *out, const float *g, const float *u, int n) {
    const __m256 one = _mm256_set1_ps(1.0f), c2 = _mm256_set1_ps(-2.0f * 0.7978845608028654f);
    const __m256 k = _mm256_set1_ps(0.044715f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(g + i);
        __m256 y = _mm256_mul_ps(c2, _mm256_fmadd_ps(_mm256_mul_ps(k, v), _mm256_mul_ps(v, v), v));
        __m256 r = _mm256_div_ps(v, _mm256_add_ps(one, exp8(y)));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(r, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        float v = g[i], y = -2.0f * 0.7978845608028654f * (v + 0.044715f * v * v * v);
        out[i] = v / (1.0f + exp1(y)) * u[i];
    }
}

void ulm_rope_apply_avx2(float *x, int hd, int rot_dim, int interleaved, const float *cs) {
    int half = rot_dim / 2, i = 0;
    const float *sn = cs + half;
    if (interleaved) { /* pairs (x[2i], x[2i+1]) */
        const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
        const __m256 alt = _mm256_setr_ps(-0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f);
        for (; i + 4 <= half; i += 4) {
            __m256 v = _mm256_loadu_ps(x + 2 * i), sw = _mm256_permute_ps(v, 0xb1); /* (x1, x0) pairs */
            __m256 c = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(cs + i)), dup);
            __m256 s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sn + i)), dup);
            s = _mm256_xor_ps(s, alt); /* (-s, s): x0 c + x1 (-s) = x0 c - x1 s; x1 c + x0 s */
            _mm256_storeu_ps(x + 2 * i, _mm256_add_ps(_mm256_mul_ps(v, c), _mm256_mul_ps(sw, s)));
        }
    } else { /* NeoX halves (x[i], x[i + hd/2]) */
        float *x1p = x + hd / 2;
        for (; i + 8 <= half; i += 8) {
            __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x1p + i);
            __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(sn + i);
            _mm256_storeu_ps(x + i, _mm256_sub_ps(_mm256_mul_ps(x0, c), _mm256_mul_ps(x1, s)));
            _mm256_storeu_ps(x1p + i, _mm256_add_ps(_mm256_mul_ps(x0, s), _mm256_mul_ps(x1, c)));
        }
    }
    k_rope_apply_from(x, hd, rot_dim, interleaved, cs, i);
}

/* F16C conversion is exact, like the reference. */
void ulm_f16_to_f32_avx2(float *out, const uint16_t *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    k_f16_to_f32(out + i, x + i, n - i);
}

/* F16C rounds to nearest even like the reference (NaN payloads may differ). */
void ulm_f32_to_f16_avx2(uint16_t *out, const float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    k_f32_to_f16(out + i, x + i, n - i);
}
