/* Plain NEON (ARMv8.0, no sdot: cortex-a53 and up) matmul for the 16-row interleaved weights
 * Q8_R16 / Q4_R16: y[i*ldy + r] = sum_k W[r][k] * x[i][k] over groups of 16 rows, 1 to 4
 * inputs per pass over a group's weights (decode and prefill).
 *
 * Spec: dot_row_r16() in kernels/ref/matmul_ref.c, matched bit for bit. The 16 rows of a
 * group are 16 float lanes; quant.h's layout puts 4 bytes of each of 4 rows in every 16-byte
 * quarter line, so widening multiplies against 4 input bytes broadcast give each row's block
 * dot in its own lane with one pairwise add at the end, no per-row horizontal sums (body and
 * details: matmul_r16_neon_body.h). */
#define ULM_DOTPROD 0
#include "matmul_r16_neon_body.h"

void ulm_matmul_r16_neon(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                         int r1) {
    matmul_r16_body(dt, w, xprep, n, k, y, ldy, r0, r1);
}
