/* NEON dot-product (sdot, ARMv8.2 +dotprod) matmul for the 16-row interleaved weights
 * Q8_R16 / Q4_R16: y[i*ldy + r] = sum_k W[r][k] * x[i][k] over groups of 16 rows, 1 to 4
 * inputs per pass over a group's weights (decode and prefill). Also the i8mm table's.
 *
 * Spec: dot_row_r16() in kernels/ref/matmul_ref.c, matched bit for bit. quant.h's layout
 * makes every 16-byte quarter of a weight line one sdot-by-element operand (4 bytes of each
 * of 4 rows against 4 input bytes), so 8 sdot give the block dots of 4 rows in 4 int32 lanes
 * and 32 those of the whole group, with no horizontal sums (body: matmul_r16_neon_body.h). */
#define ULM_DOTPROD 1
#include "matmul_r16_neon_body.h"

void ulm_matmul_r16_dotprod(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy,
                            int r0, int r1) {
    matmul_r16_body(dt, w, xprep, n, k, y, ldy, r0, r1);
}
