/* The loop nest every SIMD matmul shares: an ISA supplies one tile function that computes an
 * nr x nx block of outputs (nr <= MR weight rows against nx <= NR inputs) over the whole k, and
 * this driver walks the rows [r0, r1) and the n inputs in such tiles.
 *
 * Why tiles: in prefill each weight block loaded from memory is used for NR inputs before it is
 * dropped, so weights are streamed n/NR times instead of n times; and when n > NR the rows are
 * cut into chunks of about ULM_TILE_CHUNK_BYTES of weights, so the repeat passes over a chunk
 * (one per tile of inputs) hit L2 and the weights come from memory once. For n <= NR (decode)
 * it is one straight pass over the rows. */
#ifndef ULM_MATMUL_TILED_H
#define ULM_MATMUL_TILED_H
#include <stddef.h>
#include <stdint.h>

#define ULM_TILE_CHUNK_BYTES (256 * 1024)

/* y[i*ldy + r] = dot(weight row r, input i) for r < nr, i < nx; w points at weight row 0 of the
 * tile (rows wrb bytes apart), x at input 0 (xrb bytes apart), y at output (0, 0). */
typedef void (*ulm_tile_fn)(const uint8_t *w, size_t wrb, int nr, const uint8_t *x, size_t xrb, int nx,
                            int k, float *y, int ldy);

void ulm_matmul_tiled(ulm_tile_fn tile, int MR, int NR, const void *w, size_t wrb, const void *x, size_t xrb,
                      int n, int k, float *y, int ldy, int r0, int r1);

/* Bytes of one prepared input row as the reference lays it out: q8 blocks for q8/q4 weights,
 * f32 otherwise (every SIMD table shares this layout, so prepared inputs compare bytewise). */
size_t ulm_prepared_row_bytes(int dt, int k);
/* prepare_size of every table: n prepared rows. */
size_t ulm_prepare_size_common(int dt, int n, int k);

/* Full unrolling of a tile's small loops (rows, inputs) keeps its accumulators in registers:
 * GCC -O2 otherwise left the 4 x 4 of the AVX-512 tiles in memory, a load and a store around
 * every FMA. */
#define ULM_UNROLL _Pragma("GCC unroll 4")

/* Software prefetch for the matrix x vector streams. A kernel that spends ~30 instructions per
 * 300 bytes of weights keeps only a few KiB in flight through its reorder window, too little to
 * cover the memory latency at full bandwidth, and the hardware prefetcher follows several row
 * streams (a 4-row tile) only a little way ahead. Fetching ULM_PREFETCH_AHEAD bytes ahead
 * raised q4r16 from 74-87% to 103-124% of the read bandwidth on one core (Sapphire Rapids;
 * bench/results/kernels-*.md). A prefetch never faults, so running past the end is harmless. */
#define ULM_PREFETCH_AHEAD 2048
#define ULM_PREFETCH_AHEAD_ROWS 1024 /* per row, when a tile streams several rows at once */
static inline void ulm_prefetch_ahead(const void *p, size_t dist, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch((const char *)p + dist + o, 0, 3);
}

/* Small-op fields of a table: the references, or the AVX2 ones (kernels/x86/ops_avx2.c); the
 * NEON ones (ULM_OPS_NEON) are in the aarch64 block below. */
#define ULM_OPS_REF                                                                                   \
    .rmsnorm = k_rmsnorm, .softmax = k_softmax, .dot = k_dot_f32, .axpy = k_axpy, .add = k_add,       \
    .scale = k_scale, .swiglu = k_swiglu, .geglu = k_geglu, .rope_apply = k_rope_apply,              \
    .f16_to_f32 = k_f16_to_f32, .axpy_rows = k_axpy_rows, .f32_to_f16 = k_f32_to_f16
#define ULM_OPS_AVX2_COMMON                                                                           \
    .rmsnorm = ulm_rmsnorm_avx2, .softmax = ulm_softmax_avx2, .dot = ulm_dot_avx2, .axpy = ulm_axpy_avx2, \
    .add = ulm_add_avx2, .scale = ulm_scale_avx2, .swiglu = ulm_swiglu_avx2, .geglu = ulm_geglu_avx2,     \
    .rope_apply = ulm_rope_apply_avx2, .f16_to_f32 = ulm_f16_to_f32_avx2, .f32_to_f16 = ulm_f32_to_f16_avx2
#define ULM_OPS_AVX2 ULM_OPS_AVX2_COMMON, .axpy_rows = ulm_axpy_rows_avx2
/* The AVX-512 tables: the same, with the ops that gain from 16 lanes (ops_avx512.c). */
#define ULM_OPS_AVX512 ULM_OPS_AVX2_COMMON, .axpy_rows = ulm_axpy_rows_avx512
void ulm_rmsnorm_avx2(float *out, const float *x, const float *w, int n, float eps, float w_offset);
void ulm_softmax_avx2(float *x, int n);
float ulm_dot_avx2(const float *a, const float *b, int n);
void ulm_axpy_avx2(float *y, float a, const float *x, int n);
void ulm_add_avx2(float *y, const float *x, int n);
void ulm_scale_avx2(float *y, float s, int n);
void ulm_swiglu_avx2(float *out, const float *g, const float *u, int n);
void ulm_geglu_avx2(float *out, const float *g, const float *u, int n);
void ulm_rope_apply_avx2(float *x, int hd, int rot_dim, int interleaved, const float *cs);
void ulm_f16_to_f32_avx2(float *out, const uint16_t *x, int n);
void ulm_f32_to_f16_avx2(uint16_t *out, const float *x, int n);
void ulm_axpy_rows_avx2(float *y, const float *w, const float *const *x, int m, int n);
void ulm_axpy_rows_avx512(float *y, const float *w, const float *const *x, int m, int n);

/* Pieces one ISA's table borrows from another (a wider ISA always implies the narrower). */
#include "quant.h"
#if defined(__x86_64__)
void ulm_quantize_q8_avx2(const float *x, block_q8 *out, int k);
void ulm_prepare_input_avx2(ulm_dtype dt, const float *x, int n, int k, void *out);
void ulm_matmul_avx2(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0, int r1);
void ulm_matmul_avx512(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                       int r1);
void ulm_matmul_r16_avx2(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                         int r1);
void ulm_matmul_r16_vnni(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                         int r1);
void ulm_matmul_avx512vnni(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                           int r1);
#elif defined(__aarch64__)
/* Small-op fields of every ARM table: kernels/arm/ops_neon.c (plain ARMv8.0 NEON). */
#define ULM_OPS_NEON                                                                                  \
    .rmsnorm = ulm_rmsnorm_neon, .softmax = ulm_softmax_neon, .dot = ulm_dot_neon, .axpy = ulm_axpy_neon, \
    .add = ulm_add_neon, .scale = ulm_scale_neon, .swiglu = ulm_swiglu_neon, .geglu = ulm_geglu_neon,     \
    .rope_apply = ulm_rope_apply_neon, .f16_to_f32 = ulm_f16_to_f32_neon,   \
    .axpy_rows = ulm_axpy_rows_neon, .f32_to_f16 = ulm_f32_to_f16_neon
void ulm_rmsnorm_neon(float *out, const float *x, const float *w, int n, float eps, float w_offset);
void ulm_softmax_neon(float *x, int n);
float ulm_dot_neon(const float *a, const float *b, int n);
void ulm_axpy_neon(float *y, float a, const float *x, int n);
void ulm_add_neon(float *y, const float *x, int n);
void ulm_scale_neon(float *y, float s, int n);
void ulm_swiglu_neon(float *out, const float *g, const float *u, int n);
void ulm_geglu_neon(float *out, const float *g, const float *u, int n);
void ulm_rope_apply_neon(float *x, int hd, int rot_dim, int interleaved, const float *cs);
void ulm_f16_to_f32_neon(float *out, const uint16_t *x, int n);
void ulm_f32_to_f16_neon(uint16_t *out, const float *x, int n);
void ulm_axpy_rows_neon(float *y, const float *w, const float *const *x, int m, int n);
void ulm_prepare_input_neon(ulm_dtype dt, const float *x, int n, int k, void *out);
void ulm_matmul_neon(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0, int r1);
void ulm_matmul_neon_dotprod(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy,
                             int r0, int r1);
void ulm_matmul_r16_neon(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                         int r1);
void ulm_matmul_r16_dotprod(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy,
                            int r0, int r1);
#endif

#endif
