/* Small ops of every ISA table against the k_* references (kernels/ref/ops_ref.c), on odd
 * lengths and extreme values. The contract (kernels.h): add, scale, axpy and rope_apply are
 * bit-identical; dot, rmsnorm and softmax sum in another order; exp is a polynomial a few ulp
 * from expf. Tolerances are stated at each check. */
#include <float.h>
#include <math.h>
#include "test_util.h"
#include "kernels.h"

static const ulm_kernels *tables[8];
static int ntables;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rnd_unit(void) { return (float)(rnd() & 0xffffff) / 16777216.0f * 2.0f - 1.0f; }

static const int lens[] = {1, 3, 7, 8, 9, 15, 16, 17, 33, 100, 577, 2048};
#define NLENS (int)(sizeof lens / sizeof *lens)

static int setup(void **state) {
    unsetenv("ULM_ISA");
    for (const char *const *n = ulm_isa_names(); *n; n++) {
        const ulm_kernels *k = ulm_kernels_by_name(*n);
        if (k) tables[ntables++] = k; /* the scalar table too: its fields must be the references */
    }
    char names[128] = "";
    for (int t = 0; t < ntables; t++) strcat(strcat(names, " "), tables[t]->isa);
    print_message("tables checked:%s\n", names); /* under qemu: which ARM tables ran */
    return 0;
}

/* mode 0: moderate values; 1: wide range (1e-30..1e4, zeros); 2: large magnitudes for exp */
static void fill(float *v, int n, int mode) {
    for (int i = 0; i < n; i++) {
        float r = rnd_unit();
        if (mode == 0) v[i] = 3.0f * r;
        else if (mode == 1) v[i] = i % 5 == 0 ? 0.0f : r * ldexpf(1.0f, (int)(rnd() % 120) - 100);
        else v[i] = r * (i % 3 ? 100.0f : 1e4f);
    }
}

static void check_close(const char *isa, const char *op, int n, int i, float a, float e, double tol) {
    if (isnan(e) && isnan(a)) return;
    if (isinf(e) || isinf(a)) {
        if (a != e) fail_msg("%s %s n=%d [%d]: %.9g, reference %.9g", isa, op, n, i, a, e);
        return;
    }
    if (!(fabs((double)a - e) <= tol)) fail_msg("%s %s n=%d [%d]: %.9g, reference %.9g (tolerance %g)", isa, op, n, i, a, e, tol);
}

static void test_elementwise_exact(void **state) {
    float x[2048], y0[2048], y[2048];
    for (int t = 0; t < ntables; t++)
        for (int l = 0; l < NLENS; l++)
            for (int mode = 0; mode < 3; mode++) {
                int n = lens[l];
                fill(x, n, mode), fill(y0, n, mode);
                float a = rnd_unit() * 7;
                memcpy(y, y0, n * 4), tables[t]->add(y, x, n);
                float r[2048];
                memcpy(r, y0, n * 4), k_add(r, x, n);
                assert_memory_equal(y, r, n * 4);
                memcpy(y, y0, n * 4), tables[t]->scale(y, a, n);
                memcpy(r, y0, n * 4), k_scale(r, a, n);
                assert_memory_equal(y, r, n * 4);
                memcpy(y, y0, n * 4), tables[t]->axpy(y, a, x, n);
                memcpy(r, y0, n * 4), k_axpy(r, a, x, n);
                assert_memory_equal(y, r, n * 4);
            }
}

/* Random bit patterns (every exponent, subnormals, NaN), the rounding ties and the overflow
 * edge, exactly as ulm_f32_to_f16; NaN only needs to stay NaN. */
static void test_f32_to_f16(void **state) {
    enum { N = 1 << 16 };
    static float x[N + 8];
    static uint16_t a[N + 8], e[N + 8];
    for (int i = 0; i < N; i++) {
        uint32_t u = rnd() << 16 ^ rnd();
        if (i % 4 == 1) u = (u & 0x80000000u) | ((uint32_t)(102 + i % 40) << 23) | (u & 0x3fe000u) | 0x1000u; /* ties */
        if (i % 4 == 2) u = (u & 0x80000000u) | (0x477fe000u + (u & 0x3fffu));             /* near 65504..65520 */
        memcpy(&x[i], &u, 4);
    }
    for (int i = 0; i < N; i++) e[i] = ulm_f32_to_f16(x[i]);
    for (int t = 0; t < ntables; t++) {
        for (int l = 0; l < NLENS; l++) {
            int n = lens[l], off = (int)(rnd() % (N - 2048));
            a[n] = 0xabcd;
            tables[t]->f32_to_f16(a, x + off, n);
            assert_true(a[n] == 0xabcd);
            for (int i = 0; i < n; i++) {
                int nan_e = (e[off + i] & 0x7c00) == 0x7c00 && (e[off + i] & 0x3ff);
                int nan_a = (a[i] & 0x7c00) == 0x7c00 && (a[i] & 0x3ff);
                if (nan_e ? !nan_a : a[i] != e[off + i])
                    fail_msg("%s f32_to_f16(%a) = 0x%04x, expected 0x%04x", tables[t]->isa, x[off + i], a[i], e[off + i]);
            }
        }
        tables[t]->f32_to_f16(a, x, N);
        for (int i = 0; i < N; i++) {
            int nan_e = (e[i] & 0x7c00) == 0x7c00 && (e[i] & 0x3ff);
            if (nan_e ? !((a[i] & 0x7c00) == 0x7c00 && (a[i] & 0x3ff)) : a[i] != e[i])
                fail_msg("%s f32_to_f16(%a) = 0x%04x, expected 0x%04x", tables[t]->isa, x[i], a[i], e[i]);
        }
    }
}

static void test_axpy_rows(void **state) {
    static float rows[40][600], y0[600], y[600], r[600];
    const float *ptr[40];
    float w[40];
    for (int t = 0; t < ntables; t++)
        for (int l = 0; l < NLENS; l++) {
            int n = lens[l] < 600 ? lens[l] : 577;
            for (int m = 0; m <= 33; m += (m < 4 ? 1 : 7)) {
                for (int j = 0; j < m; j++) fill(rows[j], n, j % 3), ptr[j] = rows[m - 1 - j], w[j] = rnd_unit() * 3;
                if (m > 2) w[1] = 0.0f;
                fill(y0, n, 1);
                y0[n] = 777.0f;
                memcpy(y, y0, (n + 1) * 4), memcpy(r, y0, (n + 1) * 4);
                tables[t]->axpy_rows(y, w, ptr, m, n);
                for (int j = 0; j < m; j++) k_axpy(r, w[j], ptr[j], n); /* the definition: m axpy calls */
                if (memcmp(y, r, (n + 1) * 4)) fail_msg("%s axpy_rows n=%d m=%d differs from %d axpy calls", tables[t]->isa, n, m, m);
            }
        }
}

static void test_dot_rmsnorm(void **state) {
    float x[2048], w[2048], o[2048], r[2048];
    for (int t = 0; t < ntables; t++)
        for (int l = 0; l < NLENS; l++)
            for (int mode = 0; mode < 2; mode++) {
                int n = lens[l];
                fill(x, n, mode), fill(w, n, 0);
                double mass = 0;
                for (int i = 0; i < n; i++) mass += fabs((double)x[i] * w[i]);
                /* any order of n float additions of fused or rounded products */
                check_close(tables[t]->isa, "dot", n, 0, tables[t]->dot(x, w, n), k_dot_f32(x, w, n),
                            (n + 4) * FLT_EPSILON * mass + 1e-37);
                for (int off = 0; off < 2; off++) {
                    tables[t]->rmsnorm(o, x, w, n, 1e-6f, (float)off);
                    k_rmsnorm(r, x, w, n, 1e-6f, (float)off);
                    /* the double sum of squares may round differently once: 1/sqrt moves <= 1 ulp */
                    for (int i = 0; i < n; i++) check_close(tables[t]->isa, "rmsnorm", n, i, o[i], r[i], 4 * FLT_EPSILON * fabs(r[i]) + 1e-37);
                }
                memcpy(o, x, n * 4);
                tables[t]->rmsnorm(o, o, w, n, 1e-5f, 1.0f); /* in place, as the engine calls it */
                k_rmsnorm(r, x, w, n, 1e-5f, 1.0f);
                for (int i = 0; i < n; i++) check_close(tables[t]->isa, "rmsnorm in place", n, i, o[i], r[i], 4 * FLT_EPSILON * fabs(r[i]) + 1e-37);
            }
}

static void test_softmax(void **state) {
    float x[2048], a[2048], e[2048];
    for (int t = 0; t < ntables; t++)
        for (int l = 0; l < NLENS; l++)
            for (int mode = 0; mode < 3; mode++) {
                int n = lens[l];
                fill(x, n, mode);
                if (n > 4) x[1] = x[n - 2] = -INFINITY; /* masked positions */
                memcpy(a, x, n * 4), memcpy(e, x, n * 4);
                tables[t]->softmax(a, n);
                k_softmax(e, n);
                double s = 0;
                for (int i = 0; i < n; i++) {
                    /* exp within a few ulp, then the same normalization */
                    check_close(tables[t]->isa, "softmax", n, i, a[i], e[i], 16 * FLT_EPSILON * e[i] + 1e-37);
                    s += a[i];
                }
                assert_true(fabs(s - 1) < 1e-5);
                if (n > 4) assert_true(a[1] == 0 && a[n - 2] == 0);
            }
}

static void test_glu(void **state) {
    float g[2048], u[2048], a[2048], e[2048];
    for (int t = 0; t < ntables; t++)
        for (int l = 0; l < NLENS; l++)
            for (int mode = 0; mode < 3; mode++) {
                int n = lens[l];
                fill(g, n, mode), fill(u, n, 0);
                if (n > 3) g[0] = 0, g[1] = -0.0f, g[2] = 89.0f, g[3] = -89.0f; /* exp(-g) overflows */
                if (n > 7) g[4] = NAN, g[5] = INFINITY, g[6] = -INFINITY, u[5] = 2.0f; /* exp's NaN and inf paths */
                tables[t]->swiglu(a, g, u, n);
                k_swiglu(e, g, u, n);
                for (int i = 0; i < n; i++) check_close(tables[t]->isa, "swiglu", n, i, a[i], e[i], 16 * FLT_EPSILON * fabs(e[i]) + 1e-37);
                memcpy(a, g, n * 4);
                tables[t]->geglu(a, a, u, n); /* in place over g, as the engine calls it */
                k_geglu(e, g, u, n);
                /* the reference's 1 + tanh(y) cancels for negative y: its error is absolute,
                 * a few ulp of 0.5 |g u| */
                for (int i = 0; i < n; i++)
                    check_close(tables[t]->isa, "geglu", n, i, a[i], e[i],
                                16 * FLT_EPSILON * fabs(e[i]) + 8 * FLT_EPSILON * 0.5 * fabs((double)g[i] * u[i]) + 1e-37);
            }
}

/* rope_apply with k_rope_cs's angles is k_rope exactly, in every table, both pairings. */
static void test_rope(void **state) {
    static const int hds[][2] = {{64, 64}, {128, 128}, {256, 256}, {64, 32}, {6, 6}, {10, 10}, {18, 14}};
    static const int poss[] = {0, 1, 7, 1000, 131071};
    float x[256], r[256], a[256], cs[256], ff[128];
    for (int i = 0; i < 128; i++) ff[i] = 1.0f + (float)(i % 7);
    for (int t = 0; t < ntables; t++)
        for (size_t h = 0; h < sizeof hds / sizeof *hds; h++)
            for (size_t p = 0; p < sizeof poss / sizeof *poss; p++)
                for (int il = 0; il < 2; il++)
                    for (int withff = 0; withff < 2; withff++) {
                        int hd = hds[h][0], rd = hds[h][1];
                        float base = p % 2 ? 1e6f : 10000.0f;
                        fill(x, hd, 0);
                        memcpy(r, x, hd * 4), memcpy(a, x, hd * 4);
                        k_rope(r, hd, rd, poss[p], base, il, withff ? ff : NULL);
                        k_rope_cs(cs, rd, poss[p], base, withff ? ff : NULL);
                        tables[t]->rope_apply(a, hd, rd, il, cs);
                        if (memcmp(a, r, hd * 4))
                            fail_msg("%s rope hd=%d rot=%d pos=%d interleaved=%d: differs from k_rope", tables[t]->isa, hd, rd,
                                     poss[p], il);
                    }
}

/* Every one of the 65536 halves (subnormals, infinities), at every offset and odd length,
 * exactly as the per-element converter of quant.h; a NaN stays a NaN of its sign (F16C quiets
 * signaling NaNs, the reference keeps the payload as it is). */
static void test_f16_to_f32(void **state) {
    static uint16_t h[65536 + 16];
    static float a[65536 + 16], e[65536 + 16];
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    for (int i = 0; i < 65536; i++) e[i] = ulm_f16_to_f32(h[i]);
    for (int t = 0; t < ntables; t++) {
        memset(a, 0, sizeof a);
        tables[t]->f16_to_f32(a, h, 65536);
        for (int i = 0; i < 65536; i++)
            if (isnan(e[i]) ? !isnan(a[i]) || signbit(a[i]) != signbit(e[i]) : memcmp(&a[i], &e[i], 4)) fail_msg("%s f16_to_f32(0x%04x) = %a, expected %a", tables[t]->isa, i, a[i], e[i]);
        for (int l = 0; l < NLENS; l++) {
            int n = lens[l], off = (int)(rnd() % 60000);
            a[n] = 12345.0f; /* must stay: nothing written past n */
            tables[t]->f16_to_f32(a, h + off, n);
            for (int i = 0; i < n; i++) assert_true(isnan(e[off + i]) ? isnan(a[i]) : a[i] == e[off + i]);
            assert_true(a[n] == 12345.0f);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elementwise_exact), cmocka_unit_test(test_dot_rmsnorm), cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_glu),               cmocka_unit_test(test_rope),
        cmocka_unit_test(test_f16_to_f32),        cmocka_unit_test(test_axpy_rows),
        cmocka_unit_test(test_f32_to_f16),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
