/* The trainer's elementwise loops, written once on 16-lane GCC/Clang vector types and compiled
 * per ISA: train_vec.c (baseline: SSE2 or NEON lowering), train_vec_avx2.c, train_vec_avx512.c.
 * Each file defines TV(name) to give its functions a suffix, then includes this body.
 *
 * Every lane runs the same IEEE operations in the same order (C11 mode: no fused multiply-add
 * contraction), and tails go through a zero-padded vector, so each ISA's build gives the same
 * bits as the baseline one: training stays reproducible across machines of one compiler.
 * The scalar specification of each function is in train_vec.h. */
#include <math.h>
#include <string.h>
#include "train_vec.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint32_t v16u __attribute__((vector_size(64)));

static inline v16f vload(const float *p) { v16f v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(float *p, v16f v) { memcpy(p, &v, sizeof v); }
static inline v16f vsplat(float x) { return (v16f){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
/* The first n lanes of p (all 16 when n >= 16), the rest `fill`. */
static inline v16f vload_part(const float *p, int n, float fill) {
    if (n >= 16) return vload(p);
    float t[16];
    for (int i = 0; i < 16; i++) t[i] = i < n ? p[i] : fill;
    return vload(t);
}
static inline void vstore_part(float *p, v16f v, int n) {
    if (n >= 16) { vstore(p, v); return; }
    float t[16];
    vstore(t, v);
    memcpy(p, t, (size_t)n * sizeof(float));
}
static inline v16f vselect(v16i mask, v16f a, v16f b) { /* mask lanes are 0 or -1 */
    return (v16f)(((v16i)a & mask) | ((v16i)b & ~mask));
}
static inline v16f vmax(v16f a, v16f b) { return vselect(a > b, a, b); }
static inline float hmax(v16f v) {
    float m = v[0];
    for (int i = 1; i < 16; i++) m = v[i] > m ? v[i] : m;
    return m;
}
static inline float hsum(v16f v) { /* a fixed pairwise tree */
    float s8[8], s4[4];
    for (int i = 0; i < 8; i++) s8[i] = v[i] + v[i + 8];
    for (int i = 0; i < 4; i++) s4[i] = s8[i] + s8[i + 4];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}
static inline v16f vsqrt(v16f x) {
#if defined(__AVX512F__)
    return (v16f)_mm512_sqrt_ps((__m512)x);
#else
    for (int i = 0; i < 16; i++) x[i] = sqrtf(x[i]); /* correctly rounded either way */
    return x;
#endif
}

/* exp(x): n = round(x / ln2), r = x - n ln2 (two-part ln2), exp(r) by its degree-7 Taylor
 * polynomial (|r| <= 0.347: error < 1e-8 relative), times 2^n through the exponent bits.
 * x < -86 gives 0 (the true value is below 2^-124); x is capped at 88. */
static inline v16f vexp(v16f x) {
    const v16f shifter = vsplat(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
    v16i under = x < vsplat(-86.0f);
    x = vmax(x, vsplat(-86.0f));
    x = vselect(x > vsplat(88.0f), vsplat(88.0f), x);
    v16f t = x * vsplat(1.44269504f) + shifter;
    v16f n = t - shifter;
    v16f r = x - n * vsplat(0.693359375f);     /* ln2 high part: exact in 9 bits */
    r = r - n * vsplat(-2.12194440e-4f);       /* ln2 - high part */
    v16f p = vsplat(1.0f / 5040.0f);
    p = p * r + vsplat(1.0f / 720.0f);
    p = p * r + vsplat(1.0f / 120.0f);
    p = p * r + vsplat(1.0f / 24.0f);
    p = p * r + vsplat(1.0f / 6.0f);
    p = p * r + vsplat(0.5f);
    p = p * r + vsplat(1.0f);
    p = p * r + vsplat(1.0f);
    v16u e = ((v16u)t - (v16u)shifter) << 23; /* n in the exponent field (unsigned: no UB on n < 0) */
    return (v16f)(((v16u)p + e) & ~(v16u)under);
}

void TV(tv_exp)(float *y, const float *x, int n) {
    for (int i = 0; i < n; i += 16) vstore_part(y + i, vexp(vload_part(x + i, n - i, 0.0f)), n - i);
}

/* x = exp(x * scale - max), returns their sum and the max (softmax before the division). */
static inline float exp_shifted(float *x, int n, float scale, float *max) {
    v16f vm = vsplat(-INFINITY), vs = vsplat(scale), sum = vsplat(0.0f);
    for (int i = 0; i < n; i += 16) vm = vmax(vm, vload_part(x + i, n - i, -INFINITY) * vs);
    *max = hmax(vm);
    v16f mx = vsplat(*max);
    for (int i = 0; i < n; i += 16) {
        v16f e = vexp(vload_part(x + i, n - i, -INFINITY) * vs - mx);
        vstore_part(x + i, e, n - i);
        sum += e;
    }
    return hsum(sum);
}

static inline void scale_n(float *x, int n, float k) {
    for (int i = 0; i < n; i += 16) vstore_part(x + i, vload_part(x + i, n - i, 0.0f) * vsplat(k), n - i);
}

void TV(tv_softmax)(float *x, int n, float scale) {
    if (n <= 0) return;
    float max, sum = exp_shifted(x, n, scale, &max);
    scale_n(x, n, 1.0f / sum);
}

void TV(tv_softmax_bwd)(float *d, const float *p, int n, float scale) {
    v16f acc = vsplat(0.0f);
    for (int i = 0; i < n; i += 16) acc += vload_part(p + i, n - i, 0.0f) * vload_part(d + i, n - i, 0.0f);
    v16f dot = vsplat(hsum(acc)), vs = vsplat(scale);
    for (int i = 0; i < n; i += 16)
        vstore_part(d + i, vload_part(p + i, n - i, 0.0f) * (vload_part(d + i, n - i, 0.0f) - dot) * vs, n - i);
}

static inline v16f sigmoid(v16f g) { return vsplat(1.0f) / (vsplat(1.0f) + vexp(-g)); }

void TV(tv_silu_glu_fwd)(float *a, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i += 16) {
        v16f x = vload_part(g + i, n - i, 0.0f);
        vstore_part(a + i, x * sigmoid(x) * vload_part(u + i, n - i, 0.0f), n - i);
    }
}

void TV(tv_silu_glu_bwd)(float *dg, float *du, const float *da, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i += 16) {
        int k = n - i;
        v16f x = vload_part(g + i, k, 0.0f), ui = vload_part(u + i, k, 0.0f), dai = vload_part(da + i, k, 0.0f);
        v16f s = sigmoid(x), act = x * s;
        v16f dact = s * (vsplat(1.0f) + x * (vsplat(1.0f) - s));
        vstore_part(dg + i, vload_part(dg + i, k, 0.0f) + dai * ui * dact, k);
        vstore_part(du + i, vload_part(du + i, k, 0.0f) + dai * act, k);
    }
}

double TV(tv_xent_row)(float *l, int V, int t, float scale) {
    float lt = l[t], max, sum = exp_shifted(l, V, 1.0f, &max);
    double loss = log((double)sum) - (double)(lt - max);
    scale_n(l, V, scale / sum);
    l[t] -= scale;
    return loss;
}

void TV(tv_adamw)(float *w, const float *g, float *m, float *v, size_t n, const tv_adamw_args *a) {
    v16f b1 = vsplat(a->beta1), b2 = vsplat(a->beta2), c1 = vsplat(1.0f - a->beta1), c2 = vsplat(1.0f - a->beta2);
    v16f clip = vsplat(a->clip), bc1 = vsplat(a->bc1), bc2 = vsplat(a->bc2), decay = vsplat(a->decay);
    v16f lr = vsplat(a->lr), eps = vsplat(a->eps);
    for (size_t i = 0; i < n; i += 16) {
        int k = n - i >= 16 ? 16 : (int)(n - i);
        v16f gi = vload_part(g + i, k, 0.0f) * clip;
        v16f mi = b1 * vload_part(m + i, k, 0.0f) + c1 * gi;
        v16f vi = b2 * vload_part(v + i, k, 0.0f) + c2 * gi * gi;
        v16f mh = mi / bc1, vh = vi / bc2;
        v16f wi = vload_part(w + i, k, 0.0f) * decay - lr * mh / (vsqrt(vh) + eps);
        vstore_part(m + i, mi, k);
        vstore_part(v + i, vi, k);
        vstore_part(w + i, wi, k);
    }
}
