/* Kernels: every ISA table this CPU runs against the scalar reference (kernels/ref/), plus the
 * formats themselves (f16/bf16 conversions exhaustively, q8/q4 layout and round trips).
 *
 * Equality contract checked here:
 *  - prepare_input (q8 quantization of activations) is bit-identical to the reference.
 *  - matmul: when every partial sum is exactly representable (power-of-two scales, small
 *    integers) the outputs are bit-identical, so any error in the integer block dots or the
 *    widening of f16/bf16 shows. On general data the SIMD kernels sum the per-term floats in
 *    another order (and fuse multiply-adds), so they must agree within
 *        |y - y_ref| <= (terms + 4) * FLT_EPSILON * sum_j |w_j x_j| + terms * 1e-38
 *    (terms = k for float weights; k/32 blocks + 16 lanes for q8/q4, whose SIMD kernels scale
 *    each lane's partial dot by d_w*d_x before the lanes are added), a bound that holds for
 *    any order of summation.
 *  - a block whose f16 scale is inf or NaN makes that output non-finite in both (which of
 *    inf or NaN is unspecified: SIMD lanes can see inf*0). */
#include <float.h>
#include <math.h>
#include "test_util.h"
#include "kernels.h"
#include "ulm.h"
#if defined(__aarch64__)
#include "matmul_tiled.h" /* ulm_matmul_r16_neon, ulm_matmul_r16_dotprod */
#endif

static const ulm_kernels *tables[8];
static int ntables;

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
static float rnd_unit(void) { return (float)(rnd() & 0xffffff) / 16777216.0f * 2.0f - 1.0f; }
static float rnd_normalish(void) { return rnd_unit() + rnd_unit() + rnd_unit(); }

static int setup(void **state) {
    unsetenv("ULM_ISA");
    ntables = 0;
    for (const char *const *n = ulm_isa_names(); *n; n++) {
        const ulm_kernels *k = ulm_kernels_by_name(*n);
        if (k && k != &ulm_kernels_scalar) tables[ntables++] = k;
        if (!k) print_message("skipped ISA %s: not in this build or not supported by this CPU\n", *n);
        else if (k != &ulm_kernels_scalar) print_message("testing ISA %s\n", *n);
    }
    return 0;
}

/* ---------------- f16 / bf16 conversions ---------------- */

/* Straightforward f16 -> float: sign * significand * 2^exponent. */
static float f16_plain(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v;
    if (e == 0) v = ldexpf((float)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(m + 1024), e - 25);
    return s ? -v : v;
}

static void test_f16_exhaustive(void **state) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ulm_f16_to_f32((uint16_t)h), g = f16_plain((uint16_t)h);
        if (isnan(g)) {
            assert_true(isnan(f));
            assert_true(ulm_f32_to_f16(f) >> 15 == h >> 15 && (ulm_f32_to_f16(f) & 0x7fff) > 0x7c00);
            continue;
        }
        assert_true(f == g && signbit(f) == signbit(g));
        assert_int_equal(ulm_f32_to_f16(f), h); /* every f16 survives the round trip */
    }
    /* Every rounding boundary: between consecutive finite f16 values a and a+1 (same sign), the
     * midpoint rounds to the even one, and the floats either side of it to the nearer. */
    for (uint32_t h = 0; h < 0x7bff; h++)
        for (int s = 0; s < 2; s++) {
            uint16_t a = (uint16_t)(h | s << 15), b = (uint16_t)((h + 1) | s << 15);
            float mid = (f16_plain(a) + f16_plain(b)) / 2; /* exact: 12 significant bits */
            assert_int_equal(ulm_f32_to_f16(mid), (h & 1) ? b : a);
            assert_int_equal(ulm_f32_to_f16(nextafterf(mid, 0)), a);
            assert_int_equal(ulm_f32_to_f16(nextafterf(mid, s ? -INFINITY : INFINITY)), b);
        }
    assert_int_equal(ulm_f32_to_f16(65520.0f), 0x7c00); /* the midpoint of max and 2^16 */
    assert_int_equal(ulm_f32_to_f16(nextafterf(65520.0f, 0)), 0x7bff);
    assert_int_equal(ulm_f32_to_f16(-1e30f), 0xfc00);
    assert_int_equal(ulm_f32_to_f16(ldexpf(1, -25)), 0);                  /* tie with 0 -> even (0) */
    assert_int_equal(ulm_f32_to_f16(nextafterf(ldexpf(1, -25), 1)), 1);    /* just above -> min subnormal */
    assert_int_equal(ulm_f32_to_f16(ldexpf(3, -25)), 2);                  /* 1.5 * 2^-24: tie -> 2 (even) */
    assert_int_equal(ulm_f32_to_f16(INFINITY), 0x7c00);
    assert_true((ulm_f32_to_f16(NAN) & 0x7fff) > 0x7c00);
}

static void test_bf16_exhaustive(void **state) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ulm_bf16_to_f32((uint16_t)h);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        assert_int_equal(bits, h << 16);
        if (isnan(f)) {
            assert_true(isnan(ulm_bf16_to_f32(ulm_f32_to_bf16(f))));
            continue;
        }
        assert_int_equal(ulm_f32_to_bf16(f), h);
        if ((h & 0x7fff) >= 0x7f7f) continue; /* next value up is inf or NaN */
        /* midpoint to h+1 rounds to even, either neighbour of it to the nearer */
        uint32_t mb = h << 16 | 0x8000;
        float mid, lo, hi;
        uint32_t lb = mb - 1, hb = mb + 1;
        memcpy(&mid, &mb, 4), memcpy(&lo, &lb, 4), memcpy(&hi, &hb, 4);
        assert_int_equal(ulm_f32_to_bf16(mid), (h & 1) ? h + 1 : h);
        assert_int_equal(ulm_f32_to_bf16(lo), h);
        assert_int_equal(ulm_f32_to_bf16(hi), h + 1);
    }
}

/* ---------------- q8 / q4 formats ---------------- */

/* Bytes exactly as GGUF Q8_0 / Q4_0 lay them out: f16 scale (little-endian) then the quants. */
static void test_gguf_layout(void **state) {
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j % 16) - 8.0f; /* extreme -8 -> d = 1 exactly */
    block_q4 q4;
    ulm_quantize_row(ULM_DT_Q4, x, &q4, 32);
    const uint8_t *b = (const uint8_t *)&q4;
    assert_int_equal(b[0], 0x00);
    assert_int_equal(b[1], 0x3c); /* f16 1.0 */
    for (int j = 0; j < 16; j++) assert_int_equal(b[2 + j], (uint8_t)(j | j << 4));

    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) * 0.5f; /* amax 8 -> d = 8/127 */
    block_q8 q8;
    ulm_quantize_row(ULM_DT_Q8, x, &q8, 32);
    b = (const uint8_t *)&q8;
    uint16_t d = ulm_f32_to_f16(8.0f / 127.0f);
    assert_int_equal(b[0] | b[1] << 8, d);
    assert_int_equal((int8_t)b[2], -127);
    assert_int_equal((int8_t)b[2 + 16], 0);
    assert_int_equal((int8_t)b[2 + 17], 8); /* 0.5 * 127/8 = 7.94 -> 8 */
}

static void test_quant_round_trip(void **state) {
    enum { K = 32 * 64 };
    float *x = malloc(K * sizeof(float)), *y = malloc(K * sizeof(float));
    block_q8 *q8 = malloc(K / 32 * sizeof(block_q8)), *q8b = malloc(K / 32 * sizeof(block_q8));
    block_q4 *q4 = malloc(K / 32 * sizeof(block_q4)), *q4b = malloc(K / 32 * sizeof(block_q4));
    for (int j = 0; j < K; j++) x[j] = rnd_normalish() * ((j / 32) % 7 == 3 ? 1e-3f : 1.0f);
    for (int j = 64; j < 96; j++) x[j] = 0; /* an all-zero block */
    ulm_quantize_row(ULM_DT_Q8, x, q8, K);
    ulm_dequantize_row(ULM_DT_Q8, q8, y, K);
    for (int b = 0; b < K / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        /* half a step, plus what rounding d = amax/127 to f16 moves the largest value */
        float d = amax / 127, bound = (0.5f * d + 127 * fabsf(ulm_f16_to_f32(q8[b].d) - d)) * 1.001f;
        for (int j = 0; j < 32; j++) assert_true(fabsf(x[b * 32 + j] - y[b * 32 + j]) <= bound);
    }
    ulm_quantize_row(ULM_DT_Q8, y, q8b, K); /* dequantized values are fixed points */
    assert_memory_equal(q8, q8b, K / 32 * sizeof(block_q8));
    assert_int_equal(q8[2].d, 0);

    ulm_quantize_row(ULM_DT_Q4, x, q4, K);
    ulm_dequantize_row(ULM_DT_Q4, q4, y, K);
    for (int b = 0; b < K / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        /* half a step, but a whole one where the value opposite the extreme clamps to nibble 15;
         * plus the f16 rounding of d times the largest nibble */
        float d = amax / 8, bound = (d + 8 * fabsf(fabsf(ulm_f16_to_f32(q4[b].d)) - d)) * 1.001f;
        for (int j = 0; j < 32; j++) assert_true(fabsf(x[b * 32 + j] - y[b * 32 + j]) <= bound);
    }
    ulm_quantize_row(ULM_DT_Q4, y, q4b, K);
    assert_memory_equal(q4, q4b, K / 32 * sizeof(block_q4));
    free(x), free(y), free(q8), free(q8b), free(q4), free(q4b);
}

/* prepare_input of every table produces the reference's bytes, ties (x/d = m + 0.5) included. */
static void test_prepare_input_exact(void **state) {
    enum { N = 3, K = 32 * 9 };
    float *x = malloc(N * K * sizeof(float));
    for (int i = 0; i < N * K; i++) x[i] = rnd_normalish();
    for (int j = 0; j < 32; j++) x[32 + j] = 0;                          /* all-zero block */
    for (int j = 0; j < 32; j++) x[64 + j] = (float)(j - 16) + 0.5f;      /* d = 127/127... ties */
    x[64] = 127.0f;                                                     /* amax 127 -> d = 1, id = 1 */
    for (int j = 0; j < 32; j++) x[96 + j] = (j & 1 ? -1.0f : 1.0f) * 1e-40f; /* subnormal inputs */
    for (int j = 0; j < 32; j++) x[128 + j] = j == 5 ? -3e38f : (float)j * 1e37f;
    x[160 + 9] = NAN, x[192 + 31] = INFINITY, x[224] = -INFINITY, x[224 + 17] = -NAN; /* scale NaN, zero quants */
    x[K + 40] = NAN;                                                   /* second row, second block */
    for (ulm_dtype dt = ULM_DT_F32; dt <= ULM_DT_Q4; dt++) {
        size_t sz = ulm_kernels_scalar.prepare_size(dt, N, K);
        void *ref = malloc(sz), *got = malloc(sz);
        ulm_kernels_scalar.prepare_input(dt, x, N, K, ref);
        for (int t = 0; t < ntables; t++) {
            assert_int_equal(tables[t]->prepare_size(dt, N, K), sz);
            memset(got, 0xa5, sz);
            tables[t]->prepare_input(dt, x, N, K, got);
            if (memcmp(ref, got, sz)) fail_msg("%s prepare_input(%s) differs from the reference", tables[t]->isa,
                                               ulm_dtype_name(dt));
        }
        free(ref), free(got);
    }
    free(x);
}

/* ---------------- matmul against the reference ---------------- */

enum { DATA_RANDOM, DATA_EXACT, DATA_EXTREME };

/* Fills a weight matrix [rows][k] of dtype dt. */
static void make_weights(ulm_dtype dt, int mode, int rows, int k, void *w) {
    size_t rb = ulm_dtype_row_bytes(dt, (uint64_t)k);
    float *row = malloc((size_t)k * sizeof(float));
    for (int r = 0; r < rows; r++) {
        uint8_t *wr = (uint8_t *)w + (size_t)r * rb;
        if (mode == DATA_RANDOM || dt <= ULM_DT_BF16) {
            for (int j = 0; j < k; j++)
                row[j] = mode == DATA_RANDOM ? rnd_normalish() * (r % 3 ? 1.0f : 0.01f)
                                             : (float)rnd_int(-15, 15) * ldexpf(1, -rnd_int(0, 3));
            ulm_quantize_row(dt, row, wr, k);
            continue;
        }
        for (int b = 0; b < k / 32; b++) {
            if (dt == ULM_DT_Q8) {
                block_q8 *B = (block_q8 *)wr + b;
                B->d = ulm_f32_to_f16(ldexpf(1, -rnd_int(0, 1)));
                for (int j = 0; j < 32; j++) B->qs[j] = (int8_t)rnd_int(-127, 127);
            } else {
                block_q4 *B = (block_q4 *)wr + b;
                B->d = ulm_f32_to_f16(ldexpf(1, -rnd_int(0, 1)));
                for (int j = 0; j < 16; j++) B->qs[j] = (uint8_t)rnd();
            }
            if (mode != DATA_EXTREME) continue;
            /* extremes by block: zero block, +-127 / nibbles -8 and 7, odd scales */
            uint16_t *d = dt == ULM_DT_Q8 ? &((block_q8 *)wr)[b].d : &((block_q4 *)wr)[b].d;
            uint8_t *qs = dt == ULM_DT_Q8 ? (uint8_t *)((block_q8 *)wr)[b].qs : ((block_q4 *)wr)[b].qs;
            int nq = dt == ULM_DT_Q8 ? 32 : 16;
            switch ((r + b) % 9) {
            case 0: *d = 0; memset(qs, dt == ULM_DT_Q8 ? 0 : 0x88, nq); break; /* all-zero block */
            case 1: memset(qs, dt == ULM_DT_Q8 ? 0 : 0x88, nq); break;          /* zero quants, d != 0 */
            case 2: for (int j = 0; j < nq; j++) qs[j] = dt == ULM_DT_Q8 ? (uint8_t)(j & 1 ? 127 : -127) : 0xf0; break;
            case 3: memset(qs, dt == ULM_DT_Q8 ? (uint8_t)127 : 0xff, nq); break;
            case 4: memset(qs, dt == ULM_DT_Q8 ? (uint8_t)-128 : 0x00, nq); break; /* -128: GGUF Q8_0 allows it */
            case 5: *d = (uint16_t)(rnd() & 1 ? 0x0001 : 0x83ff); break;         /* f16 subnormal scales */
            case 6: if (r % 4 == 2) *d = (uint16_t)(b & 1 ? 0x7c00 : 0xfc00); break;  /* inf scale */
            case 7: *d = 0x7bff; break;                                          /* f16 max */
            default: break;
            }
        }
    }
    free(row);
}

/* Inputs [n][k]; in exact mode each 32-block has amax 127 * 2^e so its q8 scale is exact. */
static void make_inputs(int mode, int n, int k, float *x) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            float *v = x + (size_t)i * k + j;
            if (mode == DATA_RANDOM) *v = rnd_normalish() * (i % 4 == 1 ? 100.0f : 1.0f);
            else if (mode == DATA_EXACT) *v = j % 32 == 7 ? 127.0f : (float)rnd_int(-15, 15);
            else if (i % 4 == 3) *v = (j / 32) % 2 ? 127.0f : -127.0f; /* whole blocks at +-127: the int16 sums' bound */
            else *v = (j / 32 + i) % 5 == 0 ? 0.0f : (j % 32 == 3 ? -127.0f : (float)rnd_int(-127, 127));
        }
}

/* sum |term| and the number of float additions for output (r, i), from the reference's view. */
static double term_mass(ulm_dtype dt, const void *w, const void *xp, int k, int r, int i, int *nterms) {
    size_t wrb = ulm_dtype_row_bytes(dt, (uint64_t)k);
    size_t xrb = ulm_kernels_scalar.prepare_size(dt, 1, k);
    const uint8_t *wr = (const uint8_t *)w + (size_t)r * wrb, *xr = (const uint8_t *)xp + (size_t)i * xrb;
    double s = 0;
    if (dt <= ULM_DT_BF16) {
        float *wf = malloc((size_t)k * sizeof(float));
        ulm_dequantize_row(dt, wr, wf, k);
        for (int j = 0; j < k; j++) s += fabs((double)wf[j] * ((const float *)xr)[j]);
        free(wf);
        *nterms = k;
        return s;
    }
    const block_q8 *X = (const block_q8 *)xr;
    for (int b = 0; b < k / 32; b++) {
        int8_t q[32];
        uint16_t d;
        if (dt == ULM_DT_Q8) {
            d = ((const block_q8 *)wr)[b].d;
            memcpy(q, ((const block_q8 *)wr)[b].qs, 32);
        } else {
            const block_q4 *B = (const block_q4 *)wr + b;
            d = B->d;
            for (int j = 0; j < 16; j++) q[j] = (int8_t)((B->qs[j] & 15) - 8), q[j + 16] = (int8_t)((B->qs[j] >> 4) - 8);
        }
        long acc = 0; /* sum |w x|, not |sum w x|: SIMD lanes scale partial dots before adding them */
        for (int j = 0; j < 32; j++) acc += abs(q[j] * X[b].qs[j]);
        s += fabs((double)ulm_f16_to_f32(d) * ulm_f16_to_f32(X[b].d) * (double)acc);
    }
    *nterms = k / 32 + 16; /* blocks, then a tree over at most 16 lanes */
    return s;
}

/* One case: every table against the reference on rows [r0, r1) of a rows x k weight, n inputs. */
static void check_case(ulm_dtype dt, int mode, int rows, int k, int n) {
    size_t wsz = (size_t)rows * ulm_dtype_row_bytes(dt, (uint64_t)k);
    void *w = malloc(wsz);
    float *x = malloc((size_t)n * k * sizeof(float));
    make_weights(dt, mode, rows, k, w);
    make_inputs(mode, n, k, x);
    int ldy = rows + 3, r0 = rows > 2 ? 1 : 0, r1 = rows > 3 ? rows - 1 : rows;
    size_t ysz = (size_t)n * ldy;
    float *yref = malloc(ysz * sizeof(float)), *y = malloc(ysz * sizeof(float));
    size_t psz = ulm_kernels_scalar.prepare_size(dt, n, k);
    void *xp = malloc(psz), *xp2 = malloc(psz);
    ulm_kernels_scalar.prepare_input(dt, x, n, k, xp);
    for (size_t i = 0; i < ysz; i++) yref[i] = -777.0f;
    ulm_kernels_scalar.matmul(dt, w, xp, n, k, yref, ldy, r0, r1);
    for (int t = 0; t < ntables; t++) {
        const ulm_kernels *K = tables[t];
        K->prepare_input(dt, x, n, k, xp2);
        for (size_t i = 0; i < ysz; i++) y[i] = -777.0f;
        /* two row ranges, as two threads would split them */
        int mid = r0 + (r1 - r0) / 2;
        K->matmul(dt, w, xp2, n, k, y, ldy, r0, mid);
        K->matmul(dt, w, xp2, n, k, y, ldy, mid, r1);
        for (int i = 0; i < n; i++)
            for (int r = 0; r < ldy; r++) {
                float a = y[(size_t)i * ldy + r], e = yref[(size_t)i * ldy + r];
                const char *what = NULL;
                if (r < r0 || r >= r1) {
                    if (a != -777.0f) what = "wrote outside [r0, r1)";
                } else if (!isfinite(e) || !isfinite(a)) {
                    if (isfinite(e) != isfinite(a)) what = "finite in one, not in the other";
                } else if (mode == DATA_EXACT) {
                    if (a != e) what = "not bit-identical on exact data";
                } else {
                    int nt;
                    double mass = term_mass(dt, w, xp, k, r, i, &nt);
                    if (fabs((double)a - e) > (nt + 4) * FLT_EPSILON * mass + nt * 1e-38) what = "outside tolerance";
                }
                if (what)
                    fail_msg("%s %s rows=%d k=%d n=%d mode=%d: y[%d][%d] = %.9g, reference %.9g: %s", K->isa,
                             ulm_dtype_name(dt), rows, k, n, mode, i, r, a, e, what);
            }
    }
    free(w), free(x), free(yref), free(y), free(xp), free(xp2);
}

static const ulm_dtype all_dt[] = {ULM_DT_F32, ULM_DT_F16, ULM_DT_BF16, ULM_DT_Q8, ULM_DT_Q4};

static void run_shapes(int mode) {
    /* n = 1..17 on small odd shapes (tiles of 1, 2 and 4 inputs, with remainders) */
    static const int small[][2] = {{1, 32}, {5, 96}, {13, 224}, {3, 32 * 3}};
    /* the last ones are for the AMX path: n >= 16 inputs in strips of 16 and super-strips of 64,
     * rows in groups of 16 with a remainder, k over more than one 128-block slice */
    static const int quant_only[][3] = {{67, 1056, 1}, {67, 1056, 5}, {33, 352, 7}, {130, 2048, 1}, {64, 512, 33},
                                        {48, 32 * 130, 16}, {35, 96, 70}, {16, 32, 16}, {17, 64 * 32, 31}};
    /* the last ones: attention-score shapes (keys x a block of queries, k a head dimension,
     * some not a multiple of 16) with tile remainders in rows and inputs */
    static const int float_k[][3] = {{7, 1, 3}, {9, 7, 2}, {5, 37, 9}, {17, 100, 5}, {3, 15, 1}, {67, 1001, 4},
                                     {40, 577, 1}, {80, 37, 13}, {70, 100, 8}, {100, 64, 23}, {40, 256, 9},
                                     {40, 257, 9}, {34, 16, 15}, {131, 7, 17}};
    for (size_t d = 0; d < 5; d++) {
        ulm_dtype dt = all_dt[d];
        for (size_t s = 0; s < sizeof small / sizeof *small; s++)
            for (int n = 1; n <= 17; n++) check_case(dt, mode, small[s][0], small[s][1], n);
        for (size_t s = 0; s < sizeof quant_only / sizeof *quant_only; s++)
            check_case(dt, mode, quant_only[s][0], quant_only[s][1], quant_only[s][2]);
        if (dt <= ULM_DT_BF16)
            for (size_t s = 0; s < sizeof float_k / sizeof *float_k; s++)
                check_case(dt, mode, float_k[s][0], float_k[s][1], float_k[s][2]);
    }
}

static void test_matmul_exact(void **state) { run_shapes(DATA_EXACT); }
static void test_matmul_random(void **state) { run_shapes(DATA_RANDOM); }
static void test_matmul_extreme(void **state) {
    for (int n = 1; n <= 33; n += n < 9 ? 4 : 12) { /* 1, 5, 9, 21, 33 */
        check_case(ULM_DT_Q8, DATA_EXTREME, 37, 32 * 11, n);
        check_case(ULM_DT_Q4, DATA_EXTREME, 37, 32 * 11, n);
        check_case(ULM_DT_Q8, DATA_EXTREME, 4, 32, n);
        check_case(ULM_DT_Q4, DATA_EXTREME, 4, 32, n);
    }
}

/* Saturation corners with a known answer: w = +-127 (q8) or nibbles 0 and 15 (q4) times inputs
 * of +-127 over 8 blocks; 8 * 32 * 127 * 127 < 2^24, so every order of summation is exact. */
static void test_matmul_saturation(void **state) {
    enum { K = 256, N = 2 };
    float x[N * K];
    for (int j = 0; j < K; j++) x[j] = 127.0f, x[K + j] = -127.0f;
    block_q8 w8[2 * K / 32];
    block_q4 w4[2 * K / 32];
    for (int b = 0; b < K / 32; b++) {
        w8[b].d = w8[K / 32 + b].d = w4[b].d = w4[K / 32 + b].d = 0x3c00; /* 1.0 */
        memset(w8[b].qs, 127, 32), memset(w8[K / 32 + b].qs, -127, 32);
        memset(w4[b].qs, 0x00, 16), memset(w4[K / 32 + b].qs, 0xff, 16); /* -8, 7 */
    }
    const ulm_kernels *all[9] = {&ulm_kernels_scalar};
    for (int t = 0; t < ntables; t++) all[t + 1] = tables[t];
    for (int t = 0; t <= ntables; t++) {
        float y[N * 2];
        char xp[N * K / 32 * sizeof(block_q8)];
        all[t]->prepare_input(ULM_DT_Q8, x, N, K, xp);
        all[t]->matmul(ULM_DT_Q8, w8, xp, N, K, y, 2, 0, 2);
        float full = (float)K * 127 * 127;
        assert_true(y[0] == full && y[1] == -full && y[2] == -full && y[3] == full);
        all[t]->matmul(ULM_DT_Q4, w4, xp, N, K, y, 2, 0, 2);
        assert_true(y[0] == -8.0f * 127 * K && y[1] == 7.0f * 127 * K && y[2] == 8.0f * 127 * K &&
                    y[3] == -7.0f * 127 * K);
    }
}

/* ---------------- 16-row interleaved weights (Q8_R16, Q4_R16) ---------------- */

/* The layout as quant.h states it, byte for byte, and the round trip. */
static void test_interleave_layout(void **state) {
    enum { R = 32, K = 64 };
    for (int q4 = 0; q4 < 2; q4++) {
        ulm_dtype dt = q4 ? ULM_DT_Q4 : ULM_DT_Q8;
        size_t rb = ulm_dtype_row_bytes(dt, K), bs = q4 ? 18 : 34;
        uint8_t *plain = malloc(R * rb), *il = malloc(R * rb), *back = malloc(R * rb);
        for (size_t i = 0; i < R * rb; i++) plain[i] = (uint8_t)rnd();
        assert_int_equal(ulm_interleave_rows(dt, plain, R, K, il), 0);
        assert_int_equal(ulm_dtype_row_bytes(ulm_dtype_interleaved(dt), K), rb);
        for (int r = 0; r < R; r++)
            for (int b = 0; b < K / 32; b++) {
                const uint8_t *B = plain + r * rb + b * bs;
                const uint8_t *G = il + ((size_t)(r / 16) * (K / 32) + b) * 16 * bs;
                assert_memory_equal(G + 2 * (r % 16), B, 2);
                for (size_t m = 0; m < bs - 2; m++) assert_int_equal(G[32 + 64 * (m / 4) + 4 * (r % 16) + m % 4], B[2 + m]);
            }
        assert_int_equal(ulm_deinterleave_rows(dt, il, R, K, back), 0);
        assert_memory_equal(plain, back, R * rb);
        float *a = malloc(K * sizeof(float)), *b = malloc(K * sizeof(float));
        for (int r = 0; r < R; r += 7) {
            ulm_dequantize_row(dt, plain + r * rb, a, K);
            ulm_dequantize_row_at(ulm_dtype_interleaved(dt), il, K, (uint64_t)r, b);
            assert_memory_equal(a, b, K * sizeof(float));
            ulm_dequantize_row_at(dt, plain, K, (uint64_t)r, b);
            assert_memory_equal(a, b, K * sizeof(float));
        }
        assert_int_equal(ulm_interleave_rows(dt, plain, 15, K, il), -1); /* rows not a multiple of 16 */
        assert_int_equal(ulm_interleave_rows(dt, plain, 16, 48, il), -1);
        assert_int_equal(ulm_interleave_rows(ULM_DT_F16, plain, 16, K, il), -1);
        assert_int_equal(ulm_dtype_row_group(ulm_dtype_interleaved(dt)), 16);
        assert_int_equal(ulm_dtype_plain(ulm_dtype_interleaved(dt)), dt);
        assert_string_equal(ulm_dtype_name(ulm_dtype_interleaved(dt)), q4 ? "q4r16" : "q8r16");
        free(plain), free(il), free(back), free(a), free(b);
    }
}

static int same_float(float a, float e) { return a == e || (isnan(a) && isnan(e)); }

/* Every table's interleaved matmul is bit-identical to the plain reference on the same weights,
 * on any data (each lane does its row's reference arithmetic in order), rows cut anywhere. */
static void check_r16_case(ulm_dtype plain, int mode, int rows, int k, int n, int r0, int r1) {
    size_t wsz = (size_t)rows * ulm_dtype_row_bytes(plain, (uint64_t)k);
    void *w = malloc(wsz), *wil = malloc(wsz);
    float *x = malloc((size_t)n * k * sizeof(float));
    make_weights(plain, mode, rows, k, w);
    make_inputs(mode, n, k, x);
    assert_int_equal(ulm_interleave_rows(plain, w, (uint64_t)rows, (uint64_t)k, wil), 0);
    ulm_dtype dt = ulm_dtype_interleaved(plain);
    int ldy = rows + 1;
    size_t ysz = (size_t)n * ldy;
    float *yref = malloc(ysz * sizeof(float)), *y = malloc(ysz * sizeof(float));
    size_t psz = ulm_kernels_scalar.prepare_size(dt, n, k);
    assert_int_equal(psz, ulm_kernels_scalar.prepare_size(plain, n, k));
    void *xp = malloc(psz);
    ulm_kernels_scalar.prepare_input(dt, x, n, k, xp);
    for (size_t i = 0; i < ysz; i++) yref[i] = -777.0f;
    ulm_kernels_scalar.matmul(plain, w, xp, n, k, yref, ldy, r0, r1);
    const ulm_kernels *all[9] = {&ulm_kernels_scalar};
    for (int t = 0; t < ntables; t++) all[t + 1] = tables[t];
    for (int t = 0; t <= ntables; t++) {
        for (size_t i = 0; i < ysz; i++) y[i] = -777.0f;
        int mid = r0 + (r1 - r0) / 3; /* two ranges, not on a group boundary */
        all[t]->matmul(dt, wil, xp, n, k, y, ldy, r0, mid);
        all[t]->matmul(dt, wil, xp, n, k, y, ldy, mid, r1);
        for (size_t i = 0; i < ysz; i++)
            if (!same_float(y[i], yref[i]))
                fail_msg("%s %s rows=%d k=%d n=%d mode=%d [%d,%d): y[%zu][%zu] = %.9g, plain reference %.9g", all[t]->isa,
                         ulm_dtype_name(dt), rows, k, n, mode, r0, r1, i / ldy, i % ldy, y[i], yref[i]);
    }
    free(w), free(wil), free(x), free(yref), free(y), free(xp);
}

/* An inf or NaN input reaches the outputs. Each row of x gets one non-finite value (or none);
 * every table must give non-finite outputs for exactly those rows (NaN through q8 and q4
 * weights, whose prepared block then has scale NaN), so a corrupt activation cannot quantize to
 * finite numbers and slip past the engine's logit check. */
static void test_matmul_nonfinite_inputs(void **state) {
    enum { ROWS = 48, K = 32 * 5, N = 6 };
    static const ulm_dtype dts[] = {ULM_DT_F32, ULM_DT_F16, ULM_DT_BF16, ULM_DT_Q8, ULM_DT_Q4, ULM_DT_Q8_R16, ULM_DT_Q4_R16};
    const float bad[N] = {0, NAN, INFINITY, 0, -INFINITY, -NAN};
    float *x = malloc(N * K * sizeof(float)), *y = malloc(N * ROWS * sizeof(float));
    for (size_t d = 0; d < sizeof dts / sizeof *dts; d++) {
        ulm_dtype dt = dts[d], plain = ulm_dtype_plain(dt);
        size_t wsz = (size_t)ROWS * ulm_dtype_row_bytes(plain, K);
        void *w = malloc(wsz), *wil = malloc(wsz);
        make_weights(plain, DATA_RANDOM, ROWS, K, w);
        if (dt != plain) assert_int_equal(ulm_interleave_rows(plain, w, ROWS, K, wil), 0);
        else memcpy(wil, w, wsz);
        for (int pos = 0; pos < K; pos += 37) {
            make_inputs(DATA_RANDOM, N, K, x);
            for (int i = 0; i < N; i++)
                if (bad[i] != 0) x[(size_t)i * K + (pos + 11 * i) % K] = bad[i];
            for (int t = -1; t < ntables; t++) {
                const ulm_kernels *T = t < 0 ? &ulm_kernels_scalar : tables[t];
                void *xp = malloc(T->prepare_size(dt, N, K));
                T->prepare_input(dt, x, N, K, xp);
                T->matmul(dt, wil, xp, N, K, y, ROWS, 0, ROWS);
                for (int i = 0; i < N; i++)
                    for (int r = 0; r < ROWS; r++) {
                        float v = y[i * ROWS + r];
                        int want_finite = bad[i] == 0;
                        if (want_finite != !!isfinite(v) || (!want_finite && plain >= ULM_DT_Q8 && !isnan(v)))
                            fail_msg("%s %s: input %d (%g at %d) gives output %g in row %d", T->isa, ulm_dtype_name(dt), i,
                                     (double)bad[i], (pos + 11 * i) % K, (double)v, r);
                    }
                free(xp);
            }
        }
        free(w), free(wil);
    }
    free(x), free(y);
}

static void test_matmul_r16(void **state) {
    for (int q4 = 0; q4 < 2; q4++) {
        ulm_dtype dt = q4 ? ULM_DT_Q4 : ULM_DT_Q8;
        for (int mode = DATA_RANDOM; mode <= DATA_EXTREME; mode++) {
            for (int n = 1; n <= 6; n++) check_r16_case(dt, mode, 16, 32, n, 0, 16);
            check_r16_case(dt, mode, 48, 96, 1, 3, 45);
            check_r16_case(dt, mode, 64, 1056, 1, 0, 64);
            check_r16_case(dt, mode, 32, 352, 9, 5, 32);
            check_r16_case(dt, mode, 80, 32 * 11, 17, 16, 79);
            check_r16_case(dt, mode, 32, 1056, 70, 0, 32); /* AMX: super-strip of 64, then 6 */
            /* 1, 3 and many blocks; 1..7 inputs (tiles of 4 and every remainder); one group,
             * three, and 17 with ranges cut inside groups */
            static const int shapes[][2] = {{16, 32}, {48, 96}, {16, 32 * 3}, {48, 32}};
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                for (int n = 1; n <= 7; n++) {
                    int rows = shapes[s][0];
                    check_r16_case(dt, mode, rows, shapes[s][1], n, 0, rows);
                    check_r16_case(dt, mode, rows, shapes[s][1], n, n % 5, rows - n % 3);
                }
            for (int n = 1; n <= 7; n += 3) check_r16_case(dt, mode, 272, 32 * 40, n, 7, 265);
        }
    }
}

#if defined(__aarch64__)
/* The NEON r16 kernels called directly (the tables route Q8_R16/Q4_R16 to them: neon ->
 * matmul_r16_neon.c, neon-dotprod and neon-i8mm -> matmul_r16_dotprod.c), so they stay tested
 * against the plain reference whatever the tables do. */
static void test_matmul_r16_neon_direct(void **state) {
    enum { ROWS = 48, K = 32 * 5, N = 7 };
    int dot = ulm_kernels_by_name("neon-dotprod") != NULL;
    print_message("r16 kernels called directly: neon%s\n", dot ? ", dotprod" : " (no dotprod on this CPU)");
    for (int q4 = 0; q4 < 2; q4++)
        for (int mode = DATA_RANDOM; mode <= DATA_EXTREME; mode++) {
            ulm_dtype plain = q4 ? ULM_DT_Q4 : ULM_DT_Q8, dt = ulm_dtype_interleaved(plain);
            size_t wsz = (size_t)ROWS * ulm_dtype_row_bytes(plain, K), psz = ulm_kernels_scalar.prepare_size(dt, N, K);
            void *w = malloc(wsz), *wil = malloc(wsz), *xp = malloc(psz);
            float *x = malloc(N * K * sizeof(float)), yref[N * ROWS], y[N * ROWS];
            make_weights(plain, mode, ROWS, K, w);
            make_inputs(mode, N, K, x);
            assert_int_equal(ulm_interleave_rows(plain, w, ROWS, K, wil), 0);
            ulm_kernels_scalar.prepare_input(dt, x, N, K, xp);
            ulm_kernels_scalar.matmul(plain, w, xp, N, K, yref, ROWS, 0, ROWS);
            for (int f = 0; f < 1 + dot; f++) {
                memset(y, 0, sizeof y);
                (f ? ulm_matmul_r16_dotprod : ulm_matmul_r16_neon)(dt, wil, xp, N, K, y, ROWS, 0, ROWS);
                for (int i = 0; i < N * ROWS; i++)
                    if (!same_float(y[i], yref[i]))
                        fail_msg("%s %s mode=%d: y[%d][%d] = %.9g, plain reference %.9g", f ? "r16_dotprod" : "r16_neon",
                                 ulm_dtype_name(dt), mode, i / ROWS, i % ROWS, y[i], yref[i]);
            }
            free(w), free(wil), free(xp), free(x);
        }
}
#endif

static void test_isa_selection(void **state) {
    setenv("ULM_ISA", "scalar", 1);
    assert_ptr_equal(ulm_kernels_best(), &ulm_kernels_scalar);
    setenv("ULM_ISA", "no-such-isa", 1);
    assert_null(ulm_kernels_best());
    assert_non_null(strstr(ulm_isa_name(), "none")); /* a message, not a crash */
    for (int t = 0; t < ntables; t++) {
        setenv("ULM_ISA", tables[t]->isa, 1);
        assert_ptr_equal(ulm_kernels_best(), tables[t]);
    }
    unsetenv("ULM_ISA");
    const ulm_kernels *best = ulm_kernels_best();
    assert_non_null(best);
    if (ntables) assert_ptr_equal(best, tables[ntables - 1]); /* names are listed narrowest first */
    print_message("best ISA here: %s\n", best->isa);
#if defined(__aarch64__)
    assert_non_null(ulm_kernels_by_name("neon")); /* baseline on aarch64, e.g. cortex-a53 */
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_exhaustive),      cmocka_unit_test(test_bf16_exhaustive),
        cmocka_unit_test(test_gguf_layout),         cmocka_unit_test(test_quant_round_trip),
        cmocka_unit_test(test_prepare_input_exact), cmocka_unit_test(test_matmul_exact),
        cmocka_unit_test(test_matmul_random),       cmocka_unit_test(test_matmul_extreme),
        cmocka_unit_test(test_matmul_saturation),   cmocka_unit_test(test_interleave_layout),
        cmocka_unit_test(test_matmul_r16),          cmocka_unit_test(test_isa_selection),
        cmocka_unit_test(test_matmul_nonfinite_inputs),
#if defined(__aarch64__)
        cmocka_unit_test(test_matmul_r16_neon_direct),
#endif
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
