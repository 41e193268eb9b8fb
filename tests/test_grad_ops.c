/* Finite-difference gradient checks of every backward op of the trainer, and the GEMM
 * against a naive product. Each check perturbs inputs of a tiny shape and compares
 * (L(x+h) - L(x-h)) / 2h with the analytic gradient, where L = sum(out * R) in double. */
#include <math.h>
#include "test_util.h"
#include "kernels.h"
#include "train/train_attn.h"
#include "train/train_gemm.h"
#include "train/train_model.h"
#include "train/train_ops.h"
#include "train/train_par.h"
#include "train/train_vec.h"

static uint64_t rng_state = 12345;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) / 8388608.0 - 1.0);
}
static void fill(float *x, int n, float s) { for (int i = 0; i < n; i++) x[i] = frand() * s; }

typedef double (*loss_fn)(void *ctx);

/* Checks every element of x: analytic g[i] against a central difference of loss. */
static void fd_check(const char *what, loss_fn loss, void *ctx, float *x, const float *g, int n, float h, float rtol,
                     float atol) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + h;
        double lp = loss(ctx);
        x[i] = x0 - h;
        double lm = loss(ctx);
        x[i] = x0;
        double num = (lp - lm) / (2.0 * h);
        double diff = fabs(num - g[i]), tol = atol + rtol * fmax(fabs(num), fabs(g[i]));
        if (diff > tol) {
            if (bad < 5) print_message("%s[%d]: analytic %.6g numeric %.6g\n", what, i, g[i], num);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static double dot_r(const float *y, const float *r, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)y[i] * r[i];
    return s;
}

/* ---- GEMM ---- */
static void naive_gemm(int M, int N, int K, const float *A, int lda, int ta, const float *B, int ldb, int tb, float *C,
                       int ldc, int acc) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = acc ? C[m * ldc + n] : 0;
            for (int k = 0; k < K; k++) s += (double)(ta ? A[k * lda + m] : A[m * lda + k]) * (tb ? B[n * ldb + k] : B[k * ldb + n]);
            C[m * ldc + n] = (float)s;
        }
}

/* x rounded to bf16, nearest even (the bf16 path's specification; no NaN here). */
static float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7fff + (u >> 16 & 1)) & 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* g (2 threads) and g1 (1 thread) against a double-precision product of the operands rounded
 * by rnd (NULL: as they are), within f32 summation error, on every transposition and with and
 * without accumulation; the two thread counts give the same bits. */
static void check_gemm_shapes(tgemm *g, tgemm *g1, const int (*sizes)[3], size_t n, float (*rnd)(float)) {
    for (size_t s = 0; s < n; s++) {
        int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int acc = 0; acc < 2; acc++) {
                    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
                    float *Ar = malloc(sizeof(float) * M * K), *Br = malloc(sizeof(float) * K * N);
                    float *C = malloc(sizeof(float) * M * N), *C1 = malloc(sizeof(float) * M * N),
                          *R = malloc(sizeof(float) * M * N);
                    fill(A, M * K, 1);
                    fill(B, K * N, 1);
                    fill(R, M * N, 1);
                    for (int i = 0; i < M * K; i++) Ar[i] = rnd ? rnd(A[i]) : A[i];
                    for (int i = 0; i < K * N; i++) Br[i] = rnd ? rnd(B[i]) : B[i];
                    memcpy(C, R, sizeof(float) * M * N);
                    memcpy(C1, R, sizeof(float) * M * N);
                    int lda = ta ? M : K, ldb = tb ? K : N;
                    tgemm_run(g, M, N, K, A, lda, ta, B, ldb, tb, C, N, acc);
                    tgemm_run(g1, M, N, K, A, lda, ta, B, ldb, tb, C1, N, acc);
                    /* thread count never changes a bit */
                    assert_memory_equal(C, C1, sizeof(float) * M * N);
                    naive_gemm(M, N, K, Ar, lda, ta, Br, ldb, tb, R, N, acc);
                    for (int i = 0; i < M * N; i++)
                        if (!(fabsf(C[i] - R[i]) <= 1e-4f * (1 + sqrtf((float)K))))
                            fail_msg("%s gemm %dx%dx%d ta %d tb %d acc %d: C[%d] = %g, want %g", tgemm_kernel_name(g),
                                     M, N, K, ta, tb, acc, i, C[i], R[i]);
                    free(A); free(B); free(Ar); free(Br); free(C); free(C1); free(R);
                }
    }
}

static void test_gemm_matches_naive(void **state) {
    tpool *pool = tpool_new(2);
    static const int sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {13, 33, 17}, {100, 70, 300}, {37, 129, 520}, {200, 24, 64}};
    /* the AVX2 kernel (6x16, its own A packing) too where AVX-512 would be picked */
    setenv("ULM_TRAIN_GEMM", "avx2", 1);
    tgemm *g = tgemm_new(pool), *g1 = tgemm_new(NULL);
    check_gemm_shapes(g, g1, sizes, sizeof sizes / sizeof *sizes, NULL);
    tgemm_free(g);
    tgemm_free(g1);
    unsetenv("ULM_TRAIN_GEMM");
    g = tgemm_new(pool), g1 = tgemm_new(NULL);
    check_gemm_shapes(g, g1, sizes, sizeof sizes / sizeof *sizes, NULL);
    /* the portable kernel agrees with the SIMD one */
    tgemm_force_portable(g1);
    float A[40 * 50], B[50 * 30], C[40 * 30], C1[40 * 30];
    fill(A, 2000, 1);
    fill(B, 1500, 1);
    tgemm_run(g, 40, 30, 50, A, 50, 0, B, 30, 0, C, 30, 0);
    tgemm_run(g1, 40, 30, 50, A, 50, 0, B, 30, 0, C1, 30, 0);
    for (int i = 0; i < 1200; i++) assert_true(fabsf(C[i] - C1[i]) < 1e-4f);
    tgemm_free(g);
    tgemm_free(g1);
    tpool_free(pool);
}

/* The f32 SIMD kernels (AVX2, and AVX-512 where the CPU has it) against their specification in
 * train_gemm.h, bit for bit, on 1 and 2 threads: fmaf chains in blocks of TGEMM_KC. */
static void fma_blocks_gemm(int M, int N, int K, const float *A, int lda, int ta, const float *B, int ldb, int tb,
                            float *C, int ldc, int acc) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float c = C[m * ldc + n];
            for (int k0 = 0; k0 < K; k0 += TGEMM_KC) {
                float s = 0.0f;
                for (int k = k0; k < K && k < k0 + TGEMM_KC; k++)
                    s = fmaf(ta ? A[k * lda + m] : A[m * lda + k], tb ? B[n * ldb + k] : B[k * ldb + n], s);
                c = k0 == 0 && !acc ? s : s + c;
            }
            C[m * ldc + n] = c;
        }
}

static void test_gemm_f32_is_fma_blocks(void **state) {
    (void)state;
    static const int sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {13, 33, 17}, {100, 70, 300}, {37, 129, 520}, {61, 40, 513}};
    tpool *pool = tpool_new(2);
    int checked = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) setenv("ULM_TRAIN_GEMM", "avx2", 1); /* AVX2 also where AVX-512 would be picked */
        tgemm *g2 = tgemm_new(pool), *g1 = tgemm_new(NULL);
        unsetenv("ULM_TRAIN_GEMM");
        if (strncmp(tgemm_kernel_name(g2), "portable", 8) != 0) {
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
                for (int v = 0; v < 8; v++) {
                    int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], ta = v & 1, tb = v >> 1 & 1, acc = v >> 2;
                    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
                    float *C = malloc(sizeof(float) * M * N), *C1 = malloc(sizeof(float) * M * N),
                          *R = malloc(sizeof(float) * M * N);
                    fill(A, M * K, 1);
                    fill(B, K * N, 1);
                    fill(R, M * N, 1);
                    memcpy(C, R, sizeof(float) * M * N);
                    memcpy(C1, R, sizeof(float) * M * N);
                    int lda = ta ? M : K, ldb = tb ? K : N;
                    tgemm_run(g2, M, N, K, A, lda, ta, B, ldb, tb, C, N, acc);
                    tgemm_run(g1, M, N, K, A, lda, ta, B, ldb, tb, C1, N, acc);
                    fma_blocks_gemm(M, N, K, A, lda, ta, B, ldb, tb, R, N, acc);
                    for (int i = 0; i < M * N; i++)
                        if (memcmp(&C[i], &R[i], 4) || memcmp(&C1[i], &R[i], 4))
                            fail_msg("%s gemm %dx%dx%d ta %d tb %d acc %d: C[%d] = %a / %a, spec %a",
                                     tgemm_kernel_name(g2), M, N, K, ta, tb, acc, i, C[i], C1[i], R[i]);
                    free(A); free(B); free(C); free(C1); free(R);
                }
            checked++;
        }
        tgemm_free(g2);
        tgemm_free(g1);
    }
    tpool_free(pool);
    if (!checked) skip(); /* no SIMD kernel on this CPU (aarch64: the portable one) */
}

/* tgemm_set_bf16: equal to a double-precision product of the bf16-rounded operands, within f32
 * summation error, on every transposition and on shapes crossing each block edge; bit-identical
 * on 1 and 2 threads. Both bf16 kernels the CPU has: AMX, and AVX512-BF16 (forced by
 * ULM_TRAIN_GEMM=avx512bf16 where AMX would be picked). */
static void test_gemm_bf16_matches_rounded(void **state) {
    static const int sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {13, 33, 17}, {32, 32, 32}, {100, 70, 300},
                                   {37, 129, 520}, {200, 24, 64}, {150, 600, 257}, {64, 160, 1184}};
    const char *seen[2] = {NULL, NULL};
    int ran = 0;
    for (int force = 0; force < 2; force++) {
        if (force) setenv("ULM_TRAIN_GEMM", "avx512bf16", 1);
        else unsetenv("ULM_TRAIN_GEMM");
        tpool *pool = tpool_new(2);
        tgemm *g = tgemm_new(pool), *g1 = tgemm_new(NULL);
        if (tgemm_set_bf16(g, 1)) {
            assert_true(tgemm_set_bf16(g1, 1));
            const char *name = tgemm_kernel_name(g);
            assert_string_equal(name, tgemm_kernel_name(g1));
            assert_true(!strcmp(name, "amx-bf16") || !strcmp(name, "avx512bf16-8x32"));
            if (force) assert_string_equal(name, "avx512bf16-8x32");
            if (!(seen[0] && !strcmp(seen[0], name))) {
                check_gemm_shapes(g, g1, sizes, sizeof sizes / sizeof *sizes, bf16_round);
                print_message("%s: matches the bf16-rounded product\n", name);
                seen[ran++] = name;
            }
            /* back to f32: the f32 kernel again */
            assert_true(tgemm_set_bf16(g, 0));
            assert_null(strstr(tgemm_kernel_name(g), "bf16"));
        }
        tgemm_free(g);
        tgemm_free(g1);
        tpool_free(pool);
    }
    unsetenv("ULM_TRAIN_GEMM");
    if (!ran) {
        print_message("skipped: this CPU has neither AMX-BF16 nor AVX512-BF16 (the bf16 GEMM paths)\n");
        skip();
    }
}

/* ---- linear layer y = x W^T through the GEMM ---- */
typedef struct { tgemm *g; float *x, *w, *y, *r; int n, out, in; } lin_ctx;
static double lin_loss(void *p) {
    lin_ctx *c = p;
    tgemm_run(c->g, c->n, c->out, c->in, c->x, c->in, 0, c->w, c->in, 1, c->y, c->out, 0);
    return dot_r(c->y, c->r, c->n * c->out);
}
static void test_grad_linear(void **state) {
    enum { n = 5, out = 6, in = 7 };
    float x[n * in], w[out * in], y[n * out], r[n * out], dx[n * in], dw[out * in];
    fill(x, n * in, 1); fill(w, out * in, 1); fill(r, n * out, 1);
    lin_ctx c = {tgemm_new(NULL), x, w, y, r, n, out, in};
    tgemm_run(c.g, n, in, out, r, out, 0, w, in, 0, dx, in, 0);     /* dX = dY W */
    tgemm_run(c.g, out, in, n, r, out, 1, x, in, 0, dw, in, 0);     /* dW = dY^T X */
    fd_check("linear dx", lin_loss, &c, x, dx, n * in, 1e-2f, 1e-2f, 1e-3f);
    fd_check("linear dw", lin_loss, &c, w, dw, out * in, 1e-2f, 1e-2f, 1e-3f);
    tgemm_free(c.g);
}

/* ---- RMSNorm ---- */
typedef struct { float *x, *w, *y, *rs, *r; int n, d; } norm_ctx;
static double norm_loss(void *p) {
    norm_ctx *c = p;
    op_rmsnorm_fwd(c->y, c->rs, c->x, c->w, c->n, c->d, 1e-5f);
    return dot_r(c->y, c->r, c->n * c->d);
}
static void test_grad_rmsnorm(void **state) {
    enum { n = 4, d = 9 };
    float x[n * d], w[d], y[n * d], rs[n], r[n * d], dx[n * d] = {0}, dw[d] = {0};
    fill(x, n * d, 2); fill(w, d, 1.5f); fill(r, n * d, 1);
    norm_ctx c = {x, w, y, rs, r, n, d};
    norm_loss(&c);
    op_rmsnorm_bwd(dx, dw, r, x, rs, w, n, d);
    fd_check("rmsnorm dx", norm_loss, &c, x, dx, n * d, 1e-3f, 1e-2f, 1e-3f);
    fd_check("rmsnorm dw", norm_loss, &c, w, dw, d, 1e-3f, 1e-2f, 1e-3f);
}

/* ---- RoPE ---- */
typedef struct { float *x, *y, *r, *cs, *sn; const int32_t *pos; int n, nh, hd, il; } rope_ctx;
static double rope_loss(void *p) {
    rope_ctx *c = p;
    memcpy(c->y, c->x, sizeof(float) * c->n * c->nh * c->hd);
    op_rope_fwd(c->y, c->pos, c->n, c->nh, c->hd, c->cs, c->sn, c->il);
    return dot_r(c->y, c->r, c->n * c->nh * c->hd);
}
static void test_grad_rope(void **state) {
    enum { n = 3, nh = 2, hd = 8, T = n * nh * hd };
    float x[T], y[T], r[T], dx[T], cs[10 * hd / 2], sn[10 * hd / 2];
    int32_t pos[n] = {0, 3, 7};
    op_rope_tables(cs, sn, 10, hd, 10000.0f);
    for (int il = 0; il < 2; il++) {
        fill(x, T, 1); fill(r, T, 1);
        rope_ctx c = {x, y, r, cs, sn, pos, n, nh, hd, il};
        memcpy(dx, r, sizeof r);
        op_rope_bwd(dx, pos, n, nh, hd, cs, sn, il);
        fd_check(il ? "rope(interleaved)" : "rope(neox)", rope_loss, &c, x, dx, T, 1e-2f, 1e-2f, 1e-3f);
    }
    /* the tables rotate like the engine's k_rope */
    memcpy(y, x, sizeof x);
    op_rope_fwd(y, pos, n, nh, hd, cs, sn, 1);
    for (int i = 0; i < n; i++)
        for (int h = 0; h < nh; h++) {
            float e[hd];
            memcpy(e, x + (i * nh + h) * hd, sizeof e);
            k_rope(e, hd, hd, pos[i], 10000.0f, 1, NULL);
            for (int t = 0; t < hd; t++) assert_true(fabsf(e[t] - y[(i * nh + h) * hd + t]) < 1e-5f);
        }
}

/* ---- attention (causal, GQA, optional window) ---- */
typedef struct { float *q, *k, *v, *o, *p, *r; int L, nh, nkv, hd, win; float scale; } attn_ctx;
static double attn_loss(void *pp) {
    attn_ctx *c = pp;
    op_attn_fwd(c->o, c->p, c->q, c->k, c->v, c->L, c->nh, c->nkv, c->hd, c->scale, c->win);
    return dot_r(c->o, c->r, c->L * c->nh * c->hd);
}
static void test_grad_attention(void **state) {
    enum { L = 6, nh = 4, nkv = 2, hd = 4, NQ = L * nh * hd, NK = L * nkv * hd };
    float q[NQ], k[NK], v[NK], o[NQ], p[nh * L * L], r[NQ];
    for (int win = 0; win <= 3; win += 3) {
        float dq[NQ] = {0}, dk[NK] = {0}, dv[NK] = {0};
        fill(q, NQ, 1); fill(k, NK, 1); fill(v, NK, 1); fill(r, NQ, 1);
        attn_ctx c = {q, k, v, o, p, r, L, nh, nkv, hd, win, 0.5f};
        attn_loss(&c);
        /* causal: query 0 only sees key 0, so its output is v[0] of its kv head */
        for (int t = 0; t < hd; t++) assert_true(fabsf(o[t] - v[t]) < 1e-6f);
        op_attn_bwd(dq, dk, dv, r, p, q, k, v, L, nh, nkv, hd, 0.5f);
        fd_check("attn dq", attn_loss, &c, q, dq, NQ, 1e-2f, 1e-2f, 1e-3f);
        fd_check("attn dk", attn_loss, &c, k, dk, NK, 1e-2f, 1e-2f, 1e-3f);
        fd_check("attn dv", attn_loss, &c, v, dv, NK, 1e-2f, 1e-2f, 1e-3f);
    }
}

/* ---- gated activations ---- */
typedef struct { float *g, *u, *a, *r; int n, gelu; } glu_ctx;
static double glu_loss(void *p) {
    glu_ctx *c = p;
    op_glu_fwd(c->a, c->g, c->u, c->n, c->gelu);
    return dot_r(c->a, c->r, c->n);
}
static void test_grad_glu(void **state) {
    enum { n = 24 };
    float g[n], u[n], a[n], r[n];
    for (int gelu = 0; gelu < 2; gelu++) {
        float dg[n] = {0}, du[n] = {0};
        fill(g, n, 3); fill(u, n, 1); fill(r, n, 1);
        glu_ctx c = {g, u, a, r, n, gelu};
        op_glu_bwd(dg, du, r, g, u, n, gelu);
        /* forward matches the engine's kernels */
        float e[n];
        glu_loss(&c);
        if (gelu) k_geglu(e, g, u, n); else k_swiglu(e, g, u, n);
        for (int i = 0; i < n; i++) assert_true(fabsf(e[i] - a[i]) < 1e-6f);
        fd_check(gelu ? "geglu dg" : "swiglu dg", glu_loss, &c, g, dg, n, 1e-3f, 1e-2f, 1e-3f);
        fd_check(gelu ? "geglu du" : "swiglu du", glu_loss, &c, u, du, n, 1e-3f, 1e-2f, 1e-3f);
    }
}

/* ---- softmax cross-entropy ---- */
typedef struct { float *l, *tmp; const int32_t *t; int m, V; } xent_ctx;
static double xent_loss(void *p) {
    xent_ctx *c = p;
    memcpy(c->tmp, c->l, sizeof(float) * c->m * c->V);
    return op_xent(c->tmp, c->t, c->m, c->V, 1.0f);
}
static void test_grad_xent(void **state) {
    enum { m = 3, V = 7 };
    float l[m * V], tmp[m * V], g[m * V];
    int32_t t[m] = {2, 0, 6};
    fill(l, m * V, 3);
    xent_ctx c = {l, tmp, t, m, V};
    memcpy(g, l, sizeof l);
    double loss = op_xent(g, t, m, V, 1.0f);
    /* the loss itself: -log softmax at the target */
    double want = 0;
    for (int i = 0; i < m; i++) {
        double s = 0;
        for (int j = 0; j < V; j++) s += exp(l[i * V + j]);
        want += log(s) - l[i * V + t[i]];
    }
    assert_true(fabs(loss - want) < 1e-5);
    fd_check("xent", xent_loss, &c, l, g, m * V, 1e-2f, 1e-2f, 1e-3f);
}

/* The trainer's attention (per-head GEMMs, train_attn.c) against its specification, op_attn_*,
 * on many shapes: one row, partial and full causal blocks, GQA, sliding windows; backward
 * adds into non-zero gradients. */
static void close_to(const char *what, const float *a, const float *b, int n, float tol) {
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= tol * (1.0f + fabsf(b[i])))) {
            if (bad < 3) print_message("%s[%d]: %.7g vs %.7g\n", what, i, a[i], b[i]);
            bad++;
        }
    assert_int_equal(bad, 0);
}

static void test_attn_gemm_matches_ops(void **state) {
    static const int shapes[][5] = { /* L, nh, nkv, hd, window */
        {1, 1, 1, 8, 0},   {5, 4, 2, 4, 0},    {31, 2, 1, 16, 0}, {32, 4, 4, 32, 0}, {33, 4, 2, 32, 7},
        {70, 2, 2, 32, 0}, {97, 3, 1, 8, 0},   {65, 2, 2, 8, 16}, {129, 1, 1, 4, 0},
    };
    tpool *pool = tpool_new(2);
    tgemm *g = tgemm_new(pool);
    const train_vec *tv = train_vec_best();
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int L = shapes[s][0], nh = shapes[s][1], nkv = shapes[s][2], hd = shapes[s][3], win = shapes[s][4];
        int NQ = L * nh * hd, NK = L * nkv * hd, NP = nh * L * L;
        float *q = malloc(sizeof(float) * NQ), *k = malloc(sizeof(float) * NK), *v = malloc(sizeof(float) * NK);
        float *o0 = malloc(sizeof(float) * NQ), *o1 = malloc(sizeof(float) * NQ), *dout = malloc(sizeof(float) * NQ);
        float *p0 = malloc(sizeof(float) * NP), *p1 = malloc(sizeof(float) * NP), *scr = malloc(sizeof(float) * L * L);
        float *dq0 = malloc(sizeof(float) * NQ), *dq1 = malloc(sizeof(float) * NQ);
        float *dk0 = malloc(sizeof(float) * NK), *dk1 = malloc(sizeof(float) * NK);
        float *dv0 = malloc(sizeof(float) * NK), *dv1 = malloc(sizeof(float) * NK);
        fill(q, NQ, 1.5f); fill(k, NK, 1.5f); fill(v, NK, 1); fill(dout, NQ, 1);
        fill(dq0, NQ, 1); fill(dk0, NK, 1); fill(dv0, NK, 1);
        memcpy(dq1, dq0, sizeof(float) * NQ); memcpy(dk1, dk0, sizeof(float) * NK); memcpy(dv1, dv0, sizeof(float) * NK);
        float scale = 1.0f / sqrtf((float)hd);
        op_attn_fwd(o0, p0, q, k, v, L, nh, nkv, hd, scale, win);
        attn_fwd_gemm(g, 1, tv, o1, p1, q, k, v, L, nh, nkv, hd, scale, win);
        close_to("attn p", p1, p0, NP, 2e-5f);
        close_to("attn out", o1, o0, NQ, 2e-5f);
        for (int i = 0; i < NP; i++) assert_true((p1[i] == 0.0f) == (p0[i] == 0.0f)); /* the same mask */
        op_attn_bwd(dq0, dk0, dv0, dout, p0, q, k, v, L, nh, nkv, hd, scale);
        attn_bwd_gemm(g, 1, tv, scr, dq1, dk1, dv1, dout, p1, q, k, v, L, nh, nkv, hd, scale);
        close_to("attn dq", dq1, dq0, NQ, 1e-4f);
        close_to("attn dk", dk1, dk0, NK, 1e-4f);
        close_to("attn dv", dv1, dv0, NK, 1e-4f);
        free(q); free(k); free(v); free(o0); free(o1); free(dout); free(p0); free(p1); free(scr);
        free(dq0); free(dq1); free(dk0); free(dk1); free(dv0); free(dv1);
    }
    tgemm_free(g);
    tpool_free(pool);
}

/* ---- the vectorized elementwise loops (train_vec.h) ---- */
static int ulp_diff(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    int64_t d = (int64_t)ia - ib;
    return d < 0 ? (int)-d : (int)d;
}

static void test_train_vec_matches_ops(void **state) {
    enum { N = 1000 };
    const train_vec *const *all = train_vec_all();
    const train_vec *base = all[0];
    assert_string_equal(base->isa, "generic");
    static float x[N], y[N], ref[N], a[N], b[N], c[N], d[N], e[N], f[N];
    /* exp: within 2 ulp of libm over the range, exactly 0 below -86 */
    int worst = 0;
    for (int i = 0; i < N; i++) x[i] = -86.0f + 174.0f * i / N;
    base->exp(y, x, N);
    for (int i = 0; i < N; i++) {
        int u = ulp_diff(y[i], expf(x[i]));
        worst = u > worst ? u : worst;
    }
    print_message("exp: worst %d ulp over [-86, 88]\n", worst);
    assert_true(worst <= 2);
    x[0] = -87.0f; x[1] = -INFINITY; x[2] = 0.0f;
    base->exp(y, x, 3);
    assert_true(y[0] == 0.0f && y[1] == 0.0f && y[2] == 1.0f);
    for (int n = 1; n <= 67; n += 11) { /* odd lengths: the padded tails */
        fill(x, n, 4);
        /* softmax against a double reference */
        memcpy(y, x, sizeof(float) * n);
        base->softmax(y, n, 0.5f);
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < n; i++) mx = fmax(mx, 0.5 * x[i]);
        for (int i = 0; i < n; i++) sum += exp(0.5 * x[i] - mx);
        for (int i = 0; i < n; i++) assert_true(fabs(y[i] - exp(0.5 * x[i] - mx) / sum) < 1e-6);
        /* softmax backward against its formula */
        fill(a, n, 1);
        memcpy(b, a, sizeof(float) * n);
        base->softmax_bwd(b, y, n, 0.25f);
        double dot = 0;
        for (int i = 0; i < n; i++) dot += (double)y[i] * a[i];
        for (int i = 0; i < n; i++) assert_true(fabs(b[i] - y[i] * (a[i] - dot) * 0.25) < 1e-6);
        /* silu-glu forward and backward against op_glu_* */
        fill(a, n, 6); fill(b, n, 1); fill(c, n, 1);
        op_glu_fwd(ref, a, b, n, 0);
        base->silu_glu_fwd(d, a, b, n);
        close_to("silu glu", d, ref, n, 1e-6f);
        fill(e, n, 1);
        memcpy(f, e, sizeof(float) * n);
        memcpy(ref, e, sizeof(float) * n);
        memcpy(y, e, sizeof(float) * n);
        op_glu_bwd(ref, y, c, a, b, n, 0);
        base->silu_glu_bwd(e, f, c, a, b, n);
        close_to("silu glu dg", e, ref, n, 1e-6f);
        close_to("silu glu du", f, y, n, 1e-6f);
        /* cross-entropy row against op_xent */
        fill(x, n, 5);
        memcpy(y, x, sizeof(float) * n);
        int32_t t = n / 2;
        double l0 = op_xent(y, &t, 1, n, 0.5f);
        memcpy(ref, x, sizeof(float) * n);
        double l1 = base->xent_row(ref, n, t, 0.5f);
        assert_true(fabs(l0 - l1) < 1e-5 * (1 + fabs(l0)));
        close_to("xent", ref, y, n, 1e-6f);
        /* AdamW against the formula */
        fill(a, n, 1); fill(b, n, 0.1f); fill(c, n, 0.1f);
        for (int i = 0; i < n; i++) c[i] = fabsf(c[i]);
        memcpy(d, a, sizeof(float) * n); memcpy(e, b, sizeof(float) * n); memcpy(f, c, sizeof(float) * n);
        fill(x, n, 1);
        tv_adamw_args aa = {0.9f, 0.95f, 0.5f, 0.1f, 0.05f, 0.999f, 1e-3f, 1e-8f};
        base->adamw(a, x, b, c, (size_t)n, &aa);
        for (int i = 0; i < n; i++) {
            float gi = x[i] * 0.5f, m = 0.9f * e[i] + 0.1f * gi, v = 0.95f * f[i] + 0.05f * gi * gi;
            float w = d[i] * 0.999f - 1e-3f * (m / 0.1f) / (sqrtf(v / 0.05f) + 1e-8f);
            assert_true(fabsf(b[i] - m) <= 1e-7f && fabsf(c[i] - v) <= 1e-7f && fabsf(a[i] - w) <= 1e-6f);
        }
    }
    /* every build this CPU runs gives the baseline's bits */
    for (int bi = 1; all[bi]; bi++) {
        const train_vec *tv = all[bi];
        print_message("train_vec %s against generic\n", tv->isa);
        for (int n = 1; n <= 100; n += 9) {
            fill(x, n, 20);
            base->exp(y, x, n);
            tv->exp(ref, x, n);
            assert_memory_equal(y, ref, sizeof(float) * n);
            memcpy(y, x, sizeof(float) * n);
            memcpy(ref, x, sizeof(float) * n);
            base->softmax(y, n, 0.3f);
            tv->softmax(ref, n, 0.3f);
            assert_memory_equal(y, ref, sizeof(float) * n);
            fill(a, n, 1);
            memcpy(b, a, sizeof(float) * n);
            base->softmax_bwd(a, y, n, 0.7f);
            tv->softmax_bwd(b, y, n, 0.7f);
            assert_memory_equal(a, b, sizeof(float) * n);
            fill(a, n, 6); fill(b, n, 1); fill(c, n, 1); fill(d, n, 1);
            memcpy(e, d, sizeof(float) * n); memcpy(f, d, sizeof(float) * n); memcpy(ref, d, sizeof(float) * n);
            base->silu_glu_fwd(y, a, b, n);
            tv->silu_glu_fwd(x, a, b, n);
            assert_memory_equal(y, x, sizeof(float) * n);
            base->silu_glu_bwd(d, e, c, a, b, n);
            memcpy(x, ref, sizeof(float) * n);
            tv->silu_glu_bwd(f, ref, c, a, b, n);
            assert_memory_equal(d, f, sizeof(float) * n);
            assert_memory_equal(e, ref, sizeof(float) * n);
            fill(x, n, 5);
            memcpy(y, x, sizeof(float) * n);
            double l0 = base->xent_row(x, n, n - 1, 1.0f), l1 = tv->xent_row(y, n, n - 1, 1.0f);
            assert_true(l0 == l1);
            assert_memory_equal(x, y, sizeof(float) * n);
            tv_adamw_args aa = {0.9f, 0.95f, 1.0f, 0.3f, 0.2f, 0.99f, 3e-3f, 1e-8f};
            fill(a, n, 1); fill(b, n, 0.1f); fill(c, n, 0.1f); fill(x, n, 1);
            for (int i = 0; i < n; i++) c[i] = fabsf(c[i]);
            memcpy(d, a, sizeof(float) * n); memcpy(e, b, sizeof(float) * n); memcpy(f, c, sizeof(float) * n);
            base->adamw(a, x, b, c, (size_t)n, &aa);
            tv->adamw(d, x, e, f, (size_t)n, &aa);
            assert_memory_equal(a, d, sizeof(float) * n);
            assert_memory_equal(b, e, sizeof(float) * n);
            assert_memory_equal(c, f, sizeof(float) * n);
        }
    }
}

/* ---- the whole model: embedding, every layer, tied / untied output, masking ---- */
typedef struct { train_model *m; train_ws *ws; train_batch *b; } model_ctx;
static double model_loss(void *p) {
    model_ctx *c = p;
    double loss;
    int nt, pr;
    assert_int_equal(train_forward(c->m, c->ws, c->b, 0, &loss, &nt, NULL, NULL), ULM_OK);
    return loss + c->b->prompt_weight * train_ws_prompt_loss(c->ws, &pr);
}

/* prompt_weight > 0 adds that weight times the loss on the prompt's tokens (ptargets) */
static void check_model(const char *arch, int tied, float prompt_weight) {
    train_config cfg;
    train_config_default(&cfg, train_arch_find(arch));
    cfg.dim = 16; cfg.n_layers = 2; cfg.n_heads = 4; cfg.n_kv_heads = 2; cfg.head_dim = 8;
    cfg.ffn_dim = 24; cfg.vocab_size = 11; cfg.max_ctx = 16; cfg.tied = tied;
    if (!strcmp(arch, "gemma3")) { cfg.sliding_window = 3; cfg.sliding_pattern = 2; cfg.rope_theta_local = 100.0f; }
    train_model *m;
    assert_int_equal(train_model_new(&m, &cfg, 7, NULL), ULM_OK);
    /* larger weights than the 0.02 init so gradients stand well above float noise */
    for (size_t i = 0; i < m->n_params; i++) m->w[i] = m->w[i] * 15.0f;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->t[t].ndim == 1)
            for (int j = 0; j < m->t[t].cols; j++) train_param(m, t)[j] = 1.0f + 0.3f * frand();
    train_batch b = {0};
    int lens[2] = {5, 7};
    assert_int_equal(train_batch_reserve(&b, 12, 2), 0);
    b.n = 12; b.n_seg = 2;
    for (int s = 0, o = 0; s < 2; o += lens[s], s++) {
        b.seg_start[s] = o; b.seg_len[s] = lens[s];
        for (int t = 0; t < lens[s]; t++) {
            b.tokens[o + t] = (int32_t)((s * 5 + t * 3) % 11);
            b.pos[o + t] = t;
            b.targets[o + t] = t >= 2 && t + 1 < lens[s] ? (int32_t)((t * 7 + s) % 11) : -1;
            /* off, these must not be read (out of range); on, the first two tokens of each */
            b.ptargets[o + t] = prompt_weight == 0 ? 1000 : t < 2 ? (int32_t)((t * 5 + s + 3) % 11) : -1;
        }
    }
    b.prompt_weight = prompt_weight;
    train_ws *ws = train_ws_new(NULL);
    double loss;
    int nt, pr;
    assert_int_equal(train_forward(m, ws, &b, 1, &loss, &nt, NULL, NULL), ULM_OK);
    assert_int_equal(nt, 2 + 4);
    assert_true(train_ws_prompt_loss(ws, &pr) >= (prompt_weight > 0 ? 0.1 : 0.0));
    assert_int_equal(pr, prompt_weight > 0 ? 4 : 0);
    /* train_forward's gradient is of the mean loss; fd_check differentiates the sum */
    for (size_t i = 0; i < m->n_params; i++) m->g[i] *= (float)nt;
    model_ctx c = {m, ws, &b};
    for (int t = 0; t < m->n_tensors; t++) {
        int n = m->t[t].rows * m->t[t].cols;
        fd_check(m->t[t].name, model_loss, &c, train_param(m, t), train_grad(m, t), n, 2e-3f, 3e-2f, 2e-3f);
    }
    if (prompt_weight > 0) { /* a prompt target out of range is refused while the loss is on */
        b.ptargets[0] = 11;
        ulm_error e;
        assert_int_equal(train_forward(m, ws, &b, 0, &loss, &nt, NULL, &e), ULM_ERR_ARG);
    }
    train_ws_free(ws);
    train_batch_free(&b);
    train_model_free(m);
}

/* The row-parallel launches (train_par.c) give the single-threaded ops' bits on any thread
 * count: rows and columns that are not multiples of the 16-float shares, 1 to 3 threads. */
static void test_par_ops_match_ops(void **state) {
    (void)state;
    const train_vec *tv = train_vec_best();
    static const int shapes[][2] = {{1, 8}, {15, 16}, {37, 50}, {70, 160}, {129, 33}};
    for (int nth = 1; nth <= 3; nth++) {
        tpool *pool = tpool_new(nth);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int n = shapes[s][0], d = shapes[s][1], nd = n * d;
            float *x = malloc(sizeof(float) * nd * 8), *w = malloc(sizeof(float) * d * 4), *rs = malloc(sizeof(float) * n * 2);
            int32_t *pos = malloc(sizeof(int32_t) * n);
            float *y0 = x + nd, *y1 = x + 2 * nd, *dy = x + 3 * nd, *dx0 = x + 4 * nd, *dx1 = x + 5 * nd;
            float *g = x + 6 * nd, *u = x + 7 * nd, *dw0 = w + d, *dw1 = w + 2 * d;
            fill(x, nd, 2); fill(w, d, 1); fill(dy, nd, 1); fill(g, nd, 3); fill(u, nd, 1);
            for (int i = 0; i < n; i++) pos[i] = (i * 7) % 11;
            /* rmsnorm forward and backward (dx and the column-summed dw) */
            op_rmsnorm_fwd(y0, rs, x, w, n, d, 1e-5f);
            par_rmsnorm_fwd(pool, y1, rs + n, x, w, n, d, 1e-5f);
            assert_memory_equal(y0, y1, sizeof(float) * nd);
            assert_memory_equal(rs, rs + n, sizeof(float) * n);
            fill(dx0, nd, 1); memcpy(dx1, dx0, sizeof(float) * nd);
            fill(dw0, d, 1); memcpy(dw1, dw0, sizeof(float) * d);
            op_rmsnorm_bwd(dx0, dw0, dy, x, rs, w, n, d);
            par_rmsnorm_bwd(pool, dx1, dw1, dy, x, rs, w, n, d);
            assert_memory_equal(dx0, dx1, sizeof(float) * nd);
            assert_memory_equal(dw0, dw1, sizeof(float) * d);
            /* RoPE both ways on d/8 heads of 8 (tables for positions < 11) */
            if (d % 8 == 0) {
                float cs[11 * 4], sn[11 * 4];
                op_rope_tables(cs, sn, 11, 8, 10000.0f);
                for (int bwd = 0; bwd < 2; bwd++) {
                    memcpy(y0, x, sizeof(float) * nd); memcpy(y1, x, sizeof(float) * nd);
                    if (bwd) op_rope_bwd(y0, pos, n, d / 8, 8, cs, sn, 0);
                    else op_rope_fwd(y0, pos, n, d / 8, 8, cs, sn, 0);
                    par_rope(pool, y1, pos, n, d / 8, 8, cs, sn, 0, bwd);
                    assert_memory_equal(y0, y1, sizeof(float) * nd);
                }
            }
            /* SiLU gate both ways, add, zero */
            tv->silu_glu_fwd(y0, g, u, nd);
            par_silu_glu_fwd(pool, tv, y1, g, u, nd);
            assert_memory_equal(y0, y1, sizeof(float) * nd);
            fill(dx0, nd, 1); memcpy(dx1, dx0, sizeof(float) * nd); memcpy(y1, y0, sizeof(float) * nd);
            tv->silu_glu_bwd(dx0, y0, dy, g, u, nd);
            par_silu_glu_bwd(pool, tv, dx1, y1, dy, g, u, nd);
            assert_memory_equal(dx0, dx1, sizeof(float) * nd);
            assert_memory_equal(y0, y1, sizeof(float) * nd);
            par_add(pool, y1, x, dy, nd);
            for (int i = 0; i < nd; i++) assert_true(y1[i] == x[i] + dy[i]);
            par_zero(pool, y1, nd);
            for (int i = 0; i < nd; i++) assert_true(y1[i] == 0.0f);
            /* cross-entropy rows: n rows of d logits, the loss summed in row order */
            int32_t t[129];
            for (int r = 0; r < n; r++) t[r] = pos[r] % d;
            memcpy(y0, x, sizeof(float) * nd); memcpy(y1, x, sizeof(float) * nd);
            double ref = 0, row[129];
            for (int r = 0; r < n; r++) ref += tv->xent_row(y0 + (size_t)r * d, d, t[r], 0.5f);
            double got = par_xent(pool, tv, y1, n, d, t, 0.5f, row);
            assert_memory_equal(&ref, &got, sizeof ref);
            assert_memory_equal(y0, y1, sizeof(float) * nd);
            free(x); free(w); free(rs); free(pos);
        }
        tpool_free(pool);
    }
}

static void test_grad_model_llama(void **state) { check_model("llama", 0, 0); }
static void test_grad_model_gemma3(void **state) { check_model("gemma3", 1, 0); }
static void test_grad_model_qwen3(void **state) { check_model("qwen3", 0, 0); }
static void test_grad_model_prompt_loss(void **state) {
    check_model("llama", 0, 0.3f);
    check_model("gemma3", 1, 0.3f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_matches_naive), cmocka_unit_test(test_gemm_f32_is_fma_blocks),
        cmocka_unit_test(test_gemm_bf16_matches_rounded),
        cmocka_unit_test(test_grad_linear),
        cmocka_unit_test(test_grad_rmsnorm),      cmocka_unit_test(test_grad_rope),
        cmocka_unit_test(test_grad_attention),    cmocka_unit_test(test_grad_glu),
        cmocka_unit_test(test_grad_xent),         cmocka_unit_test(test_grad_model_llama),
        cmocka_unit_test(test_grad_model_gemma3), cmocka_unit_test(test_grad_model_qwen3),
        cmocka_unit_test(test_grad_model_prompt_loss),
        cmocka_unit_test(test_attn_gemm_matches_ops), cmocka_unit_test(test_train_vec_matches_ops),
        cmocka_unit_test(test_par_ops_match_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
