/* Reference small ops: each is the plain math, written to be read. */
#include <math.h>
#include "kernels.h"

void k_rmsnorm(float *out, const float *x, const float *w, int n, float eps, float w_offset) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * inv * (w[i] + w_offset);
}

void k_softmax(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++) max = x[i] > max ? x[i] : max;
    double sum = 0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - max); sum += x[i]; }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void k_rope_cs(float *cs, int rot_dim, int pos, float base, const float *freq_factors) {
    for (int i = 0; i < rot_dim / 2; i++) {
        float freq = powf(base, -2.0f * i / rot_dim);
        if (freq_factors) freq /= freq_factors[i];
        float a = pos * freq;
        cs[i] = cosf(a), cs[rot_dim / 2 + i] = sinf(a);
    }
}

void k_rope_apply(float *x, int hd, int rot_dim, int interleaved, const float *cs) {
    k_rope_apply_from(x, hd, rot_dim, interleaved, cs, 0);
}

void k_rope_apply_from(float *x, int hd, int rot_dim, int interleaved, const float *cs, int from) {
    for (int i = from; i < rot_dim / 2; i++) {
        float c = cs[i], s = cs[rot_dim / 2 + i];
        int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + hd / 2;
        float x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c - x1 * s;
        x[i1] = x0 * s + x1 * c;
    }
}

void k_rope(float *x, int hd, int rot_dim, int pos, float base, int interleaved, const float *freq_factors) {
    int half = rot_dim / 2;
    for (int i = 0; i < half; i++) {
        float freq = powf(base, -2.0f * i / rot_dim);
        if (freq_factors) freq /= freq_factors[i];
        float a = pos * freq, c = cosf(a), s = sinf(a);
        int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + hd / 2;
        float x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c - x1 * s;
        x[i1] = x0 * s + x1 * c;
    }
}

void k_swiglu(float *out, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void k_geglu(float *out, const float *g, const float *u, int n) {
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int i = 0; i < n; i++) {
        float v = g[i];
        out[i] = 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v))) * u[i];
    }
}

void k_add(float *y, const float *x, int n) { for (int i = 0; i < n; i++) y[i] += x[i]; }
void k_scale(float *y, float s, int n) { for (int i = 0; i < n; i++) y[i] *= s; }
void k_axpy(float *y, float a, const float *x, int n) { for (int i = 0; i < n; i++) y[i] += a * x[i]; }

void k_axpy_rows(float *y, const float *w, const float *const *x, int m, int n) {
    for (int t = 0; t < m; t++) k_axpy(y, w[t], x[t], n);
}

void k_f32_to_f16(uint16_t *out, const float *x, int n) {
    for (int i = 0; i < n; i++) out[i] = ulm_f32_to_f16(x[i]);
}

void k_f16_to_f32(float *out, const uint16_t *x, int n) {
    for (int i = 0; i < n; i++) out[i] = ulm_f16_to_f32(x[i]);
}

float k_dot_f32(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
