/* The trainer's bf16 product on AMX: C = bf16(A)·bf16(B) (+ C), f32 accumulation (mixed
 * precision training: the master weights, optimizer state and every other op stay f32).
 *
 * Specification: tgemm's portable kernel with A and B first rounded to bf16 (nearest even);
 * the sums differ from it only in order (tdpbf16ps adds a pair of products at a time).
 *
 * One tdpbf16ps computes C[16][16] f32 += A[16][32 bf16] . B[16][16 pairs], where the B tile
 * is in AMX's pair ("VNNI") order: row p, column n holds (B(2p, n), B(2p+1, n)). Blocks of A and
 * B are converted once into such tiles (zero padded to 32 rows / 32 columns / 32 values of k)
 * and a 32x32 block of C is four accumulator tiles. Packing a transposed operand needs a 16x16
 * transpose of 32-bit pairs (transpose16). Tiles are configured per call on the calling
 * thread; GCC 12's tile intrinsics do not tell the compiler they read memory, hence BARRIER. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include "train_gemm_amx.h"

#define BARRIER() __asm__ volatile("" ::: "memory")
#define KCB 256 /* values of k per packed block (multiple of 32) */
#define MCB 128 /* rows of A per packed block (multiple of 32) */
#define NCB 512 /* columns of B per packed block (multiple of 32) */
#define TILE 512 /* uint16 per packed tile: 16 rows of 64 bytes */

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

size_t tgemm_amx_pack_bytes(void) {
    return (size_t)(MCB * KCB + KCB * NCB) * sizeof(uint16_t) + 32 * 32 * sizeof(float);
}

static void config_tiles(void) {
    tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    BARRIER();
    _tile_loadconfig(&cfg);
    BARRIER();
}

static inline __mmask16 mask_n(int n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* 32 floats (the first n valid) as 32 bf16, nearest even. */
static inline __m512i bf16_32(const float *p, int n) {
    __m512 lo = _mm512_maskz_loadu_ps(mask_n(n), p), hi = _mm512_maskz_loadu_ps(mask_n(n - 16), p + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* Rows x0, x1 (16 floats each, the first n valid; NULL = zero) as 16 pairs (x0[i], x1[i]). */
static inline __m512i bf16_pairs(const float *x0, const float *x1, int n) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __m512 a = x0 ? _mm512_maskz_loadu_ps(mask_n(n), x0) : _mm512_setzero_ps();
    __m512 b = x1 ? _mm512_maskz_loadu_ps(mask_n(n), x1) : _mm512_setzero_ps();
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

/* r[j] = column j of the 16x16 matrix of 32-bit words whose rows are r[i] (then stored). */
static void transpose16(__m512i r[16], uint16_t *dst) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    /* u[c + 4g], lane L: rows 4g..4g+3 of column 4L + c */
    for (int g = 0; g < 4; g++) {
        __m512i *s = t + 4 * g;
        u[4 * g + 0] = _mm512_unpacklo_epi64(s[0], s[2]);
        u[4 * g + 1] = _mm512_unpackhi_epi64(s[0], s[2]);
        u[4 * g + 2] = _mm512_unpacklo_epi64(s[1], s[3]);
        u[4 * g + 3] = _mm512_unpackhi_epi64(s[1], s[3]);
    }
    for (int c = 0; c < 4; c++) {
        __m512i v0 = _mm512_shuffle_i32x4(u[c], u[c + 4], 0x44), v1 = _mm512_shuffle_i32x4(u[c], u[c + 4], 0xEE);
        __m512i v2 = _mm512_shuffle_i32x4(u[c + 8], u[c + 12], 0x44), v3 = _mm512_shuffle_i32x4(u[c + 8], u[c + 12], 0xEE);
        _mm512_storeu_si512(dst + (0 + c) * 32, _mm512_shuffle_i32x4(v0, v2, 0x88));
        _mm512_storeu_si512(dst + (4 + c) * 32, _mm512_shuffle_i32x4(v0, v2, 0xDD));
        _mm512_storeu_si512(dst + (8 + c) * 32, _mm512_shuffle_i32x4(v1, v3, 0x88));
        _mm512_storeu_si512(dst + (12 + c) * 32, _mm512_shuffle_i32x4(v1, v3, 0xDD));
    }
}

/* A(m, k) for m in [i0, i0+mc), k in [p0, p0+kc) as tiles [mc/16 groups][kc/32 chunks] (both
 * rounded up, zero padded; groups rounded up to an even count). */
static void pack_a(const tgemm_amx_job *j, int i0, int mc, int p0, int kc, uint16_t *dst) {
    int ng = (mc + 31) / 32 * 2, nk = (kc + 31) / 32;
    for (int g = 0; g < ng; g++)
        for (int kk = 0; kk < nk; kk++) {
            uint16_t *t = dst + (size_t)(g * nk + kk) * TILE;
            int rows = mc - 16 * g, kn = kc - 32 * kk; /* valid rows (may be <= 0) and k values */
            if (!j->transA) {
                for (int r = 0; r < 16; r++) {
                    __m512i v = _mm512_setzero_si512();
                    if (r < rows) v = bf16_32(j->A + (size_t)(i0 + 16 * g + r) * j->lda + p0 + 32 * kk, kn);
                    _mm512_storeu_si512(t + r * 32, v);
                }
            } else { /* A(m, k) = A[k*lda + m]: pairs of k rows, then transposed to rows of m */
                __m512i w[16];
                for (int p = 0; p < 16; p++) {
                    const float *x0 = NULL, *x1 = NULL;
                    size_t k = (size_t)(p0 + 32 * kk + 2 * p), m = (size_t)(i0 + 16 * g);
                    if (rows > 0 && 2 * p < kn) x0 = j->A + k * j->lda + m;
                    if (rows > 0 && 2 * p + 1 < kn) x1 = j->A + (k + 1) * j->lda + m;
                    w[p] = bf16_pairs(x0, x1, rows);
                }
                transpose16(w, t);
            }
        }
}

/* B(k, n) for k in [p0, p0+kc), n in [j0, j0+nc) as pair-order tiles [nc/16 groups][kc/32 chunks]. */
static void pack_b(const tgemm_amx_job *j, int j0, int nc, int p0, int kc, uint16_t *dst) {
    int ng = (nc + 31) / 32 * 2, nk = (kc + 31) / 32;
    for (int g = 0; g < ng; g++)
        for (int kk = 0; kk < nk; kk++) {
            uint16_t *t = dst + (size_t)(g * nk + kk) * TILE;
            int cols = nc - 16 * g, kn = kc - 32 * kk;
            if (!j->transB) { /* rows 2p and 2p+1 of B interleave into tile row p */
                for (int p = 0; p < 16; p++) {
                    const float *x0 = NULL, *x1 = NULL;
                    size_t k = (size_t)(p0 + 32 * kk + 2 * p), n = (size_t)(j0 + 16 * g);
                    if (cols > 0 && 2 * p < kn) x0 = j->B + k * j->ldb + n;
                    if (cols > 0 && 2 * p + 1 < kn) x1 = j->B + (k + 1) * j->ldb + n;
                    _mm512_storeu_si512(t + p * 32, bf16_pairs(x0, x1, cols));
                }
            } else { /* B(k, n) = B[n*ldb + k]: each column's 32 values of k are 16 pairs */
                __m512i w[16];
                for (int n = 0; n < 16; n++)
                    w[n] = n < cols ? bf16_32(j->B + (size_t)(j0 + 16 * g + n) * j->ldb + p0 + 32 * kk, kn)
                                    : _mm512_setzero_si512();
                transpose16(w, t);
            }
        }
}

/* C block of 32 x 32 at c (row stride ldc floats) from packed row groups a (2 x nk tiles) and
 * column groups b (2 x nk tiles). */
static void block32(int nk, const uint16_t *a, const uint16_t *b, float *c, int ldc, int load) {
    size_t cs = (size_t)ldc * sizeof(float);
    if (load) {
        _tile_loadd(0, c, cs);
        _tile_loadd(1, c + 16, cs);
        _tile_loadd(2, c + 16 * (size_t)ldc, cs);
        _tile_loadd(3, c + 16 * (size_t)ldc + 16, cs);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    const uint16_t *a1 = a + (size_t)nk * TILE, *b1 = b + (size_t)nk * TILE;
    for (int kk = 0; kk < nk; kk++) {
        _tile_loadd(4, a + (size_t)kk * TILE, 64);
        _tile_loadd(5, a1 + (size_t)kk * TILE, 64);
        _tile_loadd(6, b + (size_t)kk * TILE, 64);
        _tile_loadd(7, b1 + (size_t)kk * TILE, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, cs);
    _tile_stored(1, c + 16, cs);
    _tile_stored(2, c + 16 * (size_t)ldc, cs);
    _tile_stored(3, c + 16 * (size_t)ldc + 16, cs);
    BARRIER();
}

void tgemm_amx_region(const tgemm_amx_job *j, void *pack, int m0, int m1, int n0, int n1) {
    uint16_t *ap = pack, *bp = ap + MCB * KCB;
    float *edge = (float *)(bp + KCB * NCB); /* [32][32] */
    config_tiles();
    for (int jc = n0; jc < n1; jc += NCB) {
        int nc = n1 - jc < NCB ? n1 - jc : NCB;
        for (int pc = 0; pc < j->K; pc += KCB) {
            int kc = j->K - pc < KCB ? j->K - pc : KCB, nk = (kc + 31) / 32;
            int load = pc > 0 || j->accumulate;
            pack_b(j, jc, nc, pc, kc, bp);
            for (int ic = m0; ic < m1; ic += MCB) {
                int mc = m1 - ic < MCB ? m1 - ic : MCB;
                pack_a(j, ic, mc, pc, kc, ap);
                BARRIER(); /* the packed tiles are in memory before any tile load */
                for (int jr = 0; jr < nc; jr += 32) {
                    int cols = nc - jr < 32 ? nc - jr : 32;
                    const uint16_t *b = bp + (size_t)(jr / 16) * nk * TILE;
                    for (int ir = 0; ir < mc; ir += 32) {
                        int rows = mc - ir < 32 ? mc - ir : 32;
                        const uint16_t *a = ap + (size_t)(ir / 16) * nk * TILE;
                        float *c = j->C + (size_t)(ic + ir) * j->ldc + jc + jr;
                        if (rows == 32 && cols == 32) {
                            block32(nk, a, b, c, j->ldc, load);
                            continue;
                        }
                        /* edge: through a full block, copying only the valid part */
                        for (int r = 0; r < 32; r++)
                            for (int q = 0; q < 32; q++)
                                edge[r * 32 + q] = load && r < rows && q < cols ? c[(size_t)r * j->ldc + q] : 0.0f;
                        BARRIER();
                        block32(nk, a, b, edge, 32, 1);
                        for (int r = 0; r < rows; r++) memcpy(c + (size_t)r * j->ldc, edge + r * 32, (size_t)cols * sizeof(float));
                    }
                }
            }
        }
    }
    _tile_release();
}
