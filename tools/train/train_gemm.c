/* Blocked f32 GEMM for training. Blocks: KC values of k, MC rows of A, NC columns of B are packed
 * into contiguous micro-panels (MR rows / NR columns, zero padded), then a register-tile
 * micro-kernel computes MR x NR of C per pass over kc. The bf16 path (tgemm_set_bf16) runs on
 * AMX tiles (train_gemm_amx.c) or, without AMX, on AVX512-BF16 (below). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "train_gemm.h"
#ifdef __x86_64__
#include <cpuid.h>
#include "kernels.h"
#include "train_gemm_amx.h"
#endif

#define KC TGEMM_KC
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

static const ukernel k_avx2 = {"avx2-6x16", 6, 16, ukr_avx2};
static const ukernel k_avx512 = {"avx512-8x32", 8, 32, ukr_avx512};

/* r[0..7] (rows) -> r[0..7] (columns): the 8x8 transpose in registers. */
__attribute__((target("avx2"))) static inline void transpose8_regs(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20), r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20), r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31), r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31), r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* dst[k*ldd + r] = src[r*lds + k] for r, k < 8: the packing's transposes, 8 loads and 8 stores
 * instead of 64 scalar moves (pure data movement: the same bits as the portable loops). */
__attribute__((target("avx2"))) static void transpose8x8_avx2(const float *src, int lds, float *dst, int ldd) {
    __m256 r[8] = {_mm256_loadu_ps(src), _mm256_loadu_ps(src + lds), _mm256_loadu_ps(src + 2 * lds),
                   _mm256_loadu_ps(src + 3 * lds), _mm256_loadu_ps(src + 4 * lds), _mm256_loadu_ps(src + 5 * lds),
                   _mm256_loadu_ps(src + 6 * lds), _mm256_loadu_ps(src + 7 * lds)};
    transpose8_regs(r); /* written out, not looped: GCC -O2 then keeps r in registers */
    _mm256_storeu_ps(dst, r[0]), _mm256_storeu_ps(dst + ldd, r[1]), _mm256_storeu_ps(dst + 2 * ldd, r[2]);
    _mm256_storeu_ps(dst + 3 * ldd, r[3]), _mm256_storeu_ps(dst + 4 * ldd, r[4]), _mm256_storeu_ps(dst + 5 * ldd, r[5]);
    _mm256_storeu_ps(dst + 6 * ldd, r[6]), _mm256_storeu_ps(dst + 7 * ldd, r[7]);
}

/* dst[k*6 + r] = src[r*lds + k] for r < 6, k < 8: the AVX2 kernel's A panel (mr 6), as the
 * 8x8 transpose with two zero rows; each k's 6 values are stored whole, k in increasing order
 * (a store's two extra lanes are overwritten by the next k's, the last k's are masked off), so
 * nothing is written past dst[47]. */
__attribute__((target("avx2"))) static void transpose6x8_avx2(const float *src, int lds, float *dst) {
    __m256 z = _mm256_setzero_ps();
    __m256 r[8] = {_mm256_loadu_ps(src), _mm256_loadu_ps(src + lds), _mm256_loadu_ps(src + 2 * lds),
                   _mm256_loadu_ps(src + 3 * lds), _mm256_loadu_ps(src + 4 * lds), _mm256_loadu_ps(src + 5 * lds), z, z};
    transpose8_regs(r);
    _mm256_storeu_ps(dst, r[0]), _mm256_storeu_ps(dst + 6, r[1]), _mm256_storeu_ps(dst + 12, r[2]);
    _mm256_storeu_ps(dst + 18, r[3]), _mm256_storeu_ps(dst + 24, r[4]), _mm256_storeu_ps(dst + 30, r[5]);
    _mm256_storeu_ps(dst + 36, r[6]);
    _mm256_maskstore_ps(dst + 42, _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0), r[7]);
}

/* AVX512-BF16: vdpbf16ps adds to each f32 lane the two products of a pair of bf16, so the
 * packed panels hold k in pairs: ap2[p*8 + r] = (A(r,2p), A(r,2p+1)) and bp2[p*32 + c] =
 * (B(2p,c), B(2p+1,c)), one uint32 per pair (low half first), zero past kc. Specification: the
 * portable kernel on operands rounded to bf16 (nearest even); products are exact in f32, only
 * the order of the sums differs (and vdpbf16ps flushes denormals). */
#define ROW16(r) \
    a = (__m512bh)_mm512_set1_epi32((int)ap[r]); \
    c##r##0 = _mm512_dpbf16_ps(c##r##0, a, b0); \
    c##r##1 = _mm512_dpbf16_ps(c##r##1, a, b1);
/* c[8 x 32] = (load ? c : 0) + sum over kp pairs of k (stored as ukr_avx512 stores) */
__attribute__((target("avx512f,avx512bf16"))) static void ukr_avx512bf16(int kp, const uint32_t *ap,
                                                                        const uint32_t *bp, float *c, int ldc,
                                                                        int load) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (int p = 0; p < kp; p++, ap += 8, bp += 32) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp), b1 = (__m512bh)_mm512_loadu_si512(bp + 16), a;
        ROW16(0) ROW16(1) ROW16(2) ROW16(3) ROW16(4) ROW16(5) ROW16(6) ROW16(7)
    }
    STORE512(0); STORE512(1); STORE512(2); STORE512(3); STORE512(4); STORE512(5); STORE512(6); STORE512(7);
}
#undef ROW16
#undef STORE512

/* An f32 panel from pack_a (ap[k*8 + r]) or pack_b (bp[k*32 + c]) as bf16 pairs of k:
 * out[p*w + i] = (in[2p*w + i], in[(2p+1)*w + i]), w = 8 or 32 lanes, zero past kc. */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void pairs_bf16(const float *in, int w, int kc,
                                                                              uint32_t *out) {
    /* cvtne2ps_pbh(hi, lo) holds lo in bf16 0-15 and hi in 16-31; interleave them */
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    int kp = (kc + 1) / 2;
    if (w == 32) {
        for (int p = 0; p < kp; p++, out += 32)
            for (int h = 0; h < 32; h += 16) {
                __m512 lo = _mm512_loadu_ps(in + (size_t)2 * p * 32 + h);
                __m512 hi = 2 * p + 1 < kc ? _mm512_loadu_ps(in + (size_t)(2 * p + 1) * 32 + h) : _mm512_setzero_ps();
                _mm512_storeu_si512(out + h, _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo)));
            }
        return;
    }
    /* w == 8: two pairs of k (32 floats) per conversion */
    int p = 0;
    for (; 2 * p + 3 < kc; p += 2, out += 16) {
        __m512 lo = _mm512_loadu_ps(in + (size_t)2 * p * 8), hi = _mm512_loadu_ps(in + (size_t)2 * p * 8 + 16);
        /* lo = (k 2p: rows 0-7, k 2p+1: rows 0-7), hi the same for pair p+1 */
        const __m512i idx8 = _mm512_set_epi16(31, 23, 30, 22, 29, 21, 28, 20, 27, 19, 26, 18, 25, 17, 24, 16,
                                              15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
        _mm512_storeu_si512(out, _mm512_permutexvar_epi16(idx8, (__m512i)_mm512_cvtne2ps_pbh(hi, lo)));
    }
    for (; p < kp; p++, out += 8) {
        __m512 lo = _mm512_maskz_loadu_ps(0xff, in + (size_t)2 * p * 8);
        __m512 hi = 2 * p + 1 < kc ? _mm512_maskz_loadu_ps(0xff, in + (size_t)(2 * p + 1) * 8) : _mm512_setzero_ps();
        _mm256_storeu_si256((__m256i *)out, _mm512_castsi512_si256(_mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo))));
    }
}
#endif

struct tgemm {
    tpool *pool;
    const ukernel *uk;
    int n_threads;
    float **pack; /* per thread: MC*KC for A, KC*NC for B */
    void **pack16; /* per thread: the bf16 path's buffers (NULL unless tgemm_set_bf16) */
    int bf16_amx;  /* with pack16: 1 on AMX tiles, 0 on AVX512-BF16 */
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
    for (int i = 0; g->pack16 && i < g->n_threads; i++) free(g->pack16[i]);
    free(g->pack);
    free(g->pack16);
    free(g);
}

const char *tgemm_kernel_name(const tgemm *g) {
    return g->pack16 ? (g->bf16_amx ? "amx-bf16" : "avx512bf16-8x32") : g->uk->name;
}

#ifdef __x86_64__
/* AMX-BF16 and AVX512-BF16 in cpuid, and tiles enabled and granted to this process (the
 * engine's AMX check). Here, not in the AMX-flagged file, so it runs on any x86-64. */
static int amx_bf16_supported(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d >> 22 & 1)) return 0; /* AMX-BF16 */
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a >> 5 & 1)) return 0;  /* AVX512-BF16 */
    return ulm_kernels_by_name("amx") != NULL;
}

static int avx512_bf16_supported(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 5 & 1);
}
#endif

int tgemm_set_bf16(tgemm *g, int on) {
    if (!on) {
        for (int i = 0; g->pack16 && i < g->n_threads; i++) free(g->pack16[i]);
        free(g->pack16);
        g->pack16 = NULL;
        return 1;
    }
    if (g->pack16) return 1;
#ifdef HAVE_X86
    /* AMX where the CPU has it (ULM_TRAIN_GEMM=avx512bf16 picks the other, for tests), else
     * AVX512-BF16 beside the AVX-512 f32 kernel, whose panels it converts */
    const char *force = getenv("ULM_TRAIN_GEMM");
    int amx = amx_bf16_supported() && !(force && !strcmp(force, "avx512bf16"));
    if (!amx && !(g->uk == &k_avx512 && __builtin_cpu_supports("avx512bw") && avx512_bf16_supported())) return 0;
    g->pack16 = calloc((size_t)g->n_threads, sizeof *g->pack16);
    if (!g->pack16) return 0;
    g->bf16_amx = amx;
    size_t bytes = amx ? tgemm_amx_pack_bytes() : (size_t)(MC * KC + KC * NC) * sizeof(uint16_t);
    bytes = (bytes + 63) / 64 * 64;
    for (int i = 0; i < g->n_threads; i++)
        if (!(g->pack16[i] = aligned_alloc(64, bytes))) { tgemm_set_bf16(g, 0); return 0; }
    return 1;
#else
    return 0;
#endif
}
void tgemm_force_portable(tgemm *g) { g->uk = &k_portable; }

typedef struct {
    tgemm *g;
    int M, N, K, lda, ldb, ldc, transA, transB, accumulate;
    const float *A, *B;
    float *C;
    int bf16;
} gemm_job;

static void pack_a(const gemm_job *j, int mr, int i0, int mc, int p0, int kc, float *ap) {
    for (int ir = 0; ir < mc; ir += mr, ap += mr * kc) {
        int rows = mc - ir < mr ? mc - ir : mr;
#ifdef HAVE_X86
        if (j->g->uk != &k_portable && !j->transA && mr == 8 && rows == 8) {
            const float *src = j->A + (size_t)(i0 + ir) * j->lda + p0;
            int k = 0;
            for (; k + 8 <= kc; k += 8) transpose8x8_avx2(src + k, j->lda, ap + k * 8, 8);
            for (; k < kc; k++)
                for (int r = 0; r < 8; r++) ap[k * 8 + r] = src[(size_t)r * j->lda + k];
            continue;
        }
        if (j->g->uk == &k_avx2 && !j->transA && rows == 6) {
            const float *src = j->A + (size_t)(i0 + ir) * j->lda + p0;
            int k = 0;
            for (; k + 8 <= kc; k += 8) transpose6x8_avx2(src + k, j->lda, ap + k * 6);
            for (; k < kc; k++)
                for (int r = 0; r < 6; r++) ap[k * 6 + r] = src[(size_t)r * j->lda + k];
            continue;
        }
#endif
        for (int r = 0; r < mr; r++) {
            if (r >= rows) {
                for (int k = 0; k < kc; k++) ap[k * mr + r] = 0.0f;
                continue;
            }
            if (j->transA) continue; /* below, row by row of k */
            const float *src = j->A + (size_t)(i0 + ir + r) * j->lda + p0;
            for (int k = 0; k < kc; k++) ap[k * mr + r] = src[k];
        }
        if (j->transA) { /* A^T: the mr values of one k are contiguous */
            const float *src = j->A + (size_t)p0 * j->lda + i0 + ir;
            if (rows == 8 && mr == 8) /* constant-size copies: inlined vector moves, not calls */
                for (int k = 0; k < kc; k++) memcpy(ap + k * 8, src + (size_t)k * j->lda, 8 * sizeof(float));
            else if (rows == 6 && mr == 6)
                for (int k = 0; k < kc; k++) memcpy(ap + k * 6, src + (size_t)k * j->lda, 6 * sizeof(float));
            else
                for (int k = 0; k < kc; k++)
                    for (int r = 0; r < rows; r++) ap[k * mr + r] = src[(size_t)k * j->lda + r];
        }
    }
}

static void pack_b(const gemm_job *j, int nr, int j0, int nc, int p0, int kc, float *bp) {
    for (int jr = 0; jr < nc; jr += nr, bp += nr * kc) {
        int cols = nc - jr < nr ? nc - jr : nr;
        if (j->transB) {
#ifdef HAVE_X86
            if (j->g->uk != &k_portable && cols == nr && nr % 8 == 0) {
                for (int c0 = 0; c0 < nr; c0 += 8) {
                    const float *src = j->B + (size_t)(j0 + jr + c0) * j->ldb + p0;
                    int k = 0;
                    for (; k + 8 <= kc; k += 8) transpose8x8_avx2(src + k, j->ldb, bp + k * nr + c0, nr);
                    for (; k < kc; k++)
                        for (int c = 0; c < 8; c++) bp[k * nr + c0 + c] = src[(size_t)c * j->ldb + k];
                }
                continue;
            }
#endif
            for (int c = 0; c < nr; c++) {
                if (c >= cols) {
                    for (int k = 0; k < kc; k++) bp[k * nr + c] = 0.0f;
                    continue;
                }
                const float *src = j->B + (size_t)(j0 + jr + c) * j->ldb + p0;
                for (int k = 0; k < kc; k++) bp[k * nr + c] = src[k];
            }
        } else {
            const float *src = j->B + (size_t)p0 * j->ldb + j0 + jr;
            if (cols == 32 && nr == 32)
                for (int k = 0; k < kc; k++) memcpy(bp + k * 32, src + (size_t)k * j->ldb, 32 * sizeof(float));
            else if (cols == 16 && nr == 16)
                for (int k = 0; k < kc; k++) memcpy(bp + k * 16, src + (size_t)k * j->ldb, 16 * sizeof(float));
            else
                for (int k = 0; k < kc; k++) {
                    float *dst = bp + k * nr;
                    memcpy(dst, src + (size_t)k * j->ldb, (size_t)cols * sizeof(float));
                    for (int c = cols; c < nr; c++) dst[c] = 0.0f;
                }
        }
    }
}

/* C[m0:m1, n0:n1] on one thread. pack2 (AVX512-BF16, x86 only; else NULL): each packed panel
 * is also converted to pairs of bf16 (pairs_bf16) for ukr_avx512bf16, on the f32 kernel's 8 x 32
 * tile, so both paths have the same blocks and per-element order of k. */
static void gemm_region(const gemm_job *j, float *pack, uint32_t *pack2, int m0, int m1, int n0, int n1) {
    const ukernel *uk = j->g->uk;
    int mr = pack2 ? 8 : uk->mr, nr = pack2 ? 32 : uk->nr;
    float *ap = pack, *bp = pack + MC * KC;
#ifdef HAVE_X86
    uint32_t *ap2 = pack2, *bp2 = pack2 ? pack2 + MC * KC / 2 : NULL;
#endif
    float tile[MAX_MR * MAX_NR];
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = n1 - jc < NC ? n1 - jc : NC;
        for (int pc = 0; pc < j->K; pc += KC) {
            int kc = j->K - pc < KC ? j->K - pc : KC;
            int load = pc > 0 || j->accumulate;
            pack_b(j, nr, jc, nc, pc, kc, bp);
#ifdef HAVE_X86
            int kp = (kc + 1) / 2; /* pairs of k */
            for (int jr = 0; pack2 && jr < nc; jr += nr) pairs_bf16(bp + (size_t)jr * kc, nr, kc, bp2 + (size_t)jr * kp);
#endif
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = m1 - ic < MC ? m1 - ic : MC;
                pack_a(j, mr, ic, mc, pc, kc, ap);
#ifdef HAVE_X86
                for (int ir = 0; pack2 && ir < mc; ir += mr) pairs_bf16(ap + (size_t)ir * kc, mr, kc, ap2 + (size_t)ir * kp);
#endif
                for (int jr = 0; jr < nc; jr += nr) {
                    int cols = nc - jr < nr ? nc - jr : nr;
                    for (int ir = 0; ir < mc; ir += mr) {
                        int rows = mc - ir < mr ? mc - ir : mr;
                        float *c = j->C + (size_t)(ic + ir) * j->ldc + jc + jr, *cc = c;
                        int ldc = j->ldc, ld = load;
                        if (rows < mr || cols < nr) { /* edge: through a full tile, copying only the valid part */
                            for (int r = 0; r < rows; r++)
                                for (int q = 0; q < cols; q++) tile[r * nr + q] = load ? c[(size_t)r * j->ldc + q] : 0.0f;
                            cc = tile, ldc = nr, ld = 1;
                        }
#ifdef HAVE_X86
                        if (pack2) ukr_avx512bf16(kp, ap2 + (size_t)ir * kp, bp2 + (size_t)jr * kp, cc, ldc, ld);
                        else
#endif
                            uk->fn(kc, ap + (size_t)ir * kc, bp + (size_t)jr * kc, cc, ldc, ld);
                        if (cc == tile)
                            for (int r = 0; r < rows; r++)
                                for (int q = 0; q < cols; q++) c[(size_t)r * j->ldc + q] = tile[r * nr + q];
                    }
                }
            }
        }
    }
}

/* The bf16 path (tgemm_set_bf16) on AMX or AVX512-BF16, else the f32 micro-kernel. */
static void region(const gemm_job *j, int ith, int m0, int m1, int n0, int n1) {
#ifdef __x86_64__
    if (j->bf16 && j->g->bf16_amx) {
        tgemm_amx_job a = {j->K, j->lda, j->ldb, j->ldc, j->transA, j->transB, j->accumulate, j->A, j->B, j->C};
        tgemm_amx_region(&a, j->g->pack16[ith], m0, m1, n0, n1);
        return;
    }
#endif
    gemm_region(j, j->g->pack[ith], j->bf16 ? j->g->pack16[ith] : NULL, m0, m1, n0, n1);
}

static void gemm_thread(void *ctx, int ith, int nth) {
    gemm_job *j = ctx;
    int m0 = 0, m1 = j->M, n0 = 0, n1 = j->N;
    int amx = j->bf16 && j->g->bf16_amx; /* AVX512-BF16 has the f32 kernel's tile (8 x 32) */
    if (j->M >= j->N) tpool_split(j->M, amx ? 32 : j->g->uk->mr, ith, nth, &m0, &m1);
    else tpool_split(j->N, amx ? 32 : j->g->uk->nr, ith, nth, &n0, &n1);
    if (m0 < m1 && n0 < n1) region(j, ith, m0, m1, n0, n1);
}

/* ith >= 0: on the calling thread with thread ith's buffers; ith < 0: split over the pool. */
static void run(tgemm *g, int ith, int M, int N, int K, const float *A, int lda, int transA, const float *B,
                int ldb, int transB, float *C, int ldc, int accumulate) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate)
            for (int m = 0; m < M; m++) memset(C + (size_t)m * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    /* bf16 for the pooled products only: attention's per-head ones (tgemm_run_local) are small */
    gemm_job j = {g, M, N, K, lda, ldb, ldc, transA, transB, accumulate, A, B, C, ith < 0 && g->pack16};
    /* small products are not worth waking the workers */
    if (ith < 0 && (double)M * N * K < 32768.0) ith = 0;
    if (ith >= 0) region(&j, ith, 0, M, 0, N);
    else tpool_run(g->pool, gemm_thread, &j);
}

void tgemm_run(tgemm *g, int M, int N, int K, const float *A, int lda, int transA, const float *B, int ldb,
               int transB, float *C, int ldc, int accumulate) {
    run(g, -1, M, N, K, A, lda, transA, B, ldb, transB, C, ldc, accumulate);
}

void tgemm_run_local(tgemm *g, int ith, int M, int N, int K, const float *A, int lda, int transA, const float *B,
                     int ldb, int transB, float *C, int ldc, int accumulate) {
    run(g, ith < 0 || ith >= g->n_threads ? 0 : ith, M, N, K, A, lda, transA, B, ldb, transB, C, ldc, accumulate);
}
