/* Blocked f32 GEMM for training. Blocks: KC values of k, MC rows of A, NC columns of B are packed
 * into contiguous micro-panels (MR rows / NR columns, zero padded), then a register-tile
 * micro-kernel computes MR x NR of C per pass over kc. */
#include <stdlib.h>
#include <string.h>
#include "train_gemm.h"

#define KC 256
#define MC 96  /* multiple of every MR */
#define NC 512 /* multiple of every NR */
#define MAX_MR 8
#define MAX_NR 32

/* c[MR x NR] (row stride ldc) = (load ? c : 0) + sum_k ap[k][.] * bp[k][.] */
typedef void (*ukernel_fn)(int kc, const float *ap, const float *bp, float *c, int ldc, int load);

typedef struct {
    const char *name;
    int mr, nr;
    ukernel_fn fn;
} ukernel;

static void ukr_portable(int kc, const float *ap, const float *bp, float *c, int ldc, int load) {
    enum { R = 4, N = 16 };
    float acc[R][N];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++) {
        const float *b = bp + k * N;
        for (int r = 0; r < R; r++) {
            float a = ap[k * R + r];
            for (int j = 0; j < N; j++) acc[r][j] += a * b[j];
        }
    }
    for (int r = 0; r < R; r++)
        for (int j = 0; j < N; j++) c[r * ldc + j] = (load ? c[r * ldc + j] : 0.0f) + acc[r][j];
}

static const ukernel k_portable = {"portable-4x16", 4, 16, ukr_portable};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1

__attribute__((target("avx2,fma"))) static void ukr_avx2(int kc, const float *ap, const float *bp, float *c,
                                                          int ldc, int load) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int k = 0; k < kc; k++, ap += 6, bp += 16) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8), a;
        a = _mm256_broadcast_ss(ap + 0); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(ap + 1); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(ap + 2); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(ap + 3); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(ap + 4); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(ap + 5); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    __m256 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    for (int r = 0; r < 6; r++)
        for (int h = 0; h < 2; h++) {
            float *p = c + r * ldc + h * 8;
            __m256 v = acc[r * 2 + h];
            if (load) v = _mm256_add_ps(v, _mm256_loadu_ps(p));
            _mm256_storeu_ps(p, v);
        }
}

/* Written out register by register: with an accumulator array GCC -O2 keeps it in memory. */
#define ROW512(r) \
    a = _mm512_set1_ps(ap[r]); \
    c##r##0 = _mm512_fmadd_ps(a, b0, c##r##0); \
    c##r##1 = _mm512_fmadd_ps(a, b1, c##r##1);
#define STORE512(r) \
    do { \
        float *p = c + r * ldc; \
        if (load) { c##r##0 = _mm512_add_ps(c##r##0, _mm512_loadu_ps(p)); \
                    c##r##1 = _mm512_add_ps(c##r##1, _mm512_loadu_ps(p + 16)); } \
        _mm512_storeu_ps(p, c##r##0); \
        _mm512_storeu_ps(p + 16, c##r##1); \
    } while (0)

__attribute__((target("avx512f"))) static void ukr_avx512(int kc, const float *ap, const float *bp, float *c,
                                                           int ldc, int load) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (int k = 0; k < kc; k++, ap += 8, bp += 32) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16), a;
        ROW512(0) ROW512(1) ROW512(2) ROW512(3) ROW512(4) ROW512(5) ROW512(6) ROW512(7)
    }
    STORE512(0); STORE512(1); STORE512(2); STORE512(3); STORE512(4); STORE512(5); STORE512(6); STORE512(7);
}
#undef ROW512
#undef STORE512

static const ukernel k_avx2 = {"avx2-6x16", 6, 16, ukr_avx2};
static const ukernel k_avx512 = {"avx512-8x32", 8, 32, ukr_avx512};
#endif

struct tgemm {
    tpool *pool;
    const ukernel *uk;
    int n_threads;
    float **pack; /* per thread: MC*KC for A, KC*NC for B */
};

tgemm *tgemm_new(tpool *pool) {
    tgemm *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->pool = pool;
    g->n_threads = tpool_size(pool);
    g->uk = &k_portable;
#ifdef HAVE_X86
    __builtin_cpu_init();
    const char *force = getenv("ULM_TRAIN_GEMM");
    if (force && !strcmp(force, "portable")) g->uk = &k_portable;
    else if (__builtin_cpu_supports("avx512f") && !(force && !strcmp(force, "avx2"))) g->uk = &k_avx512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) g->uk = &k_avx2;
#endif
    g->pack = calloc((size_t)g->n_threads, sizeof *g->pack);
    if (!g->pack) { free(g); return NULL; }
    for (int i = 0; i < g->n_threads; i++) {
        g->pack[i] = aligned_alloc(64, (size_t)(MC * KC + KC * NC) * sizeof(float));
        if (!g->pack[i]) { tgemm_free(g); return NULL; }
    }
    return g;
}

void tgemm_free(tgemm *g) {
    if (!g) return;
    for (int i = 0; g->pack && i < g->n_threads; i++) free(g->pack[i]);
    free(g->pack);
    free(g);
}

const char *tgemm_kernel_name(const tgemm *g) { return g->uk->name; }
void tgemm_force_portable(tgemm *g) { g->uk = &k_portable; }

typedef struct {
    tgemm *g;
    int M, N, K, lda, ldb, ldc, transA, transB, accumulate;
    const float *A, *B;
    float *C;
} gemm_job;

static void pack_a(const gemm_job *j, int mr, int i0, int mc, int p0, int kc, float *ap) {
    for (int ir = 0; ir < mc; ir += mr, ap += mr * kc) {
        int rows = mc - ir < mr ? mc - ir : mr;
        for (int r = 0; r < mr; r++) {
            if (r >= rows) {
                for (int k = 0; k < kc; k++) ap[k * mr + r] = 0.0f;
                continue;
            }
            if (j->transA) continue; /* below, row by row of k */
            const float *src = j->A + (size_t)(i0 + ir + r) * j->lda + p0;
            for (int k = 0; k < kc; k++) ap[k * mr + r] = src[k];
        }
        if (j->transA) /* A^T: the mr values of one k are contiguous */
            for (int k = 0; k < kc; k++) {
                const float *src = j->A + (size_t)(p0 + k) * j->lda + i0 + ir;
                for (int r = 0; r < rows; r++) ap[k * mr + r] = src[r];
            }
    }
}

static void pack_b(const gemm_job *j, int nr, int j0, int nc, int p0, int kc, float *bp) {
    for (int jr = 0; jr < nc; jr += nr, bp += nr * kc) {
        int cols = nc - jr < nr ? nc - jr : nr;
        if (j->transB) {
            for (int c = 0; c < nr; c++) {
                if (c >= cols) {
                    for (int k = 0; k < kc; k++) bp[k * nr + c] = 0.0f;
                    continue;
                }
                const float *src = j->B + (size_t)(j0 + jr + c) * j->ldb + p0;
                for (int k = 0; k < kc; k++) bp[k * nr + c] = src[k];
            }
        } else {
            for (int k = 0; k < kc; k++) {
                const float *src = j->B + (size_t)(p0 + k) * j->ldb + j0 + jr;
                float *dst = bp + k * nr;
                memcpy(dst, src, (size_t)cols * sizeof(float));
                for (int c = cols; c < nr; c++) dst[c] = 0.0f;
            }
        }
    }
}

/* C[m0:m1, n0:n1] on one thread. */
static void gemm_region(const gemm_job *j, float *pack, int m0, int m1, int n0, int n1) {
    const ukernel *uk = j->g->uk;
    int mr = uk->mr, nr = uk->nr;
    float *ap = pack, *bp = pack + MC * KC;
    float tile[MAX_MR * MAX_NR];
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = n1 - jc < NC ? n1 - jc : NC;
        for (int pc = 0; pc < j->K; pc += KC) {
            int kc = j->K - pc < KC ? j->K - pc : KC;
            int load = pc > 0 || j->accumulate;
            pack_b(j, nr, jc, nc, pc, kc, bp);
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = m1 - ic < MC ? m1 - ic : MC;
                pack_a(j, mr, ic, mc, pc, kc, ap);
                for (int jr = 0; jr < nc; jr += nr) {
                    int cols = nc - jr < nr ? nc - jr : nr;
                    for (int ir = 0; ir < mc; ir += mr) {
                        int rows = mc - ir < mr ? mc - ir : mr;
                        float *c = j->C + (size_t)(ic + ir) * j->ldc + jc + jr;
                        const float *a = ap + (size_t)ir * kc, *b = bp + (size_t)jr * kc;
                        if (rows == mr && cols == nr) {
                            uk->fn(kc, a, b, c, j->ldc, load);
                        } else { /* edge: through a full tile, copying only the valid part */
                            for (int r = 0; r < rows; r++)
                                for (int q = 0; q < cols; q++) tile[r * nr + q] = load ? c[(size_t)r * j->ldc + q] : 0.0f;
                            uk->fn(kc, a, b, tile, nr, 1);
                            for (int r = 0; r < rows; r++)
                                for (int q = 0; q < cols; q++) c[(size_t)r * j->ldc + q] = tile[r * nr + q];
                        }
                    }
                }
            }
        }
    }
}

static void gemm_thread(void *ctx, int ith, int nth) {
    gemm_job *j = ctx;
    int m0 = 0, m1 = j->M, n0 = 0, n1 = j->N;
    if (j->M >= j->N) tpool_split(j->M, j->g->uk->mr, ith, nth, &m0, &m1);
    else tpool_split(j->N, j->g->uk->nr, ith, nth, &n0, &n1);
    if (m0 < m1 && n0 < n1) gemm_region(j, j->g->pack[ith], m0, m1, n0, n1);
}

void tgemm_run(tgemm *g, int M, int N, int K, const float *A, int lda, int transA, const float *B, int ldb,
               int transB, float *C, int ldc, int accumulate) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate)
            for (int m = 0; m < M; m++) memset(C + (size_t)m * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    gemm_job j = {g, M, N, K, lda, ldb, ldc, transA, transB, accumulate, A, B, C};
    /* small products are not worth waking the workers */
    if ((double)M * N * K < 32768.0) gemm_region(&j, g->pack[0], 0, M, 0, N);
    else tpool_run(g->pool, gemm_thread, &j);
}
