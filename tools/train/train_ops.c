/* Reference forward/backward ops for training: plain loops written to be read, over rows. */
#include <math.h>
#include <string.h>
#include "train_ops.h"

/* Dot products and axpys over a head: independent vector lanes, so the compiler vectorizes them
 * without reassociating (GCC/Clang vector extensions; unaligned loads via memcpy). */
typedef float v4f __attribute__((vector_size(16)));

static inline v4f load4(const float *p) { v4f v; memcpy(&v, p, sizeof v); return v; }
static inline void store4(float *p, v4f v) { memcpy(p, &v, sizeof v); }

static inline float dot_n(const float *a, const float *b, int n) {
    v4f a0 = {0}, a1 = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 += load4(a + i) * load4(b + i);
        a1 += load4(a + i + 4) * load4(b + i + 4);
    }
    a0 += a1;
    float s = (a0[0] + a0[2]) + (a0[1] + a0[3]);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline void axpy_n(float *y, float a, const float *x, int n) { /* y += a x */
    int i = 0;
    v4f av = {a, a, a, a};
    for (; i + 4 <= n; i += 4) store4(y + i, load4(y + i) + av * load4(x + i));
    for (; i < n; i++) y[i] += a * x[i];
}

void op_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int n, int d, float eps) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *yi = y + (size_t)i * d;
        double ss = 0;
        for (int j = 0; j < d; j++) ss += (double)xi[j] * xi[j];
        float r = 1.0f / sqrtf((float)(ss / d) + eps); /* as kernels/ref k_rmsnorm */
        rstd[i] = r;
        for (int j = 0; j < d; j++) yi[j] = xi[j] * r * w[j];
    }
}

/* y = x r w, r = (mean x^2 + eps)^-1/2:  dx = r (dy w) - x r^3 / d * sum(dy w x);  dw += dy x r */
void op_rmsnorm_bwd_dx(float *dx, const float *dy, const float *x, const float *rstd, const float *w, int n, int d) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d, *dyi = dy + (size_t)i * d;
        float *dxi = dx + (size_t)i * d;
        float r = rstd[i];
        double dot = 0;
        for (int j = 0; j < d; j++) dot += (double)dyi[j] * w[j] * xi[j];
        float c = (float)(dot * r * r * r / d);
        for (int j = 0; j < d; j++) dxi[j] += r * dyi[j] * w[j] - c * xi[j];
    }
}

void op_rmsnorm_bwd_dw(float *dw, const float *dy, const float *x, const float *rstd, int n, int d, int j0, int j1) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d, *dyi = dy + (size_t)i * d;
        float r = rstd[i];
        for (int j = j0; j < j1; j++) dw[j] += dyi[j] * xi[j] * r;
    }
}

void op_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rstd, const float *w,
                    int n, int d) {
    op_rmsnorm_bwd_dx(dx, dy, x, rstd, w, n, d);
    op_rmsnorm_bwd_dw(dw, dy, x, rstd, n, d, 0, d);
}

void op_rope_tables(float *cos_t, float *sin_t, int max_pos, int hd, float base) {
    int half = hd / 2;
    for (int j = 0; j < half; j++) {
        float freq = powf(base, -2.0f * j / hd);
        for (int p = 0; p < max_pos; p++) {
            float a = p * freq;
            cos_t[(size_t)p * half + j] = cosf(a);
            sin_t[(size_t)p * half + j] = sinf(a);
        }
    }
}

static void rope_rows(float *x, const int32_t *pos, int n, int nh, int hd, const float *cos_t, const float *sin_t,
                      int interleaved, float sign) {
    int half = hd / 2;
    for (int i = 0; i < n; i++) {
        const float *cs = cos_t + (size_t)pos[i] * half, *sn = sin_t + (size_t)pos[i] * half;
        for (int h = 0; h < nh; h++) {
            float *xh = x + (size_t)i * nh * hd + h * hd;
            for (int j = 0; j < half; j++) {
                int i0 = interleaved ? 2 * j : j, i1 = interleaved ? 2 * j + 1 : j + half;
                float c = cs[j], s = sign * sn[j], x0 = xh[i0], x1 = xh[i1];
                xh[i0] = x0 * c - x1 * s;
                xh[i1] = x0 * s + x1 * c;
            }
        }
    }
}

void op_rope_fwd(float *x, const int32_t *pos, int n, int nh, int hd, const float *cos_t, const float *sin_t,
                 int interleaved) {
    rope_rows(x, pos, n, nh, hd, cos_t, sin_t, interleaved, 1.0f);
}

void op_rope_bwd(float *dx, const int32_t *pos, int n, int nh, int hd, const float *cos_t, const float *sin_t,
                 int interleaved) {
    rope_rows(dx, pos, n, nh, hd, cos_t, sin_t, interleaved, -1.0f); /* rotation by -angle = transpose */
}

void op_attn_fwd(float *out, float *p, const float *q, const float *k, const float *v, int L, int nh, int nkv,
                 int hd, float scale, int window) {
    int qs = nh * hd, ks = nkv * hd, group = nh / nkv;
    for (int h = 0; h < nh; h++) {
        int kh = h / group;
        for (int i = 0; i < L; i++) {
            float *pi = p + ((size_t)h * L + i) * L;
            const float *qi = q + (size_t)i * qs + h * hd;
            int j0 = window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
            float max = -INFINITY;
            for (int j = 0; j < L; j++) {
                if (j < j0 || j > i) { pi[j] = 0.0f; continue; }
                pi[j] = dot_n(qi, k + (size_t)j * ks + kh * hd, hd) * scale;
                if (pi[j] > max) max = pi[j];
            }
            double sum = 0;
            for (int j = j0; j <= i; j++) { pi[j] = expf(pi[j] - max); sum += pi[j]; }
            float inv = (float)(1.0 / sum);
            float *oi = out + (size_t)i * qs + h * hd;
            memset(oi, 0, (size_t)hd * sizeof(float));
            for (int j = j0; j <= i; j++) {
                pi[j] *= inv;
                axpy_n(oi, pi[j], v + (size_t)j * ks + kh * hd, hd);
            }
        }
    }
}

/* dP = dO V^T, dV += P^T dO, dS = P (dP - sum_j P dP), dQ += scale dS K, dK += scale dS^T Q.
 * Masked entries have P = 0, so they drop out without knowing the mask. */
void op_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *p, const float *q,
                 const float *k, const float *v, int L, int nh, int nkv, int hd, float scale) {
    int qs = nh * hd, ks = nkv * hd, group = nh / nkv;
    float ds[L > 0 ? L : 1];
    for (int h = 0; h < nh; h++) {
        int kh = h / group;
        for (int i = 0; i < L; i++) {
            const float *pi = p + ((size_t)h * L + i) * L;
            const float *doi = dout + (size_t)i * qs + h * hd;
            double dot = 0;
            for (int j = 0; j <= i; j++) {
                if (pi[j] == 0.0f) { ds[j] = 0.0f; continue; }
                float dp = dot_n(doi, v + (size_t)j * ks + kh * hd, hd);
                axpy_n(dv + (size_t)j * ks + kh * hd, pi[j], doi, hd);
                ds[j] = dp;
                dot += (double)pi[j] * dp;
            }
            const float *qi = q + (size_t)i * qs + h * hd;
            float *dqi = dq + (size_t)i * qs + h * hd;
            for (int j = 0; j <= i; j++) {
                if (pi[j] == 0.0f) continue;
                float g = pi[j] * (ds[j] - (float)dot) * scale;
                axpy_n(dqi, g, k + (size_t)j * ks + kh * hd, hd);
                axpy_n(dk + (size_t)j * ks + kh * hd, g, qi, hd);
            }
        }
    }
}

static const float GELU_C = 0.7978845608028654f; /* sqrt(2/pi) */

void op_glu_fwd(float *a, const float *g, const float *u, int n, int gelu) {
    for (int i = 0; i < n; i++) {
        float x = g[i], act;
        if (gelu) act = 0.5f * x * (1.0f + tanhf(GELU_C * (x + 0.044715f * x * x * x)));
        else act = x / (1.0f + expf(-x));
        a[i] = act * u[i];
    }
}

void op_glu_bwd(float *dg, float *du, const float *da, const float *g, const float *u, int n, int gelu) {
    for (int i = 0; i < n; i++) {
        float x = g[i], act, dact;
        if (gelu) {
            float inner = GELU_C * (x + 0.044715f * x * x * x), t = tanhf(inner);
            act = 0.5f * x * (1.0f + t);
            dact = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_C * (1.0f + 3.0f * 0.044715f * x * x);
        } else {
            float s = 1.0f / (1.0f + expf(-x));
            act = x * s;
            dact = s * (1.0f + x * (1.0f - s));
        }
        dg[i] += da[i] * u[i] * dact;
        du[i] += da[i] * act;
    }
}

double op_xent(float *logits, const int32_t *targets, int m, int V, float scale) {
    double loss = 0;
    for (int i = 0; i < m; i++) {
        float *l = logits + (size_t)i * V;
        float max = l[0];
        for (int j = 1; j < V; j++) max = l[j] > max ? l[j] : max;
        double sum = 0;
        for (int j = 0; j < V; j++) sum += exp((double)(l[j] - max));
        int t = targets[i];
        loss += log(sum) - (double)(l[t] - max);
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < V; j++) l[j] = expf(l[j] - max) * inv * scale;
        l[t] -= scale;
    }
    return loss;
}
