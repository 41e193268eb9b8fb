/* AMX-INT8 matmul for q8 and q4 weights in prefill (n >= 16 inputs); everything else (decode,
 * float weights, the last n % 16 inputs, the last rows % 16 rows) goes to the AVX-512 VNNI table.
 *
 * Scalar reference: dot_row() in kernels/ref/matmul_ref.c. Each block's dot is the exact int32
 * tdpbssd result (signed x signed bytes, no correction terms), scaled by d_w * d_x rounded as
 * the reference rounds it; the per-block float terms are fused-added in block order per slice
 * of k, slices added into y (so on exact data the outputs are bit-identical, otherwise within
 * the tolerance of kernels.h).
 *
 * One tdpbssd computes C[16 weight rows][16 inputs] += A[16 rows][32 bytes] . B[8][64 bytes]:
 *   A  one block of 16 weight rows, int8. q8 rows are loaded straight from the GGUF layout
 *      (stride = row bytes); q4 rows are first unpacked to nibble - 8 in a scratch slice.
 *   B  one block of 16 inputs in AMX's "VNNI" order: B[kk][4*i + j] = x_i[4*kk + j], repacked
 *      once per slice of k for all inputs and reused by every row group.
 * A block is K = 32 (not the 64 a tile could take) because every block has its own scales.
 * Per block the 16x16 int32 tile is stored, converted and scaled into 16 f32 accumulators,
 * one per weight row with the inputs in lanes.
 *
 * Tiles must be enabled per process (arch_prctl, done in kernels/cpu.c before this table is
 * offered) and configured per thread (ldtilecfg at the start of every call).
 * GCC 12's _tile_loadd/_tile_loadconfig do not tell the compiler they read memory, so a
 * compiler barrier sits between filling a buffer (or the config) and loading it as a tile. */
#include <immintrin.h>
#include <string.h>
#include "kernels.h"
#include "matmul_tiled.h"

#define INLINE static inline __attribute__((always_inline))
#define BARRIER() __asm__ volatile("" ::: "memory")

#define KS 128 /* blocks per slice of k (4096 values): bounds the scratch below */
#define NS 64  /* inputs per super-strip */

/* tile registers (the intrinsics paste the number into the instruction) */
#define T_C0 0
#define T_C1 1
#define T_A 2
#define T_B 3

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

typedef struct {
    int8_t xb[NS / 16][KS][8][64];       /* inputs in VNNI order, per strip of 16 and block */
    float dx[NS / 16][KS][16];           /* d_x per strip, block, input */
    int8_t wq[16][KS * 32];              /* q4 rows of the current group, unpacked */
    float dw[KS][16];                    /* d_w per block, row */
    int32_t c[2][16][16];                /* tile stores */
    float acc[16][16];                   /* [row][input] of a finished slice */
} amx_scratch;

static void config_tiles(void) {
    tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    cfg.rows[T_C0] = cfg.rows[T_C1] = 16, cfg.colsb[T_C0] = cfg.colsb[T_C1] = 64;
    cfg.rows[T_A] = 16, cfg.colsb[T_A] = 32;
    cfg.rows[T_B] = 8, cfg.colsb[T_B] = 64;
    BARRIER(); /* the stores above must happen before ldtilecfg reads them */
    _tile_loadconfig(&cfg);
    BARRIER();
}

/* 16 f16 scales at p, p + stride, ... as f32. */
INLINE __m512 scales16(const uint8_t *p, size_t stride) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32((int)stride));
    __m512i v = _mm512_i32gather_epi32(idx, p, 1); /* d and the two bytes after it */
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
}

/* Inputs [i0, i0+ns) (ns a multiple of 16), blocks [b0, b0+nb) into sc->xb / sc->dx. */
static void repack_inputs(amx_scratch *sc, const uint8_t *x, size_t xrb, int i0, int ns, int b0, int nb) {
    for (int s = 0; s < ns / 16; s++) {
        const uint8_t *xs = x + (size_t)(i0 + s * 16) * xrb;
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = xs + (size_t)(b0 + b) * sizeof(block_q8);
            for (int i = 0; i < 16; i++) {
                const uint8_t *q = blk + (size_t)i * xrb + 2;
                for (int kk = 0; kk < 8; kk++) memcpy(&sc->xb[s][b][kk][4 * i], q + 4 * kk, 4);
            }
            _mm512_storeu_ps(sc->dx[s][b], scales16(blk, xrb));
        }
    }
}

/* 16 q4 rows, blocks [b0, b0+nb): nibbles - 8 in element order into sc->wq. */
static void unpack_q4(amx_scratch *sc, const uint8_t *w, size_t wrb, int b0, int nb) {
    const __m256i m = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
    for (int r = 0; r < 16; r++)
        for (int b = 0; b < nb; b++) {
            const block_q4 *B = (const block_q4 *)(w + (size_t)r * wrb) + b0 + b;
            __m128i q = _mm_loadu_si128((const __m128i *)B->qs);
            __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
            _mm256_storeu_si256((__m256i *)&sc->wq[r][b * 32], _mm256_sub_epi8(_mm256_and_si256(v, m), eight));
        }
}

/* C (a stored 16x16 int32 tile) scaled by d_w[row] * d_x[input] into acc. */
INLINE void scale_add(const int32_t c[16][16], const float *dw, const float *dx, __m512 *acc) {
    __m512 vdx = _mm512_loadu_ps(dx);
    for (int r = 0; r < 16; r++) {
        __m512 d = _mm512_mul_ps(_mm512_set1_ps(dw[r]), vdx); /* d_w * d_x, as the reference rounds it */
        __m512 p = _mm512_cvtepi32_ps(_mm512_loadu_si512(c[r]));
        acc[r] = _mm512_fmadd_ps(d, p, acc[r]);
    }
}

/* One group of 16 weight rows x one strip of 16 inputs over blocks [0, nb) of the slice;
 * A rows at a (row stride as), block b at a + b * ab. */
static void group_strip(amx_scratch *sc, const uint8_t *a, size_t as, size_t ab, int s, int nb, int first,
                        float *y, int ldy) {
    __m512 acc[16];
    for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
    int b = 0;
    BARRIER(); /* repacked inputs and unpacked weights are in memory before the tile loads */
    for (; b + 2 <= nb; b += 2) {
        _tile_zero(T_C0);
        _tile_loadd(T_A, a + (size_t)b * ab, (long)as);
        _tile_loadd(T_B, sc->xb[s][b], 64);
        _tile_dpbssd(T_C0, T_A, T_B);
        _tile_zero(T_C1);
        _tile_loadd(T_A, a + (size_t)(b + 1) * ab, (long)as);
        _tile_loadd(T_B, sc->xb[s][b + 1], 64);
        _tile_dpbssd(T_C1, T_A, T_B);
        _tile_stored(T_C0, sc->c[0], 64);
        _tile_stored(T_C1, sc->c[1], 64);
        scale_add(sc->c[0], sc->dw[b], sc->dx[s][b], acc);
        scale_add(sc->c[1], sc->dw[b + 1], sc->dx[s][b + 1], acc);
    }
    if (b < nb) {
        _tile_zero(T_C0);
        _tile_loadd(T_A, a + (size_t)b * ab, (long)as);
        _tile_loadd(T_B, sc->xb[s][b], 64);
        _tile_dpbssd(T_C0, T_A, T_B);
        _tile_stored(T_C0, sc->c[0], 64);
        scale_add(sc->c[0], sc->dw[b], sc->dx[s][b], acc);
    }
    for (int r = 0; r < 16; r++) _mm512_storeu_ps(sc->acc[r], acc[r]);
    for (int i = 0; i < 16; i++) {
        float *yi = y + (size_t)i * ldy;
        if (first)
            for (int r = 0; r < 16; r++) yi[r] = sc->acc[r][i];
        else
            for (int r = 0; r < 16; r++) yi[r] += sc->acc[r][i];
    }
}

/* Rows [r0, r0 + 16*ng), inputs [0, n16) with n16 a multiple of 16. */
static void matmul_amx_part(int q4, const uint8_t *w, size_t wrb, const uint8_t *x, size_t xrb, int n16, int k,
                            float *y, int ldy, int r0, int ng, amx_scratch *sc) {
    int nbk = k / QK;
    for (int i0 = 0; i0 < n16; i0 += NS) {
        int ns = n16 - i0 < NS ? n16 - i0 : NS;
        for (int b0 = 0; b0 < nbk; b0 += KS) {
            int nb = nbk - b0 < KS ? nbk - b0 : KS;
            repack_inputs(sc, x, xrb, i0, ns, b0, nb);
            for (int g = 0; g < ng; g++) {
                const uint8_t *wg = w + (size_t)(r0 + 16 * g) * wrb;
                size_t bsz = q4 ? sizeof(block_q4) : sizeof(block_q8);
                for (int b = 0; b < nb; b++) _mm512_storeu_ps(sc->dw[b], scales16(wg + (size_t)(b0 + b) * bsz, wrb));
                const uint8_t *a;
                size_t as, ab;
                if (q4) {
                    unpack_q4(sc, wg, wrb, b0, nb);
                    a = (const uint8_t *)sc->wq, as = KS * 32, ab = 32;
                } else {
                    a = wg + (size_t)b0 * sizeof(block_q8) + 2, as = wrb, ab = sizeof(block_q8);
                }
                for (int s = 0; s < ns / 16; s++)
                    group_strip(sc, a, as, ab, s, nb, b0 == 0, y + (size_t)(i0 + 16 * s) * ldy + r0 + 16 * g, ldy);
            }
        }
    }
}

/* ---- Q8_R16 / Q4_R16 (quant.h): a group block's quants are already an AMX B tile ----
 * B[kk][4*r + t] = element 4*kk + t of row r is exactly the q8x16 layout, so q8 weights are
 * loaded as they lie; q4 lines are unpacked (nibble - 8) into the same order first. A is 16
 * inputs' block, loaded from the prepared input. C[i][r] then has the 16 rows of input i in
 * one register, and each lane follows dot_row_r16()'s arithmetic in its order (exact block
 * dot; s += (d_w * d_x) * dot, not fused): bit-identical to the reference. */
#define R16_MAXB 256 /* blocks (k <= 8192) the stack scratch holds */

typedef struct {
    float dx[NS][R16_MAXB];           /* d_x per input of the super-strip, block */
    int8_t wq[R16_MAXB][8][64];       /* a q4 group, unpacked */
    int32_t c[2][16][16];
} r16_scratch;

INLINE void r16_post(const int32_t c[16][16], __m512 dw, const float *dx, int ldx, __m512 *acc) {
    for (int i = 0; i < 16; i++) {
        __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(dx[i * ldx])); /* d_w * d_x */
        acc[i] = _mm512_add_ps(acc[i], _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_loadu_si512(c[i]))));
    }
}

static void r16_unpack_q4(r16_scratch *sc, const block_q4x16 *G, int nb) {
    const __m512i m = _mm512_set1_epi8(15), eight = _mm512_set1_epi8(8);
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < 4; j++) {
            __m512i w = _mm512_loadu_si512(G[b].qs + 64 * j);
            _mm512_storeu_si512(sc->wq[b][j], _mm512_sub_epi8(_mm512_and_si512(w, m), eight));
            _mm512_storeu_si512(sc->wq[b][4 + j], _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(w, 4), m), eight));
        }
}

/* Group G (16 rows) x inputs [i0, i0+16): y[i][16 lanes] masked to keep. */
static void r16_group_strip(r16_scratch *sc, int q4, const uint8_t *G, size_t gbs, const uint8_t *x, size_t xrb,
                            int nb, int s, float *y, int ldy, __mmask16 keep) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    const float *dx = &sc->dx[16 * s][0];
    BARRIER();
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        _tile_zero(T_C0);
        _tile_loadd(T_A, x + (size_t)b * sizeof(block_q8) + 2, (long)xrb);
        if (q4) _tile_loadd(T_B, sc->wq[b], 64);
        else _tile_loadd(T_B, G + (size_t)b * gbs + 32, 64);
        _tile_dpbssd(T_C0, T_A, T_B);
        _tile_zero(T_C1);
        _tile_loadd(T_A, x + (size_t)(b + 1) * sizeof(block_q8) + 2, (long)xrb);
        if (q4) _tile_loadd(T_B, sc->wq[b + 1], 64);
        else _tile_loadd(T_B, G + (size_t)(b + 1) * gbs + 32, 64);
        _tile_dpbssd(T_C1, T_A, T_B);
        _tile_stored(T_C0, sc->c[0], 64);
        _tile_stored(T_C1, sc->c[1], 64);
        r16_post(sc->c[0], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(G + (size_t)b * gbs))), dx + b,
                 R16_MAXB, acc);
        r16_post(sc->c[1], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(G + (size_t)(b + 1) * gbs))),
                 dx + b + 1, R16_MAXB, acc);
    }
    if (b < nb) {
        _tile_zero(T_C0);
        _tile_loadd(T_A, x + (size_t)b * sizeof(block_q8) + 2, (long)xrb);
        if (q4) _tile_loadd(T_B, sc->wq[b], 64);
        else _tile_loadd(T_B, G + (size_t)b * gbs + 32, 64);
        _tile_dpbssd(T_C0, T_A, T_B);
        _tile_stored(T_C0, sc->c[0], 64);
        r16_post(sc->c[0], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(G + (size_t)b * gbs))), dx + b,
                 R16_MAXB, acc);
    }
    for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(y + (size_t)i * ldy, keep, acc[i]);
}

/* Rows [r0, r1) x inputs [0, n16), n16 a multiple of 16, k <= 32 * R16_MAXB. */
__attribute__((noinline)) static void matmul_amx_r16(ulm_dtype dt, const void *w, const void *xprep, int n16, int k, float *y, int ldy,
                           int r0, int r1) {
    int q4 = dt == ULM_DT_Q4_R16, nb = k / QK;
    size_t gbs = q4 ? sizeof(block_q4x16) : sizeof(block_q8x16), xrb = ulm_prepared_row_bytes(dt, k);
    r16_scratch sc; /* ~160 KiB of stack */
    config_tiles();
    for (int i0 = 0; i0 < n16; i0 += NS) {
        int ns = n16 - i0 < NS ? n16 - i0 : NS;
        for (int i = 0; i < ns; i++) {
            const block_q8 *X = (const block_q8 *)((const uint8_t *)xprep + (size_t)(i0 + i) * xrb);
            for (int b = 0; b < nb; b++) sc.dx[i][b] = _cvtsh_ss(X[b].d);
        }
        for (int g = r0 / ULM_R16; g * ULM_R16 < r1; g++) {
            const uint8_t *G = (const uint8_t *)w + (size_t)g * nb * gbs;
            int lo = g * ULM_R16 < r0 ? r0 - g * ULM_R16 : 0, hi = r1 - g * ULM_R16 < ULM_R16 ? r1 - g * ULM_R16 : ULM_R16;
            __mmask16 keep = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
            if (q4) r16_unpack_q4(&sc, (const block_q4x16 *)G, nb);
            for (int s = 0; s < ns / 16; s++)
                r16_group_strip(&sc, q4, G, gbs, (const uint8_t *)xprep + (size_t)(i0 + 16 * s) * xrb, xrb, nb, s,
                                y + (size_t)(i0 + 16 * s) * ldy + g * ULM_R16, ldy, keep);
        }
    }
    _tile_release();
}

/* The scratch lives on the stack of this call only (~360 KiB; the r16 path ~160 KiB): no
 * allocation on the hot path, and the engine's pool threads have default (MiB) stacks. */
__attribute__((noinline)) static void matmul_amx_plain(int q4, const uint8_t *w, size_t wrb, const uint8_t *x,
                                                       size_t xrb, int n16, int k, float *y, int ldy, int r0, int ng) {
    amx_scratch sc;
    config_tiles();
    matmul_amx_part(q4, w, wrb, x, xrb, n16, k, y, ldy, r0, ng, &sc);
    _tile_release();
}

static void matmul_amx(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                       int r1) {
    int n16 = n / 16 * 16, ng = (r1 - r0) / 16;
    if ((dt == ULM_DT_Q8_R16 || dt == ULM_DT_Q4_R16) && n16 && k / QK <= R16_MAXB) {
        matmul_amx_r16(dt, w, xprep, n16, k, y, ldy, r0, r1);
        if (n16 < n)
            ulm_matmul_avx512vnni(dt, w, (const uint8_t *)xprep + (size_t)n16 * ulm_prepared_row_bytes(dt, k), n - n16,
                                  k, y + (size_t)n16 * ldy, ldy, r0, r1);
        return;
    }
    if ((dt != ULM_DT_Q8 && dt != ULM_DT_Q4) || n16 == 0 || ng == 0) {
        ulm_matmul_avx512vnni(dt, w, xprep, n, k, y, ldy, r0, r1);
        return;
    }
    size_t wrb = ulm_dtype_row_bytes(dt, (uint64_t)k), xrb = ulm_prepared_row_bytes(dt, k);
    matmul_amx_plain(dt == ULM_DT_Q4, w, wrb, xprep, xrb, n16, k, y, ldy, r0, ng);
    int rend = r0 + 16 * ng;
    if (rend < r1) ulm_matmul_avx512vnni(dt, w, xprep, n16, k, y, ldy, rend, r1);
    if (n16 < n)
        ulm_matmul_avx512vnni(dt, w, (const uint8_t *)xprep + (size_t)n16 * xrb, n - n16, k, y + (size_t)n16 * ldy,
                              ldy, r0, r1);
}

static size_t prepare_size(ulm_dtype dt, int n, int k) { return ulm_prepare_size_common(dt, n, k); }

const ulm_kernels ulm_kernels_amx = {
    .isa = "amx",
    .prepare_size = prepare_size,
    .prepare_input = ulm_prepare_input_avx2,
    .matmul = matmul_amx,
    ULM_OPS_AVX512,
};
